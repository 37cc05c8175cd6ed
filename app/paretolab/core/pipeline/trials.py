"""One trial loop for every sweep: Optuna proposes, a runner builds and measures, the experiment keeps.

The loop asks the study for settings (ask/tell) and hands each new one to a runner: `LocalRunner`
runs it here, one at a time; `cluster.RayRunner` sends a trial to each free Ray worker. What a
sweep promises lives here once, whatever runs its trials: no trial starts once the budget is spent
(the first always does, so something is kept, and the sweep ends within its budget plus the trials
in flight); a setting the experiment holds is answered from it and the study steered to one not
measured yet; a setting being built is waited for, never built twice; each finished trial is kept
and reported as it comes; a trial the runner reports as failed is told to the study and counted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from paretolab.core.compress.variant import Recipe, Variant
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import ModelHandle
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.pipeline.prefix_cache import PrefixCache
from paretolab.core.progress import Progress
from paretolab.core.store.experiment import Experiment

# A trial the runner finished: the study's trial, its recipe, and the variant kept, or why it failed
Finished = tuple[Any, Recipe, Variant | None, str | None]


class Runner(Protocol):
    """Where a sweep's trials are built and measured. The loop asks for settings only while fewer
    than `width` trials are out, and waits on `collect` for them to come back."""

    width: int  # trials in flight at most

    def opened(self, handle: ModelHandle, data: DataPlan, experiment: Experiment, progress: Progress,
               fraction: Callable[[], float]) -> contextlib.AbstractContextManager[None]:
        """Ready to run trials inside the block (a cluster connected, the model shipped); entered
        before the study is opened, so a runner that cannot serve leaves no journal behind."""

    def asked(self, number: int) -> None:
        """The study proposed trial `number` (the loop is about to read its settings)."""

    def submit(self, trial: Any, recipe: Recipe, key: str) -> None:
        """Start building and measuring `recipe` for `trial`."""

    def building(self) -> set[str]:
        """The keys of the settings out now, one per trial in flight."""

    def status(self, failed: int) -> str | None:
        """A line for the progress report while waiting on trials, or None."""

    def collect(self) -> Iterator[Finished]:
        """The trials that have finished since the last call; waits briefly for at least one."""

    def cancel_all(self, study: Any) -> None:
        """Stop what is out, telling the study those trials failed; finished ones stay kept."""


@dataclass
class Outcome:
    """What this run of the loop produced."""

    variants: list[Variant] = field(default_factory=list)  # one per trial, answers from the experiment included
    failed: list[str] = field(default_factory=list)  # "recipe summary: why" of each failed trial


def run_trials(runner: Runner, study: Any, space: dict[str, dict], known: dict[str, Variant],
               propose: Callable[[Any], Recipe], key_of: Callable[[Recipe], str], *, budget_s: float,
               trials: int | None, start: float, progress: Progress,
               on_variant: Callable[[Variant], None] | None = None) -> Outcome:
    """Ask, run and tell trials until the budget (counted from `start`) or the trial count is spent
    or every setting of `space` is measured; `known` (key -> variant) gains each new variant."""
    from optuna.trial import TrialState

    done = Outcome()
    asked = 0

    def fill() -> bool:
        """Ask for settings until the runner is full; False once no trial may start any more."""
        nonlocal asked
        for _ in range(4 * runner.width):
            out = runner.building()
            if ((asked and time.monotonic() - start >= budget_s)  # never start a trial once the budget is spent
                    or (trials is not None and asked >= trials)
                    or not space.keys() - known.keys() - out):  # every setting measured, or the rest is out already
                return False
            if len(out) >= runner.width:
                return True
            trial, asked = study.ask(), asked + 1
            try:
                runner.asked(trial.number)
                recipe = propose(trial)
                key = key_of(recipe)
            except BaseException:
                with contextlib.suppress(Exception):
                    study.tell(trial, state=TrialState.FAIL)
                raise
            if key in known:  # measured already: answer from the experiment, steer to the unmeasured
                study.tell(trial, values(known[key]))
                done.variants.append(known[key])
                steer(study, space, known)
            elif key in out:  # being built: wait for results before asking again
                study.tell(trial, state=TrialState.PRUNED)
                steer(study, space, {**known, **dict.fromkeys(out)})
                return True
            else:
                runner.submit(trial, recipe, key)
        return True

    try:
        while True:
            more = fill()
            if not runner.building():
                if not more:
                    break
                progress.check()  # every proposal was answered from the experiment: ask again
                continue
            line = runner.status(len(done.failed))
            if line is not None:
                progress.report(min(0.99, (time.monotonic() - start) / budget_s), line)
            for trial, recipe, variant, error in runner.collect():
                if variant is None:
                    done.failed.append(f"{recipe.summary()}: {error}")
                    study.tell(trial, state=TrialState.FAIL)
                    continue
                known[key_of(recipe)] = variant
                done.variants.append(variant)
                study.tell(trial, values(variant))
                if on_variant is not None:
                    on_variant(variant)
    except BaseException:
        runner.cancel_all(study)  # stopping the sweep cancels what is still out; finished trials stay
        raise
    return done


def values(variant: Variant) -> tuple[float, float]:
    """What the study optimizes: accuracy up, latency down."""
    return variant.selection_score, variant.measured.latency_ms  # chosen on validation, never on test


def steer(study: Any, space: dict[str, dict], known: dict[str, Any]) -> None:
    """Queue a setting not measured yet, for when the sampler keeps proposing measured ones."""
    unmeasured = [params for key, params in space.items() if key not in known]
    if unmeasured:
        study.enqueue_trial(unmeasured[0], skip_if_exists=True)


class LocalRunner:
    """Trials run here, one at a time, by the same pipeline as `optimize`; each pruned/distilled
    student is trained once per sweep (PrefixCache). A trial that fails stops the sweep with its
    error, as `optimize` would."""

    width = 1

    def __init__(self) -> None:
        self._out: tuple[Any, Recipe, str] | None = None

    @contextlib.contextmanager
    def opened(self, handle: ModelHandle, data: DataPlan, experiment: Experiment, progress: Progress,
               fraction: Callable[[], float]) -> Iterator[None]:
        self.handle, self.data, self.experiment, self.progress, self.fraction = handle, data, experiment, progress, fraction
        self.reuse = PrefixCache(experiment.folder / ".students")
        yield

    def asked(self, number: int) -> None:
        self.progress.report(self.fraction(), f"trial {number}: choosing settings")

    def submit(self, trial: Any, recipe: Recipe, key: str) -> None:
        self._out = (trial, recipe, key)

    def building(self) -> set[str]:
        return {self._out[2]} if self._out else set()

    def status(self, failed: int) -> str | None:
        return None  # each trial reports its own steps

    def collect(self) -> Iterator[Finished]:
        if self._out is None:
            return
        trial, recipe, _ = self._out

        def report(_: float, message: str) -> None:
            self.progress.report(self.fraction(), f"trial {trial.number} ({recipe.summary()}): {message}")

        variant = optimize(self.handle, recipe, self.data, self.experiment.folder, reuse=self.reuse,
                           progress=Progress(report))
        self._out = None
        yield trial, recipe, variant, None

    def cancel_all(self, study: Any) -> None:
        if self._out is not None:
            from optuna.trial import TrialState

            with contextlib.suppress(Exception):
                study.tell(self._out[0], state=TrialState.FAIL)
            self._out = None
