"""What a setting will roughly do to a model, before anything runs, for the sliders.

Structured pruning at ratio s removes a share s of each pruned layer's output channels, so
its following layer loses the same share of input channels: inner layers keep about
(1 - s)² of their weights and MACs, the first and last layers (1 - s). Quantization shrinks
weights to 1 byte (int8) or 2 (fp16). Estimates only; the variant's own file is measured.
"""

from __future__ import annotations

from dataclasses import dataclass

from paretolab.core.graph import LayerGraph

_WEIGHT_OPS = {"Conv", "Gemm", "MatMul", "Convolution", "GroupConvolution"}


@dataclass(frozen=True)
class Prediction:
    params: int
    macs: int | None
    size_bytes: int


def predict(graph: LayerGraph, *, sparsity: float = 0.0, structured: bool = True, precision: str = "fp32") -> Prediction:
    weight_layers = [n for n in graph if n.op in _WEIGHT_OPS]
    first = weight_layers[0].name if weight_layers else None
    last = weight_layers[-1].name if weight_layers else None
    keep = 1.0 - sparsity
    params = macs = stored = 0.0
    for node in graph:
        if node.op in _WEIGHT_OPS and structured:
            factor = keep if node.name in (first, last) else keep * keep
            params, macs, stored = params + node.params * factor, macs + (node.macs or 0) * factor, stored + node.params * factor
        elif node.op in _WEIGHT_OPS:  # unstructured: zeros, but the same shapes, file size and MACs
            params, macs, stored = params + node.params * keep, macs + (node.macs or 0), stored + node.params
        else:
            params, macs, stored = params + node.params, macs + (node.macs or 0), stored + node.params
    bytes_per_weight = {"fp32": 4, "fp16": 2, "int8": 1}.get(precision, 4)
    overhead = max(0, graph.size_bytes - graph.total_params * 4)  # graph structure, names, metadata
    return Prediction(int(params), int(macs) if graph.total_macs is not None else None, int(stored * bytes_per_weight + overhead))
