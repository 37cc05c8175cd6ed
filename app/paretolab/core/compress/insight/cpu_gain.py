"""What a lower precision can gain over FP32 on a CPU: it depends on the backend that runs the
variant *and* on the CPU's instruction sets, and a precision that cannot pay has a reason.

Measured on an Intel Xeon with AVX512-FP16, AMX-BF16 and AMX-INT8 (no AMX-FP16), two 3x3
convolutions at 64 channels, one thread: PyTorch FP32 10.8 ms, FP16 16.6 ms, BF16 2.8-4.2 ms;
OpenVINO f32 14.5 ms, f16 hint 16.0 ms, bf16 2.2 ms; an ONNX Runtime FP16 variant of the demo
1.01x. So FP16 arithmetic pays on a CPU only with AMX-FP16 tiles, and only on runtimes that
compute in FP16 at all: ONNX Runtime's CPU provider wraps an FP16 model's operators in Casts,
and OpenVINO computes an FP16 IR in f32 (ParetoLab pins f32 for a variant that asks for no
precision; OpenVINO's own default there is bf16 on AMX/AVX512-BF16 CPUs).
"""

from __future__ import annotations

from dataclasses import dataclass

VNNI = ("avx512_vnni", "avx_vnni", "amx_int8")
INT8_GAIN = 2.0  # int8 over FP32 on a CPU with VNNI: four times the lanes, less the quantize/dequantize traffic
BF16_GAIN_AVX512 = 1.5  # bf16 over FP32 with AVX512-BF16 dot products (1.7x measured on the demo ResNet, OpenVINO)
BF16_GAIN_AMX = 2.0  # with AMX tiles (ResNet-18 on a Xeon with AMX: 17.9 → 9.3 ms, OpenVINO)
FP16_GAIN_AMX = 2.0  # FP16 with AMX-FP16 tiles, as bf16 with AMX-BF16
TORCH_BACKENDS = ("torch", "inductor")
HALF_THE_FILE = "FP16 halves the file, not the time"


@dataclass(frozen=True)
class Gain:
    factor: float
    note: str  # how the factor was reached, for the explanation's basis
    reason: str | None = None  # why the precision cannot pay on this backend and CPU; None where it can


def cpu_gain(precision: str, backend: str, features: set[str]) -> Gain:
    """The speed-up over FP32 that `precision` can bring when `backend` runs it on a CPU with `features`."""
    if precision in ("int8", "dynamic-int8"):
        return _int8(precision, features)
    if precision == "bf16":
        return _bf16(backend, features)
    if precision == "fp16":
        return _fp16(backend, features)
    if precision in ("int8-weights", "int4-weights"):
        return Gain(1.0, f"{precision} computes in FP32 on a CPU (1x)")
    return Gain(1.0, "FP32 (1x)")


def _int8(precision: str, features: set[str]) -> Gain:
    if precision == "dynamic-int8":
        return Gain(1.0, "dynamic int8 (1x: activations quantized on every call)",
                    "dynamic int8 quantizes activations on every call; its ConvInteger kernels are slower than FP32 "
                    "convolutions on most CPUs: use static int8 for CNNs")
    if features & set(VNNI):
        return Gain(INT8_GAIN, f"int8 with VNNI ({INT8_GAIN:.0f}x)")
    return Gain(1.0, "int8 without VNNI (1x: no int8 dot product instructions)",
                "this CPU has no VNNI (avx512_vnni, avx_vnni or AMX): int8 convolutions and products run no faster "
                "than FP32 here; deploy int8 on a CPU with VNNI, or prune instead")


def _bf16(backend: str, features: set[str]) -> Gain:
    if backend == "ort":
        return Gain(1.0, "bf16 on ONNX Runtime (1x: computed through casts)",
                    "ONNX Runtime's CPU provider has no bf16 kernels for convolutions and products: it casts to FP32; "
                    "run bf16 on OpenVINO or PyTorch")
    if "amx_bf16" in features:
        return Gain(BF16_GAIN_AMX, f"bf16 with AMX ({BF16_GAIN_AMX:.1f}x)")
    if "avx512_bf16" in features:
        return Gain(BF16_GAIN_AVX512, f"bf16 with AVX512-BF16 ({BF16_GAIN_AVX512:.1f}x)")
    return Gain(1.0, "bf16 without AVX512-BF16 or AMX (1x: emulated)",
                "this CPU has neither AVX512-BF16 nor AMX: bf16 is emulated here, slower than FP32")


def _fp16(backend: str, features: set[str]) -> Gain:
    if backend == "ort":
        return Gain(1.0, "fp16 on ONNX Runtime's CPU provider (1x: computed in FP32 through casts)",
                    f"ONNX Runtime's CPU provider runs an FP16 model's convolutions and products in FP32, through "
                    f"Cast nodes, whatever the CPU: {HALF_THE_FILE}")
    if backend == "openvino":
        return Gain(1.0, "fp16 on OpenVINO (1x: FP16 weights decompressed, computed in f32)",
                    f"OpenVINO decompresses an FP16 IR's weights and computes in f32 (its f16 precision pays only "
                    f"on CPUs with AMX-FP16): {HALF_THE_FILE}")
    if backend in TORCH_BACKENDS and "amx_fp16" in features:
        return Gain(FP16_GAIN_AMX, f"fp16 with AMX-FP16 ({FP16_GAIN_AMX:.1f}x)")
    if backend in TORCH_BACKENDS and "avx512_fp16" in features:
        return Gain(1.0, "fp16 with AVX512-FP16 but no AMX-FP16 (1x)",
                    f"PyTorch's FP16 kernels on AVX512-FP16 without AMX-FP16 are no faster than FP32 (0.65-1.0x "
                    f"measured on a Xeon): {HALF_THE_FILE}; bf16 pays on CPUs with AMX-BF16")
    return Gain(1.0, "fp16 without AVX512-FP16 or AMX-FP16 (1x: emulated)",
                f"this CPU has neither AVX512-FP16 nor AMX-FP16: FP16 is emulated or computed in FP32 here; "
                f"{HALF_THE_FILE}")
