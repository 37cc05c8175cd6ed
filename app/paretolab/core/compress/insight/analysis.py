"""Everything the layer graph is coloured by, in one call: weight importance, a pruning
sensitivity scan, each layer's int8 error and its share of the run time."""

from __future__ import annotations

from dataclasses import dataclass

from paretolab.core.compress.insight.importance import (
    LayerImportance,
    SensitivityResult,
    default_cache,
    sensitivity_scan,
    weight_importance,
)
from paretolab.core.compress.quantization.quantize import int8_layer_error
from paretolab.core.measure.layer_times import LayerTime
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.profile import layer_breakdown
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress, silent


@dataclass
class LayerAnalysis:
    importance: list[LayerImportance]
    sensitivity: SensitivityResult | None
    times: list[LayerTime]  # on ONNX Runtime, CPU
    int8_sqnr: dict[str, float]  # layer -> output SQNR (dB) with the whole model in int8


def analyse_layers(handle: ModelHandle, data: DataPlan, progress: Progress | None = None) -> LayerAnalysis:
    """Gradients and int8 error from the training split, the sensitivity scan on held-out data."""
    progress = progress or silent()
    progress.report(0.05, "weight importance")
    importance = weight_importance(handle, data.train)
    progress.report(0.3, "sensitivity scan")
    scan = sensitivity_scan(handle, data.validation, levels=(0.3, 0.6, 0.9), cache=default_cache(),
                            progress=Progress(lambda f, m: progress.report(0.3 + 0.45 * f, m)))
    progress.report(0.8, "int8 error per layer")
    int8 = int8_layer_error(handle, data.train)
    progress.report(0.9, "time per layer")
    times = layer_breakdown(handle, "ort", "cpu", None)
    progress.report(1.0, "layers analysed")
    return LayerAnalysis(importance, scan, times, int8)
