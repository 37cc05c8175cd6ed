"""What an Explore searches and for how long: the settings alone, apart from the sweep that
runs them, so the GUI can hold them without importing the pipeline (and torch with it).

The values a sweep tries are its techniques' (technique_spec.Dimension, or a setting's `sweep`);
`overrides` replaces them per trial parameter (as the journal names it: "sparsity", or
"technique.setting"), checked against the settings' bounds. The keywords older callers give
(sparsities=, distill_epochs=, ...) are declared on the dimensions as aliases and land in `overrides`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from paretolab.core.compress.technique_sweep import check_values, default_values, dimension, dimensions
from paretolab.core.settings import SettingsError


@dataclass(frozen=True, init=False)
class SweepSettings:
    budget_s: float = 600.0  # stop starting new trials after this long
    trials: int | None = None  # or after this many
    overrides: dict[str, tuple[Any, ...]] = field(default_factory=dict)  # trial parameter -> the values to try instead
    seed: int = 0

    def __init__(self, budget_s: float = 600.0, trials: int | None = None, overrides: dict[str, Any] | None = None,
                 seed: int = 0, **aliases: Any) -> None:
        given = dict(overrides or {})
        for name, values in aliases.items():
            _, dim = dimension(name) if any(name == d.alias for _, d in dimensions()) else (None, None)
            if dim is None:
                raise TypeError(f"SweepSettings got an unexpected keyword argument '{name}'")
            given[dim.param] = (values,) if dim.scalar else values
        object.__setattr__(self, "budget_s", budget_s)
        object.__setattr__(self, "trials", trials)
        object.__setattr__(self, "overrides", {key: tuple(v) if isinstance(v, list | tuple) else (v,)
                                               for key, v in given.items()})
        object.__setattr__(self, "seed", seed)

    def __getattr__(self, name: str) -> Any:  # an alias read back: settings.sparsities, settings.distill_epochs
        if name.startswith("_") or name in ("budget_s", "trials", "overrides", "seed"):
            raise AttributeError(name)
        found = next(((e, d) for e, d in dimensions() if d.alias == name), None)
        if found is None:
            raise AttributeError(name)
        values = self.values(found[1].param)
        return values[0] if found[1].scalar else values

    def values(self, param: str) -> tuple:
        """The values trials pick from for `param`: the override, else the description's."""
        entry, dim = dimension(param)
        return self.overrides.get(dim.param, default_values(entry, dim))

    def check(self) -> None:
        if self.budget_s <= 0:
            raise SettingsError("the sweep's time budget must be positive")
        for param, values in self.overrides.items():
            entry, dim = dimension(param)
            check_values(entry, dim, values)
