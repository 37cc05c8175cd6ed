"""Low-rank factorization: a Linear or 1x1 Conv becomes two thinner ones via truncated SVD.

W (out x in) ≈ (U·√S)(√S·Vᵀ) keeps the r largest singular values, where r comes from a
rank ratio or from the share of the spectrum's energy (sum of squared singular values) to
keep. A layer is only split when that saves parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from paretolab.core.settings import SettingsError

if TYPE_CHECKING:
    from paretolab.core.compress.step import StepContext


@dataclass(frozen=True)
class LowRankSettings:
    rank_ratio: float | None = None  # keep this share of min(in, out) singular values (default 0.5)
    energy: float | None = None  # or: keep the fewest values holding this share of the energy
    layers: tuple[str, ...] = ()  # only these layers (default: every eligible one)
    min_features: int = 16  # leave layers smaller than this alone

    def check(self) -> None:
        if self.rank_ratio is not None and self.energy is not None:
            raise SettingsError("give one of 'rank_ratio' and 'energy', not both")
        for name, value in (("rank_ratio", self.rank_ratio), ("energy", self.energy)):
            if value is not None and not 0 < value <= 1:
                raise SettingsError(f"setting '{name}' must be in (0, 1], not {value}")


@dataclass
class LowRankReport:
    technique: str = "lowrank"
    factorized: dict[str, tuple[int, int]] = field(default_factory=dict)  # layer -> (full rank, kept rank)
    skipped: dict[str, str] = field(default_factory=dict)  # layer -> why
    params_before: int = 0
    params_after: int = 0

    def to_dict(self) -> dict:
        return {"technique": self.technique, "factorized": {k: list(v) for k, v in self.factorized.items()},
                "skipped": dict(self.skipped), "params_before": self.params_before, "params_after": self.params_after}


def _rank(singular: np.ndarray, settings: LowRankSettings) -> int:
    if settings.energy is None:
        return max(1, int(round(len(singular) * (settings.rank_ratio or 0.5))))
    energy = np.cumsum(singular**2) / np.sum(singular**2)
    return int(np.searchsorted(energy, settings.energy) + 1)


def _eligible(module: Any) -> dict[str, Any]:
    import torch

    found: dict[str, Any] = {}
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.Linear) or (
            isinstance(m, torch.nn.Conv2d)
            and m.kernel_size == (1, 1)
            and m.groups == 1
            and m.stride == (1, 1)
            and m.padding in ((0, 0), 0)
        ):
            found[name] = m
    return found


def factorize(module: Any, settings: LowRankSettings) -> tuple[Any, LowRankReport]:
    """Factorize eligible layers of `module` in place (pass a copy); return it with a report."""
    import torch

    candidates = _eligible(module)
    unknown = [n for n in settings.layers if n not in candidates]
    if unknown:
        raise SettingsError(
            f"layer '{unknown[0]}' cannot be factorized: only Linear and 1x1 Conv layers can; "
            f"eligible: {', '.join(list(candidates)[:12])}"
        )
    report = LowRankReport(params_before=sum(p.numel() for p in module.parameters()))
    for name in settings.layers or list(candidates):
        layer = candidates[name]
        weight = layer.weight.detach().reshape(layer.weight.shape[0], -1).double()
        out_features, in_features = weight.shape
        if min(out_features, in_features) < settings.min_features:
            report.skipped[name] = f"smaller than {settings.min_features} features"
            continue
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        r = _rank(s.numpy(), settings)
        if r * (in_features + out_features) >= in_features * out_features:
            report.skipped[name] = f"rank {r} of {len(s)} would not save parameters"
            continue
        root = s[:r].sqrt()
        first, second = (root[:, None] * vh[:r]).float(), (u[:, :r] * root[None, :]).float()
        _replace(module, name, _pair(layer, first, second))
        report.factorized[name] = (len(s), r)
    report.params_after = sum(p.numel() for p in module.parameters())
    return module, report


def _pair(layer: Any, first: Any, second: Any) -> Any:
    import torch

    a: Any
    b: Any
    if isinstance(layer, torch.nn.Linear):
        a, b = (
            torch.nn.Linear(first.shape[1], first.shape[0], bias=False),
            torch.nn.Linear(second.shape[1], second.shape[0], bias=layer.bias is not None),
        )
        a.weight.data, b.weight.data = first, second
    else:
        a = torch.nn.Conv2d(first.shape[1], first.shape[0], 1, bias=False)
        b = torch.nn.Conv2d(second.shape[1], second.shape[0], 1, bias=layer.bias is not None)
        a.weight.data, b.weight.data = first[:, :, None, None], second[:, :, None, None]
    if layer.bias is not None:
        b.bias.data = layer.bias.detach().clone()
    return torch.nn.Sequential(a, b)


def _replace(module: Any, name: str, new: Any) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = module.get_submodule(parent_name) if parent_name else module
    setattr(parent, child, new)


def summary(settings: LowRankSettings) -> str:
    kept = f"energy {settings.energy:.0%}" if settings.energy is not None else f"rank {settings.rank_ratio or 0.5:.0%}"
    return f"low-rank {kept}"


def apply(ctx: StepContext, index: int, settings: LowRankSettings) -> None:
    module, report = factorize(ctx.torch_module("low-rank factorization"), settings)
    ctx.set_module(module)
    ctx.report(index, report.to_dict())
