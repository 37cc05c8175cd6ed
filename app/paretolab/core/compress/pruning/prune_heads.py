"""Structured pruning that respects attention: whole heads leave together across query, key and
value (and the output projection's inputs), MLP layers lose width, and the residual stream
keeps its size, so every LayerNorm, embedding and skip connection stays as it was.

Channel pruning that does not know about heads (what torch-pruning does by default) takes a
few channels out of every head and shrinks the hidden size: the model still runs, but each head
now mixes what were different heads' features, and the recorded head count is wrong. Here
torch-pruning is told the head counts (`num_heads`, `prune_num_heads`), and the attention
modules' own counts are updated after it prunes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

PROJECTIONS = (("query", "key", "value"), ("q_proj", "k_proj", "v_proj"), ("q", "k", "v"))
HEAD_COUNTS = ("num_attention_heads", "num_heads", "n_heads")


@dataclass
class Attention:
    path: str
    module: Any
    projections: tuple[Any, Any, Any]
    heads: int


def attention_modules(module: Any) -> list[Attention]:
    """The attention blocks of `module` whose query, key and value are separate Linear layers
    and whose head count is recorded (BERT, ViT, most encoders; not GPT-2's fused c_attn)."""
    import torch

    found = []
    for path, sub in module.named_modules():
        heads = next((getattr(sub, name) for name in HEAD_COUNTS if isinstance(getattr(sub, name, None), int)), None)
        if heads is None:
            continue
        for names in PROJECTIONS:
            layers = [getattr(sub, n, None) for n in names]
            if all(isinstance(layer, torch.nn.Linear) for layer in layers):
                found.append(Attention(path, sub, (layers[0], layers[1], layers[2]), heads))
                break
    return found


def transformer_pruning(module: Any, attention: list[Attention], outputs: set[str]) -> tuple[dict, list]:
    """torch-pruning's `num_heads` for the projections, and the layers to leave whole: everything
    but the projections and the MLP's widening layers, so the residual stream keeps its width."""
    import torch

    projections = {id(layer) for a in attention for layer in a.projections}
    num_heads = {layer: a.heads for a in attention for layer in a.projections}
    ignored = []
    for name, layer in module.named_modules():
        if id(layer) in projections:
            continue
        widening = isinstance(layer, torch.nn.Linear) and layer.out_features > layer.in_features and name not in outputs
        if isinstance(layer, (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)) and not widening:
            ignored.append(layer)
    return num_heads, ignored


def update_head_counts(attention: list[Attention], pruned_heads: dict) -> dict[str, tuple[int, int]]:
    """Record each attention block's new head count on the module (and its sizes), as the model's
    own code reads them; returns heads before and after, per block."""
    changed = {}
    for a in attention:
        query = a.projections[0]
        heads = int(pruned_heads.get(query, a.heads))
        for name in HEAD_COUNTS:
            if hasattr(a.module, name):
                setattr(a.module, name, heads)
        if hasattr(a.module, "all_head_size"):
            a.module.all_head_size = query.out_features
        if hasattr(a.module, "attention_head_size"):
            a.module.attention_head_size = query.out_features // max(heads, 1)
        if heads != a.heads:
            changed[a.path] = (a.heads, heads)
    return changed


def head_importance(module: Any) -> dict[str, list[float]]:
    """Per attention block, each head's mean |w| over its rows of query, key and value: how
    magnitude-based head pruning ranks them (the lowest leave first)."""
    scores = {}
    for a in attention_modules(module):
        size = a.projections[0].out_features // a.heads
        scores[a.path] = [
            sum(float(p.weight.detach()[h * size:(h + 1) * size].abs().mean()) for p in a.projections) / 3
            for h in range(a.heads)
        ]
    return scores
