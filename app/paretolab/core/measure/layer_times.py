"""Map a runtime profiler's node names onto LayerGraph layers.

Runtimes rename what they fuse: ONNX Runtime names a fused Conv+Relu after the Relu's
output tensor ("/features/features.1/Relu_output_0_nchwc"), OpenVINO appends suffixes
("features.0/WithoutBiases") or names a node after its output ("logits"). We try the
runtime's name, then its tensor, then shorter prefixes; a fused activation's time goes to
the convolution it was fused into. Runtime-only nodes (layout reorders) stay separate.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from paretolab.core.model.graph import LayerGraph

_SUFFIXES = ("_nchwc", "/WithoutBiases", "/WithoutBias", "_output_0")


@dataclass
class LayerTime:
    layer: str  # LayerGraph name, or the runtime's own name when unmapped
    op: str  # what the runtime executed (may be a fused kernel)
    ms: float  # mean milliseconds per run
    share: float = 0.0  # of the summed per-layer time
    mapped: bool = True


_PREFIXES = ("fused ", "InsertedPrecisionFreeCast_")
_TOKEN = re.compile(r"_token_\d+$")  # ONNX Runtime's suffix for nodes its optimizer rebuilt


def _candidates(name: str) -> list[str]:
    bare = name
    for prefix in _PREFIXES:
        bare = bare.removeprefix(prefix).strip()
    names = [name, bare, _TOKEN.sub("", bare)]
    for base in list(names):
        stripped = base
        for suffix in _SUFFIXES:
            stripped = stripped.removesuffix(suffix)
        names.append(stripped)
        parts = stripped.split("/")
        names += ["/".join(parts[:i]) for i in range(len(parts) - 1, 0, -1)]
    return list(dict.fromkeys(n for n in names if n))


def _normal(op: str) -> str:
    op = op.lower().removeprefix("fused")
    return {"convolution": "conv", "fullyconnected": "gemm", "matmul": "gemm"}.get(op, op)


def map_layer_times(raw: dict[str, tuple[str, float]], graph: LayerGraph,
                    originals: dict[str, list[str]] | None = None) -> list[LayerTime]:
    """`originals`: for a runtime node, the model's nodes it was made from (OpenVINO records them:
    a Conv with its BatchNorm folded in runs as "Multiply_1234" but remembers the Conv)."""
    by_name: dict[str, str] = {}
    for node in graph:
        by_name.setdefault(node.name, node.name)
        by_name.setdefault(node.source, node.name)
        for tensor in node.outputs:
            by_name.setdefault(tensor, node.name)
            by_name.setdefault(tensor.removesuffix("_output_0"), node.name)
    merged: dict[str, LayerTime] = {}
    for runtime_name, (op, ms) in raw.items():
        names = _candidates(runtime_name) + [c for o in (originals or {}).get(runtime_name, []) for c in _candidates(o)]
        layer = next((by_name[c] for c in names if c in by_name), None)
        if layer is None:
            key = f"[runtime] {runtime_name}"
            merged[key] = LayerTime(key, op, ms, mapped=False)
            continue
        layer = _fused_into(layer, op, graph)
        if layer in merged:
            merged[layer].ms += ms
        else:
            merged[layer] = LayerTime(layer, op, ms)
    total = sum(t.ms for t in merged.values())
    for t in merged.values():
        t.share = t.ms / total if total > 0 else 0.0
    order = {node.name: i for i, node in enumerate(graph)}
    return sorted(merged.values(), key=lambda t: (not t.mapped, order.get(t.layer, len(order)), t.layer))


def _fused_into(layer: str, op: str, graph: LayerGraph) -> str:
    """When a kernel named after an activation ran a convolution, credit the convolution."""
    want = _normal(op)
    node = graph.node(layer)
    if not want or _normal(node.op) == want:
        return layer
    for _ in range(2):
        preds = graph.predecessors(node.name)
        if len(preds) != 1:
            break
        node = graph.node(preds[0])
        if _normal(node.op) == want:
            return node.name
    return layer
