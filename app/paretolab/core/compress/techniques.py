"""The technique registry: everything ParetoLab knows about each technique, in one entry.

An entry names the technique's settings class, its one-line summary, what kind of model it
leaves (an edited PyTorch module, an ONNX file, OpenVINO IR — which fixes where it may stand
in a recipe), its chart colour and the function that applies it. The pipeline, recipes, the
chart, the CLI, the GUI and sweeps all read this table, so adding a technique is one module
with a settings class, `summary` and `apply`, plus one entry here.

Quantization also has one table of targets (backend and precision), which the CLI's
--quantize, the GUI's precision list and the sweep's choices are all drawn from.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from paretolab.core.compress import distill, early_exit, graphopt, lowrank, prune, quantize
from paretolab.core.settings import SettingsError

Output = Literal["torch", "onnx", "openvino"] | None  # None: works on whatever the model is at that point


@dataclass(frozen=True)
class Technique:
    name: str
    settings: type
    summary: Callable[[Any], str]
    apply: Callable[[Any, int, Any], None]  # (StepContext, step number, settings)
    output: Callable[[Any], Output]
    colour: str | None = None  # its colour on the chart; None: drawn as "other"
    colour_rank: int = 0  # when a recipe has several coloured techniques, the lowest rank names its colour
    # What the technique needs of the open model, checked before any step runs: (handle, output
    # kinds the user gave, settings) -> None, or a one-line ParetoLabError.
    precheck: Callable[[Any, dict[str, str] | None, Any], None] | None = None


# In the order the GUI and the CLI put steps in a recipe.
TECHNIQUES: dict[str, Technique] = {t.name: t for t in (
    Technique("prune", prune.PruneSettings, prune.summary, prune.apply,
              lambda s: "torch" if s.method == "structured" else None, colour="#1f77b4", colour_rank=1),
    Technique("lowrank", lowrank.LowRankSettings, lowrank.summary, lowrank.apply, lambda s: "torch"),
    Technique("distill", distill.DistillSettings, distill.summary, distill.apply, lambda s: "torch", colour="#9467bd",
              colour_rank=3),
    Technique("graphopt", graphopt.GraphOptSettings, graphopt.summary, graphopt.apply, lambda s: "onnx"),
    Technique("quantize", quantize.QuantizeSettings, quantize.summary, quantize.apply,
              quantize.output, colour="#ff7f0e", colour_rank=2),
    Technique("early_exit", early_exit.EarlyExitSettings, early_exit.summary, early_exit.apply, lambda s: "onnx",
              colour="#17becf", colour_rank=0,  # exits change how a model runs most: they name the colour
              precheck=lambda handle, kinds, s: early_exit.refuse_non_classifier(handle, kinds)),
)}

# Colours of the chart's kinds, in legend order; shared by the studio's chart and the report.
TECHNIQUE_COLOURS = {
    "baseline": "#7f7f7f",
    **{t.name: t.colour for t in sorted(TECHNIQUES.values(), key=lambda t: t.colour_rank) if t.colour},
    "prune+quantize": "#2ca02c",
    "other": "#8c564b",
}


def technique(name: str, where: str = "recipe") -> Technique:
    try:
        return TECHNIQUES[name]
    except KeyError:
        raise SettingsError(f"{where}: unknown technique '{name}'; known: {', '.join(TECHNIQUES)}") from None


@dataclass(frozen=True)
class QuantTarget:
    key: str  # as the CLI and sweeps name it
    label: str  # as the GUI lists it
    backend: str
    precision: str

    def settings(self, **extra: Any) -> dict:
        return {"backend": self.backend, "precision": self.precision, **extra}


QUANT_TARGETS: dict[str, QuantTarget] = {t.key: t for t in (
    QuantTarget("ort-int8", "int8, ONNX Runtime (fastest faithful format)", "ort", "int8"),
    QuantTarget("openvino-int8", "int8, OpenVINO (NNCF)", "openvino", "int8"),
    QuantTarget("ort-fp16", "FP16, ONNX Runtime", "ort", "fp16"),
    QuantTarget("openvino-fp16", "FP16, OpenVINO", "openvino", "fp16"),
    QuantTarget("openvino-bf16", "bf16 compute, OpenVINO (CPUs with AVX512-BF16 or AMX)", "openvino", "bf16"),
    QuantTarget("openvino-fastest", "fastest faithful precision, OpenVINO (int8 or bf16, measured)", "openvino", "fastest"),
    QuantTarget("torch-bf16", "BF16, PyTorch (GPUs; CPUs with AVX512-BF16 or AMX)", "torch", "bf16"),
    QuantTarget("torch-fp16", "FP16, PyTorch (GPUs; CPUs with AVX512-FP16)", "torch", "fp16"),
    QuantTarget("torch-fastest", "fastest faithful precision, PyTorch (FP16 or BF16, measured where it runs)", "torch",
                "fastest"),
    QuantTarget("ort-dynamic", "dynamic int8, ONNX Runtime", "ort", "dynamic-int8"),
    QuantTarget("openvino-int8-weights", "weight-only int8, OpenVINO (NNCF)", "openvino", "int8-weights"),
    QuantTarget("openvino-int4-weights", "weight-only int4, OpenVINO (NNCF)", "openvino", "int4-weights"),
    QuantTarget("ort-int8-weights", "weight-only int8, ONNX Runtime (MatMulNBits)", "ort", "int8-weights"),
    QuantTarget("ort-int4-weights", "weight-only int4, ONNX Runtime (MatMulNBits)", "ort", "int4-weights"),
)}


def quant_target(key: str, where: str = "quantization") -> QuantTarget:
    try:
        return QUANT_TARGETS[key]
    except KeyError:
        raise SettingsError(f"unknown {where} '{key}'; choose from {', '.join(QUANT_TARGETS)}") from None


def check_recipe(handle: Any, steps: Any, output_kinds: dict[str, str] | None = None) -> None:
    """Refuse, before any work, a recipe whose steps the open model cannot take (early exit on a
    detector): minutes of pruning and training must not end in "needs class scores"."""
    for step in steps:
        check = technique(step.technique).precheck
        if check is not None:
            check(handle, output_kinds, step.settings)


def recipe_steps(**settings: dict | None) -> list[dict]:
    """Recipe steps from settings given by technique name, in the registry's order; None or a
    missing name leaves the technique out. The one place recipes are assembled from options."""
    unknown = set(settings) - set(TECHNIQUES)
    if unknown:
        raise SettingsError(f"unknown technique '{sorted(unknown)[0]}'; known: {', '.join(TECHNIQUES)}")
    return [{"technique": name, "settings": settings[name]} for name in TECHNIQUES if settings.get(name) is not None]
