"""Accuracy against labels, and fidelity against a reference model's outputs.

Both are streamed: batches are added as they come, so a dataset never has to fit in
memory twice. Fidelity is computed output by output (detectors and embedders have several).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from paretolab.core.measure.output_kinds import SCORE_THRESHOLD, Spread, collapse, guess_kinds, judge
from paretolab.core.measure.output_meters import DetectionMeter, EmbeddingMeter, SequenceMeter, detection_parts


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
    """How closely one output follows the reference's, judged by what the output is (output_kinds)."""

    name: str
    agreement: float | None  # top-1 agreement, for classification outputs only
    cosine: float  # mean per-sample cosine similarity (information: it hides dead scores beside boxes)
    mean_abs_error: float
    max_abs_error: float
    sqnr_db: float  # 10·log10(signal power / error power); inf when identical
    kind: str = "regression"  # classification, detection, sequence, embedding or regression
    verdict: str = "unknown"  # faithful, degraded, broken, or unknown (random inputs)
    why: str = ""  # the measure the verdict rests on, or what collapsed
    details: dict = field(default_factory=dict)  # the kind's own measures: recall, exact_match, neighbour_agreement...


@dataclass
class FidelityMeter:
    name: str
    kind: str | None = None  # None: guessed from the name and the first reference batch
    real_data: bool = True  # False: random inputs, on which quality is unknown
    threshold: float = SCORE_THRESHOLD  # a detector's score threshold
    layout: str | None = None  # a YOLO-style detector's layout (output_kinds.detection_layout); None: from its shape
    _agree: int = 0
    _count: int = 0
    _cosine_sum: float = 0.0
    _abs_sum: float = 0.0
    _elements: int = 0
    _max_abs: float = 0.0
    _signal: float = 0.0
    _noise: float = 0.0
    _by_kind: Any = None
    _mine: Spread = field(default_factory=Spread)
    _theirs: Spread = field(default_factory=Spread)

    def add(self, output: np.ndarray, reference: np.ndarray,
            boxes: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """`boxes`: the variant's and the reference's boxes output, for a scores output judged as detections."""
        if output.shape != reference.shape:
            raise ValueError(f"output '{self.name}' has shape {output.shape}, the reference {reference.shape}")
        if self.kind is None:
            self.kind = guess_kinds([self.name], [reference])[0]
        out = output.astype(np.float64).reshape(len(output), -1)
        ref = reference.astype(np.float64).reshape(len(reference), -1)
        if self.kind == "classification" and is_classifier_output(output):
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
        self._add_by_kind(output, reference, boxes)

    def _add_by_kind(self, output: np.ndarray, reference: np.ndarray,
                     boxes: tuple[np.ndarray, np.ndarray] | None) -> None:
        if self.kind == "detection" and output.ndim == 3:
            self._by_kind = self._by_kind or DetectionMeter(self.threshold, self.layout)
            self._by_kind.add(output, reference, *(boxes or (None, None)))
            output = detection_parts(output, boxes[0] if boxes else None, self.layout)[1]  # collapse: on the scores
            reference = detection_parts(reference, boxes[1] if boxes else None, self.layout)[1]
        elif self.kind == "sequence" and output.ndim == 3:
            self._by_kind = self._by_kind or SequenceMeter()
            self._by_kind.add(output, reference)
        elif self.kind == "embedding":
            self._by_kind = self._by_kind or EmbeddingMeter()
            self._by_kind.add(output, reference)
        self._mine.add(output)
        self._theirs.add(reference)

    def result(self) -> OutputFidelity:
        if self._noise == 0:
            sqnr = math.inf
        elif self._signal == 0:
            sqnr = -math.inf
        else:
            sqnr = 10 * math.log10(self._signal / self._noise)
        kind = self.kind or "regression"
        agreement = self._agree / self._count if kind == "classification" and self._count else None
        cosine = self._cosine_sum / self._count if self._count else math.nan
        details = self._by_kind.result() if self._by_kind is not None else {}
        what = "class scores collapsed" if kind == "detection" else "collapsed"
        judged = judge(kind, {"agreement": agreement, "cosine": cosine, "sqnr_db": sqnr, **details},
                       collapse(self._mine, self._theirs, what), self.real_data)
        return OutputFidelity(
            name=self.name,
            agreement=agreement,
            cosine=cosine,
            mean_abs_error=self._abs_sum / self._elements if self._elements else math.nan,
            max_abs_error=self._max_abs,
            sqnr_db=sqnr,
            kind=kind,
            verdict=judged.verdict,
            why=judged.why,
            details=details,
        )


def fidelity_dict(f: OutputFidelity) -> dict:
    """As JSON-safe values: JSON has no infinity, so identical outputs get sqnr_db None."""
    d = asdict(f)
    d["identical"] = f.max_abs_error == 0
    if math.isinf(f.sqnr_db):
        d["sqnr_db"] = None
    return d
