"""Settings objects for techniques: typed, validated, and round-tripped through JSON.

Recipes store a technique's settings as a plain dict; `from_dict` rebuilds the dataclass
and names the exact field that is wrong, so a hand-edited recipe fails with a useful line.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, TypeVar

from paretolab.core.errors import ParetoLabError

T = TypeVar("T")


class SettingsError(ParetoLabError):
    """A setting that is unknown, of the wrong type, or out of range."""


def _accepts(annotation: Any, value: Any) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_accepts(arg, value) for arg in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is tuple:
        return isinstance(value, (list, tuple)) and all(_accepts(typing.get_args(annotation)[0], v) for v in value)
    if origin is dict:
        key_t, val_t = typing.get_args(annotation)
        return isinstance(value, dict) and all(_accepts(key_t, k) and _accepts(val_t, v) for k, v in value.items())
    if origin is typing.Literal:
        return value in typing.get_args(annotation)
    return isinstance(value, annotation)


def from_dict(cls: type[T], values: dict, where: str) -> T:
    """Build settings `cls` from `values`, naming `where` and the field in any error."""
    if not isinstance(values, dict):
        raise SettingsError(f"{where}: settings must be an object of name: value pairs")
    hints = typing.get_type_hints(cls)
    fields = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for key, value in values.items():
        if key not in fields:
            raise SettingsError(f"{where}: unknown setting '{key}'; known settings: {', '.join(sorted(fields))}")
        if not _accepts(hints[key], value):
            raise SettingsError(f"{where}: setting '{key}' = {value!r} is not a valid {_describe(hints[key])}")
    converted = {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
    settings = cls(**converted)
    check = getattr(settings, "check", None)
    if check is not None:
        try:
            check()
        except SettingsError as exc:
            raise SettingsError(f"{where}: {exc}") from None
    return settings


def to_dict(settings: Any) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(settings).items()}


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return "choice (one of " + ", ".join(repr(a) for a in typing.get_args(annotation)) + ")"
    return str(annotation).replace("typing.", "")
