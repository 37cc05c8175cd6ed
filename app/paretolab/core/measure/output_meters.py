"""The measures behind each output kind's verdict (output_kinds.py): detections matched at IoU,
greedy-decoded CTC strings, embedding neighbours within a batch. Streamed, batch by batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from paretolab.core.measure.output_kinds import MATCH_IOU, MAX_DETECTIONS, SCORE_THRESHOLD, yolo_layout

# -- detections -----------------------------------------------------------------------------

def _sigmoid_if_logits(scores: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-scores)) if scores.size and (scores.min() < 0 or scores.max() > 1) else scores


def detection_parts(a: np.ndarray, boxes: np.ndarray | None = None,
                    layout: str | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[b, N, 4] boxes (x1, y1, x2, y2) and [b, N, C] scores in 0..1, from a YOLO-style tensor
    (`layout` as output_kinds.detection_layout says; None: guessed from the shape alone) or a scores
    output and its boxes output."""
    a = a.astype(np.float32, copy=False)
    if boxes is not None:
        return boxes.astype(np.float32, copy=False), _sigmoid_if_logits(a)
    layout = layout or yolo_layout(a)
    rows = a.transpose(0, 2, 1) if layout == "channels-first" else a
    xywh = rows[..., :4]
    if layout == "objectness":
        scores = _sigmoid_if_logits(rows[..., 5:]) * _sigmoid_if_logits(rows[..., 4:5])
    else:
        scores = _sigmoid_if_logits(rows[..., 4:])
    xy, half = xywh[..., :2], np.abs(xywh[..., 2:]) / 2
    return np.concatenate([xy - half, xy + half], -1), scores


def _detections(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's kept detections: boxes, classes, scores, highest first."""
    cls = scores.argmax(-1)
    conf = scores.max(-1)
    keep = np.flatnonzero(conf >= threshold)
    keep = keep[np.argsort(-conf[keep], kind="stable")][:MAX_DETECTIONS]
    lo = np.minimum(boxes[keep, :2], boxes[keep, 2:])
    hi = np.maximum(boxes[keep, :2], boxes[keep, 2:])
    return np.concatenate([lo, hi], -1), cls[keep], conf[keep]


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(hi - lo, 0, None), -1)
    area_a = np.prod(a[:, 2:] - a[:, :2], -1)
    area_b = np.prod(b[:, 2:] - b[:, :2], -1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_detections(mine: tuple, ref: tuple, iou: float = MATCH_IOU) -> int:
    """How many of `mine` match one of the reference's detections of the same class at `iou`
    (greedy, highest score first, each reference detection matched once)."""
    (mb, mc, _), (rb, rc, _) = mine, ref
    if not len(mb) or not len(rb):
        return 0
    overlaps = _iou(mb, rb) * (mc[:, None] == rc[None, :])
    taken = np.zeros(len(rb), bool)
    matched = 0
    for i in range(len(mb)):
        row = np.where(taken, -1.0, overlaps[i])
        j = int(row.argmax())
        if row[j] >= iou:
            taken[j] = True
            matched += 1
    return matched


@dataclass
class DetectionMeter:
    threshold: float = SCORE_THRESHOLD
    layout: str | None = None  # output_kinds.detection_layout's answer; None: from the shape alone
    matched: int = 0
    reference_count: int = 0
    own_count: int = 0

    def add(self, out: np.ndarray, ref: np.ndarray, out_boxes: np.ndarray | None = None,
            ref_boxes: np.ndarray | None = None) -> None:
        (mb, ms), (rb, rs) = detection_parts(out, out_boxes, self.layout), detection_parts(ref, ref_boxes, self.layout)
        for i in range(len(out)):
            mine, theirs = _detections(mb[i], ms[i], self.threshold), _detections(rb[i], rs[i], self.threshold)
            self.matched += match_detections(mine, theirs)
            self.own_count += len(mine[0])
            self.reference_count += len(theirs[0])

    def result(self) -> dict:
        recall = self.matched / self.reference_count if self.reference_count else None
        precision = self.matched / self.own_count if self.own_count else (None if not self.reference_count else 0.0)
        return {"recall": recall, "precision": precision, "detections": self.own_count,
                "reference_detections": self.reference_count, "score_threshold": self.threshold}


# -- sequences (CTC) ------------------------------------------------------------------------

def ctc_greedy(log_probs: np.ndarray, blank: int = 0) -> list[tuple[int, ...]]:
    """[b, T, C] -> per sample the best path with repeats merged and blanks dropped."""
    best = log_probs.argmax(-1)
    decoded = []
    for row in best:
        merged = row[np.concatenate([[True], row[1:] != row[:-1]])]
        decoded.append(tuple(int(t) for t in merged if t != blank))
    return decoded


def edit_distance(a: Sequence[int], b: Sequence[int]) -> int:
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


@dataclass
class SequenceMeter:
    exact: int = 0
    distance: float = 0.0
    count: int = 0

    def add(self, out: np.ndarray, ref: np.ndarray) -> None:
        for mine, theirs in zip(ctc_greedy(out), ctc_greedy(ref)):
            self.exact += mine == theirs
            self.distance += edit_distance(mine, theirs) / max(len(theirs), len(mine), 1)
            self.count += 1

    def result(self) -> dict:
        return {"exact_match": self.exact / self.count if self.count else None,
                "edit_distance": self.distance / self.count if self.count else None}


# -- embeddings -----------------------------------------------------------------------------

def _nearest(x: np.ndarray) -> np.ndarray:
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    return similarity.argmax(1)


@dataclass
class EmbeddingMeter:
    agree: int = 0
    count: int = 0

    def add(self, out: np.ndarray, ref: np.ndarray) -> None:
        """Nearest neighbours within the batch: the same sample closest in both models' spaces."""
        if len(out) < 3:
            return
        mine, theirs = out.reshape(len(out), -1).astype(np.float64), ref.reshape(len(ref), -1).astype(np.float64)
        self.agree += int((_nearest(mine) == _nearest(theirs)).sum())
        self.count += len(out)

    def result(self) -> dict:
        return {"neighbour_agreement": self.agree / self.count if self.count else None}
