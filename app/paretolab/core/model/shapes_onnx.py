"""Shape inference that carries on where ONNX's stops: past ONNX Runtime's quantized contrib ops,
through a transformer's attention-mask plumbing (ONNX Runtime's symbolic inference), and, as a
last resort, by running the model once on zeros. MACs need the shapes of every compute op."""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import onnx
from onnx import helper, shape_inference

from paretolab.core.files import inside
from paretolab.core.tensors import check_fits_in_memory

log = logging.getLogger(__name__)


def infer_shapes(model: onnx.ModelProto, values: Mapping[str, float] | None = None) -> onnx.ModelProto:
    """Shape inference that never fails the caller: on error, keep the shapes we have. ONNX's
    inference stops at ONNX Runtime's quantized contrib ops (QLinearConcat, QLinearSigmoid, ...),
    so their output shapes are filled in from their inputs and inference goes on past them."""
    for _ in range(32):  # each round gets past at least one contrib op, or stops
        try:
            model = shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
        except Exception as exc:  # onnx raises a zoo of types here; the graph is still useful
            log.warning("ONNX shape inference failed (%s); some shapes stay unknown", exc)
            return model
        if not _fill_contrib_shapes(model):
            break
    return _symbolic_where_unknown(model, values or {})


_COMPUTE = ("MatMul", "Gemm", "Conv", "MatMulInteger", "MatMulNBits", "LSTM", "GRU", "RNN")


def _unknown_compute_shapes(model: onnx.ModelProto) -> list[str]:
    """The data inputs and outputs of compute ops (what MACs need) whose shapes are not fully known."""
    known = {v.name: v for v in (*model.graph.input, *model.graph.value_info, *model.graph.output)}
    initializers = {t.name for t in model.graph.initializer}
    unknown = [name for n in model.graph.node if n.op_type in _COMPUTE for name in (*n.input[:2], *n.output[:1])
               if name and name not in initializers and not (name in known and _complete(known[name]))]
    return list(dict.fromkeys(unknown))


def _symbolic_where_unknown(model: onnx.ModelProto, values: Mapping[str, float]) -> onnx.ModelProto:
    """ONNX's inference loses sizes through the Shape/Expand/Where plumbing of attention masks, so a
    transformer's MatMuls come out unsized (MACs 0). ONNX Runtime's symbolic inference, written for
    transformers, follows most of them; what it cannot, one run of the model on zeros measures.
    Both run only when a compute op's input is still unknown."""
    if not _unknown_compute_shapes(model):
        return model
    try:
        from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

        with inside():  # it saves a file into the working folder when it cannot finish
            model = SymbolicShapeInference.infer_shapes(model, auto_merge=True, guess_output_rank=True)
    except Exception as exc:  # noqa: BLE001 - a courtesy: the ONNX shapes stand
        log.info("symbolic shape inference failed (%s); some shapes stay unknown", exc)
    unknown = _unknown_compute_shapes(model)
    return _shapes_by_running(model, unknown, values) if unknown else model


def _shapes_by_running(model: onnx.ModelProto, names: list[str], held: Mapping[str, float]) -> onnx.ModelProto:
    """Record the shapes of `names` by running the model once on zeros (inputs held at a value take it) with them as outputs
    (only when every input's shape is fixed, and only a courtesy: failures leave them unknown)."""
    import onnxruntime as ort

    initializers = {t.name for t in model.graph.initializer}
    inputs = {v.name: v.type.tensor_type for v in model.graph.input if v.name not in initializers}
    if any(not d.HasField("dim_value") or d.dim_value <= 0 for t in inputs.values() for d in t.shape.dim):
        return model
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.value_info}
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    wanted = [name for name in names if types.get(name)]
    del probe.graph.value_info[:]  # ONNX Runtime infers its own; an inferred type gone wrong must not fail the run
    probe.graph.output.extend(helper.make_tensor_value_info(name, types[name], None) for name in wanted)
    try:
        for name, t in inputs.items():  # a courtesy run never takes the machine's memory: skipped when it cannot fit
            check_fits_in_memory(name, [d.dim_value for d in t.shape.dim], helper.tensor_dtype_to_np_dtype(t.elem_type).name)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        options.log_severity_level = 4  # a courtesy run: its failure is logged below, not printed by ORT
        session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
        feeds = {name: np.full(tuple(d.dim_value for d in t.shape.dim), held.get(name, 0),
                               dtype=helper.tensor_dtype_to_np_dtype(t.elem_type)) for name, t in inputs.items()}
        values = session.run(wanted, feeds)
    except Exception as exc:  # noqa: BLE001 - the shapes stay unknown, as before
        log.info("could not run %s to measure its shapes (%s)", model.graph.name, exc)
        return model
    measured = {name: value.shape for name, value in zip(wanted, values)}
    kept = [v for v in model.graph.value_info if v.name not in measured]
    del model.graph.value_info[:]
    model.graph.value_info.extend(kept)
    model.graph.value_info.extend(helper.make_tensor_value_info(name, types[name], list(shape))
                                  for name, shape in measured.items())
    return model


_ELEMENTWISE_CONTRIB = {"QLinearSigmoid": (0,), "QLinearLeakyRelu": (0,), "QLinearSoftmax": (0,), "QLinearAdd": (0, 3),
                        "QLinearMul": (0, 3)}


def _fill_contrib_shapes(model: onnx.ModelProto) -> bool:
    """Record output shapes of quantized contrib ops whose input shapes are known; True if any were added."""
    g = model.graph
    known = {v.name: v for v in (*g.input, *g.value_info, *g.output) if _complete(v)}
    for t in g.initializer:  # a QGemm's weights
        known.setdefault(t.name, helper.make_tensor_value_info(t.name, t.data_type, list(t.dims)))
    added = False
    for node in g.node:
        if node.domain != "com.microsoft" or not node.output or node.output[0] in known:
            continue
        shape = _contrib_shape(node, known)
        if shape is not None:
            elem = known[node.input[0] if node.op_type != "QLinearConcat" else node.input[2]].type.tensor_type.elem_type
            if node.op_type == "QGemm" and not (len(node.input) > 7 and node.input[7]):  # no y_scale: float output
                elem = onnx.TensorProto.FLOAT
            value = helper.make_tensor_value_info(node.output[0], elem, shape)
            g.value_info.append(value)
            known[value.name] = value
            added = True
    return added


def _complete(value: onnx.ValueInfoProto) -> bool:
    t = value.type.tensor_type
    return t.HasField("shape") and all(d.HasField("dim_value") and d.dim_value > 0 for d in t.shape.dim)


def _contrib_shape(node: onnx.NodeProto, known: Mapping[str, onnx.ValueInfoProto]) -> list[int] | None:
    def dims(name: str) -> list[int] | None:
        value = known.get(name)
        return [d.dim_value for d in value.type.tensor_type.shape.dim] if value is not None else None

    if node.op_type in _ELEMENTWISE_CONTRIB:
        shapes = [dims(node.input[i]) for i in _ELEMENTWISE_CONTRIB[node.op_type] if i < len(node.input)]
        if any(s is None for s in shapes):
            return None
        return [int(d) for d in np.broadcast_shapes(*(tuple(s) for s in shapes if s is not None))]
    if node.op_type == "QLinearConcat":
        parts = [dims(node.input[i]) for i in range(2, len(node.input), 3)]
        if not parts or any(p is None for p in parts):
            return None
        axis = next((a.i for a in node.attribute if a.name == "axis"), 0)
        known_parts = [p for p in parts if p is not None]
        out = list(known_parts[0])
        axis = axis % len(out)
        out[axis] = sum(p[axis] for p in known_parts)
        return out
    if node.op_type == "QGemm":  # A [M, K] (transA: [K, M]) times B [K, N] (transB: [N, K]), then MACs count on
        a, b = dims(node.input[0]), dims(node.input[3])
        if a is None or b is None or len(a) != 2 or len(b) != 2:
            return None
        attrs = {x.name: x.i for x in node.attribute}
        return [a[1] if attrs.get("transA") else a[0], b[0] if attrs.get("transB") else b[1]]
    if node.op_type == "QLinearGlobalAveragePool":
        x = dims(node.input[0])
        channels_last = next((a.i for a in node.attribute if a.name == "channels_last"), 0)
        if x is None:
            return None
        return [x[0], *([1] * (len(x) - 2)), x[-1]] if channels_last else [*x[:2], *([1] * (len(x) - 2))]
    return None
