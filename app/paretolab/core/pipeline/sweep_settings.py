"""What an Explore searches and for how long: the settings alone, apart from the sweep that
runs them, so the GUI can hold them without importing the pipeline (and torch with it)."""

from __future__ import annotations

from dataclasses import dataclass

from paretolab.core.compress.techniques import QUANT_TARGETS
from paretolab.core.settings import SettingsError


@dataclass(frozen=True)
class SweepSettings:
    budget_s: float = 600.0  # stop starting new trials after this long
    trials: int | None = None  # or after this many
    sparsities: tuple[float, ...] = (0.0, 0.3, 0.5, 0.7)
    quantize: tuple[str, ...] = ("none", "ort-int8", "openvino-int8", "ort-fp16")
    distill_epochs: int = 5
    early_exit: tuple[int, ...] = (0,)  # exit counts to try (0: none); exits go after quantization (not OpenVINO's)
    seed: int = 0

    def check(self) -> None:
        if self.budget_s <= 0:
            raise SettingsError("the sweep's time budget must be positive")
        unknown = [q for q in self.quantize if q != "none" and q not in QUANT_TARGETS]
        if unknown:
            raise SettingsError(
                f"unknown quantization '{unknown[0]}' for the sweep; choose from none, {', '.join(QUANT_TARGETS)}"
            )
        if any(not 0 <= s <= 0.9 for s in self.sparsities):
            raise SettingsError("sweep sparsities must be between 0 and 0.9")
        if not self.early_exit or any(not 0 <= n <= 8 for n in self.early_exit):
            raise SettingsError("sweep exit counts must be between 0 (none) and 8")
