"""Where a model's weights matter: magnitude and Taylor importance per layer and per output
channel, and a sensitivity scan that compresses one layer at a time and measures the drop.

Results are cached on disk per model file content and settings, so reopening a model shows
them at once.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from paretolab.core.measure.data import Dataset, calibration_subset, fit_to_model
from paretolab.core.measure.devices import ort_device, timed, torch_device
from paretolab.core.measure.metrics import FidelityMeter, is_classifier_output
from paretolab.core.model.eager import first_output
from paretolab.core.model.graph import LayerGraph, LayerNode
from paretolab.core.model.handle import ModelHandle
from paretolab.core.model.normalize import constants_as_initializers
from paretolab.core.progress import Progress, silent
from paretolab.core.tensors import fixed_batch

if TYPE_CHECKING:
    from paretolab.core.model.formats.torch_file import TorchSource

_WEIGHT_OPS = {"Conv", "Gemm", "MatMul", "ConvTranspose", "Convolution", "GroupConvolution"}


@dataclass
class LayerImportance:
    layer: str
    op: str
    params: int
    l1: float  # mean |w|
    l2: float  # root mean square of w
    taylor: float | None = None  # mean |w · dL/dw|, when gradients are available
    channels_l1: list[float] = field(default_factory=list)  # per output channel, mean |w|
    channels_taylor: list[float] = field(default_factory=list)


def weight_arrays(handle: ModelHandle) -> dict[str, np.ndarray]:
    """Every stored tensor of the model by the name LayerGraph weights use."""
    if handle.format == "onnx":
        import onnx
        from onnx import numpy_helper

        model = onnx.load(str(handle.path))
        constants_as_initializers(model)  # weights kept in Constant nodes (Paddle2ONNX and others)
        return {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    if handle.runs_on_openvino_only:
        return {
            op.get_friendly_name(): op.get_data() for op in handle.native.get_ordered_ops() if op.get_type_name() == "Constant"
        }
    module = cast("TorchSource", handle.source).module
    return {name: t.detach().cpu().numpy() for name, t in module.state_dict().items()}


def _main_weight(node: LayerNode, arrays: dict[str, np.ndarray]) -> np.ndarray | None:
    for w in node.weights:
        if len(w.shape) >= 2 and w.name in arrays and arrays[w.name].dtype.kind == "f":
            return arrays[w.name]
    return None


def _channel_axis(node: LayerNode, weight: np.ndarray) -> int:
    """Output channels are axis 0 for convolutions and torch-style Gemm, axis 1 for MatMul."""
    if node.op == "MatMul":
        return weight.ndim - 1
    out = node.output_shapes[0][-1] if node.output_shapes and node.output_shapes[0] else None
    if node.op == "Gemm" and weight.shape[0] != out and weight.shape[1] == out:
        return 1
    return 0


def _per_channel(values: np.ndarray, axis: int) -> list[float]:
    moved = np.moveaxis(np.abs(values), axis, 0)
    return moved.reshape(moved.shape[0], -1).mean(1).astype(float).tolist()


def head_scores(handle: ModelHandle) -> dict[str, list[float]]:
    """Each attention head's importance, for models with an editable module whose attention has
    separate query, key and value layers (prune_heads.attention_modules); empty otherwise."""
    import torch

    from paretolab.core.compress.pruning.prune_heads import head_importance

    native = handle.native
    return head_importance(native) if isinstance(native, torch.nn.Module) and not isinstance(
        native, torch.jit.ScriptModule) else {}


def weight_importance(handle: ModelHandle, data: Dataset | None = None, *, taylor: bool = True, samples: int = 64,
                      device: str = "auto", progress: Progress | None = None) -> list[LayerImportance]:
    """Magnitude importance of every layer with weights; Taylor importance too when the model
    has a PyTorch form and `data` is given (labels, or the model's own predictions), its
    gradients computed on `device` (auto: the GPU when torch sees one)."""
    progress = progress or silent()
    graph = handle.layer_graph()
    arrays = weight_arrays(handle)
    grads = {}
    if taylor and data is not None:
        where = torch_device(device, "Taylor importance")
        with timed(where.type) as watch:
            grads = _gradients(handle, data, samples, where)
        if grads:
            progress.report(0.5, watch.text("the gradients for Taylor importance"))
    results = []
    layers = [n for n in graph if n.op in _WEIGHT_OPS]
    for i, node in enumerate(layers):
        weight = _main_weight(node, arrays)
        if weight is None:
            continue
        axis = _channel_axis(node, weight)
        item = LayerImportance(node.name, node.op, node.params, float(np.abs(weight).mean()), float(np.sqrt((weight**2).mean())),
                               channels_l1=_per_channel(weight, axis))
        # by the ONNX weight's own name, else by module path: exports that fold BatchNorm into
        # the convolution rename (and rescale) its weight, so take weight and gradient from torch
        name = next((w.name for w in node.weights if w.name in grads), None) or (
            f"{node.name}.weight" if f"{node.name}.weight" in grads else None)
        if name is not None:
            torch_weight, grad = grads[name]
            product = (weight if name in arrays else torch_weight) * grad
            item.taylor = float(np.abs(product).mean())
            item.channels_taylor = _per_channel(product, axis)
        results.append(item)
        progress.report((i + 1) / len(layers), f"importance of {node.name}")
    return results


def _gradients(handle: ModelHandle, data: Dataset, samples: int, device: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(w, dL/dw) for every parameter, the gradient summed over `samples` calibration samples."""
    import torch

    from paretolab.core.model.eager import TechniqueUnavailable, eager_module

    if handle.format in ("torchscript", "torch.export"):
        module = cast("TorchSource", handle.source).module
        if device.type != "cpu":
            module = copy.deepcopy(module)  # the handle's own module stays on the CPU
    else:
        try:
            module = eager_module(handle, "Taylor importance")
        except TechniqueUnavailable:
            return {}
    fit_to_model(data, handle.inputs, handle.path.name)
    module.to(device)
    params = dict(module.named_parameters())
    for p in params.values():
        p.requires_grad_(True)
        p.grad = None
    for batch in calibration_subset(data, samples).batches(32):
        logits = first_output(module(*[torch.from_numpy(a).to(device) for a in batch.inputs]))
        target = torch.from_numpy(batch.labels).to(device) if batch.labels is not None else logits.detach().argmax(1)
        torch.nn.functional.cross_entropy(logits, target, reduction="sum").backward()
    grads = {name: (p.detach().cpu().numpy().copy(), p.grad.detach().cpu().numpy().copy())
             for name, p in params.items() if p.grad is not None}
    for p in params.values():
        p.grad = None
    return grads


# -- sensitivity -----------------------------------------------------------------------------


@dataclass
class SensitivityRow:
    layer: str
    level: float  # pruning ratio, or bits for quantization
    score: float
    drop: float  # baseline score - score (positive: worse)


@dataclass
class SensitivityResult:
    kind: str  # "prune" or "quantize"
    metric: str  # "top1", "agreement" or "cosine"
    baseline: float
    rows: list[SensitivityRow] = field(default_factory=list)
    device: str = "cpu"  # where ONNX Runtime ran the scan
    seconds: float = 0.0

    def by_layer(self) -> dict[str, float]:
        """The worst drop each layer caused: how sensitive it is."""
        worst: dict[str, float] = {}
        for row in self.rows:
            worst[row.layer] = max(worst.get(row.layer, -np.inf), row.drop)
        return worst

    def to_dict(self) -> dict:
        return asdict(self)


def sensitivity_scan(handle: ModelHandle, data: Dataset, *, kind: str = "prune", levels: tuple[float, ...] = (0.3, 0.6, 0.9),
                     samples: int = 300, layers: tuple[str, ...] = (), threads: int | None = None,
                     cache: Path | None = None, device: str = "auto", progress: Progress | None = None) -> SensitivityResult:
    """Compress one layer at a time and measure the metric on ONNX Runtime (on `device`; auto:
    CUDA when onnxruntime-gpu sees a GPU).

    kind "prune": zero the layer's smallest weights at each level (a share of its weights);
    kind "quantize": round the layer's weights to int8, per output channel (levels ignored).
    The metric is top-1 accuracy with labels, else agreement with the unmodified model.
    """
    progress = progress or silent()
    key = _cache_key(handle, kind, levels, samples, layers)
    cached = _read_cache(cache, key)
    if cached is not None:
        return cached
    fit_to_model(data, handle.inputs, handle.path.name)
    with timed(ort_device(device)) as watch:
        result = _scan(handle, calibration_subset(data, samples), kind, levels, layers, threads, watch.where, progress)
    result.device, result.seconds = watch.where, watch.seconds
    _write_cache(cache, key, result)
    progress.report(1.0, watch.text(f"the {kind} sensitivity of {len({r.layer for r in result.rows})} layers"))
    return result


def _scan(handle: ModelHandle, subset: Dataset, kind: str, levels: tuple[float, ...], layers: tuple[str, ...],
          threads: int | None, device: str, progress: Progress) -> SensitivityResult:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(handle.onnx_file()))
    constants_as_initializers(model)
    inits = {t.name: t for t in model.graph.initializer}
    graph = handle.layer_graph()
    names = {n.source: n.name for n in graph}
    targets = []
    for node in model.graph.node:
        layer = names.get(node.name, node.name)
        if (
            node.op_type in ("Conv", "Gemm", "MatMul")
            and len(node.input) > 1
            and node.input[1] in inits
            and (not layers or layer in layers)
        ):
            targets.append((layer, node.input[1]))
    inputs = [s.name for s in handle.inputs]
    size = fixed_batch(handle.inputs) or 64
    batches = [[a.astype(np.float32) if a.dtype.kind == "f" else a for a in b.inputs] for b in subset.batches(size)]
    reference = _run_all(model, inputs, batches, threads, device)
    metric, score_of = _scorer(reference, subset.labels)
    result = SensitivityResult(kind, metric, score_of(reference))
    steps = [(layer, init, level) for layer, init in targets for level in (levels if kind == "prune" else (8,))]
    for i, (layer, init, level) in enumerate(steps):
        progress.report(i / max(1, len(steps)), f"{kind} sensitivity of {layer} at {level}")
        original = numpy_helper.to_array(inits[init])
        changed = _prune(original, level) if kind == "prune" else _fake_int8(original)
        inits[init].CopyFrom(numpy_helper.from_array(changed.astype(original.dtype), init))
        try:
            score = score_of(_run_all(model, inputs, batches, threads, device))
        finally:
            inits[init].CopyFrom(numpy_helper.from_array(original, init))
        result.rows.append(SensitivityRow(layer, float(level), score, result.baseline - score))
    return result


def _scorer(reference: list[np.ndarray], labels: np.ndarray | None) -> tuple[str, Callable[[list[np.ndarray]], float]]:
    """The measure a scan scores by: top-1 with labels, agreement for class scores, else the
    worst output's cosine similarity to the unmodified model (detections, masks, embeddings)."""
    if is_classifier_output(reference[0]):
        truth = labels if labels is not None else reference[0].argmax(1)
        return ("top1" if labels is not None else "agreement"), lambda outs: float((outs[0].argmax(1) == truth).mean())

    def cosine(outputs: list[np.ndarray]) -> float:
        meters = [FidelityMeter(str(i)) for i in range(len(reference))]
        for meter, out, ref in zip(meters, outputs, reference):
            meter.add(out, ref)
        return min(m.result().cosine for m in meters)

    return "cosine", cosine


def _run_all(model: Any, input_names: list[str], batches: list[list[np.ndarray]], threads: int | None,
             device: str = "cpu") -> list[np.ndarray]:
    """Every output of the model over all batches (one session for all)."""
    import onnxruntime as ort

    from paretolab.core.measure.runtimes import ORT_PROVIDERS

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
    session = ort.InferenceSession(model.SerializeToString(), options, providers=ORT_PROVIDERS[device])
    runs = [session.run(None, dict(zip(input_names, arrays))) for arrays in batches]
    return [np.concatenate([run[i] for run in runs]) for i in range(len(runs[0]))]


def _prune(weight: np.ndarray, ratio: float) -> np.ndarray:
    threshold = np.quantile(np.abs(weight), ratio)
    return np.where(np.abs(weight) <= threshold, 0, weight)


def _fake_int8(weight: np.ndarray) -> np.ndarray:
    """Symmetric per-output-channel int8 rounding, back in float."""
    flat = weight.reshape(weight.shape[0], -1)
    scale = np.abs(flat).max(1, keepdims=True) / 127.0
    scale[scale == 0] = 1.0
    return (np.clip(np.round(flat / scale), -127, 127) * scale).reshape(weight.shape)


def _cache_key(handle: ModelHandle, *parts: object) -> str:
    from paretolab.core.files import files_digest

    settings = hashlib.sha256(json.dumps([str(p) for p in parts]).encode()).hexdigest()
    return f"{files_digest(handle.files)[:20]}-{settings[:12]}"


def _read_cache(folder: Path | None, key: str) -> SensitivityResult | None:
    if folder is None or not (folder / f"{key}.json").exists():
        return None
    doc = json.loads((folder / f"{key}.json").read_text())
    return SensitivityResult(doc["kind"], doc["metric"], doc["baseline"], [SensitivityRow(**r) for r in doc["rows"]],
                             doc.get("device", "cpu"), doc.get("seconds", 0.0))


def _write_cache(folder: Path | None, key: str, result: SensitivityResult) -> None:
    if folder is None:
        return
    from paretolab.core.files import write_json_atomic

    write_json_atomic(folder / f"{key}.json", result.to_dict())


def default_cache() -> Path:
    import platformdirs

    return Path(platformdirs.user_cache_dir("paretolab")) / "sensitivity"


# -- quantization error per layer --------------------------------------------------------------


def quantization_error(fp32: Path, int8: Path, data: Dataset, input_names: list[str], samples: int = 64) -> dict[str, float]:
    """SQNR (dB) of every tensor the FP32 and the quantized (QDQ) model share, comparing
    their activations layer by layer. Lower is worse."""
    import onnx

    batch = [
        a.astype(np.float32) if a.dtype.kind == "f" else a
        for a in calibration_subset(data, samples).load(np.arange(min(samples, len(data))))
    ]
    names, a = _all_activations(onnx.load(str(fp32)), input_names, batch)
    _, b = _all_activations(onnx.load(str(int8)), input_names, batch)
    result = {}
    for name in names:
        # In a QDQ model the quantized form of tensor X is what its DequantizeLinear gives;
        # X itself may even be a different tensor (a Relu folded into the quantizer's clamp).
        counterpart = f"{name}_DequantizeLinear_Output" if f"{name}_DequantizeLinear_Output" in b else name
        if counterpart not in b:
            continue
        ref, out = a[name].astype(np.float64), b[counterpart].astype(np.float64)
        if ref.shape != out.shape:
            continue
        noise = float(((ref - out) ** 2).sum())
        result[name] = float("inf") if noise == 0 else 10 * np.log10(max(float((ref**2).sum()), 1e-30) / noise)
    return result


def _all_activations(model: Any, input_names: list[str], arrays: list[np.ndarray]) -> tuple[list[str], dict[str, np.ndarray]]:
    import onnx

    existing = {o.name for o in model.graph.output}
    produced = [o for node in model.graph.node for o in node.output if o and o not in existing]
    model.graph.output.extend(onnx.ValueInfoProto(name=n) for n in produced)
    buffer = io.BytesIO()
    onnx.save(model, buffer)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep every tensor
    session = ort.InferenceSession(buffer.getvalue(), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, dict(zip(input_names, arrays)))
    return names, dict(zip(names, values))


def most_sensitive_layers(graph: LayerGraph, sqnr: dict[str, float], count: int) -> list[str]:
    """The `count` weight layers whose own quantization costs the most SQNR: the drop from
    their input's SQNR to their output's, so errors made upstream are not blamed on them.
    A layer fused with its activation in the quantized model is read after the activation."""
    losses = []
    for node in graph:
        if node.op not in _WEIGHT_OPS:
            continue
        after = _measured_output(graph, node, sqnr)
        if after is None:
            continue
        inputs = [
            v
            for pred in graph.predecessors(node.name)
            if (v := _measured_output(graph, graph.node(pred), sqnr, walk=False)) is not None
        ]
        before = min(inputs) if inputs else 200.0
        losses.append((min(before, 200.0) - min(after, 200.0), node.name))
    return [name for _, name in sorted(losses, reverse=True)[:count]]


def layer_output_sqnr(graph: LayerGraph, sqnr: dict[str, float]) -> dict[str, float]:
    """Tensor SQNRs as layer SQNRs (a layer fused with its activation reads after it)."""
    result = {}
    for node in graph:
        value = _measured_output(graph, node, sqnr)
        if value is not None:
            result[node.name] = min(value, 200.0)  # identical outputs: a finite top for charts
    return result


def _measured_output(graph: LayerGraph, node: LayerNode, sqnr: dict[str, float], walk: bool = True) -> float | None:
    for _ in range(3 if walk else 1):
        known = [sqnr[t] for t in node.outputs if t in sqnr]
        if known:
            return known[0]
        successors = graph.successors(node.name)
        if len(successors) != 1:
            return None
        node = graph.node(successors[0])
    return None
