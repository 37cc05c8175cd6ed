"""Places where an ONNX graph can be cut in two: after a node whose output, and few other
tensors, are all the rest of the graph needs.

Early exits sit at such cuts. The part after a cut needs only the tensors that cross it (and
constants), so it can run on a subset of the batch — the samples that did not leave early,
gathered from each tensor that crosses — and the rest of the graph never runs for a batch that
left. The residual add of a ResNet block closes its skip connection, so every block's end is a
cut that one tensor crosses; in a BERT-style encoder the attention mask crosses every layer
beside the hidden states ("carried"). Whether a carried tensor can be gathered is for the caller
to find out (early_exit.py runs the model to see which have the batch first).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import onnx

from paretolab.core.errors import ParetoLabError
from paretolab.core.model.blocks import scope_of

CONSTANT_OPS = {"Constant", "ConstantOfShape"}


@dataclass(frozen=True)
class Cut:
    node: str  # the ONNX node after which the graph is cut
    tensor: str  # the one tensor that crosses
    position: int  # the node's index in graph order
    macs_share: float  # share of the model's MACs computed before the cut (0..1)
    label: str = ""  # the module that ends at the cut ("layers.0"), for people; else the node's name
    carried: tuple[str, ...] = ()  # other tensors the rest of the graph needs (an attention mask, a skip)

    @property
    def name(self) -> str:
        return self.label or self.node


def _subgraph_names(node: onnx.NodeProto) -> set[str]:
    """Names a node's subgraphs (If, Loop) read from the enclosing graph."""
    names: set[str] = set()
    for attr in node.attribute:
        for graph in ([attr.g] if attr.type == onnx.AttributeProto.GRAPH else list(attr.graphs)):
            for inner in graph.node:
                names.update(inner.input)
                names.update(_subgraph_names(inner))
    return names


def _reads(node: onnx.NodeProto) -> set[str]:
    return {n for n in node.input if n} | _subgraph_names(node)


def constant_names(graph: onnx.GraphProto) -> set[str]:
    """Tensors that do not depend on the inputs: initializers and everything computed from them alone."""
    constant = {i.name for i in graph.initializer}
    for node in graph.node:
        reads = _reads(node)
        if node.op_type in CONSTANT_OPS and not (reads - constant) or (reads and reads <= constant):
            constant.update(o for o in node.output if o)
    return constant


MAX_CARRIED = 2


def find_cuts(model: onnx.ModelProto, macs: dict[str, int] | None = None,
              scopes: dict[str, tuple[str, ...]] | None = None) -> list[Cut]:
    """Every node after which its output and at most MAX_CARRIED other non-constant tensors are
    all that is still needed, in graph order.
    `macs` (per node name) places each cut by the share of the work done before it (by the
    share of nodes when no MACs are known); `scopes` (module path per node name, where the
    exporter recorded one) name the module that ends at each cut."""
    graph = model.graph
    constant = constant_names(graph)
    last_use: dict[str, int] = {}
    for i, node in enumerate(graph.node):
        for name in _reads(node):
            last_use[name] = i
    for out in graph.output:
        last_use[out.name] = len(graph.node)
    work = _work_per_node(graph, macs or {})
    total = sum(work) or 1
    scope = (lambda n: (scopes or {}).get(n) or scope_of(n))
    live = {i.name for i in graph.input if i.name not in constant and i.name in last_use}
    done, cuts = 0, []
    for i, node in enumerate(graph.node):
        done += work[i]
        live.update(o for o in node.output if o and o not in constant and last_use.get(o, -1) > i)
        live = {t for t in live if last_use.get(t, -1) > i}
        if node.output and node.output[0] in live and len(live) <= 1 + MAX_CARRIED and i < len(graph.node) - 1:
            cuts.append(Cut(node.name or node.output[0], node.output[0], i, done / total,
                            _ending_module(scope(node.name), scope(graph.node[i + 1].name)),
                            tuple(sorted(live - {node.output[0]}))))
    return cuts


COMPUTE_OPS = {"Conv", "ConvTranspose", "MatMul", "Gemm", "QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger"}


def _work_per_node(graph: onnx.GraphProto, macs: dict[str, int]) -> list[int]:
    """Each node's MACs; where most compute nodes have none known (free sequence lengths), one per
    compute node instead, so cuts still spread over the model."""
    compute = [n for n in graph.node if n.op_type in COMPUTE_OPS]
    if compute and sum(1 for n in compute if n.name and macs.get(n.name)) >= len(compute) / 2:
        return [macs.get(n.name, 0) if n.name else 0 for n in graph.node]
    return [int(n.op_type in COMPUTE_OPS) for n in graph.node] if compute else [1] * len(graph.node)


def _ending_module(mine: tuple[str, ...], after: tuple[str, ...]) -> str:
    """The largest module that ends with a node of scope `mine` when the next is in `after` ("layers.0")."""
    common = 0
    while common < min(len(mine), len(after)) and mine[common] == after[common]:
        common += 1
    return ".".join(mine[:common + 1]) if len(mine) > common else ""


def cut_after(cuts: Iterable[Cut], layer: str, model_name: str) -> Cut:
    """The cut after the node named `layer`, or a one-line reason why there is none there."""
    cuts = list(cuts)
    for cut in cuts:
        if layer in (cut.node, cut.tensor, cut.label):
            return cut
    places = ", ".join(c.name for c in cuts[:8]) + (", ..." if len(cuts) > 8 else "")
    raise ParetoLabError(
        f"no exit can go after '{layer}' in {model_name}: it is not a layer there, or too many other tensors "
        f"(skip connections, inputs used again) cross that point; places that work: {places or 'none'}"
    )


def suggest_cuts(cuts: list[Cut], count: int, latest: float = 0.9) -> list[Cut]:
    """`count` cuts spread over the work (after 1/(count+1), 2/(count+1), ... of the MACs), each
    the last node before the next one starts; nothing after `latest` of the MACs, where an exit
    would save too little to pay for its head."""
    usable = [c for c in cuts if 0.05 <= c.macs_share <= latest]
    chosen: list[Cut] = []
    for k in range(1, count + 1):
        goal = k / (count + 1)
        # near the goal, the end of the largest module (a stage, a block), and of equals the latest node
        fresh = (c for c in usable if all(abs(c.macs_share - x.macs_share) > 0.02 for x in chosen))  # not the same place again
        ranked = sorted(fresh,
                        key=lambda c: (far := abs(c.macs_share - goal) > 0.1, len(c.carried), 0 if far else _depth(c),
                                       round(abs(c.macs_share - goal), 3), -c.position))
        if ranked:
            chosen.append(ranked[0])
    return sorted(set(chosen), key=lambda c: c.position)


def _depth(cut: Cut) -> int:
    """How deep the module ending at the cut sits ("layers.0": 2); unnamed cuts come last."""
    return cut.label.count(".") + 1 if cut.label else 99
