"""A sweep's dimensions, read from the techniques' descriptions: each technique declares the trial
parameters it adds (technique_spec.Dimension: journal name, values, the value that leaves it out,
when it is tried), and every other setting with `sweep` values adds "technique.setting". The sweep
walks these without knowing any technique; a trial's values become recipe steps here."""

from __future__ import annotations

from typing import Any

from paretolab.core.compress.technique_spec import Dimension, Technique
from paretolab.core.compress.techniques import TECHNIQUES
from paretolab.core.settings import SettingsError


def dimensions() -> list[tuple[Technique, Dimension]]:
    """Every trial parameter with its technique, in the order a trial picks them: the declared
    ones first (in recipe order, as earlier journals picked them), then "technique.setting" ones."""
    declared = [(entry, dim) for entry in TECHNIQUES.values() for dim in entry.sweep]
    covered = {(entry.name, dim.setting) for entry, dim in declared}
    return declared + [(entry, Dimension(f"{entry.name}.{s.name}", s.name)) for entry in TECHNIQUES.values()
                       for s in entry.fields if s.sweep and (entry.name, s.name) not in covered]


def dimension(param: str) -> tuple[Technique, Dimension]:
    """The dimension named `param` (its journal name, or the keyword older callers use)."""
    found = next(((e, d) for e, d in dimensions() if param in (d.param, d.alias)), None)
    if found is None:
        known = ", ".join(d.param for _, d in dimensions())
        raise SettingsError(f"the sweep has no dimension '{param}'; its dimensions: {known}")
    return found


def default_values(entry: Technique, dim: Dimension) -> tuple[Any, ...]:
    """The values a sweep tries by default: the dimension's own, else its setting's `sweep`."""
    if dim.values is not None:
        return dim.values
    setting = entry.setting(dim.setting) if dim.setting else None
    if setting is None:
        return (True, False)
    values = tuple(setting.sweep or (setting.default,))
    return tuple(dim.from_setting(v) for v in values) if dim.from_setting else values


def check_values(entry: Technique, dim: Dimension, values: tuple[Any, ...]) -> None:
    """Refuse values outside the setting's bounds, naming the dimension as the caller does."""
    name = f"sweep {dim.alias or dim.param}"
    if not values:
        raise SettingsError(f"{name}: give at least one value")
    for value in values:
        if value is None or value == dim.off or dim.setting is None:
            continue
        try:
            entry.setting(dim.setting).check(dim.to_setting(value) if dim.to_setting else value, name)
        except SettingsError as exc:
            raise SettingsError(f"{exc}" + (f" ({dim.off!r}: no {entry.in_words})" if dim.gate else "")) from None


def parse_values(entry: Technique, dim: Dimension, text: str) -> tuple[Any, ...]:
    """Comma-separated values typed for a dimension ("0,2"), in its setting's type, checked."""
    setting = entry.setting(dim.setting) if dim.setting else None
    try:
        values = tuple(dict.fromkeys(setting.parse(v.strip()) if setting else v.strip().lower() in ("1", "true", "yes")
                                     for v in text.split(",") if v.strip()))
    except ValueError:
        example = ",".join(map(str, default_values(entry, dim)))
        raise SettingsError(f"'{text}' is not a list of {dim.param} values, e.g. {example}") from None
    check_values(entry, dim, values)
    return values


def trial_steps(chosen: dict[str, Any]) -> dict[str, dict]:
    """The steps of one trial's values (every dimension's, chosen or fixed), by technique: a
    technique whose gate is at its `off` value, or whose values are all None, is left out."""
    by_entry: dict[str, list[Dimension]] = {}
    for entry, dim in dimensions():
        by_entry.setdefault(entry.name, []).append(dim)
    steps = {}
    for name, dims in by_entry.items():
        values = [(dim, chosen.get(dim.param, dim.fixed)) for dim in dims]
        if any(dim.gate and value == dim.off for dim, value in values):
            continue
        settings = {dim.setting: dim.to_setting(value) if dim.to_setting else value
                    for dim, value in values if dim.setting and value is not None}
        if settings or any(dim.gate for dim in dims):
            steps[name] = TECHNIQUES[name].step_settings(settings)
    return steps


def baseline_steps() -> dict[str, dict]:
    """The steps a sweep measures the original with when a trial has none (as ONNX Runtime runs it)."""
    return {entry.name: dict(entry.sweep_baseline) for entry in TECHNIQUES.values() if entry.sweep_baseline is not None}
