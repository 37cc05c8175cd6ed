"""Knowledge distillation: a student (pruned or narrower) learns from the original model.

loss = α·T²·KL(softmax(teacher/T) ‖ softmax(student/T)) + (1−α)·CE(student, labels),
the hard term only when the data has labels. With float inputs, each batch is a mixup of
input pairs (Beta(m, m) shares) labelled live by the teacher: the student then matches the
teacher between the training samples too, which keeps a small training set from being
memorised (on the demo sample: 95.6% → see docs/benchmarks.md). The teacher runs on ONNX Runtime, so any
model format can teach. The best student (by validation top-1, or agreement with the
teacher without labels) is kept; cancelling returns the best student so far.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from paretolab.core.errors import Cancelled
from paretolab.core.measure.data import Dataset
from paretolab.core.measure.devices import DeviceChoice, torch_device
from paretolab.core.measure.runtimes import open_runner
from paretolab.core.model.eager import first_output
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress, silent
from paretolab.core.settings import SettingsError

if TYPE_CHECKING:
    from paretolab.core.compress.step import StepContext


@dataclass(frozen=True)
class DistillSettings:
    epochs: int = 3
    lr: float = 1e-3
    batch_size: int = 64
    temperature: float = 4.0
    alpha: float = 0.7  # weight of the soft (teacher) term; 1 - alpha goes to the labels
    patience: int = 3  # stop after this many epochs without a better validation score
    mixup: float = 0.4  # Beta(m, m) mixing of input pairs, labelled live by the teacher; 0 turns it off
    device: DeviceChoice = "auto"  # auto: the GPU when torch sees one, else the CPU
    seed: int = 0

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise SettingsError("settings 'epochs', 'batch_size' and 'patience' must be at least 1")
        if not self.lr > 0 or not self.temperature > 0:
            raise SettingsError("settings 'lr' and 'temperature' must be positive")
        if not 0.0 <= self.alpha <= 1.0:
            raise SettingsError(f"setting 'alpha' must be between 0 and 1, not {self.alpha}")
        if self.mixup < 0:
            raise SettingsError(f"setting 'mixup' must be 0 (off) or positive, not {self.mixup}")


@dataclass
class DistillReport:
    technique: str = "distill"
    metric: str = "top1"  # what "score" means: validation top-1, or agreement with the teacher
    history: list[dict] = field(default_factory=list)  # per epoch: loss, kd_loss, score
    initial_score: float = math.nan
    best_score: float = math.nan
    best_epoch: int = 0  # 0: the student before training was never beaten
    stopped_early: bool = False
    cancelled: bool = False
    device: str = "cpu"  # where the student trained
    seconds: float = 0.0  # how long it took

    def to_dict(self) -> dict:
        return asdict(self)


class _Teacher:
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


def distill(
    student: Any,
    teacher: ModelHandle,
    train: Dataset,
    validation: Dataset,
    settings: DistillSettings,
    progress: Progress | None = None,
) -> tuple[Any, DistillReport]:
    """Train `student` (an eager nn.Module, changed in place) and return the best one with a report."""
    import torch
    import torch.nn.functional as F

    progress = progress or silent()
    device = torch_device(settings.device, "distillation")
    started = time.perf_counter()
    torch.manual_seed(settings.seed)
    student.to(device)
    train_teacher, val_teacher = _Teacher(teacher, train), _Teacher(teacher, validation)
    report = DistillReport(metric="top1" if validation.has_labels else "agreement", device=device.type)
    optimizer = torch.optim.Adam(student.parameters(), lr=settings.lr)
    steps_total = settings.epochs * math.ceil(len(train) / settings.batch_size)
    # cosine decay: the last epochs settle instead of bouncing around at the full learning rate
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps_total, eta_min=settings.lr * 0.02)
    T, alpha = settings.temperature, settings.alpha if train.has_labels else 1.0
    rng = np.random.default_rng(settings.seed)
    steps_per_epoch = math.ceil(len(train) / settings.batch_size)
    # mixup: the student sees blends of input pairs, each labelled by the teacher itself, so a small
    # training set stretches further and the student learns the teacher's function, not the samples
    mixing = settings.mixup > 0 and all(a.dtype.kind == "f" for a in train.load(np.arange(1)))
    best_state = copy.deepcopy(student.state_dict())
    report.initial_score = report.best_score = _score(student, validation, val_teacher, device)
    try:
        for epoch in range(1, settings.epochs + 1):
            student.train()
            order = rng.permutation(len(train))
            losses, kd_losses = [], []
            for step in range(steps_per_epoch):
                idx = np.sort(order[step * settings.batch_size:(step + 1) * settings.batch_size])
                arrays = train.load(idx)
                share, partner = 1.0, np.arange(len(idx))
                if mixing:
                    share, partner = float(rng.beta(settings.mixup, settings.mixup)), rng.permutation(len(idx))
                    arrays = [(share * a + (1 - share) * a[partner]).astype(a.dtype) for a in arrays]
                    target = torch.from_numpy(train_teacher.run(arrays)).to(device)
                else:
                    target = torch.from_numpy(train_teacher.logits(idx)).to(device)
                logits = first_output(student(*[torch.from_numpy(a).to(device) for a in arrays]))
                kd = F.kl_div(F.log_softmax(logits / T, 1), F.softmax(target / T, 1), reduction="batchmean") * T * T
                loss = alpha * kd
                if train.labels is not None and alpha < 1.0:
                    labels = torch.from_numpy(train.labels[idx]).to(device)
                    hard = share * F.cross_entropy(logits, labels) + (1 - share) * F.cross_entropy(logits, labels[partner])
                    loss = loss + (1 - alpha) * hard
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                schedule.step()
                losses.append(loss.item())
                kd_losses.append(kd.item())
                done = ((epoch - 1) * steps_per_epoch + step + 1) / (settings.epochs * steps_per_epoch)
                progress.report(
                    done * 0.999, f"epoch {epoch}/{settings.epochs}, step {step + 1}/{steps_per_epoch}, loss {losses[-1]:.4f}"
                )
            score = _score(student, validation, val_teacher, device)
            report.history.append(
                {"epoch": epoch, "loss": float(np.mean(losses)), "kd_loss": float(np.mean(kd_losses)), "score": score}
            )
            progress.report(
                epoch / settings.epochs * 0.999,
                f"epoch {epoch}: loss {np.mean(losses):.4f}, validation {report.metric} {score:.2%}",
            )
            if score > report.best_score:
                report.best_score, report.best_epoch = score, epoch
                best_state = copy.deepcopy(student.state_dict())
            elif epoch - report.best_epoch >= settings.patience:
                report.stopped_early = True
                break
    except Cancelled:
        report.cancelled = True
    finally:
        train_teacher.close()
        val_teacher.close()
    student.load_state_dict(best_state)
    report.seconds = time.perf_counter() - started
    if not report.cancelled:  # (a cancelled run's report would raise again)
        progress.report(0.999, f"distillation took {report.seconds:.1f} s on {report.device}")
    return student.to("cpu").eval(), report


def _score(student: Any, data: Dataset, teacher: _Teacher, device: Any) -> float:
    """Validation top-1 with labels, else top-1 agreement with the teacher."""
    import torch

    student.eval()
    hits = 0
    with torch.no_grad():
        for batch in data.batches(256):
            logits = first_output(student(*[torch.from_numpy(a).to(device) for a in batch.inputs])).cpu().numpy()
            truth = batch.labels if batch.labels is not None else teacher.logits(batch.indices).argmax(1)
            hits += int((logits.argmax(1) == truth).sum())
    return hits / len(data)


def summary(settings: DistillSettings) -> str:
    return f"distill {settings.epochs} epochs"


def apply(ctx: StepContext, index: int, settings: DistillSettings) -> None:
    student, report = distill(ctx.torch_module("distillation"), ctx.original, ctx.data.train, ctx.data.validation, settings,
                              ctx.progress)
    ctx.set_module(student)
    ctx.report(index, report.to_dict())
    ctx.cancelled = report.cancelled
