"""One recovery training run: a student learns from labels, from the original's soft targets, or both.

loss = α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1−α)·CE(student, labels),
the hard term only when the data has labels. With float inputs and mixup on, each batch is a
mixup of input pairs (Beta(m, m) shares) labelled live by the teacher: the student then matches
the teacher between the training samples too. The teacher runs on ONNX Runtime, so any model
format can teach; its logits for the training samples are computed once and shared by every run
of a search. Every run starts from the same seed, so two runs differ only by their plan.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from paretolab.core.measure.data import Dataset
from paretolab.core.measure.runtimes import open_runner
from paretolab.core.model.eager import first_output
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress


@dataclass(frozen=True)
class Plan:
    """How one run trains: which loss, how fast, how much mixing."""

    loss: str  # "labels" (α 0), "teacher" (α 1) or "both" (α between)
    lr: float
    alpha: float  # weight of the soft (teacher) term; 1 - alpha goes to the labels
    mixup: float  # Beta(m, m) mixing of input pairs; 0: off

    @property
    def name(self) -> str:
        mix = f", mixup {self.mixup:g}" if self.mixup else ""
        blend = f" α {self.alpha:g}" if self.loss == "both" else ""
        return f"{self.loss}{blend}, lr {self.lr:g}{mix}"


@dataclass
class DistillReport:
    technique: str = "distill"
    metric: str = "top1"  # what "score" means: validation top-1, or agreement with the teacher
    history: list[dict] = field(default_factory=list)  # per epoch of the kept run: loss, kd_loss, score
    initial_score: float = math.nan
    best_score: float = math.nan
    best_epoch: int = 0  # 0: the student before training was never beaten
    stopped_early: bool = False
    cancelled: bool = False
    device: str = "cpu"  # where the student trained
    seconds: float = 0.0  # how long it took
    loss: str = ""  # the loss of the kept student: labels, teacher or both
    alpha: float = math.nan
    lr: float = math.nan
    mixup: float = 0.0
    searched: bool = False  # the loss and learning rate were chosen on validation among `candidates`
    budget_s: float = 0.0  # the search's budget
    out_of_time: bool = False  # the budget ended the search before every candidate had its turn
    pruned: int = 0  # candidates the search stopped early because others were ahead at the same epoch
    epochs_trained: int = 0  # over all runs
    candidates: list[dict] = field(default_factory=list)  # per candidate: plan, scores per epoch, best, how it ended

    def to_dict(self) -> dict:
        return {**asdict(self), "why": self.why()}

    def why(self) -> str:
        """One line: what won and by how much, so a person sees why."""
        if not self.searched:
            return f"{self.loss}, lr {self.lr:g}: best {self.metric} {self.best_score:.2%} after epoch {self.best_epoch}"
        if self.best_epoch == 0:
            return f"no candidate beat the starting student ({self.metric} {self.initial_score:.2%})"
        ranked = sorted((c for c in self.candidates if c["scores"]), key=lambda c: -c["best_score"])
        others = "; ".join(f"{c['name']} {c['best_score']:.2%} ({c['state']}, {len(c['scores'])} ep)" for c in ranked[1:4])
        return (f"{self.loss}, lr {self.lr:g} won with {self.metric} {self.best_score:.2%} at epoch {self.best_epoch} "
                f"(from {self.initial_score:.2%}); " + (f"others: {others}" if others else "no other candidate"))


class Teacher:
    """The teacher's logits per sample, computed once (ONNX Runtime) and cached."""

    def __init__(self, handle: ModelHandle, data: Dataset) -> None:
        self._cache: dict[int, np.ndarray] = {}
        self._runner = open_runner(handle, "ort", "cpu")
        self._data = data

    def logits(self, indices: np.ndarray) -> np.ndarray:
        missing = np.array([i for i in indices if i not in self._cache], dtype=np.int64)
        if len(missing):
            outputs = self._runner.run([a.astype(np.float32) if a.dtype.kind == "f" else a for a in self._data.load(missing)])[0]
            self._cache.update(zip(missing.tolist(), outputs))
        return np.stack([self._cache[i] for i in indices.tolist()])

    def run(self, arrays: list[np.ndarray]) -> np.ndarray:
        """The teacher's logits for inputs that are not in the dataset (mixed ones)."""
        return self._runner.run(arrays)[0]

    def close(self) -> None:
        self._runner.close()


# (epoch, validation score, mean loss, mean kd loss) -> False to stop this run
EpochCallback = Callable[[int, float, float, float], bool]


class Trainer:
    """What every run of one distillation shares: the data, the teachers' caches, the device."""

    def __init__(self, teacher: ModelHandle, train: Dataset, validation: Dataset, batch_size: int, temperature: float,
                 seed: int, device: Any) -> None:
        self.train, self.validation, self.device = train, validation, device
        self.batch_size, self.temperature, self.seed = batch_size, temperature, seed
        self.metric = "top1" if validation.has_labels else "agreement"
        self._train_teacher = Teacher(teacher, train)
        self._val_teacher = Teacher(teacher, validation)
        self.floats = all(a.dtype.kind == "f" for a in train.load(np.arange(1)))

    def close(self) -> None:
        self._train_teacher.close()
        self._val_teacher.close()

    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train) / self.batch_size)

    def score(self, student: Any) -> float:
        """Validation top-1 with labels, else top-1 agreement with the teacher."""
        import torch

        student.eval()
        hits = 0
        with torch.no_grad():
            for batch in self.validation.batches(256):
                logits = first_output(student(*[torch.from_numpy(a).to(self.device) for a in batch.inputs])).cpu().numpy()
                truth = batch.labels if batch.labels is not None else self._val_teacher.logits(batch.indices).argmax(1)
                hits += int((logits.argmax(1) == truth).sum())
        return hits / len(self.validation)

    def run(self, student: Any, plan: Plan, epochs: int, on_epoch: EpochCallback, progress: Progress,
            where: Callable[[float], float] = lambda done: done, prefix: str = "") -> None:
        """Train `student` (in place) by `plan` for up to `epochs` epochs, the learning rate decaying
        over all of them (cosine), calling `on_epoch` after each; Cancelled passes through.
        `where` maps this run's share done to the progress bar's fraction."""
        import torch
        import torch.nn.functional as F

        torch.manual_seed(self.seed)
        student.to(self.device)
        rng = np.random.default_rng(self.seed)
        optimizer = torch.optim.Adam(student.parameters(), lr=plan.lr)
        steps = self.steps_per_epoch()
        # cosine decay: the last epochs settle instead of bouncing around at the full learning rate
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps, eta_min=plan.lr * 0.02)
        T, alpha = self.temperature, plan.alpha if self.train.has_labels else 1.0
        # mixup: the student sees blends of input pairs, each labelled by the teacher itself, so a small
        # training set stretches further and the student learns the teacher's function, not the samples
        mixing = plan.mixup > 0 and self.floats
        for epoch in range(1, epochs + 1):
            student.train()
            order = rng.permutation(len(self.train))
            losses, kd_losses = [], []
            for step in range(steps):
                idx = np.sort(order[step * self.batch_size:(step + 1) * self.batch_size])
                arrays = self.train.load(idx)
                share, partner = 1.0, np.arange(len(idx))
                if mixing:
                    share, partner = float(rng.beta(plan.mixup, plan.mixup)), rng.permutation(len(idx))
                    arrays = [(share * a + (1 - share) * a[partner]).astype(a.dtype) for a in arrays]
                logits = first_output(student(*[torch.from_numpy(a).to(self.device) for a in arrays]))
                loss = torch.zeros((), device=self.device)
                kd = torch.zeros((), device=self.device)
                if alpha > 0:
                    teacher = self._train_teacher.run(arrays) if mixing else self._train_teacher.logits(idx)
                    target = torch.from_numpy(teacher).to(self.device)
                    kd = F.kl_div(F.log_softmax(logits / T, 1), F.softmax(target / T, 1), reduction="batchmean") * T * T
                    loss = alpha * kd
                if self.train.labels is not None and alpha < 1.0:
                    labels = torch.from_numpy(self.train.labels[idx]).to(self.device)
                    hard = share * F.cross_entropy(logits, labels) + (1 - share) * F.cross_entropy(logits, labels[partner])
                    loss = loss + (1 - alpha) * hard
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
                kd_losses.append(kd.item())
                done = ((epoch - 1) * steps + step + 1) / (epochs * steps)
                progress.report(where(done) * 0.999,
                                f"{prefix}epoch {epoch}/{epochs}, step {step + 1}/{steps}, loss {losses[-1]:.4f}")
            score = self.score(student)
            if not on_epoch(epoch, score, float(np.mean(losses)), float(np.mean(kd_losses))):
                return


def plan_dict(plan: Plan) -> dict:
    return {"name": plan.name, **asdict(plan)}
