"""How a technique describes itself: its settings, what it needs of the model, where it may stand.

Everything around the pipeline reads these descriptions instead of knowing techniques by name:
the GUI builds its controls from the settings, the CLI its flags, the sweep its search space,
and one check refuses a recipe the open model cannot take before any work. The module imports
nothing heavy (no torch, onnx, onnxruntime or openvino): a technique's implementation (apply,
summary, settings class, requirement checks) is named as "module:attribute" and imported on
first use, as Olive's registry loads its passes.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Literal

from paretolab.core.settings import SettingsError

Output = Literal["torch", "onnx", "openvino"] | None  # None: works on whatever the model is at that point
# names: layer names, comma-separated when typed; per_layer: {layer: value} overrides of a bound, chosen in a table
Kind = Literal["float", "int", "bool", "choice", "names", "per_layer"]


@cache
def _resolve(ref: str) -> Any:
    module, _, attribute = ref.partition(":")
    value: Any = importlib.import_module(module)
    for part in attribute.split("."):
        value = getattr(value, part)
    return value


def load(ref: Any) -> Any:
    """`ref` itself, or what a "package.module:attribute" string names (imported on first use)."""
    return _resolve(ref) if isinstance(ref, str) else ref


@dataclass(frozen=True)
class Setting:
    """One setting a person can turn: the GUI's control, the CLI's flag and the sweep's
    dimension are all built from this, and the settings class checks its bounds here."""

    name: str  # the field of the technique's settings class
    kind: Kind
    default: Any
    label: str  # as the GUI shows it
    help: str  # one line: what it does, for the tooltip and the flag's help
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()  # kind "choice"
    unit: str = ""  # shown after the value ("pt", "epochs")
    step: float | None = None  # the control's step (float settings)
    decimals: int = 2
    sweep: tuple[Any, ...] | None = None  # values a sweep explores; None: the sweep leaves it at its default
    cli_flag: str | None = None  # the flag that sets it (None: --<technique>-<name>)
    gui: bool = True  # offered as a control (False: recipe files and flags only)
    # How the GUI offers it, where the plain control for its kind is not enough:
    control: Literal["", "slider"] = ""  # a float as a labelled slider
    start: Any = None  # the value the control starts at when not the default (pruning starts off at 0)
    off: Any = None  # a value that leaves the technique out: its group then has no switch (sparsity 0, "none")
    labels: tuple[str, ...] = ()  # how the GUI lists each of `choices`
    applies: Callable[[dict], bool] | None = None  # (the group's values) -> whether it applies (else off, left out)
    skip: str = ""  # per_layer: the setting that lists layers left alone ("Skip" column)
    picked_by: str = ""  # names: the graph view's signal that toggles a layer in it (right-click menu)

    def check(self, value: Any, what: str | None = None) -> None:
        """Refuse `value` outside the bounds, naming the setting (`what`: a name such as
        "layer_ratios.fc" when one bound covers several values)."""
        name = what or self.name
        if self.kind == "choice" and value not in self.choices:
            raise SettingsError(f"setting '{name}' must be {' or '.join(self.choices)}, not {value}")
        if self.kind in ("float", "int") and value is not None:
            low, high = self.minimum, self.maximum
            if low is not None and high is not None and not low <= value <= high:
                raise SettingsError(f"setting '{name}' must be between {low:g} and {high:g}, not {value}")
            if low is not None and high is None and value < low:
                raise SettingsError(f"setting '{name}' must be at least {low:g}, not {value}")

    def applies_to(self, values: dict) -> bool:
        return self.applies is None or self.applies(values)

    def parse(self, text: str) -> Any:
        """A value typed on the command line, in this setting's type."""
        if self.kind == "float":
            return float(text)
        if self.kind == "int":
            return int(text)
        if self.kind == "bool":
            return text.lower() in ("1", "true", "yes", "on")
        if self.kind == "names":
            return [name.strip() for name in text.split(",") if name.strip()]
        return text


@dataclass(frozen=True)
class Requirement:
    """What a technique needs of the open model. `check` ("module:function", or a callable) takes
    (handle, output kinds the user gave, what — the technique in words) and raises a one-line
    ParetoLabError when the model lacks it; it runs before any work."""

    key: str  # one word, shared by the techniques that need the same thing ("torch-module")
    words: str  # what is needed, in words ("an editable PyTorch module")
    check: Any
    when: Callable[[Any], bool] | None = None  # only with these settings (structured pruning needs torch, not unstructured)

    def applies(self, settings: Any) -> bool:
        return self.when is None or self.when(settings)

    def refuse(self, handle: Any, kinds: dict[str, str] | None, what: str) -> None:
        load(self.check)(handle, kinds, what)


@dataclass(frozen=True)
class Dimension:
    """One parameter a sweep's trials pick for a technique, as the journal of earlier sweeps names it
    (so a resumed sweep goes on). A setting with `sweep` values and no Dimension of its own gets one
    named "technique.setting", None among its values leaving the technique out."""

    param: str  # the trial parameter ("sparsity", "quantize"); sweeps key their overrides by it
    setting: str | None = None  # the setting it sets; None: whether the step is in the recipe (True/False)
    values: tuple[Any, ...] | None = None  # tried by default (None: the setting's `sweep`)
    off: Any = None  # the value that leaves the step out (sparsity 0, "none", False, 0 exits)
    gate: bool = False  # the step is in a trial's recipe only when this is not `off`
    to_setting: Callable[[Any], Any] | None = None  # the parameter's value -> the setting's (True -> "structured")
    from_setting: Callable[[Any], Any] | None = None  # and back, for the setting's `sweep` values
    when: Callable[[dict, bool], bool] | None = None  # (values picked so far, PyTorch module editable) -> tried,
    fixed: Any = None  # else the trial takes this value and records no parameter
    single_fixed: bool = False  # one value to try is taken as fixed, not recorded (as earlier journals did)
    alias: str = ""  # the keyword older callers give a sweep's settings (sparsities=)
    scalar: bool = False  # the alias takes and gives one value, not a tuple (distill_epochs=2)
    cli_flag: str = ""  # a sweep command flag that sets its values (--exits 0,2)
    help: str = ""  # for that flag


@dataclass(frozen=True)
class Technique:
    """One technique, everything ParetoLab knows of it. The first five fields are what a run needs
    (callables, or "module:attribute" strings imported on first use); the rest describe it."""

    name: str
    settings: Any  # the settings class, or "module:Class"
    summary: Any  # settings -> one line ("prune structured 50%")
    apply: Any  # (StepContext, step number, settings) -> None
    output: Callable[[Any], Output]  # what it leaves, which fixes where it may stand in a recipe (must be light)
    colour: str | None = None  # its colour on the chart; None: drawn as "other"
    colour_rank: int = 0  # when a recipe has several coloured techniques, the lowest rank names its colour
    precheck: Any = None  # (handle, output kinds, settings) -> None or a one-line ParetoLabError, before any step
    label: str = ""  # as the GUI titles its group ("Low-rank factorization")
    help: str = ""  # one line for the GUI's tooltip and the CLI's help
    words: str = ""  # the technique in a sentence's words ("low-rank factorization"); default: its name
    fields: tuple[Setting, ...] = ()  # its settings, as a person turns them
    needs: tuple[Requirement, ...] = ()  # of the open model
    flag: str | None = None  # the CLI flag that adds the step (None: --<name>)
    flag_setting: str | None = None  # the setting the flag's value sets (None: the flag takes no value)
    flag_parse: Any = None  # or: (flag's text, {setting: value}) -> the step's settings dict, "module:function"
    flag_args: dict[str, Any] = field(default_factory=dict)  # argparse's own (metavar, nargs, choices, help)
    words_of: Callable[[Any], str] | None = None  # the technique in words for these settings ("PyTorch fp16")
    # Where it may stand: reasons, by the output kind of a later step, why that step may not follow
    # this one ({"openvino": "OpenVINO IR does not keep ..."}), and why nothing may follow at all.
    refuses_after: dict[str, str] = field(default_factory=dict)
    final: Callable[[Any], str | None] | None = None  # settings -> why nothing may follow, or None
    # What the rest of ParetoLab asks of a step, answered here so it never switches on a name:
    backend: Callable[[Any], str | None] | None = None  # the runtime the step's result is for (quantization)
    precision: Callable[[Any], str | None] | None = None  # the precision it computes in, when it sets one
    keeps_macs: Callable[[Any], str | None] | None = None  # why it leaves every multiply-add in place, if it does
    # whether, with these settings, it may train the PyTorch module the steps before it left (quantization-aware
    # training): those steps' ONNX export, kept by a sweep's cache, would then give a different variant
    trains_module: Callable[[Any], bool] | None = None
    sensitivity: str = ""  # what a per-layer sensitivity scan does to one layer for it ("" when it has no scan)
    hints: Callable[[Any, frozenset[str]], list[str]] | None = None  # (settings, the recipe's techniques) -> fixes
    # when its variant collapsed
    sweep: tuple[Dimension, ...] = ()  # its sweep dimensions beyond "technique.setting" ones (journal names kept)
    sweep_baseline: dict | None = None  # the step a sweep measures the original with, when a trial has no step
    switch: str = ""  # the GUI's switch that adds the step (default "apply <words>"); none when a setting has `off`
    compose: Callable[[dict], dict] | None = None  # (the values a person set) -> the step's settings (a target's key
    # -> its backend and precision)

    @property
    def settings_class(self) -> type:
        return load(self.settings)

    @property
    def in_words(self) -> str:
        return self.words or self.name.replace("_", " ")

    def words_for(self, settings: Any) -> str:
        return self.words_of(settings) if self.words_of is not None else self.in_words

    def summarize(self, settings: Any) -> str:
        return load(self.summary)(settings)

    def run(self, ctx: Any, index: int, settings: Any) -> None:
        load(self.apply)(ctx, index, settings)

    @property
    def switched(self) -> bool:
        """Whether a person adds the step with a switch (else: by moving a setting off its `off` value)."""
        return all(s.off is None for s in self.fields)

    def step_settings(self, values: dict) -> dict:
        """The step's settings from the values a person set (those that apply; empty lists left out)."""
        declared = {s.name: s for s in self.fields}
        kept = {name: value for name, value in values.items()
                if (name not in declared or declared[name].applies_to(values)) and value not in ([], {}, ())}
        return self.compose(kept) if self.compose is not None else kept

    def setting(self, name: str) -> Setting:
        return next(s for s in self.fields if s.name == name)

    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    def setting_flag(self, setting: Setting) -> str:
        return setting.cli_flag or f"{self.cli_flag()}-{setting.name.replace('_', '-')}"

    def refuse(self, handle: Any, kinds: dict[str, str] | None, settings: Any) -> None:
        """Raise the one-line reason the open model cannot take this step, before any work."""
        for need in self.needs:
            if need.applies(settings):
                need.refuse(handle, kinds, self.words_for(settings))
        if self.precheck is not None:
            load(self.precheck)(handle, kinds, settings)
