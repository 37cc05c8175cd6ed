"""Two variants side by side, layer by layer: time on their backends, and how far each
layer's output drifted from the original model's (SQNR), where the tensors still match."""

from __future__ import annotations

from dataclasses import dataclass, field

from paretolab.core.compress.insight.importance import quantization_error
from paretolab.core.measure.data import Dataset
from paretolab.core.measure.profile import layer_breakdown
from paretolab.core.model.handle import ModelHandle


@dataclass
class LayerComparison:
    layer: str
    ms: list[float | None]  # per variant, mean time per run
    sqnr_db: list[float | None]  # per variant, output SQNR against the original (None: not comparable)


@dataclass
class Comparison:
    names: list[str]
    rows: list[LayerComparison] = field(default_factory=list)
    totals_ms: list[float] = field(default_factory=list)
    why: list[str] = field(default_factory=list)  # per variant: its speed-up and why it is (not) more


def compare_variants(original: ModelHandle, variants: list[tuple[str, ModelHandle, str]], data: Dataset) -> Comparison:
    """`variants`: (name, handle, backend) each. SQNR needs ONNX files that keep the original's
    tensor names (quantized and FP16 variants do; pruned ones change the tensors themselves)."""
    result = Comparison([name for name, _, _ in variants])
    times, errors, order = [], [], []
    for _, handle, backend in variants:
        layer_times = {t.layer: t.ms for t in layer_breakdown(handle, backend, "cpu", None)}
        times.append(layer_times)
        result.totals_ms.append(sum(layer_times.values()))
        errors.append(_layer_sqnr(original, handle, data))
        order += [n.name for n in handle.layer_graph() if n.name not in order]
    for layer in order:
        ms = [t.get(layer) for t in times]
        sqnr = [e.get(layer) for e in errors]
        if any(v is not None for v in ms + sqnr):
            result.rows.append(LayerComparison(layer, ms, sqnr))
    return result


def _layer_sqnr(original: ModelHandle, variant: ModelHandle, data: Dataset) -> dict[str, float]:
    if variant.format != "onnx":
        return {}
    try:
        by_tensor = quantization_error(original.onnx_file(), variant.onnx_file(), data, [s.name for s in original.inputs])
    except Exception:  # a graph ONNX Runtime cannot expose intermediate outputs of: no per-layer error
        return {}
    return {node.name: by_tensor[node.outputs[0]] for node in original.layer_graph()
            if node.outputs and node.outputs[0] in by_tensor}
