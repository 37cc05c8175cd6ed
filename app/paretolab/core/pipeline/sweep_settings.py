"""What an Explore searches and for how long: the settings alone, apart from the sweep that
runs them, so the GUI can hold them without importing the pipeline (and torch with it)."""

from __future__ import annotations

from dataclasses import dataclass

from paretolab.core.compress.techniques import QUANT_TARGETS, TECHNIQUES
from paretolab.core.settings import SettingsError

_EPOCHS = TECHNIQUES["distill"].setting("epochs")


@dataclass(frozen=True)
class SweepSettings:
    budget_s: float = 600.0  # stop starting new trials after this long
    trials: int | None = None  # or after this many
    sparsities: tuple[float, ...] = TECHNIQUES["prune"].setting("sparsity").sweep or (0.0,)  # from its description
    quantize: tuple[str, ...] = ("none", *(key for key, target in QUANT_TARGETS.items() if target.sweep))  # declared there
    distill_epochs: int = (_EPOCHS.sweep or (_EPOCHS.default,))[0]  # a distilled trial's epochs, from its description
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
        sparsity = TECHNIQUES["prune"].setting("sparsity")  # the bounds pruning itself checks
        for value in self.sparsities:
            sparsity.check(value, "sweep sparsities")
        if not self.early_exit or any(not 0 <= n <= 8 for n in self.early_exit):
            raise SettingsError("sweep exit counts must be between 0 (none) and 8")
