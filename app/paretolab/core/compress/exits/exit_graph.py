"""The early-exit model as one ONNX graph that really stops early.

At each exit, the head's confidence decides per sample; an `If` runs the rest of the network
only when some sample is still unsure, and then only on those samples (Gather), whose results
are scattered back into the batch (ScatterND). At batch 1 a confident sample never touches the
later layers. Every segment stays as exported — the nodes move into nested `If` branches, which
read weights and constants from the enclosing graph — so the path to the end is the original
model, bit for bit. A second output, `exit`, says where each sample left (the last index: the end).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from paretolab.core.compress.exits.exit_heads import Head
from paretolab.core.model.cuts import Cut
from paretolab.core.model.eager import ARCH_KEY, STATE_DICT_KEY
from paretolab.core.model.exits import EARLY_EXIT_KEY, EXIT_OUTPUT


@dataclass(frozen=True)
class Pooling:
    """How a cut tensor becomes a feature vector: its rank and the axes averaged over."""

    rank: int
    axes: tuple[int, ...]
    cast: bool  # the tensor is not float32 (an FP16 model): cast first

    @classmethod
    def of(cls, sample: np.ndarray, channels_first: bool) -> Pooling:
        rank = sample.ndim
        axes = tuple(range(2, rank)) if rank >= 4 or (rank == 3 and channels_first) else (1,) if rank == 3 else ()
        return cls(rank, axes, sample.dtype != np.float32)


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


class _Builder:
    """Adds nodes and constants with unique names; reductions written for the model's opset."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.opset = _opset(model)
        self.initializers: list[TensorProto] = []

    def const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def reduce(self, op: str, x: str, axes: Sequence[int] | None, out: str, keepdims: int = 0) -> onnx.NodeProto:
        axes_are_input = self.opset >= (13 if op == "ReduceSum" else 18)
        if axes is None:
            return helper.make_node(op, [x], [out], keepdims=keepdims)
        if axes_are_input:
            return helper.make_node(op, [x, self.const(out + "/axes", np.array(axes, np.int64))], [out], keepdims=keepdims)
        return helper.make_node(op, [x], [out], axes=list(axes), keepdims=keepdims)


def pooling_nodes(b: _Builder, x: str, pooling: Pooling, out: str) -> list[onnx.NodeProto]:
    nodes = []
    if pooling.cast:
        nodes.append(helper.make_node("Cast", [x], [out + "/f32"], to=TensorProto.FLOAT))
        x = out + "/f32"
    if not pooling.axes:
        return [*nodes, helper.make_node("Identity", [x], [out])]
    return [*nodes, b.reduce("ReduceMean", x, pooling.axes, out)]


def probe_model(model: onnx.ModelProto, cuts: Sequence[Cut], poolings: Sequence[Pooling]) -> onnx.ModelProto:
    """A copy of `model` that also outputs each cut's pooled features (named '<tensor>/pooled')."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    b = _Builder(probe)
    for cut, pooling in zip(cuts, poolings):
        out = f"{cut.tensor}/pooled"
        probe.graph.node.extend(pooling_nodes(b, cut.tensor, pooling, out))
        probe.graph.output.append(helper.make_tensor_value_info(out, TensorProto.FLOAT, None))
    probe.graph.initializer.extend(b.initializers)
    return probe


def early_exit_model(model: onnx.ModelProto, cuts: Sequence[Cut], poolings: Sequence[Pooling], heads: Sequence[Head],
                     thresholds: Sequence[float], rule: str, flow: str = "subset",
                     macs: Sequence[int] = ()) -> onnx.ModelProto:
    """`model` with an exit after each cut (in graph order; thresholds finite). `flow` "subset"
    keeps every node in the main graph and runs the layers after an exit on the unsure samples
    only (on none, when all left), "if" puts them in `If` branches; `macs` (per exit, then the
    end) is what reaching each costs, recorded for averaging."""
    assert cuts and all(not math.isinf(t) for t in thresholds)
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    nodes = [_copy(n) for n in graph.node]
    final = graph.output[0]
    b = _Builder(out)
    bounds = [c.position + 1 for c in cuts]
    segments = [nodes[:bounds[0]]] + [nodes[s:e] for s, e in zip(bounds, [*bounds[1:], len(nodes)])]
    renamed_final = final.name + "/end"
    for node in segments[-1]:
        node.output[:] = [renamed_final if o == final.name else o for o in node.output]
    producers = {o: n for n in nodes for o in n.output}
    level = _Level(b, list(cuts), list(poolings), list(heads), list(thresholds), rule, segments, renamed_final, flow,
                   producers)
    del graph.node[:]
    graph.node.extend(segments[0])
    graph.node.extend(level.build(0, cuts[0].tensor, final.name, EXIT_OUTPUT))
    graph.initializer.extend(b.initializers)
    _name_new_nodes(graph)
    del graph.value_info[:]  # intermediate tensors moved into branches; runtimes infer their shapes again
    dims = final.type.tensor_type.shape.dim
    graph.output.append(helper.make_tensor_value_info(EXIT_OUTPUT, TensorProto.INT64, [dims[0].dim_param if dims else None]))
    kept = [p for p in out.metadata_props if p.key not in (ARCH_KEY, STATE_DICT_KEY, EARLY_EXIT_KEY)]
    del out.metadata_props[:]
    out.metadata_props.extend(kept)
    doc = {"output": EXIT_OUTPUT, "confidence": rule, "flow": flow, "macs": [int(m) for m in macs],
           "exits": [{"after": c.node, "label": c.name, "threshold": float(t)} for c, t in zip(cuts, thresholds)]}
    out.metadata_props.add(key=EARLY_EXIT_KEY, value=json.dumps(doc))
    return out


@dataclass
class _Level:
    b: _Builder
    cuts: list[Cut]
    poolings: list[Pooling]
    heads: list[Head]
    thresholds: list[float]
    rule: str
    segments: list[list[onnx.NodeProto]]
    final: str
    flow: str = "if"
    producers: dict[str, onnx.NodeProto] = field(default_factory=dict)
    current: dict[str, str] = field(default_factory=dict)  # a carried tensor's name for the samples still going

    def build(self, i: int, x: str, logits_out: str, exit_out: str) -> list[onnx.NodeProto]:
        """Exit i on the batch tensor `x`, then an If that runs the rest on the unsure samples."""
        b, p = self.b, f"exit{i}/"
        nodes = pooling_nodes(b, x, self.poolings[i], p + "pooled")
        h = p + "pooled"
        for j, (w, bias) in enumerate(self.heads[i].folded()):
            if j:
                nodes.append(helper.make_node("Relu", [h], [h + "/relu"]))
                h += "/relu"
            nodes.append(helper.make_node("Gemm", [h, b.const(f"{p}w{j}", w), b.const(f"{p}b{j}", bias)], [f"{p}logits{j}"],
                                          transB=1))
            h = f"{p}logits{j}"
        logits = h
        nodes += self._confidence(p, logits)
        nodes += [
            helper.make_node("Less", [p + "confidence", b.const(p + "threshold", np.array(self.thresholds[i], np.float32))],
                             [p + "unsure"]),
            helper.make_node("Cast", [p + "unsure"], [p + "unsure_f"], to=TensorProto.FLOAT),
            b.reduce("ReduceMax", p + "unsure_f", None, p + "any_f"),
            helper.make_node("Cast", [p + "any_f"], [p + "any"], to=TensorProto.BOOL),
            helper.make_node("Cast", [p + "unsure"], [p + "unsure_i"], to=TensorProto.INT64),
            helper.make_node("Mul", [p + "unsure_i", b.const(p + "zero", np.array(0, np.int64))], [p + "zeros"]),
            helper.make_node("Add", [p + "zeros", b.const(p + "index", np.array(i, np.int64))], [p + "exits"]),
        ]
        if self.flow == "subset":
            return nodes + self._rest(i, x, logits, p, logits_out, exit_out)
        rest = helper.make_graph(self._rest(i, x, logits, p, p + "all_logits", p + "all_exits"), f"{p}continue", [],
                                 [_float_out(p + "all_logits"), _int_out(p + "all_exits")])
        here = helper.make_graph(
            [helper.make_node("Identity", [logits], [p + "left_logits"]),
             helper.make_node("Identity", [p + "exits"], [p + "left_exits"])],
            f"{p}leave", [], [_float_out(p + "left_logits"), _int_out(p + "left_exits")])
        nodes.append(helper.make_node("If", [p + "any"], [logits_out, exit_out], then_branch=rest, else_branch=here))
        return nodes

    def _gather(self, x: str, p: str) -> list[onnx.NodeProto]:
        """The unsure samples of `x` as p + "x". Of an int8 model's dequantized tensor, the int8 tensor
        is gathered and dequantized again, so the next layer still reads a DequantizeLinear and runs in int8."""
        made = self.producers.get(x)
        if made is None or made.op_type != "DequantizeLinear" or made.attribute and any(
                a.name == "axis" and a.i == 0 for a in made.attribute):
            return [helper.make_node("Gather", [x, p + "rows"], [p + "x"], axis=0)]
        again = _copy(made)
        again.name, again.input[0], again.output[0] = p + "dequantize", p + "x_q", p + "x"
        return [helper.make_node("Gather", [made.input[0], p + "rows"], [p + "x_q"], axis=0), again]

    def _confidence(self, p: str, logits: str) -> list[onnx.NodeProto]:
        b = self.b
        if self.rule == "max-softmax":
            return [helper.make_node("Softmax", [logits], [p + "probs"], axis=1),
                    b.reduce("ReduceMax", p + "probs", [1], p + "confidence")]
        classes = self.heads[0].layers[-1][0].shape[0]
        return [  # 1 - entropy / log(classes)
            helper.make_node("Softmax", [logits], [p + "probs"], axis=1),
            helper.make_node("LogSoftmax", [logits], [p + "logp"], axis=1),
            helper.make_node("Mul", [p + "probs", p + "logp"], [p + "plogp"]),
            b.reduce("ReduceSum", p + "plogp", [1], p + "neg_entropy"),
            helper.make_node("Mul", [p + "neg_entropy", b.const(p + "inv_log", np.array(1 / math.log(classes), np.float32))],
                             [p + "scaled"]),
            helper.make_node("Add", [p + "scaled", b.const(p + "one", np.array(1.0, np.float32))], [p + "confidence"]),
        ]

    def _rest(self, i: int, x: str, logits: str, p: str, logits_out: str, exit_out: str) -> list[onnx.NodeProto]:
        """The then-branch: gather the unsure samples, run the next segment (and exits) on them, scatter back."""
        b = self.b
        nodes = [
            helper.make_node("NonZero", [p + "unsure"], [p + "nonzero"]),
            helper.make_node("Reshape", [p + "nonzero", b.const(p + "flat", np.array([-1], np.int64))], [p + "rows"]),
            helper.make_node("Reshape", [p + "nonzero", b.const(p + "column", np.array([-1, 1], np.int64))], [p + "rows_2d"]),
            *self._gather(x, p),
        ]
        self.current[x] = p + "x"  # later layers (and later gathers: a residual) read the unsure samples' rows
        for carried in self.cuts[i].carried:  # what else crosses with the batch first (an attention mask): gathered too
            gathered = f"{p}carried/{carried}"
            nodes.append(helper.make_node("Gather", [self.current.get(carried, carried), p + "rows"], [gathered], axis=0))
            self.current[carried] = gathered
        segment = self.segments[i + 1]
        for node in segment:
            node.input[:] = [self.current.get(name, name) for name in node.input]
        nodes += segment
        sub_logits, sub_exits = p + "rest_logits", p + "rest_exits"
        if i + 1 < len(self.cuts):
            nodes += self.build(i + 1, self.cuts[i + 1].tensor, sub_logits, sub_exits)
        else:
            nodes += [helper.make_node("Identity", [self.final], [sub_logits]),
                      helper.make_node("Mul", [p + "rows", b.const(p + "zero_rows", np.array(0, np.int64))], [p + "end0"]),
                      helper.make_node("Add", [p + "end0", b.const(p + "end", np.array(len(self.cuts), np.int64))],
                                       [sub_exits])]
        return nodes + [helper.make_node("ScatterND", [logits, p + "rows_2d", sub_logits], [logits_out]),
                        helper.make_node("ScatterND", [p + "exits", p + "rows_2d", sub_exits], [exit_out])]


def _name_new_nodes(graph: onnx.GraphProto) -> None:
    """Name the exits' nodes after their outputs ("exit0/logits1"), in branches too, so tools and
    explanations can tell them from the model's own."""
    for node in graph.node:
        if not node.name and node.output and node.output[0].startswith("exit"):
            node.name = node.output[0]
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                _name_new_nodes(attr.g)


def _copy(node: onnx.NodeProto) -> onnx.NodeProto:
    copy = onnx.NodeProto()
    copy.CopyFrom(node)
    return copy


def _float_out(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, None)


def _int_out(name: str) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, TensorProto.INT64, None)
