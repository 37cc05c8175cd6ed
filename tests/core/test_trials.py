"""The one trial loop every sweep runs (pipeline/trials.py): a local sweep and a Ray sweep differ
only in their runner. A runner with several trials in flight that finish in its own order (as
Ray's do) is held to the same rules as the local one: no trial starts once the budget is spent, a
setting is never built twice at once, measured settings are answered from the experiment, and a
failed trial is counted and told to the study. The real Ray runner is in test_cluster.py."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.sweep import SweepSettings, recipe_key, search_space, sweep
from paretolab.core.pipeline.trials import Finished, LocalRunner
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import Experiment

SIX = SweepSettings(budget_s=600, sparsities=(0.0, 0.3, 0.5), quantize=("none", "ort-fp16"))


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path())


class PooledRunner:
    """Up to `width` trials out at once, finished oldest first, each built and measured for real by
    the local pipeline; a recipe `fails` names comes back as a failed trial, as a Ray task's error
    does. Records what was started when, and whether a setting was ever out twice."""

    def __init__(self, width: int, fails: Any = lambda recipe: False, hold_s: float = 0.0) -> None:
        self.width, self.fails, self.hold_s = width, fails, hold_s
        self.local = LocalRunner()
        self.out: list[tuple[Any, Recipe, str]] = []
        self.started: list[float] = []  # when each trial was submitted
        self.collecting_since: float | None = None
        self.twice: list[str] = []

    def opened(self, *args: Any) -> contextlib.AbstractContextManager[None]:
        return self.local.opened(*args)

    def asked(self, number: int) -> None:
        self.local.asked(number)

    def submit(self, trial: Any, recipe: Recipe, key: str) -> None:
        if key in self.building():
            self.twice.append(key)
        self.out.append((trial, recipe, key))
        self.started.append(time.monotonic())

    def building(self) -> set[str]:
        return {key for _, _, key in self.out}

    def status(self, failed: int) -> str:
        return f"{len(self.out)} out, {failed} failed"

    def collect(self) -> Iterator[Finished]:
        if self.collecting_since is None:
            self.collecting_since = time.monotonic()
            while time.monotonic() < self.started[0] + self.hold_s:  # the first trial outlasts the budget
                time.sleep(0.05)
        trial, recipe, key = self.out[0]
        if self.fails(recipe):
            self.out.pop(0)
            yield trial, recipe, None, "this worker lacks the runtime"
            return
        self.local.submit(trial, recipe, key)
        yield from self.local.collect()
        self.out.pop(0)

    def cancel_all(self, study: Any) -> None:
        for trial, _, _ in self.out:
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
        self.out.clear()


def _study(experiment: Experiment) -> Any:
    return optuna.load_study(study_name="paretolab-sweep",
                             storage=JournalStorage(JournalFileBackend(str(experiment.folder / "sweep.journal"))))


def _pruned_half_in_fp16(recipe: Recipe) -> bool:
    steps = {s.technique: s.settings for s in recipe.steps}
    return "prune" in steps and steps["prune"].sparsity == 0.5 and "quantize" in steps


def test_a_runner_of_width_one_proposes_and_keeps_exactly_what_the_local_sweep_does(sample, tmp_path):
    plan = DataPlan.from_spec("digits", sample)
    five = SweepSettings(budget_s=600, trials=5, sparsities=SIX.sparsities, quantize=SIX.quantize)
    here, pooled = Experiment.for_model(sample, tmp_path / "here"), Experiment.for_model(sample, tmp_path / "pooled")
    local = sweep(sample, plan, here, five, torch_edits=False)
    other = sweep(sample, plan, pooled, five, torch_edits=False, runner=PooledRunner(width=1))
    assert [v.recipe.summary() for v in local.variants] == [v.recipe.summary() for v in other.variants]
    assert (local.space, local.measured, local.failed) == (other.space, other.measured, other.failed)
    assert [(t.params, t.state) for t in _study(here).trials] == [(t.params, t.state) for t in _study(pooled).trials]


def test_trials_in_flight_are_never_doubled_and_a_failed_one_is_counted(sample, tmp_path):
    experiment = Experiment.for_model(sample, tmp_path)
    runner = PooledRunner(width=3, fails=_pruned_half_in_fp16)
    eight = SweepSettings(budget_s=600, trials=8, sparsities=SIX.sparsities, quantize=SIX.quantize)
    result = sweep(sample, DataPlan.from_spec("digits", sample), experiment, eight, torch_edits=False, runner=runner)
    assert not runner.twice  # a setting being built is waited for, never built twice
    kept = experiment.variants()
    assert len(kept) == len({recipe_key(v.recipe) for v in kept}) == result.measured  # each setting measured once
    assert not any(_pruned_half_in_fp16(v.recipe) for v in kept)
    states = [t.state for t in _study(experiment).trials]
    assert states.count(optuna.trial.TrialState.FAIL) == len(result.failed) >= 1  # (the seeded sampler proposes it)
    assert states.count(optuna.trial.TrialState.COMPLETE) == len(result.variants)
    assert optuna.trial.TrialState.PRUNED in states  # a proposal of a setting out already waited for it
    assert len(result.variants) > len(kept)  # proposals of measured settings were answered from the experiment
    assert all(f.endswith(": this worker lacks the runtime") for f in result.failed)
    assert f"{len(result.failed)} failed ({result.failed[0]})" in result.note()
    assert len(search_space(eight, torch_edits=False)) == result.space == 6


@pytest.mark.parametrize("width", [1, 3])
def test_no_trial_starts_once_the_budget_is_spent_however_many_are_in_flight(sample, tmp_path, width):
    """The first trial always runs; while it outlasts the budget nothing new starts, and the sweep
    ends once the trials already out come back."""
    experiment = Experiment.for_model(sample, tmp_path)
    tiny = SweepSettings(budget_s=0.5, sparsities=SIX.sparsities, quantize=SIX.quantize)
    runner = PooledRunner(width=width, hold_s=1.0)
    result = sweep(sample, DataPlan.from_spec("digits", sample), experiment, tiny, torch_edits=False, runner=runner)
    assert runner.collecting_since is not None
    assert all(t <= runner.collecting_since for t in runner.started)  # none started after the budget ran out
    assert 1 <= len(runner.started) <= width and len(result.variants) == len(runner.started)
    complete = [t for t in _study(experiment).trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == len(runner.started) and not result.exhausted
