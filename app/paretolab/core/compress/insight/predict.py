"""What a setting will roughly do to a model, before anything runs, for the sliders.

Structured pruning at ratio s removes a share s of each pruned layer's output channels, so
its following layer loses the same share of input channels: inner layers keep about
(1 - s)² of their weights and MACs, the first and last layers (1 - s).

The file size depends on the format the variant ends up in, so it is a range:
- int8 on ONNX Runtime: weights 1 byte, biases 4 (int32), a scale and zero point per output
  channel; the fastest faithful format is chosen after measuring, and the formats differ in
  graph size: QOperator adds ~0.4–0.7 KB per weight layer, QDQ (with its Q/DQ pairs and the
  shapes inferred for them) ~2.3 KB. Measured on the sample: 47.5 KB (QOperator) and 23.0 KB
  (QDQ, half the channels pruned) against 43.9 KB and 12.7 KB without that overhead.
- OpenVINO IR: weights in the .bin, plus an XML topology of ~3.7 KB per layer (44.5 KB
  for the sample's 12 layers), which dominates small models.
Estimates only; every variant's own file is measured.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from paretolab.core.model.graph import LayerGraph

_WEIGHT_OPS = {"Conv", "Gemm", "MatMul", "Convolution", "GroupConvolution"}
_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
_INT8_LAYER_OVERHEAD = (400, 2300)  # bytes per weight layer: QOperator, QDQ
_IR_XML_PER_LAYER = 3700  # bytes of OpenVINO IR topology per layer


@dataclass(frozen=True)
class Prediction:
    params: int
    macs: int | None
    size_bytes: int  # the likeliest size
    size_high: int  # the largest the chosen format may give (== size_bytes when there is one format)
    size_low: int = 0  # the smallest (== size_bytes when there is one format)


def predict(graph: LayerGraph, *, sparsity: float = 0.0, structured: bool = True, precision: str = "fp32",
            backend: str = "ort", round_to: int = 8) -> Prediction:
    keeps = _channel_keeps(graph, 1.0 - sparsity, round_to) if structured else {}
    params = macs = stored_weights = stored_vectors = 0.0
    for node in graph:
        out_keep, in_keep = keeps.get(node.name, (1.0, 1.0))
        vectors = sum(_count(w.shape) for w in node.weights if len(w.shape) <= 1)  # biases, norms
        matrices = node.params - vectors
        weights = matrices * out_keep * in_keep
        kept_vectors = vectors * out_keep
        if node.op in _WEIGHT_OPS and not structured:  # unstructured: zeros with the same shapes, size and MACs
            params += node.params * (1.0 - sparsity)
        else:
            params += weights + kept_vectors
        macs += (node.macs or 0) * out_keep * in_keep
        stored_weights += weights
        stored_vectors += kept_vectors
    overhead = max(0, graph.size_bytes - graph.total_params * 4)  # graph structure, names, metadata
    weight_layers = sum(1 for n in graph if n.op in _WEIGHT_OPS)
    low = high = stored_weights * _BYTES.get(precision, 4) + stored_vectors * 4 + overhead
    if precision == "int8":
        per_channel = 5 * stored_vectors  # a float scale and a zero point per output channel
        low += per_channel + _INT8_LAYER_OVERHEAD[0] * weight_layers
        high += per_channel + _INT8_LAYER_OVERHEAD[1] * weight_layers
        if backend == "openvino":
            high = low
    elif precision == "fp16":
        low = high = low - stored_vectors * 2  # FP16 halves biases too
    if backend == "openvino":
        low, high = low + _IR_XML_PER_LAYER * len(graph), high + _IR_XML_PER_LAYER * len(graph)
    likely = low if precision != "int8" or backend == "openvino" else (low + high) / 2
    return Prediction(int(params), int(macs) if graph.total_macs is not None else None, int(likely), int(high), int(low))


def _channel_keeps(graph: LayerGraph, keep: float, round_to: int) -> dict[str, tuple[float, float]]:
    """(share of output channels kept, share of input channels kept) per layer, following the
    chain of weight layers: each pruned layer's outputs are the next one's inputs. Channel
    counts round to the nearest multiple of `round_to`, as the pruner keeps them."""
    # The pruner's own rounding, imported here: the settings panel imports this module.
    from paretolab.core.compress.pruning.prune import kept_channels

    keeps: dict[str, tuple[float, float]] = {}
    weight_layers = [n for n in graph if n.op in _WEIGHT_OPS]
    inputs_keep = 1.0
    for node in graph:
        if node.op not in _WEIGHT_OPS:
            keeps[node.name] = (inputs_keep, 1.0)  # biases of norms and the like follow the channels
            continue
        last = node is weight_layers[-1]
        channels = next((w.shape[0] for w in node.weights if len(w.shape) >= 2 and isinstance(w.shape[0], int)), 0)
        out_keep = 1.0 if last or channels <= 0 else kept_channels(channels, keep, round_to) / channels
        keeps[node.name] = (out_keep, inputs_keep)
        inputs_keep = out_keep
    return keeps


def _count(shape: Sequence[Any]) -> int:
    total = 1
    for d in shape:
        total *= int(d) if isinstance(d, int) and d > 0 else 1
    return total
