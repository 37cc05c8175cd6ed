"""Accuracy against labels, and fidelity against a reference model's outputs.

Both are streamed: batches are added as they come, so a dataset never has to fit in
memory twice. Fidelity is computed output by output (detectors and embedders have several).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


def is_classifier_output(array: np.ndarray) -> bool:
    """[N, C] scores with C > 1: what top-k accuracy and agreement are defined on."""
    return array.ndim == 2 and array.shape[1] > 1


@dataclass
class AccuracyMeter:
    correct_top1: int = 0
    correct_top5: int = 0
    count: int = 0
    classes: int = 0

    def add(self, scores: np.ndarray, labels: np.ndarray) -> None:
        self.classes = scores.shape[1]
        k = min(5, scores.shape[1])
        topk = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k > 1 else scores.argmax(1)[:, None]
        self.correct_top1 += int((scores.argmax(1) == labels).sum())
        self.correct_top5 += int((topk == labels[:, None]).any(1).sum())
        self.count += len(labels)

    @property
    def top1(self) -> float:
        return self.correct_top1 / self.count if self.count else math.nan

    @property
    def top5(self) -> float | None:
        """None when the model has 5 classes or fewer (top-5 would always be 100%)."""
        if self.classes <= 5:
            return None
        return self.correct_top5 / self.count if self.count else math.nan


@dataclass
class OutputFidelity:
    """How closely one output follows the reference's."""

    name: str
    agreement: float | None  # top-1 agreement, for classifier-like outputs
    cosine: float  # mean per-sample cosine similarity
    mean_abs_error: float
    max_abs_error: float
    sqnr_db: float  # 10·log10(signal power / error power); inf when identical


@dataclass
class FidelityMeter:
    name: str
    _agree: int = 0
    _count: int = 0
    _cosine_sum: float = 0.0
    _abs_sum: float = 0.0
    _elements: int = 0
    _max_abs: float = 0.0
    _signal: float = 0.0
    _noise: float = 0.0
    _classifier: bool = field(default=True)

    def add(self, output: np.ndarray, reference: np.ndarray) -> None:
        if output.shape != reference.shape:
            raise ValueError(f"output '{self.name}' has shape {output.shape}, the reference {reference.shape}")
        out = output.astype(np.float64).reshape(len(output), -1)
        ref = reference.astype(np.float64).reshape(len(reference), -1)
        self._classifier &= is_classifier_output(output)
        if self._classifier:
            self._agree += int((out.argmax(1) == ref.argmax(1)).sum())
        diff = out - ref
        norms = np.linalg.norm(out, axis=1) * np.linalg.norm(ref, axis=1)
        cos = np.where(norms > 0, (out * ref).sum(1) / np.where(norms > 0, norms, 1), np.all(diff == 0, axis=1))
        self._cosine_sum += float(cos.sum())
        self._count += len(out)
        self._abs_sum += float(np.abs(diff).sum())
        self._elements += diff.size
        self._max_abs = max(self._max_abs, float(np.abs(diff).max(initial=0.0)))
        self._signal += float((ref**2).sum())
        self._noise += float((diff**2).sum())

    def result(self) -> OutputFidelity:
        if self._noise == 0:
            sqnr = math.inf
        elif self._signal == 0:
            sqnr = -math.inf
        else:
            sqnr = 10 * math.log10(self._signal / self._noise)
        return OutputFidelity(
            name=self.name,
            agreement=self._agree / self._count if self._classifier and self._count else None,
            cosine=self._cosine_sum / self._count if self._count else math.nan,
            mean_abs_error=self._abs_sum / self._elements if self._elements else math.nan,
            max_abs_error=self._max_abs,
            sqnr_db=sqnr,
        )


def fidelity_dict(f: OutputFidelity) -> dict:
    """As JSON-safe values: JSON has no infinity, so identical outputs get sqnr_db None."""
    d = asdict(f)
    d["identical"] = f.max_abs_error == 0
    if math.isinf(f.sqnr_db):
        d["sqnr_db"] = None
    return d
