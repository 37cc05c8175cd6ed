"""LayerGraph: the model as layers (nodes) and data flow (edges), whatever its format.

Nodes carry one stable name that every other part of ParetoLab uses to address the layer:
the PyTorch module path when the model came from torch, the ONNX node (or OpenVINO op)
name otherwise. Builders live beside this module: graph_onnx.py and graph_openvino.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property

from paretolab.core.tensors import Shape, TensorSpec


@dataclass(frozen=True)
class Weight:
    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


@dataclass
class LayerNode:
    name: str
    op: str
    input_shapes: list[Shape | None]
    output_shapes: list[Shape | None]
    params: int = 0
    macs: int | None = 0  # None: unknown because a shape it depends on is unknown
    weights: list[Weight] = field(default_factory=list)
    source: str = ""  # the name of the node in the underlying format (ONNX node, OV op)
    outputs: list[str] = field(default_factory=list)  # names of the tensors it produces
    scope: str = ""  # the module path the exporter recorded apart from the name (dynamo's metadata)

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "op": self.op,
            "input_shapes": [list(s) if s is not None else None for s in self.input_shapes],
            "output_shapes": [list(s) if s is not None else None for s in self.output_shapes],
            "params": self.params,
            "macs": self.macs,
            "weights": [{"name": w.name, "shape": list(w.shape), "dtype": w.dtype} for w in self.weights],
            "source": self.source,
            "outputs": list(self.outputs),
            "scope": self.scope,
        }


@dataclass
class LayerGraph:
    nodes: list[LayerNode]
    edges: list[tuple[str, str]]
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    size_bytes: int = 0
    notes: list[str] = field(default_factory=list)  # caveats the user should see (e.g. unknown MACs)

    @cached_property
    def _index(self) -> dict[str, LayerNode]:
        return {n.name: n for n in self.nodes}

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[LayerNode]:
        return iter(self.nodes)

    def __contains__(self, name: object) -> bool:
        return name in self._index

    def node(self, name: str) -> LayerNode:
        return self._index[name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    @property
    def total_params(self) -> int:
        return sum(n.params for n in self.nodes)

    @property
    def total_macs(self) -> int | None:
        """Sum of known MACs; None if no node's MACs are known."""
        known = [n.macs for n in self.nodes if n.macs is not None]
        return sum(known) if known else None

    @property
    def macs_complete(self) -> bool:
        return all(n.macs is not None for n in self.nodes)

    @property
    def op_counts(self) -> dict[str, int]:
        return dict(Counter(n.op for n in self.nodes).most_common())

    def summary(self) -> dict:
        return {
            "layers": len(self.nodes),
            "edges": len(self.edges),
            "params": self.total_params,
            "macs": self.total_macs,
            "macs_complete": self.macs_complete,
            "size_bytes": self.size_bytes,
            "op_counts": self.op_counts,
        }

    def to_dict(self) -> dict:
        return {
            "summary": self.summary(),
            "inputs": [t.to_dict() for t in self.inputs],
            "outputs": [t.to_dict() for t in self.outputs],
            "notes": list(self.notes),
            "nodes": [n.to_dict() for n in self.nodes],
            "edges": [list(e) for e in self.edges],
        }


def unique_name(wanted: str, taken: set[str]) -> str:
    """`wanted`, or `wanted#2`, `wanted#3`... so names stay unique and readable."""
    name, k = wanted, 2
    while name in taken:
        name, k = f"{wanted}#{k}", k + 1
    taken.add(name)
    return name


def prod(dims: tuple[int, ...] | list[int]) -> int:
    n = 1
    for d in dims:
        n *= d
    return n
