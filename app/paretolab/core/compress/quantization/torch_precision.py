"""Lower precision on PyTorch: the model computes in FP16 or BF16 and still takes and gives FP32,
so it drops in where the original ran. The precision is baked into the variant's PyTorch file.

Whether a precision pays depends on the device: a GPU's tensor cores run both at several times
FP32; a CPU runs BF16 natively only with AVX512-BF16 or AMX and FP16 only with AVX512-FP16 or
AMX-FP16 — elsewhere PyTorch emulates them (FP16 convolutions ran 68x slower than FP32 on the
demo here). "fastest" times each native precision beside FP32 on the device the variant will be
measured on, checks each against FP32, and keeps the fastest faithful one.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import torch

from paretolab.core.compress.quantization.fastest_faithful import Contest, pick_fastest_faithful
from paretolab.core.errors import Cancelled, ParetoLabError, first_line
from paretolab.core.measure.machine import BF16_FEATURES, FP16_FEATURES, machine_info
from paretolab.core.model.eager import output_tensors
from paretolab.core.settings import SettingsError

if TYPE_CHECKING:
    from paretolab.core.compress.quantization.quant_settings import QuantizeSettings
    from paretolab.core.compress.step import StepContext

DTYPES = {"fp16": torch.float16, "bf16": torch.bfloat16}
PRECISIONS = Contest("precision", "", ("bf16", "fp16"), "bf16, whose range is FP32's")


class Cast(torch.nn.Module):
    """`module` computing in `precision` (it is converted in place), with FP32 in and out."""

    def __init__(self, module: torch.nn.Module, precision: str) -> None:
        super().__init__()
        self.precision = precision
        self.module = module.to(DTYPES[precision])

    def forward(self, *inputs: torch.Tensor) -> Any:
        dtype = DTYPES[self.precision]
        out = self.module(*(t.to(dtype) if t.is_floating_point() else t for t in inputs))
        tensors = [t.float() if t.is_floating_point() else t for t in output_tensors(out)]
        return tensors[0] if len(tensors) == 1 else tuple(tensors)


def native_precisions(device: str) -> tuple[str, ...]:
    """The precisions below FP32 that `device` computes natively here (the others it emulates)."""
    if device == "cuda":
        return ("bf16", "fp16") if torch.cuda.is_bf16_supported() else ("fp16",)
    features = set(machine_info().get("cpu_features", []))
    return tuple(p for p, needs in (("bf16", BF16_FEATURES), ("fp16", FP16_FEATURES)) if features & set(needs))


def apply(ctx: StepContext, index: int, settings: QuantizeSettings) -> None:
    module = ctx.torch_module(f"PyTorch {settings.precision}")
    native = native_precisions(ctx.device)
    if settings.precision == "fastest":
        if not native:
            raise ParetoLabError(f"PyTorch on {ctx.device} here computes neither BF16 nor FP16 natively (no AVX512-BF16, "
                                 "AMX or AVX512-FP16), so FP32 is the fastest precision; measure on cuda, or use int8")
        chosen, report = _fastest(ctx, index, settings, module, native)
    else:
        if settings.precision not in native:
            raise ParetoLabError(f"PyTorch on {ctx.device} here would emulate {settings.precision}, slower than FP32 "
                                 f"(natively: {', '.join(native) or 'FP32 only'}); choose a native precision or "
                                 "measure on cuda")
        chosen, report = settings.precision, {}
    ctx.set_module(Cast(module, chosen))
    ctx.report(index, {"technique": "quantize", "chosen": f"torch-{chosen}", "device": ctx.device, **report})


def _fastest(ctx: StepContext, index: int, settings: QuantizeSettings, module: torch.nn.Module,
             native: tuple[str, ...]) -> tuple[str, dict]:
    """Each native precision saved as a PyTorch file, checked and timed against FP32's on ctx.device."""
    reference = ctx.original.like(ctx.torch_file_of(module, ctx.out(index, "-fp32")))
    built, dropped = {}, []
    for i, precision in enumerate(native):
        ctx.progress.report(0.1 + 0.2 * i, f"converting to {precision}")
        try:
            built[precision] = ctx.torch_file_of(Cast(copy.deepcopy(module), precision), ctx.out(index, f"-{precision}"))
        except (Cancelled, SettingsError):
            raise
        except Exception as exc:  # one precision failing leaves the others to compete
            dropped.append(f"{precision} could not be saved ({first_line(exc)})")
    outcome = pick_fastest_faithful(reference, built, "torch", settings.min_agreement, ctx.data.validation,
                                    ctx.out(index, ".pt2"), ctx.threads, ctx.progress, dropped, PRECISIONS,
                                    device=ctx.device, output_kinds=ctx.data.output_kinds)
    winner = next(c.name for c in outcome.candidates if c.chosen)
    return winner, {"baseline_ms": outcome.baseline_ms, "candidates": [vars(c) for c in outcome.candidates],
                    "warnings": outcome.warnings, "notes": outcome.notes}
