"""The technique registry: everything ParetoLab knows about each technique, in one entry.

An entry (technique_spec.Technique) names the technique's settings class, its one-line summary,
what kind of model it leaves (an edited PyTorch module, an ONNX file, OpenVINO IR — which fixes
where it may stand in a recipe), its chart colour, the function that applies it, and describes
its settings (bounds, defaults, labels, what a sweep explores) and what it needs of the model.
The pipeline, recipes, the chart, the CLI's flags, the GUI's controls and the sweep's space all
read this table, so adding a technique is one module with a settings class, `summary` and
`apply`, plus one entry here (or `register` from anywhere).

This module imports no technique: implementations are named as "module:attribute" and imported
on first use, so the GUI starts without torch, onnx, onnxruntime or openvino.

Quantization also has one table of targets (backend and precision), which the CLI's
--quantize, the GUI's precision list and the sweep's choices are all drawn from.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paretolab.core.compress.requirements import CLASS_SCORES, TORCH_MODULE
from paretolab.core.compress.technique_spec import Dimension, Output, Requirement, Setting, Technique
from paretolab.core.settings import SettingsError

__all__ = ["Dimension", "Output", "Requirement", "Setting", "Technique", "TECHNIQUES", "register", "technique", "check_recipe",
           "recipe_steps", "sensitivity_kinds", "QUANT_TARGETS", "quant_target", "TECHNIQUE_COLOURS"]

_C = "paretolab.core.compress."


@dataclass(frozen=True)
class QuantTarget:
    key: str  # as the CLI and sweeps name it
    label: str  # as the GUI lists it
    backend: str
    precision: str
    sweep: bool = False  # one of the targets a sweep tries by default

    def settings(self, **extra: Any) -> dict:
        return {"backend": self.backend, "precision": self.precision, **extra}


QUANT_TARGETS: dict[str, QuantTarget] = {t.key: t for t in (
    QuantTarget("ort-int8", "int8, ONNX Runtime (fastest faithful format)", "ort", "int8", sweep=True),
    QuantTarget("openvino-int8", "int8, OpenVINO (NNCF)", "openvino", "int8", sweep=True),
    QuantTarget("ort-fp16", "FP16, ONNX Runtime", "ort", "fp16", sweep=True),
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


def _prune_flag(text: str, extra: dict) -> dict:
    method, _, ratio = text.partition(":")
    try:
        return {"method": method, "sparsity": float(ratio), **extra}
    except ValueError:
        raise SettingsError(f"--prune '{text}' is not METHOD:SPARSITY, e.g. structured:0.5") from None


def _quantize_flag(text: str, extra: dict) -> dict:
    return quant_target(text).settings(**extra)


def _early_exit_flag(text: str, extra: dict) -> dict:
    """--early-exit N (exits placed automatically) or --early-exit LAYER,LAYER."""
    if text.isdigit():
        return {"exits": int(text), **extra}
    return {"at": [name.strip() for name in text.split(",") if name.strip()], **extra}


def _int8(values: dict, backend: str | None = None) -> bool:
    """Whether the target chosen among `values` is int8 (on `backend`): calibration applies only there."""
    target = QUANT_TARGETS.get(values.get("target", ""))
    return target is not None and target.precision == "int8" and backend in (None, target.backend)


def _prune_hints(s: Any, names: frozenset[str]) -> list[str]:
    distill = [] if s.method != "structured" or "distill" in names else ["add distillation from the original"]
    return [*distill, f"prune less than {s.sparsity:.0%}"]


PRUNE = Technique(
    "prune", _C + "pruning.prune:PruneSettings", _C + "pruning.prune:summary", _C + "pruning.prune:apply",
    lambda s: "torch" if s.method == "structured" else None, colour="#1f77b4", colour_rank=1,
    label="Pruning", words="structured pruning",
    help="remove channels (structured: faster on every runtime) or zero weights (unstructured: smaller, same speed)",
    fields=(
        Setting("sparsity", "float", 0.5, "Sparsity", "share of channels (structured) or weights (unstructured) removed",
                minimum=0.0, maximum=0.99, step=0.05, sweep=(0.0, 0.3, 0.5, 0.7), cli_flag="--prune", control="slider",
                start=0.0, off=0.0),
        Setting("method", "choice", "structured", "Method", "structured channels or unstructured weights",
                choices=("structured", "unstructured"), sweep=("structured", "unstructured"), cli_flag="--prune"),
        Setting("layer_ratios", "per_layer", {}, "Per layer", "Per-layer pruning: a ratio other than the global "
                "sparsity, or skip the layer", minimum=0.0, maximum=0.99, step=0.05, skip="skip", cli_flag="--prune"),
        Setting("importance", "choice", "l1", "Importance", "how channels are ranked: weight norm or Taylor (gradients)",
                choices=("l1", "l2", "taylor"), gui=False),
        Setting("scope", "choice", "layer", "Scope", "the same ratio in every layer, or ranked across layers",
                choices=("layer", "global"), gui=False),
        Setting("round_to", "int", 8, "Round channels to", "structured: keep channel counts multiples of this",
                minimum=1, gui=False),
        Setting("samples", "int", 64, "Taylor samples", "taylor: calibration samples for the gradients", minimum=1,
                gui=False),
        Setting("steps", "int", 1, "Steps", "structured: reach the sparsity in this many steps, with a short recovery "
                "training between them (1: at once)", minimum=1, maximum=10),
        Setting("recover_epochs", "int", 1, "Recovery epochs", "structured, steps above 1: training epochs after each "
                "step but the last (on the labels when the data has them, else the original's outputs)", minimum=1,
                maximum=20, gui=False),
    ),
    needs=(Requirement(TORCH_MODULE.key, TORCH_MODULE.words, TORCH_MODULE.check, when=lambda s: s.method == "structured"),),
    flag_parse=_prune_flag, flag_args={"metavar": "METHOD:SPARSITY", "help": "structured:0.5 or unstructured:0.7"},
    keeps_macs=lambda s: ("unstructured pruning zeroes weights, dense runtimes still multiply them"
                          if s.method == "unstructured" else None),
    hints=_prune_hints,
    sensitivity="zero the layer's smallest weights at each level",
    sweep=(Dimension("sparsity", "sparsity", off=0.0, gate=True, alias="sparsities"),
           # structured (True) or unstructured, in the order the method's `sweep` lists them; structured needs an
           # editable PyTorch module
           Dimension("structured", "method", to_setting=lambda v: "structured" if v else "unstructured",
                     from_setting=lambda m: m == "structured", when=lambda chosen, torch_edits: torch_edits, fixed=False)),
)

LOWRANK = Technique(
    "lowrank", _C + "pruning.lowrank:LowRankSettings", _C + "pruning.lowrank:summary", _C + "pruning.lowrank:apply",
    lambda s: "torch",
    label="Low-rank factorization", words="low-rank factorization",
    help="split each Linear and 1x1 Conv into two thinner ones by truncated SVD, where that saves parameters",
    fields=(
        Setting("rank_ratio", "float", 0.5, "Rank kept", "share of min(in, out) singular values kept",
                minimum=0.05, maximum=1.0, step=0.05),
        Setting("energy", "float", None, "Energy kept", "or: keep the fewest singular values holding this share of "
                "the spectrum's energy", minimum=0.05, maximum=1.0, gui=False),
        Setting("min_features", "int", 16, "Smallest layer", "leave layers with fewer input or output features alone",
                minimum=1, maximum=100_000),
    ),
    needs=(TORCH_MODULE,),
)

DISTILL = Technique(
    "distill", _C + "distill:DistillSettings", _C + "distill:summary", _C + "distill:apply", lambda s: "torch",
    colour="#9467bd", colour_rank=3, label="Distillation", words="distillation",
    help="retrain after pruning for up to EPOCHS epochs: fine-tune on the labels, learn the original's outputs, or "
         "both (by default the labels, else the original's outputs), or the one the validation split prefers, searched "
         "within a budget of minutes; needs a PyTorch model",
    fields=(
        Setting("epochs", "int", 3, "Epochs", "training epochs at most (each candidate's when searched; it stops early "
                "without progress)",
                minimum=1, maximum=200, sweep=(5,), start=5),  # the panel offers the sweep's epochs
        # the loss and budget as distill.py's LOSSES and DistillSettings hold them (tests/core/test_recovery.py checks)
        Setting("loss", "choice", "labels", "Loss", "what the student learns from: the labels (fine-tuning), the original's "
                "outputs (teacher), both, or auto: the one the validation split prefers, searched with the learning rate; "
                "without labels only the teacher", choices=("auto", "labels", "teacher", "both"),
                labels=("auto (best on validation)", "labels (fine-tune)", "teacher (soft targets)", "both (α blend)"),
                sweep=("labels",)),  # a sweep may also search it: --try distill.loss=labels,auto
        Setting("minutes", "float", 3.0, "Budget", "loss auto: minutes the search may take (the best so far is kept)",
                minimum=0.05, maximum=600.0, step=0.5, unit="min", applies=lambda v: v.get("loss") == "auto"),
        Setting("temperature", "float", 4.0, "Temperature", "distillation temperature", minimum=0.5, maximum=20.0, step=0.5,
                cli_flag="--temperature", applies=lambda v: v.get("loss") != "labels"),
        Setting("alpha", "float", 0.7, "α (soft share)", "loss both: weight of the original's soft targets, the rest "
                "goes to the labels; given without a loss, it means both", minimum=0.0, maximum=1.0, step=0.1,
                cli_flag="--alpha", applies=lambda v: v.get("loss") == "both"),
        Setting("lr", "float", 1e-3, "Learning rate", "the optimizer's learning rate (loss auto searches 0.0003, 0.001 "
                "and 0.003 unless one is given)", minimum=1e-5, maximum=1.0, step=1e-4, decimals=5,
                applies=lambda v: v.get("loss") != "auto"),
    ),
    needs=(TORCH_MODULE,), flag_setting="epochs", flag_args={"metavar": "EPOCHS"}, switch="distill from the original",
    # distillation retrains every weight, so it would undo unstructured sparsity: a sweep tries it only after
    # structured pruning
    sweep=(Dimension("distill", None, off=False, gate=True, fixed=False,
                     when=lambda chosen, torch_edits: chosen["structured"] and chosen["sparsity"] > 0),
           Dimension("distill.epochs", "epochs", single_fixed=True, alias="distill_epochs", scalar=True,
                     when=lambda chosen, torch_edits: chosen["distill"]),
           # one loss by default (recorded in no journal, as before); --try distill.loss=labels,auto adds the search
           Dimension("distill.loss", "loss", single_fixed=True, when=lambda chosen, torch_edits: chosen["distill"])),
)

GRAPHOPT = Technique(
    "graphopt", _C + "graphopt:GraphOptSettings", _C + "graphopt:summary", _C + "graphopt:apply", lambda s: "onnx",
    label="Graph optimization", words="graph optimization",
    help="ONNX Runtime offline graph optimization (constant folding, operator fusion)",
    fields=(
        Setting("level", "choice", "basic", "Level", "basic keeps standard ONNX operators every runtime loads; extended "
                "adds ONNX Runtime's fused operators (ONNX Runtime only)", choices=("basic", "extended")),
    ),
    flag_setting="level", sweep_baseline={"level": "basic"},  # a sweep's original, as ONNX Runtime runs it
    keeps_macs=lambda s: "graph optimization fuses and folds operators around the multiply-adds, it removes none",
)

QUANTIZE = Technique(
    "quantize", _C + "quantization.quant_settings:QuantizeSettings", _C + "quantization.quantize:summary",
    _C + "quantization.quantize:apply",
    lambda s: "torch" if s.backend == "torch" else "openvino" if s.backend == "openvino" else "onnx",
    colour="#ff7f0e", colour_rank=2, label="Quantization", words="quantization",
    help="quantization target (int8 on ONNX Runtime tries every format and keeps the fastest faithful one)",
    fields=(
        Setting("target", "choice", "none", "Precision", "the runtime and precision to quantize for",
                choices=("none", *QUANT_TARGETS), labels=("none", *(t.label for t in QUANT_TARGETS.values())), off="none",
                cli_flag="--quantize"),
        Setting("calibration", "choice", "minmax", "Calibration", "ONNX Runtime int8 calibration method",
                choices=("minmax", "entropy", "percentile"), applies=lambda v: _int8(v, "ort")),
        Setting("samples", "int", 128, "Samples", "calibration samples", minimum=8, maximum=4096,
                applies=lambda v: _int8(v)),
        Setting("keep_fp32", "names", (), "Keep FP32", "layers the quantizer leaves in floating point (right-click "
                "them in the graph)", cli_flag="--keep-fp32", picked_by="keep_fp32_toggled"),
        # quantization-aware training (quantization/qat.py): OpenVINO int8 of an editable PyTorch model, labelled data
        Setting("qat", "choice", "auto", "QAT", "OpenVINO int8: fine-tune the fake-quantized model on the labels "
                "(quantization-aware training) when calibration loses more than qat_below points on validation (auto), "
                "always, or never (off); the better int8 model on validation is kept", choices=("auto", "always", "off"),
                applies=lambda v: _int8(v, "openvino"), gui=False),
        Setting("qat_below", "float", 0.5, "QAT below", "qat auto: train when calibrated int8 loses more than this many "
                "validation top-1 points", minimum=0.0, maximum=100.0, step=0.1, unit="pt",
                applies=lambda v: _int8(v, "openvino") and v.get("qat", "auto") == "auto", gui=False),
        Setting("qat_epochs", "int", 2, "QAT epochs", "quantization-aware training epochs (the best on validation is "
                "kept)", minimum=1, maximum=50, unit="epochs",
                applies=lambda v: _int8(v, "openvino") and v.get("qat", "auto") != "off", gui=False),
    ),
    needs=(Requirement(TORCH_MODULE.key, TORCH_MODULE.words, TORCH_MODULE.check, when=lambda s: s.backend == "torch"),),
    flag_parse=_quantize_flag, flag_args={"choices": tuple(QUANT_TARGETS), "metavar": None},
    words_of=lambda s: f"PyTorch {s.precision}" if s.backend == "torch" else "quantization",
    final=lambda s: ("the PyTorch precision is how the variant runs, so it comes last" if s.backend == "torch" else None),
    backend=lambda s: s.backend, precision=lambda s: s.precision,
    keeps_macs=lambda s: "quantization changes the precision of each multiply-add, not their number",
    trains_module=lambda s: s.qat != "off" and s.backend == "openvino" and s.precision == "int8",
    sensitivity="round the layer's weights to int8, per output channel",
    hints=lambda s, names: ["keep the most sensitive layers in FP32 (Analyse layers shows which)"],
    compose=lambda v: quant_target(v["target"]).settings(**{k: x for k, x in v.items() if k != "target"}),
    sweep=(Dimension("quantize", "target", values=("none", *(key for key, t in QUANT_TARGETS.items() if t.sweep)),
                     off="none", gate=True, alias="quantize"),),
)

EARLY_EXIT = Technique(
    "early_exit", _C + "exits.early_exit:EarlyExitSettings", _C + "exits.early_exit:summary", _C + "exits.early_exit:apply",
    lambda s: "onnx", colour="#17becf", colour_rank=0,  # exits change how a model runs most: they name the colour
    label="Early exit", words="early exit",
    help="add exits that answer confident inputs early: N placed automatically (default 2), or after the named layers "
         "(`inspect` lists them); comes after quantization in the recipe",
    fields=(
        Setting("exits", "int", 2, "Exits", "exits placed automatically, spread over the model's work", minimum=1,
                maximum=8, cli_flag="--early-exit", applies=lambda v: not v.get("at")),
        Setting("at", "names", (), "After", "layers to put exits after instead; right-click a layer in the graph: Add "
                "an early exit", cli_flag="--early-exit", picked_by="exit_toggled"),
        Setting("budget", "float", 0.5, "Budget", "early exit: the accuracy drop allowed, in points, on the validation "
                "split", minimum=0.0, maximum=100.0, step=0.1, unit="pt", cli_flag="--exit-budget"),
        Setting("confidence", "choice", "max-softmax", "Confidence", "how a head's certainty is read",
                choices=("max-softmax", "entropy")),
    ),
    needs=(CLASS_SCORES,),
    flag_parse=_early_exit_flag, flag_args={"nargs": "?", "const": "2", "metavar": "N|LAYER,LAYER"},
    switch="answer confident inputs early",
    sweep=(Dimension("early_exit", "exits", values=(0,), off=0, gate=True, single_fixed=True, alias="early_exit",
                     cli_flag="--exits", help="early-exit counts to try, 0 for none (default: 0, no early exit)"),),
    refuses_after={"openvino": "OpenVINO IR does not keep the exits' record; quantize with ONNX Runtime instead "
                               "(before or after the exits)"},
)

# In the order the GUI and the CLI put steps in a recipe.
TECHNIQUES: dict[str, Technique] = {t.name: t for t in (PRUNE, LOWRANK, DISTILL, GRAPHOPT, QUANTIZE, EARLY_EXIT)}

# Colours of the chart's kinds, in legend order; shared by the studio's chart and the report.
TECHNIQUE_COLOURS = {
    "baseline": "#7f7f7f",
    **{t.name: t.colour for t in sorted(TECHNIQUES.values(), key=lambda t: t.colour_rank) if t.colour},
    "prune+quantize": "#2ca02c",
    "other": "#8c564b",
}
COMBINED_KINDS = {"prune+quantize": frozenset({"prune", "quantize"})}  # recipes with both get a colour of their own


def register(entry: Technique, before: str | None = None) -> None:
    """Add a technique (before `before` in recipe order, else last): its control, flag and sweep
    dimension appear wherever the registry is read from then on."""
    items = [(n, t) for n, t in TECHNIQUES.items() if n != entry.name]
    at = next((i for i, (n, _) in enumerate(items) if n == before), len(items))
    items.insert(at, (entry.name, entry))
    TECHNIQUES.clear()
    TECHNIQUES.update(items)


def technique(name: str, where: str = "recipe") -> Technique:
    try:
        return TECHNIQUES[name]
    except KeyError:
        raise SettingsError(f"{where}: unknown technique '{name}'; known: {', '.join(TECHNIQUES)}") from None


def check_recipe(handle: Any, steps: Any, output_kinds: dict[str, str] | None = None) -> None:
    """Refuse, before any work, a recipe whose steps the open model cannot take (early exit on a
    detector, distillation of an ONNX-only file): minutes of pruning and training must not end in
    "needs class scores". The one check the GUI, the CLI, optimize and sweeps all run."""
    for step in steps:
        technique(step.technique).refuse(handle, output_kinds, step.settings)


def recipe_steps(**settings: dict | None) -> list[dict]:
    """Recipe steps from settings given by technique name, in the registry's order; None or a
    missing name leaves the technique out. The one place recipes are assembled from options."""
    unknown = set(settings) - set(TECHNIQUES)
    if unknown:
        raise SettingsError(f"unknown technique '{sorted(unknown)[0]}'; known: {', '.join(TECHNIQUES)}")
    return [{"technique": name, "settings": settings[name]} for name in TECHNIQUES if settings.get(name) is not None]


def sensitivity_kinds() -> tuple[str, ...]:
    """The techniques a per-layer sensitivity scan can try one layer at a time (importance --sensitivity)."""
    return tuple(name for name, entry in TECHNIQUES.items() if entry.sensitivity)
