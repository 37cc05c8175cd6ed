"""Recovery training searched: which loss and learning rate win back most, chosen on validation.

Every candidate (loss × learning rate) starts from the same student and the same seed, and is
judged on the validation split after each epoch. An Optuna study runs them one after another
with a successive-halving pruner: a candidate that is behind the others at the same epoch stops
there, so the minutes go to the promising ones (Hyperband's rule, one bracket: candidates are few
and each epoch is judged). Candidates run in a fixed order, the a-priori strongest first, so the
first rung has a strong reference; the result depends only on the seed — unless the budget in
minutes ends the search first, which it may do mid-epoch (that epoch is dropped). The student
kept is the best candidate's best epoch, or the starting student if none beat it. Cancelling
keeps the best so far.
"""

from __future__ import annotations

import copy
import math
import time
from typing import TYPE_CHECKING, Any

from paretolab.core.compress.training import DistillReport, Plan, Trainer, plan_dict
from paretolab.core.errors import Cancelled
from paretolab.core.progress import Progress

if TYPE_CHECKING:
    from paretolab.core.compress.distill import DistillSettings

LEARNING_RATES = (1e-3, 3e-3, 3e-4)  # the first is the a-priori choice
LOSS_ORDER = ("labels", "teacher", "both")  # a-priori order (issue 27's measurements at 70 % pruning)
BOTH_ALPHA = 0.5  # the blend tried when no α is given
REDUCTION = 3  # successive halving keeps the best third at each rung (epochs 1, 3, 9, ...)


def candidates(settings: DistillSettings, has_labels: bool) -> list[Plan]:
    """The plans searched, in the order they run: every loss at the first learning rate, then the others."""
    lrs = (settings.lr,) if settings.lr else LEARNING_RATES
    losses = LOSS_ORDER if has_labels else ("teacher",)
    alpha = BOTH_ALPHA if settings.alpha is None else settings.alpha
    plans = {"labels": lambda lr: Plan("labels", lr, 0.0, 0.0), "teacher": lambda lr: Plan("teacher", lr, 1.0, settings.mixup),
             "both": lambda lr: Plan("both", lr, alpha, settings.mixup)}
    return [plans[loss](lr) for lr in lrs for loss in losses]


class _OutOfTime(Exception):
    pass


class _Budgeted(Progress):
    """Passes reports on, and ends the run mid-epoch when the budget is spent."""

    def __init__(self, outer: Progress, deadline: float) -> None:
        super().__init__()
        self._outer, self._deadline = outer, deadline

    def report(self, fraction: float, message: str = "") -> None:
        self._outer.report(fraction, message)
        if time.perf_counter() > self._deadline:
            raise _OutOfTime


def search(student: Any, trainer: Trainer, settings: DistillSettings, progress: Progress) -> DistillReport:
    """Try every candidate from `student`'s weights; leave the best in `student` and say why it won."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plans = candidates(settings, trainer.train.has_labels)
    budget = settings.minutes * 60
    deadline = time.perf_counter() + budget
    budgeted = _Budgeted(progress, deadline)
    start = copy.deepcopy(student.state_dict())
    best_state = start
    report = DistillReport(metric=trainer.metric, searched=True, budget_s=budget)
    report.initial_score = report.best_score = trainer.score(student)
    report.candidates = [{**plan_dict(p), "scores": [], "best_score": math.nan, "best_epoch": 0,
                          "state": "not run (out of time)"} for p in plans]
    histories: list[list[dict]] = [[] for _ in plans]
    running: list[dict | None] = [None]  # the candidate training now

    def objective(trial: optuna.Trial) -> float:
        nonlocal best_state
        i = trial.suggest_categorical("candidate", list(range(len(plans))))
        plan, record = plans[i], report.candidates[i]
        running[0] = record
        student.load_state_dict(start)

        def on_epoch(epoch: int, score: float, loss: float, kd_loss: float) -> bool:
            nonlocal best_state
            record["scores"].append(score)
            histories[i].append({"epoch": epoch, "loss": loss, "kd_loss": kd_loss, "score": score})
            report.epochs_trained += 1
            progress.report((trial.number + 1) / len(plans) * 0.999,
                            f"{plan.name}: epoch {epoch}, validation {report.metric} {score:.2%}")
            if not score <= record["best_score"]:  # (nan before its first epoch)
                record["best_score"], record["best_epoch"] = score, epoch
            if score > report.best_score:
                report.best_score, report.best_epoch = score, epoch
                report.loss, report.alpha, report.lr, report.mixup = plan.loss, plan.alpha, plan.lr, plan.mixup
                report.history = histories[i]
                best_state = copy.deepcopy(student.state_dict())
            trial.report(score, epoch)
            if trial.should_prune():
                record["state"] = f"stopped at epoch {epoch}: behind the others there"
                raise optuna.TrialPruned
            if epoch - _best_epoch(record["scores"]) >= settings.patience:
                record["state"] = f"stopped at epoch {epoch}: no progress in {settings.patience}"
                return False
            return True

        record["state"] = "finished"
        try:
            trainer.run(student, plan, settings.epochs, on_epoch, budgeted,
                        where=lambda done: (trial.number + done) / len(plans), prefix=f"{plan.name}: ")
        except _OutOfTime:
            record["state"] = f"stopped at epoch {len(record['scores']) + 1}: out of time"
            report.out_of_time = True
            trial.study.stop()
        return max(record["scores"], default=report.initial_score)

    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=settings.seed),
                                pruner=optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=REDUCTION))
    for i in range(len(plans)):
        study.enqueue_trial({"candidate": i})
    try:
        study.optimize(objective, n_trials=len(plans), catch=())
    except Cancelled:
        report.cancelled = True
        if running[0] is not None:
            running[0]["state"] = f"cancelled at epoch {len(running[0]['scores']) + 1}"
    report.pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    student.load_state_dict(best_state)
    return report


def _best_epoch(scores: list[float]) -> int:
    return max(range(len(scores)), key=lambda e: scores[e]) + 1 if scores else 0

