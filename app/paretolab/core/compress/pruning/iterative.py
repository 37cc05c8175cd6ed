"""Iterative structured pruning: reach the target sparsity in k steps with a short recovery between.

Torch-Pruning prunes iteratively with one pruner (`iterative_steps`): each step ranks the channels
again on the weights the recovery training left, so a channel that became useful survives. Its
linear schedule is kept (step i of k removes i/k of the target), but each step lands every layer on
the nearest multiple of `round_to`, as one-shot pruning does (prune.kept_channels): torch-pruning's
own rounding goes down, which would take a 16-channel layer straight to 8 at the first of three
steps and leave nothing for the later ones. The last step's counts are the one-shot counts.

The recovery is the existing training (distill.py) called with explicit settings: fine-tuning on
the labels when the training data has them, else learning the original's outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from paretolab.core.errors import Cancelled
from paretolab.core.progress import Progress

if TYPE_CHECKING:
    from paretolab.core.compress.pruning.prune import PruneSettings
    from paretolab.core.compress.step import StepContext

# (module, step just pruned (1-based), progress) -> what the recovery did, for the report
Recovery = Callable[[Any, int, Progress], dict]


class StepRatio(float):
    """A layer's final pruning ratio that also carries its ratio after each step. torch-pruning
    hands every ratio of `pruning_ratio_dict` to the schedule function (`schedule` below), which
    reads the steps back; anywhere else it is the plain final ratio."""

    steps: tuple[float, ...]

    def __new__(cls, steps: list[float]) -> StepRatio:
        ratio = super().__new__(cls, steps[-1])
        ratio.steps = tuple(steps)
        return ratio


def schedule(ratio: float, steps: int) -> list[float]:
    """torch-pruning's `iterative_pruning_ratio_scheduler`: the ratio reached after steps 0..k."""
    if isinstance(ratio, StepRatio):
        return list(ratio.steps)
    from torch_pruning.pruner.algorithms.scheduler import linear_scheduler

    return linear_scheduler(ratio, steps)


def stepped(channels: int, sparsity: float, steps: int, ratio_of: Callable[[int, float], float]) -> float:
    """The ratio of a layer pruned to `sparsity` in `steps` steps: ratio_of(channels, share removed)
    gives each step's exact ratio (prune._layer_ratios' rule); one step is that plain float."""
    if steps <= 1:
        return ratio_of(channels, sparsity)
    return StepRatio([0.0, *(ratio_of(channels, sparsity * i / steps) for i in range(1, steps + 1))])


def recovery(ctx: StepContext, settings: PruneSettings) -> Recovery:
    """Short training between pruning steps: fine-tuning on the labels (no soft targets, no mixup:
    what learns most in a short budget) when the training data has labels, else the original's
    outputs as targets. A cancel during it ends the pruning (Cancelled): a half-pruned model is not
    the variant that was asked for."""
    from paretolab.core.compress.distill import DistillSettings, distill

    train, validation = ctx.data.train, ctx.data.validation
    target: Literal["labels", "teacher"] = "labels" if train.has_labels else "teacher"

    def recover(module: Any, step: int, progress: Progress) -> dict:
        training = DistillSettings(epochs=settings.recover_epochs, loss=target, mixup=0.0, seed=step)
        _, report = distill(module, ctx.original, train, validation, training, progress)
        if report.cancelled:
            raise Cancelled(f"cancelled during the recovery after pruning step {step}")
        return {"after_step": step, "on": target, "epochs": len(report.history), "metric": report.metric,
                "score_before": report.initial_score, "score_after": report.best_score, "device": report.device,
                "seconds": report.seconds}

    return recover
