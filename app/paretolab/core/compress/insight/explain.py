"""Why a variant is (not) faster: the speed-up its MACs and precision lead one to expect on the
backend and CPU that ran it next to the one measured, and the reasons they differ — the layers
that got slower, compute left in FP32 inside an int8 model, a precision that backend does not
compute in, CPU features a precision needs and this CPU lacks, steps that removed no MACs.

"Why no speed-up?" is the question every compression tool's users ask most; the answer is in
the numbers ParetoLab already has, put side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from paretolab.core.compress.insight.cpu_gain import cpu_gain
from paretolab.core.compress.techniques import TECHNIQUES
from paretolab.core.compress.variant import Variant
from paretolab.core.measure.machine import cpu_features
from paretolab.core.measure.profile import layer_breakdown
from paretolab.core.model.blocks import scope_of
from paretolab.core.model.handle import ModelHandle

INT8_COMPUTE = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QGemm", "DynamicQuantizeMatMul",
                "MatMulIntegerToFloat")
FLOAT_COMPUTE = ("Conv", "MatMul", "Gemm")
SMALL_MACS = 20_000_000  # below this, a CPU call's fixed costs (~0.05-0.1 ms) rival the compute
GPU_HALF_GAIN = 2.0  # FP16/BF16 over FP32 (TF32 off) on tensor cores, for convolution- and GEMM-bound models


@dataclass
class SlowerLayer:
    layer: str
    original_ms: float
    variant_ms: float


@dataclass
class Explanation:
    variant: str
    measured: float | None
    expected: float
    basis: str  # how `expected` was reached
    reasons: list[str] = field(default_factory=list)
    slower_layers: list[SlowerLayer] = field(default_factory=list)

    def text(self) -> str:
        """Expected against measured speed-up, and the reasons they differ (CLI and app alike)."""
        measured = f"{self.measured:.2f}x" if self.measured is not None else "not measured"
        lines = [f"variant   {self.variant}", f"measured  {measured}", f"expected  {self.expected:.2f}x ({self.basis})"]
        lines += [f"why       {r}" for r in self.reasons] or [
            "why       the measured speed-up is what its MACs and precision promise"]
        return "\n".join(lines)


def explain(original: ModelHandle, variant: Variant, made: ModelHandle, *, layer_times: bool = True) -> Explanation:
    """`made` is the variant's file opened like the original (original.like(variant.artifact))."""
    on_gpu = variant.measured.device != "cpu"
    precision = _precision(variant)
    macs_ratio = (variant.baseline.macs / variant.measured.macs) if variant.baseline.macs and variant.measured.macs else 1.0
    if on_gpu:
        gain, precision_note, cpu_reasons = *_gpu_gain(precision), []
    else:
        expected = cpu_gain(precision, variant.measured.backend, cpu_features())
        gain, precision_note, cpu_reasons = expected.factor, expected.note, [expected.reason] if expected.reason else []
    measured_gain = _measured_gain(variant, precision)
    if measured_gain is not None:
        gain, precision_note = measured_gain
    result = Explanation(variant.name, variant.speedup, macs_ratio * gain,
                         f"MACs {macs_ratio:.2f}x fewer × {precision_note}")
    result.reasons += cpu_reasons
    result.reasons += _float_compute_left(made, precision)
    result.reasons += _format_choice(variant)
    result.reasons += _exit_reasons(variant)
    if layer_times and variant.measured.backend in ("ort", "openvino") and not variant.exits:  # input-dependent paths
        result.slower_layers = _slower_layers(original, made, variant.measured.backend)
        if result.slower_layers:
            worst = ", ".join(f"{s.layer} ({s.original_ms:.3f} → {s.variant_ms:.3f} ms)" for s in result.slower_layers[:3])
            result.reasons.append(f"layers that got slower: {worst}")
    if result.measured is not None and result.measured < 0.8 * result.expected and not result.reasons:
        result.reasons += _macs_reasons(variant) or [_shortfall(variant)]
    return result


def _shortfall(variant: Variant) -> str:
    """Why a variant that removed MACs (or computes cheaper) gained less: a small model's fixed costs,
    or, in a model too large for those to matter, layers the runtime did not speed up."""
    macs = variant.baseline.macs
    if macs is not None and macs < SMALL_MACS:
        return (f"fixed per-call costs (input copies, thread start-up) dominate a model this small ({macs / 1e6:.1f}M "
                "MACs); the MACs saved are too few to show")
    return ("the runtime did not turn what was saved into time (memory-bound or unfused layers): compare the two "
            "per layer (explain with layer times, or profile both)")


def quick_reasons(variant: Variant) -> list[str]:
    """The reasons that need no measuring — the variant's precision on this CPU and backend, MACs
    it did not remove — which cap its speed-up whatever the timing says: what the report shows beside each."""
    reasons = []
    if variant.measured.device == "cpu":
        expected = cpu_gain(_precision(variant), variant.measured.backend, cpu_features())
        reasons += [expected.reason] if expected.reason else []
    reasons += _exit_reasons(variant)
    return reasons or _macs_reasons(variant)


def _macs_reasons(variant: Variant) -> list[str]:
    """A variant that does as many MACs as the original, with the steps of its recipe that left them."""
    if not (variant.measured.macs and variant.baseline.macs and variant.measured.macs >= variant.baseline.macs):
        return []
    keeps = [TECHNIQUES[s.technique].keeps_macs for s in variant.recipe.steps]  # each technique says whether it does
    why = list(dict.fromkeys(w for w in (k(s.settings) if k else None for k, s in zip(keeps, variant.recipe.steps,
                                                                                     strict=True)) if w))
    return ["the variant does as many MACs as the original: nothing it computes was removed"
            + (f" ({'; '.join(why)})" if why else "")]


def _measured_gain(variant: Variant, precision: str) -> tuple[float, str] | None:
    """The precision's speed-up over FP32 as timed side by side when it was chosen (a measured
    choice among candidates records both), on the device the variant is measured on."""
    setters = {t.name for t in TECHNIQUES.values() if t.precision is not None}  # techniques that set a precision
    for report in reversed(variant.reports):
        if report.get("technique") not in setters:
            continue
        chosen = next((c for c in report.get("candidates") or [] if c.get("chosen")), None)
        base = report.get("baseline_ms")
        same_place = (str(report.get("chosen", "")).split("-")[0] == variant.measured.backend
                      and report.get("device", variant.measured.device) == variant.measured.device)
        if chosen and base and chosen.get("median_ms") and same_place:
            ratio = float(base) / float(chosen["median_ms"])
            return ratio, f"{precision} measured {ratio:.2f}x against FP32 when it was chosen"
        return None
    return None


def _exit_reasons(variant: Variant) -> list[str]:
    """An early-exit variant's MACs are an average over the test inputs; the inputs that go on pay
    for every head they pass and for the gathering of the unsure samples."""
    if not variant.exits:
        return []
    early = 1.0 - variant.exits[-1]["share"]
    reasons = [f"early exit: {early:.0%} of the test inputs left before the end, so its MACs and latency are averages "
               "over inputs"]
    over = variant.timing.over_data
    mine, base = (over.variant.p99_ms, over.baseline.mean_ms) if over else (None, None)
    if mine is not None and base is not None and mine > base:
        reasons.append(f"inputs that reach the end pay for the exit heads and the gathering of unsure samples: p99 "
                       f"{mine:.3f} ms against the original's {base:.3f} ms "
                       "(a fixed cost per exit that a small model cannot hide)")
    return reasons


def _precision(variant: Variant) -> str:
    """The precision the variant computes in; a measured choice ("fastest") names its winner in its report."""
    set_by = [(s.technique, p) for s in variant.recipe.steps if (p := _step_precision(s)) is not None]
    if not set_by:
        return "fp32"
    technique, precision = set_by[-1]
    if precision != "fastest":
        return precision
    chosen = [r.get("chosen", "") for r in variant.reports if r.get("technique") == technique]
    return next((p for p in ("bf16", "int8", "fp16") if chosen and p in chosen[-1].split("-")), "fp32")


def _step_precision(step: Any) -> str | None:
    """The precision a step makes the model compute in, when its technique sets one (quantization)."""
    precision = TECHNIQUES[step.technique].precision
    return precision(step.settings) if precision is not None else None


def _gpu_gain(precision: str) -> tuple[float, str]:
    if precision in ("fp16", "bf16"):
        return GPU_HALF_GAIN, f"{precision} on a GPU's tensor cores ({GPU_HALF_GAIN:.0f}x)"
    return 1.0, f"{precision.upper() if precision == 'fp32' else precision} on the GPU (1x)"


def _format_choice(variant: Variant) -> list[str]:
    """When the int8 form kept is not the fastest built: which was faster, and why it lost."""
    for report in variant.reports:
        candidates = report.get("candidates") or []
        chosen = next((c for c in candidates if c.get("chosen")), None)
        fastest = min(candidates, key=lambda c: c["median_ms"], default=None)
        if chosen and fastest and fastest is not chosen and fastest["median_ms"] < 0.95 * chosen["median_ms"]:
            return [f"{fastest['name']} ran faster ({fastest['median_ms']:.3f} against {chosen['median_ms']:.3f} ms) "
                    f"but {chosen['name']} was kept: the faster form was not faithful enough to FP32, or within "
                    "the timing noise of a more portable one (see the candidates in the variant's report)"]
    return []


def _float_compute_left(made: ModelHandle, precision: str) -> list[str]:
    """In an ONNX int8 model, the convolutions and products that still run in floating point."""
    if precision != "int8" or made.format != "onnx":
        return []
    import onnx

    graph = onnx.load(str(made.path), load_external_data=False).graph
    producer = {out: node.op_type for node in graph.node for out in node.output}
    left = [node.name or node.op_type for node in graph.node  # early-exit heads are FP32 by design
            if node.op_type in FLOAT_COMPUTE and producer.get(node.input[0]) != "DequantizeLinear"
            and not node.name.startswith("exit")]
    quantized = sum(node.op_type in INT8_COMPUTE or (node.op_type in FLOAT_COMPUTE and producer.get(node.input[0])
                                                      == "DequantizeLinear") for node in graph.node)
    if not left:
        return []
    return [f"{len(left)} of {len(left) + quantized} convolutions and products stay in FP32 "
            f"({', '.join(left[:3])}{', ...' if len(left) > 3 else ''}): kept on purpose (keep_fp32, sensitive layers) "
            "or not supported by the quantizer"]


def _slower_layers(original: ModelHandle, made: ModelHandle, backend: str) -> list[SlowerLayer]:
    """Layers whose time grew by a fifth and by 2 % of the model's: a quantizer's nodes count
    for the layer they replace ("features.0_quant", ".../features.0/Conv_output_0_bias_add")."""
    before = {t.layer: t.ms for t in layer_breakdown(original, backend, "cpu", None) if t.mapped}
    after: dict[str, float] = {}
    for t in layer_breakdown(made, backend, "cpu", None):
        owner = _owner(t.layer, set(before)) if t.mapped else None
        if owner is not None:
            after[owner] = after.get(owner, 0.0) + t.ms
    total = sum(before.values()) or 1.0
    slower = [SlowerLayer(name, before[name], after[name]) for name in before
              if name in after and after[name] > 1.2 * before[name] and after[name] - before[name] > 0.02 * total]
    return sorted(slower, key=lambda s: s.original_ms - s.variant_ms)


def _owner(name: str, originals: set[str]) -> str | None:
    if name in originals:
        return name
    scope = ".".join(scope_of(name))
    if scope in originals:
        return scope
    prefixes = [o for o in originals if name.startswith(o) and len(name) > len(o) and name[len(o)] in "_/"]
    return max(prefixes, key=len, default=None)
