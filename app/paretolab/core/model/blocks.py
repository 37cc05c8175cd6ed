"""Module blocks: a layer graph grouped by the module each layer belongs to, so a transformer of
thousands of ONNX nodes reads as "embeddings → 12 × layer → pooler" and opens one level at a time.

The module path comes from the layer's name, as the exporters write it: torch-named layers
("encoder.layer.0.attention.self.query", "encoder.layer.0/Add"), ONNX scopes
("/encoder/layer.0/attention/self/query/MatMul", TorchScript's "/blocks/blocks.0/conv/Conv") and
OpenVINO's converted names ("__module.encoder.layer.0.attention/aten::matmul/MatMul"). A block is
a module prefix holding at least two layers; siblings numbered 0, 1, 2… with the same ops are
repeats ("4 × layer"). `block_view` draws the graph with some blocks collapsed into one node.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from paretolab.core.model.graph import LayerGraph, LayerNode

BLOCK_OP = "block"
PLUMBING_GROUP = "shape ops"
# ops that compute shapes and masks, not features: folded into their block's "shape ops" node
PLUMBING = {"Shape", "Gather", "Unsqueeze", "Squeeze", "Concat", "Reshape", "Cast", "ConstantOfShape", "Range", "Expand",
            "Slice", "Equal", "Where", "Not", "And", "Or", "Less", "Greater", "Flatten", "Identity", "Size", "Tile",
            "GatherElements", "IsNaN", "ShapeOf", "Convert", "Broadcast", "Select", "StridedSlice"}


@functools.lru_cache(maxsize=65536)
def scope_of(name: str) -> tuple[str, ...]:
    """The module path of a layer, as components ("encoder", "layer", "0", "attention")."""
    parts = [p for p in name.strip("/").split("/") if p]
    if not parts:
        return ()
    if len(parts) == 1:  # a torch-named layer: the module path itself
        return tuple(_components(parts[0]))
    path = ""
    for segment in parts[:-1]:  # the last part is the op's own name ("MatMul", "Add_1")
        if "::" in segment:  # OpenVINO's "aten::linear"
            continue
        segment = segment.removeprefix("__module.")
        path = segment if (not path or segment.startswith(path + ".")) else f"{path}.{segment}"
    return tuple(_components(path))


def node_scope(node: LayerNode) -> tuple[str, ...]:
    """A layer's module path: recorded by the exporter, else read from its name."""
    return tuple(_components(node.scope)) if node.scope else scope_of(node.name)


def _components(path: str) -> list[str]:
    return [c for c in path.removeprefix("__module.").split(".") if c]


@dataclass
class Block:
    path: str
    layers: list[str] = field(default_factory=list)  # every layer inside, in graph order
    children: list[str] = field(default_factory=list)  # paths of the blocks directly inside
    repeats: int = 0  # > 0: the children are this many numbered copies of one block
    plumbing: bool = False  # the shape ops directly inside a block, drawn as one node

    @property
    def name(self) -> str:
        return self.path.rsplit(".", 1)[-1]

    @property
    def title(self) -> str:
        if self.plumbing:
            return f"shape ops ({len(self.layers)})"
        return f"{self.repeats} × {self.name}" if self.repeats else f"{self.name} ({len(self.layers)} layers)"

    @property
    def short_name(self) -> str:
        """The name a drawing has room for: a numbered block with its parent's ("layer.3")."""
        parts = self.path.split("/")[0].split(".")
        if self.plumbing:
            return "shape ops"
        return ".".join(parts[-2:]) if parts[-1].isdigit() and len(parts) > 1 else parts[-1]


def module_blocks(graph: LayerGraph) -> dict[str, Block]:
    """Every block of `graph` by path: module prefixes that hold at least two layers."""
    members: dict[str, list[str]] = {}
    for node in graph:
        scope = node_scope(node)
        for depth in range(1, len(scope) + 1):
            members.setdefault(".".join(scope[:depth]), []).append(node.name)
    blocks = {path: Block(path, layers) for path, layers in members.items() if len(layers) >= 2}
    for path in blocks:
        parent = _parent_block(path, blocks)
        if parent is not None:
            blocks[parent].children.append(path)
    for block in blocks.values():
        block.repeats = _repeats(block, blocks, graph)
    blocks.update(_plumbing_groups(graph, blocks))
    return blocks


def _plumbing_groups(graph: LayerGraph, blocks: dict[str, Block]) -> dict[str, Block]:
    """Per block (and the graph's top level, ""), its own shape ops when there are two or more."""
    groups: dict[str, list[str]] = {}
    for node in graph:
        if node.op not in PLUMBING or node.params or node.macs:
            continue
        scope = node_scope(node)
        owner = next((".".join(scope[:d]) for d in range(len(scope), 0, -1) if ".".join(scope[:d]) in blocks), "")
        groups.setdefault(owner, []).append(node.name)
    return {f"{owner}/{PLUMBING_GROUP}": Block(f"{owner}/{PLUMBING_GROUP}", layers, plumbing=True)
            for owner, layers in groups.items() if len(layers) >= 2}


def _parent_block(path: str, blocks: dict[str, Block]) -> str | None:
    parts = path.split(".")
    for depth in range(len(parts) - 1, 0, -1):
        candidate = ".".join(parts[:depth])
        if candidate in blocks:
            return candidate
    return None


def _repeats(block: Block, blocks: dict[str, Block], graph: LayerGraph) -> int:
    """How many numbered copies of one block `block` holds (0 when it is not such a container)."""
    children = block.children
    if len(children) < 2 or not all(blocks[c].name.isdigit() for c in children):
        return 0
    signatures = {_signature(graph, blocks[c].layers) for c in children}
    covered = sum(len(blocks[c].layers) for c in children)
    return len(children) if len(signatures) == 1 and covered >= len(block.layers) * 0.9 else 0


def _signature(graph: LayerGraph, layers: Iterable[str]) -> tuple:
    return tuple(sorted(Counter(graph.node(n).op for n in layers).items()))


def auto_expanded(graph: LayerGraph, blocks: dict[str, Block], limit: int = 40) -> set[str]:
    """The blocks to open so the view shows a whole level of detail within `limit` nodes: levels
    open one at a time while they fit; a block holding a single other block opens for free;
    repeats ("12 × layer") and shape plumbing stay closed until the user opens them."""
    if len(graph) <= limit:
        return set(blocks)
    expanded: set[str] = set()
    while True:
        count = _count(graph, blocks, expanded)
        closed = [b for b in set(_visible(graph, blocks, expanded).values())
                  if b in blocks and b not in expanded and not blocks[b].repeats and not blocks[b].plumbing]
        if closed and _count(graph, blocks, expanded | set(closed)) <= limit:
            expanded |= set(closed)
            continue
        free = [b for b in sorted(closed) if _count(graph, blocks, expanded | {b}) <= count]
        if not free:
            return expanded
        expanded |= set(free)


def _count(graph: LayerGraph, blocks: dict[str, Block], expanded: set[str]) -> int:
    return len(set(_visible(graph, blocks, expanded).values()))


def _visible(graph: LayerGraph, blocks: dict[str, Block], expanded: set[str]) -> dict[str, str]:
    """Each layer's visible node: the outermost closed block that holds it; else, for shape
    plumbing, its block's closed plumbing group; else itself."""
    shown: dict[str, str] = {}
    for node in graph:
        scope = node_scope(node)
        shown[node.name] = node.name
        owner = ""
        for depth in range(1, len(scope) + 1):
            prefix = ".".join(scope[:depth])
            if prefix in blocks:
                owner = prefix
                if prefix not in expanded:
                    shown[node.name] = prefix
                    break
        else:
            group = f"{owner}/{PLUMBING_GROUP}"
            if group in blocks and group not in expanded and node.name in blocks[group].layers:
                shown[node.name] = group
    return shown


def block_view(graph: LayerGraph, blocks: dict[str, Block], expanded: set[str]) -> tuple[LayerGraph, dict[str, str]]:
    """The graph with every block not in `expanded` drawn as one node (op BLOCK_OP, params and
    MACs summed), and each layer's visible node."""
    shown = _visible(graph, blocks, expanded)
    nodes: dict[str, LayerNode] = {}
    for node in graph:
        target = shown[node.name]
        if target == node.name:
            nodes[target] = node
            continue
        block = nodes.get(target)
        if block is None:
            nodes[target] = LayerNode(target, BLOCK_OP, list(node.input_shapes), list(node.output_shapes), 0, 0)
            block = nodes[target]
        block.params += node.params
        block.macs = None if block.macs is None or node.macs is None else block.macs + node.macs
        block.output_shapes = list(node.output_shapes)
    edges = list(dict.fromkeys((shown[a], shown[b]) for a, b in graph.edges if shown[a] != shown[b]))
    view = LayerGraph(nodes=list(nodes.values()), edges=edges, inputs=graph.inputs, outputs=graph.outputs,
                      size_bytes=graph.size_bytes)
    return view, shown


def module_rows(graph: LayerGraph) -> LayerGraph:
    """The graph as a table of modules: one row per module that owns ops directly (its layers'
    params and MACs summed, shape plumbing counted in but not listed on its own); layers with no
    module as they are. The row's op is its costliest op."""
    members: dict[str, list[LayerNode]] = {}
    for node in graph:
        members.setdefault(".".join(node_scope(node)) or node.name, []).append(node)
    rows = []
    for name, nodes in members.items():
        if len(nodes) == 1 and nodes[0].name == name:
            rows.append(nodes[0])
            continue
        macs = None if any(n.macs is None for n in nodes) else sum(n.macs or 0 for n in nodes)
        main = max(nodes, key=lambda n: (n.macs or 0, n.params, n.op not in PLUMBING))
        rows.append(LayerNode(name, main.op, list(nodes[0].input_shapes), list(nodes[-1].output_shapes),
                              sum(n.params for n in nodes), macs, [w for n in nodes for w in n.weights]))
    shown = {n.name: row.name for row in rows for n in members.get(row.name, [row])}
    edges = list(dict.fromkeys((shown[a], shown[b]) for a, b in graph.edges
                               if a in shown and b in shown and shown[a] != shown[b]))
    return LayerGraph(rows, edges, graph.inputs, graph.outputs, graph.size_bytes, list(graph.notes))
