"""The command line's step flags, built from the technique registry: each technique's flag adds
its step (--prune structured:0.5, --lowrank, --graphopt basic), and each of its settings has a flag
of its own (--temperature, --lowrank-rank-ratio). A technique registered anywhere gets its flags."""

from __future__ import annotations

import argparse
from typing import Any

from paretolab.core.compress.technique_spec import Setting, Technique, load
from paretolab.core.compress.techniques import TECHNIQUES
from paretolab.core.settings import SettingsError


def _flag_settings(entry: Technique) -> list[Setting]:
    """Settings with a flag of their own (those the technique's flag sets are not)."""
    return [s for s in entry.fields if s.cli_flag != entry.cli_flag() and s.name != entry.flag_setting]


def setting_dest(entry: Technique, setting: Setting) -> str:
    return f"{entry.name}__{setting.name}"


def _default_text(setting: Setting) -> str:
    if setting.default in (None, (), ""):
        return ""
    value = f"{setting.default:g}" if isinstance(setting.default, float) else str(setting.default)
    return f" (default: {value})"


def add_step_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per technique, and one per setting it has, in recipe order."""
    for entry in TECHNIQUES.values():
        kwargs: dict[str, Any] = {"dest": entry.name, "help": entry.help}
        if entry.flag_setting is not None:
            value = entry.setting(entry.flag_setting)
            kwargs.update(type=value.parse, metavar=value.name.upper(), choices=value.choices or None)
            if value.choices:
                kwargs["help"] += f" ({value.name}: {', '.join(value.choices)})"
        elif entry.flag_parse is None:
            kwargs.update(action="store_true", default=None)
        kwargs.update(entry.flag_args)
        parser.add_argument(entry.cli_flag(), **kwargs)
        for setting in _flag_settings(entry):
            kwargs = {"dest": setting_dest(entry, setting), "help": setting.help + _default_text(setting)}
            if setting.kind == "bool":
                kwargs.update(action=argparse.BooleanOptionalAction)
            else:
                kwargs.update(type=setting.parse, choices=setting.choices or None,
                              metavar="LAYER,LAYER" if setting.kind == "names" else None if setting.choices
                              else setting.unit.upper() or setting.kind.upper())
            parser.add_argument(entry.setting_flag(setting), **kwargs)


def step_defaults() -> dict[str, None]:
    """Every step flag unset: for commands that take a recipe file instead (paretolab run)."""
    dests = {entry.name: None for entry in TECHNIQUES.values()}
    dests.update({setting_dest(e, s): None for e in TECHNIQUES.values() for s in _flag_settings(e)})
    return dests


def step_flags() -> str:
    return ", ".join(entry.cli_flag() for entry in TECHNIQUES.values())


def given_steps(args: argparse.Namespace) -> dict[str, dict]:
    """The steps the flags ask for, by technique, as settings dicts (recipe_steps takes them)."""
    steps = {}
    for entry in TECHNIQUES.values():
        value = getattr(args, entry.name, None)
        if value is None or value is False:
            continue
        extra = {s.name: getattr(args, setting_dest(entry, s)) for s in _flag_settings(entry)
                 if getattr(args, setting_dest(entry, s), None) is not None}
        if entry.flag_parse is not None:
            steps[entry.name] = load(entry.flag_parse)(value, extra)
        elif entry.flag_setting is not None:
            steps[entry.name] = {entry.flag_setting: value, **extra}
        else:
            steps[entry.name] = extra
    return steps


def check_flags(args: argparse.Namespace) -> None:
    """Setting flags without their technique's flag would be silently ignored: say so instead."""
    for entry in TECHNIQUES.values():
        if getattr(args, entry.name, None) in (None, False):
            stray = [entry.setting_flag(s) for s in _flag_settings(entry)
                     if getattr(args, setting_dest(entry, s), None) is not None]
            if stray:
                raise SettingsError(f"{stray[0]} is a setting of {entry.in_words}: add {entry.cli_flag()} too")
