"""Why a variant is (not) faster: the speed-up its MACs and precision lead one to expect on this
CPU next to the one measured, and the reasons they differ — the layers that got slower, compute
left in FP32 inside an int8 model, CPU features int8 or bf16 need and this CPU lacks.

"Why no speed-up?" is the question every compression tool's users ask most; the answer is in
the numbers ParetoLab already has, put side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paretolab.core.compress.variant import Variant
from paretolab.core.measure.machine import BF16_FEATURES, FP16_FEATURES, machine_info
from paretolab.core.measure.profile import layer_breakdown
from paretolab.core.model.blocks import scope_of
from paretolab.core.model.handle import ModelHandle

INT8_COMPUTE = ("QLinearConv", "QLinearMatMul", "ConvInteger", "MatMulInteger", "QGemm", "DynamicQuantizeMatMul",
                "MatMulIntegerToFloat")
FLOAT_COMPUTE = ("Conv", "MatMul", "Gemm")
VNNI = ("avx512_vnni", "avx_vnni", "amx_int8")
INT8_GAIN = 2.0  # int8 over FP32 on a CPU with VNNI: four times the lanes, less the quantize/dequantize traffic
BF16_GAIN_AVX512 = 1.5  # bf16 over FP32 with AVX512-BF16 dot products (1.7x measured on the demo ResNet, OpenVINO)
BF16_GAIN_AMX = 2.0  # with AMX tiles (ResNet-18 on a Xeon with AMX: 17.9 → 9.3 ms, OpenVINO)
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
    features = set() if on_gpu else set(machine_info().get("cpu_features", []))
    precision = _precision(variant)
    macs_ratio = (variant.baseline.macs / variant.measured.macs) if variant.baseline.macs and variant.measured.macs else 1.0
    gain, precision_note = _gpu_gain(precision) if on_gpu else _precision_gain(precision, features)
    result = Explanation(variant.name, variant.speedup, macs_ratio * gain,
                         f"MACs {macs_ratio:.2f}x fewer × {precision_note}")
    result.reasons += [] if on_gpu else _feature_reasons(precision, features)
    result.reasons += _float_compute_left(made, precision)
    result.reasons += _format_choice(variant)
    result.reasons += _exit_reasons(variant)
    if layer_times and variant.measured.backend in ("ort", "openvino") and not variant.exits:  # input-dependent paths
        result.slower_layers = _slower_layers(original, made, variant.measured.backend)
        if result.slower_layers:
            worst = ", ".join(f"{s.layer} ({s.original_ms:.3f} → {s.variant_ms:.3f} ms)" for s in result.slower_layers[:3])
            result.reasons.append(f"layers that got slower: {worst}")
    if result.measured is not None and result.measured < 0.8 * result.expected and not result.reasons:
        result.reasons.append("fixed per-call costs (input copies, thread start-up) dominate a model this small; "
                              "the MACs saved are too few to show")
    return result


def quick_reasons(variant: Variant) -> list[str]:
    """The reasons that need no measuring — the variant's precision on this CPU, MACs it did not
    remove — which cap its speed-up whatever the timing says: what the report shows beside each."""
    on_cpu = variant.measured.device == "cpu"
    features = set(machine_info().get("cpu_features", []))
    reasons = (_feature_reasons(_precision(variant), features) if on_cpu else []) + _exit_reasons(variant)
    if not reasons and variant.measured.macs and variant.baseline.macs and variant.measured.macs >= variant.baseline.macs:
        reasons.append("the variant does as many MACs as the original: nothing it computes was removed "
                       "(unstructured pruning zeroes weights, dense runtimes still multiply them)")
    return reasons


def _exit_reasons(variant: Variant) -> list[str]:
    """An early-exit variant's MACs are an average over the test inputs; the inputs that go on pay
    for every head they pass and for the gathering of the unsure samples."""
    if not variant.exits:
        return []
    early = 1.0 - variant.exits[-1]["share"]
    reasons = [f"early exit: {early:.0%} of the test inputs left before the end, so its MACs and latency are averages "
               "over inputs"]
    over = (variant.metrics.get("timing") or {}).get("over_data")
    if over and over["variant"]["p99_ms"] > over["baseline"]["mean_ms"]:
        reasons.append(f"inputs that reach the end pay for the exit heads and the gathering of unsure samples: p99 "
                       f"{over['variant']['p99_ms']:.3f} ms against the original's {over['baseline']['mean_ms']:.3f} ms "
                       "(a fixed cost per exit that a small model cannot hide)")
    return reasons


def _precision(variant: Variant) -> str:
    """The precision the variant computes in; a measured choice ("fastest") names its winner in its report."""
    quant = [s for s in variant.recipe.steps if s.technique == "quantize"]
    if not quant:
        return "fp32"
    if quant[-1].settings.precision != "fastest":
        return quant[-1].settings.precision
    chosen = [r.get("chosen", "") for r in variant.reports if r.get("technique") == "quantize"]
    return next((p for p in ("bf16", "int8", "fp16") if chosen and p in chosen[-1].split("-")), "fp32")


def _precision_gain(precision: str, features: set[str]) -> tuple[float, str]:
    if precision == "int8":
        if features & set(VNNI):
            return INT8_GAIN, f"int8 with VNNI ({INT8_GAIN:.0f}x)"
        return 1.0, "int8 without VNNI (1x: no int8 dot product instructions)"
    if precision == "bf16":
        if "amx_bf16" in features:
            return BF16_GAIN_AMX, f"bf16 with AMX ({BF16_GAIN_AMX:.1f}x)"
        if "avx512_bf16" in features:
            return BF16_GAIN_AVX512, f"bf16 with AVX512-BF16 ({BF16_GAIN_AVX512:.1f}x)"
        return 1.0, "bf16 without AVX512-BF16 or AMX (1x: emulated)"
    if precision == "fp16" and features & set(FP16_FEATURES):
        return BF16_GAIN_AVX512, f"fp16 with AVX512-FP16 ({BF16_GAIN_AVX512:.1f}x)"
    if precision in ("fp16", "int8-weights", "int4-weights", "dynamic-int8"):
        return 1.0, f"{precision} computes in FP32 on a CPU (1x)"
    return 1.0, "FP32 (1x)"


def _gpu_gain(precision: str) -> tuple[float, str]:
    if precision in ("fp16", "bf16"):
        return GPU_HALF_GAIN, f"{precision} on a GPU's tensor cores ({GPU_HALF_GAIN:.0f}x)"
    return 1.0, f"{precision.upper() if precision == 'fp32' else precision} on the GPU (1x)"


def _feature_reasons(precision: str, features: set[str]) -> list[str]:
    if precision == "int8" and not features & set(VNNI):
        return ["this CPU has no VNNI (avx512_vnni, avx_vnni or AMX): int8 convolutions and products run no faster "
                "than FP32 here; deploy int8 on a CPU with VNNI, or prune instead"]
    if precision == "fp16" and not features & set(FP16_FEATURES):
        return ["CPUs compute FP16 models in FP32 (ONNX Runtime inserts casts, OpenVINO decompresses the weights): "
                "FP16 halves the file, not the time"]
    if precision == "bf16" and not features & set(BF16_FEATURES):
        return ["this CPU has neither AVX512-BF16 nor AMX: OpenVINO emulates bf16 here, slower than FP32"]
    if precision == "dynamic-int8":
        return ["dynamic int8 quantizes activations on every call; its ConvInteger kernels are slower than FP32 "
                "convolutions on most CPUs: use static int8 for CNNs"]
    return []


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
