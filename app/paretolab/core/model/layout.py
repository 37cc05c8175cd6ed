"""Top-down layered layout of a LayerGraph (Sugiyama style, kept simple and fast).

Layers by longest path from the inputs; order within a layer by the barycenter of
neighbours, swept down and up a few times to untangle edges; then coordinates. Linear in
nodes and edges per sweep, so a 1,000-layer model lays out in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

from paretolab.core.model.graph import LayerGraph


@dataclass(frozen=True)
class Placed:
    name: str
    x: float  # centre
    y: float  # top
    layer: int


def layered_layout(graph: LayerGraph, *, node_width: float = 150.0, node_height: float = 34.0,
                   h_gap: float = 24.0, v_gap: float = 36.0, sweeps: int = 4) -> dict[str, Placed]:
    names = [n.name for n in graph]
    preds: dict[str, list[str]] = {n: [] for n in names}
    succs: dict[str, list[str]] = {n: [] for n in names}
    for a, b in graph.edges:
        if a in preds and b in preds:
            preds[b].append(a)
            succs[a].append(b)
    level: dict[str, int] = {}
    for name in _topological(names, preds, succs):
        level[name] = max((level[p] + 1 for p in preds[name] if p in level), default=0)
    layers: list[list[str]] = [[] for _ in range(max(level.values(), default=-1) + 1)]
    for name in names:
        layers[level[name]].append(name)

    position = {name: float(i) for layer in layers for i, name in enumerate(layer)}
    for sweep in range(sweeps):
        down = sweep % 2 == 0
        order = layers[1:] if down else layers[-2::-1]
        for layer in order:
            neighbours = preds if down else succs
            keyed = []
            for i, name in enumerate(layer):
                near = [position[n] for n in neighbours[name]]
                keyed.append((sum(near) / len(near) if near else position[name], i, name))
            layer[:] = [name for _, _, name in sorted(keyed)]
            for i, name in enumerate(layer):
                position[name] = float(i)

    placed: dict[str, Placed] = {}
    step = node_width + h_gap
    for depth, layer in enumerate(layers):
        offset = -(len(layer) - 1) * step / 2
        for i, name in enumerate(layer):
            placed[name] = Placed(name, offset + i * step, depth * (node_height + v_gap), depth)
    return placed


def _topological(names: list[str], preds: dict[str, list[str]], succs: dict[str, list[str]]) -> list[str]:
    """Kahn's order; nodes on a cycle (not expected in ONNX) are appended as they come."""
    remaining = {n: len(preds[n]) for n in names}
    ready = [n for n in names if remaining[n] == 0]
    order: list[str] = []
    while ready:
        name = ready.pop()
        order.append(name)
        for s in succs[name]:
            remaining[s] -= 1
            if remaining[s] == 0:
                ready.append(s)
    seen = set(order)
    return order + [n for n in names if n not in seen]
