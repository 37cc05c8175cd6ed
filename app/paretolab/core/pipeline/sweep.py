"""Explore: search compression settings for the accuracy-versus-latency Pareto front.

Optuna's NSGA-II (multi-objective) proposes settings; each trial builds and measures a
variant with the same pipeline as `optimize` and keeps it in the experiment as soon as it
finishes, so a stopped sweep loses nothing. The study is journaled in the experiment
folder: running again resumes it, and settings already measured are never re-run. The trials
run in one loop (trials.py) whether they are built here or on Ray: only the runner differs.
What a trial picks, and the rules between techniques (distillation only after structured
pruning, nothing after OpenVINO IR), are the techniques' descriptions (technique_sweep.py):
this module names no technique.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from paretolab.core.compress.technique_sweep import baseline_steps, dimensions, trial_steps
from paretolab.core.compress.techniques import recipe_steps, technique
from paretolab.core.compress.variant import Recipe, Variant
from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import ModelHandle
from paretolab.core.pipeline.sweep_settings import SweepSettings
from paretolab.core.pipeline.trials import LocalRunner, Runner, run_trials
from paretolab.core.progress import Progress, silent
from paretolab.core.settings import SettingsError
from paretolab.core.store.experiment import Experiment


def described_dimensions() -> dict[str, tuple]:
    """Trial parameter ("technique.setting") -> the values its setting's description asks a sweep to
    try (None among them: the recipe without that technique); the techniques' own declared dimensions
    (sparsity, quantize, ...) are not among them."""
    return {dim.param: tuple(entry.setting(dim.setting).sweep or ()) for entry, dim in dimensions()
            if dim not in entry.sweep and dim.setting is not None}


@dataclass(frozen=True)
class Choice:
    """One trial parameter, as a trial picks it. `choices` gives the values to pick from, given the
    sweep's settings, whether the PyTorch module can be edited and the values picked before it; None:
    not a parameter of this trial, which takes `fixed` instead (and records no parameter)."""

    param: str  # as the trial (and the journal of an earlier sweep) names it
    choices: Callable[[SweepSettings, bool, dict[str, Any]], tuple | None]
    fixed: Callable[[SweepSettings], Any] = lambda settings: None


def _choice(dim: Any) -> Choice:
    def choices(settings: SweepSettings, torch_edits: bool, chosen: dict[str, Any]) -> tuple | None:
        if dim.when is not None and not dim.when(chosen, torch_edits):
            return None
        values = settings.values(dim.param)
        return None if dim.single_fixed and len(values) == 1 else tuple(values)

    def fixed(settings: SweepSettings) -> Any:
        values = settings.values(dim.param)
        return values[0] if dim.single_fixed and len(values) == 1 else dim.fixed

    return Choice(dim.param, choices, fixed)


def trial_parameters() -> tuple[Choice, ...]:
    """Every trial parameter, in the order a trial picks them: what the techniques' descriptions declare
    (the order, names and values of earlier journals, so a resumed sweep goes on proposing the same recipes)."""
    return tuple(_choice(dim) for _, dim in dimensions())


def recipe_for(chosen: dict[str, Any], settings: SweepSettings, handle: ModelHandle | None = None,
               output_kinds: dict[str, str] | None = None) -> Recipe:
    """The recipe of one trial's values (every dimension's, chosen or fixed). A step that cannot follow
    the ones before it (nothing follows OpenVINO IR) is left out: that trial is the one without it. With
    the open model `handle`, steps it cannot take are left out too (early exit on a detector), so an
    impossible trial never runs: it is the trial without them."""
    recipe = _in_order(recipe_steps(**trial_steps(chosen)))
    if handle is not None:
        recipe = Recipe(tuple(step for step in recipe.steps if _possible(handle, output_kinds, step)))
    if not recipe.steps:  # the original settings: measure the model as its baseline step leaves it
        recipe = Recipe.from_dict({"steps": recipe_steps(**baseline_steps())}, "sweep")
    return recipe


def _in_order(steps: list[dict]) -> Recipe:
    kept: list[Any] = []
    for raw in steps:
        step = Recipe.from_dict({"steps": [raw]}, "sweep").steps[0]
        try:
            Recipe((*kept, step)).check_order("sweep")
        except SettingsError:
            continue
        kept.append(step)
    return Recipe(tuple(kept))


def _trials(settings: SweepSettings, torch_edits: bool, dims: tuple[Choice, ...],
            chosen: dict[str, Any], params: dict[str, Any]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Every trial's values and the parameters that propose it, in the order the nested choices give."""
    if not dims:
        yield chosen, params
        return
    first, rest = dims[0], dims[1:]
    values = first.choices(settings, torch_edits, chosen)
    for value in values if values is not None else (first.fixed(settings),):
        picked = {first.param: value}
        yield from _trials(settings, torch_edits, rest, chosen | picked, params | picked if values is not None else params)


def _possible(handle: ModelHandle, output_kinds: dict[str, str] | None, step: Any) -> bool:
    try:
        technique(step.technique).refuse(handle, output_kinds, step.settings)
    except ParetoLabError:
        return False
    return True


@dataclass(frozen=True)
class SweepResult:
    variants: list[Variant]  # one per trial this run, repeats included
    space: int  # distinct settings the sweep can propose
    measured: int  # of those, how many the experiment holds now
    failed: list[str] = field(default_factory=list)  # trials that could not be built, with why (cluster sweeps)

    @property
    def exhausted(self) -> bool:
        return self.measured >= self.space

    def note(self) -> str:
        trials = f"{len(self.variants)} trial{'s' * (len(self.variants) != 1)}"
        failed = f"; {len(self.failed)} failed ({self.failed[0]})" if self.failed else ""
        if self.exhausted:
            return f"{trials}; all {self.space} settings measured, nothing left to explore{failed}"
        return f"{trials}; {self.measured} of {self.space} settings measured{failed}"


def search_space(settings: SweepSettings, torch_edits: bool, handle: ModelHandle | None = None,
                 output_kinds: dict[str, str] | None = None) -> dict[str, dict]:
    """Every distinct recipe the sweep can propose, keyed like the experiment's variants, with
    the trial parameters that propose it (so an unmeasured one can be queued). With the open model
    `handle`, steps it cannot take are left out of every recipe (recipe_for)."""
    space: dict[str, dict] = {}
    for chosen, params in _trials(settings, torch_edits, trial_parameters(), {}, {}):
        space.setdefault(recipe_key(recipe_for(chosen, settings, handle, output_kinds)), params)
    return space


def sweep(handle: ModelHandle, data: DataPlan, experiment: Experiment, settings: SweepSettings, *, torch_edits: bool,
          progress: Progress | None = None, on_variant: Callable[[Variant], None] | None = None,
          runner: Runner | None = None) -> SweepResult:
    """Run trials until the budget or trial count is spent, or every setting is measured: here
    (`runner` None: LocalRunner) or wherever `runner` sends them (cluster.RayRunner)."""
    progress = progress or silent()
    start = time.monotonic()  # the budget counts from here: reading the experiment and the journal are part of it
    settings.check()
    space = search_space(settings, torch_edits, handle, data.output_kinds)  # impossible steps never run
    known = {recipe_key(v.recipe): v for v in experiment.variants()}

    def measured() -> int:
        return len(space.keys() & known.keys())

    if measured() >= len(space):  # a resumed sweep with nothing left: leave the journal as it is
        result = SweepResult([], len(space), measured())
        progress.report(1.0, f"sweep: {result.note()}")
        return result
    runner = runner or LocalRunner()

    def fraction() -> float:
        return min(0.99, (time.monotonic() - start) / settings.budget_s)

    with runner.opened(handle, data, experiment, progress, fraction):
        study = open_study(experiment, settings)

        def propose(trial: Any) -> Recipe:
            return suggest(trial, settings, torch_edits, handle, data.output_kinds)

        done = run_trials(runner, study, space, known, propose, recipe_key,
                          budget_s=settings.budget_s, trials=settings.trials, start=start, progress=progress,
                          on_variant=on_variant)
    result = SweepResult(done.variants, len(space), measured(), done.failed)
    progress.report(1.0, f"sweep: {result.note()}")
    logging.getLogger(__name__).info("sweep finished: %s", result.note())
    return result


def open_study(experiment: Experiment, settings: SweepSettings) -> Any:
    """The sweep's Optuna study (NSGA-II, accuracy up, latency down), journaled in the experiment
    folder so that running again resumes it."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Optuna prints to stderr by its own handler (a cancelled trial's traceback): its records go to our log file instead
    optuna.logging.disable_default_handler()
    optuna.logging.enable_propagation()
    experiment.folder.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(experiment.folder / "sweep.journal")))
    return optuna.create_study(study_name="paretolab-sweep", storage=storage, load_if_exists=True,
                               directions=["maximize", "minimize"],
                               sampler=optuna.samplers.NSGAIISampler(seed=settings.seed, population_size=8))


def suggest(trial: Any, settings: SweepSettings, torch_edits: bool, handle: ModelHandle | None = None,
            output_kinds: dict[str, str] | None = None) -> Recipe:
    """The recipe an Optuna trial proposes (without the steps the open model `handle` cannot take)."""
    chosen: dict[str, Any] = {}
    for dimension in trial_parameters():
        values = dimension.choices(settings, torch_edits, chosen)
        chosen[dimension.param] = (trial.suggest_categorical(dimension.param, list(values)) if values is not None
                                   else dimension.fixed(settings))
    return recipe_for(chosen, settings, handle, output_kinds)


def recipe_key(recipe: Recipe) -> str:
    """What makes two recipes the same setting (the experiment never measures one twice): their
    steps and settings, except where a step ran (distillation's device), which changes no setting."""
    doc = recipe.to_dict()
    for step in doc["steps"]:
        step["settings"].pop("device", None)
    return json.dumps(doc, sort_keys=True)
