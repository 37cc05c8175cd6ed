"""What each output of a model is, and how a variant's copy of it is judged against the original's.

One cosine over a detector's outputs says nothing: box coordinates in pixels sit beside scores in
0..1, so a copy with every class score zeroed still has cosine 1.000. Each output is judged by its
kind instead: class agreement, detections matched at IoU 0.5, decoded strings, embedding
neighbours, or SQNR for maps and other numbers. The kind is guessed from the output's name and
shape; `--output-kind name=kind` overrides the guess.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from paretolab.core.errors import ParetoLabError

KINDS = ("classification", "detection", "sequence", "embedding", "regression")
_ALIASES = {"class": "classification", "classes": "classification", "classifier": "classification",
            "detector": "detection", "detections": "detection", "ctc": "sequence", "text": "sequence",
            "embeddings": "embedding", "map": "regression", "maps": "regression", "segmentation": "regression"}
_HINTS = (  # words in an output's name, first match wins
    ("embedding", ("embed", "feature", "pooled", "vector", "descriptor", "reid", "encoding", "hidden")),
    ("sequence", ("ctc", "log_prob", "logprob", "char", "text", "transcript", "token")),
    ("detection", ("yolo", "detection", "dets")),
    ("classification", ("logit", "class", "prob", "score", "cls", "label", "pred")),
)
SCORE_THRESHOLD = 0.25  # a detector's score threshold when the model does not say (YOLO's default)
MATCH_IOU = 0.5
MAX_DETECTIONS = 300  # per image, the highest scores first, as YOLO's max_det

# The fidelity floor per kind: below it (on real data) a variant is broken; at or above "faithful" it is faithful.
FLOOR = {"classification": 0.5, "detection": 0.5, "sequence": 0.5, "embedding": 0.5, "regression": 10.0}
FAITHFUL = {"classification": 0.98, "detection": 0.9, "sequence": 0.95, "embedding": 0.9, "regression": 20.0}
MEASURES = {"classification": "top-1 agreement", "detection": "detection recall", "sequence": "exact-match strings",
            "embedding": "nearest-neighbour agreement", "regression": "SQNR"}
VERDICT_ORDER = ("broken", "degraded", "unknown", "faithful")  # worst first: a variant's verdict is its worst output's
RANDOM_NOTE = "unknown (random inputs)"


def is_random_data(dataset_name: str | None) -> bool:
    """Inputs drawn at random (`--data random`, or no data given): nothing judged on them says how
    the model behaves on what it was made for."""
    return bool(dataset_name) and str(dataset_name).startswith("random(")


def parse_output_kinds(texts: str | Iterable[str] | None) -> dict[str, str]:
    """"boxes=detection,emb=embedding" (or several such texts) -> {output name: kind}."""
    if texts is None:
        return {}
    kinds: dict[str, str] = {}
    for text in [texts] if isinstance(texts, str) else texts:
        for item in filter(None, (part.strip() for part in text.split(","))):
            name, eq, kind = (s.strip() for s in item.partition("="))
            kind = _ALIASES.get(kind.lower(), kind.lower())
            if not eq or not name or kind not in KINDS:
                raise ParetoLabError(f"--output-kind '{item}': write OUTPUT=KIND, KIND one of {', '.join(KINDS)} "
                                     "(e.g. --output-kind boxes=detection,emb=embedding)")
            kinds[name] = kind
    return kinds


def check_output_kinds(kinds: Mapping[str, str], names: Sequence[str], model: str) -> None:
    unknown = sorted(set(kinds) - set(names))
    if unknown:
        raise ParetoLabError(f"--output-kind names '{unknown[0]}', which is not an output of {model}; "
                             f"its outputs are {', '.join(names)}")


_TOKENS = {"emb": "embedding", "vec": "embedding", "feat": "embedding", "det": "detection", "seq": "sequence"}


def _hint(name: str) -> str | None:
    low = name.lower()
    token = next((_TOKENS[t] for t in re.split(r"[^a-z0-9]+", low) if t in _TOKENS), None)
    return token or next((kind for kind, words in _HINTS if any(w in low for w in words)), None)


def is_box_output(name: str, array: np.ndarray) -> bool:
    return array.ndim == 3 and array.shape[-1] == 4 and "box" in name.lower()


def guess_kinds(names: Sequence[str], arrays: Sequence[np.ndarray], given: Mapping[str, str] | None = None) -> list[str]:
    """Each output's kind (arrays batch first), `given` overriding the guess by name."""
    given = given or {}
    boxes = [a for n, a in zip(names, arrays) if is_box_output(n, a)]
    return [given.get(n) or _guess(n, a, boxes) for n, a in zip(names, arrays)]


def declared_kind(name: str, shape: Sequence[object], given: Mapping[str, str] | None = None) -> str:
    """An output's kind from its name and declared shape alone (free dims unknown): what a step
    can check before any work, as early exit does."""
    if given and name in given:
        return given[name]
    hint = _hint(name)
    dims = [d if isinstance(d, int) and d > 0 else 0 for d in shape]
    if len(dims) == 3 and "box" in name.lower() and dims[2] == 4:
        return "regression"
    if len(dims) == 3 and all(dims[1:]) and _yolo_layout(np.empty((0, *dims[1:]))) is not None:
        return "detection"
    if len(dims) == 2:
        return "embedding" if hint == "embedding" else "regression" if dims[1] == 1 else "classification"
    if len(dims) == 3 and hint in ("sequence", "detection", "embedding"):
        return hint
    return "regression"


def _guess(name: str, a: np.ndarray, boxes: list[np.ndarray]) -> str:
    if not np.issubdtype(a.dtype, np.floating):
        return "regression"
    hint = _hint(name)
    if is_box_output(name, a):
        return "regression"  # coordinates; their scores output is judged as detections with them
    if a.ndim == 3 and boxes and any(b.shape[1] == a.shape[1] for b in boxes) and hint != "embedding":
        return "detection"  # per-anchor class scores beside a boxes output (SSD-style)
    if a.ndim == 3 and _yolo_layout(a) is not None and hint not in ("sequence", "embedding"):
        return "detection"
    if hint == "embedding" and a.ndim == 2:
        return "embedding"
    if hint == "sequence" and a.ndim == 3:
        return "sequence"
    if a.ndim == 2 and a.shape[1] > 1:
        norms = np.linalg.norm(a.astype(np.float64), axis=1)
        if hint != "classification" and len(a) and np.allclose(norms, 1.0, atol=1e-3):
            return "embedding"  # unit-length rows: what embedders return
        return "classification"
    if a.ndim == 3 and a.shape[2] > 2 and hint == "classification" and _looks_like_distributions(a):
        return "sequence"
    return "regression"


def _yolo_layout(a: np.ndarray) -> str | None:
    """"channels-first" for [b, 4+C, N] (YOLOv8), "objectness" for [b, N, 5+C] (YOLOv5), else None."""
    if a.shape[1] >= 5 and a.shape[2] >= 8 * a.shape[1]:
        return "channels-first"
    if a.shape[2] >= 6 and a.shape[1] >= 8 * a.shape[2]:
        return "objectness"
    return None


def _looks_like_distributions(a: np.ndarray) -> bool:
    """Rows that are log-probabilities or probabilities over the last axis (a CTC head's output)."""
    x = a.astype(np.float64)
    log_sums = np.log(np.exp(x - x.max(-1, keepdims=True)).sum(-1)) + x.max(-1)
    return bool(np.allclose(log_sums, 0.0, atol=1e-2) or (x.min() >= 0 and np.allclose(x.sum(-1), 1.0, atol=1e-2)))


# -- detections -----------------------------------------------------------------------------

def _sigmoid_if_logits(scores: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-scores)) if scores.size and (scores.min() < 0 or scores.max() > 1) else scores


def detection_parts(a: np.ndarray, boxes: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """[b, N, 4] boxes (x1, y1, x2, y2) and [b, N, C] scores in 0..1, from a YOLO-style tensor or
    a scores output and its boxes output."""
    a = a.astype(np.float32, copy=False)
    if boxes is not None:
        return boxes.astype(np.float32, copy=False), _sigmoid_if_logits(a)
    layout = _yolo_layout(a)
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
    matched: int = 0
    reference_count: int = 0
    own_count: int = 0

    def add(self, out: np.ndarray, ref: np.ndarray, out_boxes: np.ndarray | None = None,
            ref_boxes: np.ndarray | None = None) -> None:
        (mb, ms), (rb, rs) = detection_parts(out, out_boxes), detection_parts(ref, ref_boxes)
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


# -- collapse: a copy that went constant, NaN or zero where the original did not --------------

@dataclass
class Spread:
    """How much an output varies across samples (per element), streamed, and whether it was ever
    not finite or not zero."""

    total: np.ndarray | None = None
    squares: np.ndarray | None = None
    count: int = 0
    nonfinite: bool = False
    nonzero: bool = False

    def add(self, a: np.ndarray) -> None:
        x = a.reshape(len(a), -1).astype(np.float64)
        finite = np.isfinite(x)
        self.nonfinite |= not bool(finite.all())
        x = np.where(finite, x, 0.0)
        self.nonzero |= bool(np.any(x != 0))
        if self.total is None:
            self.total, self.squares = np.zeros(x.shape[1]), np.zeros(x.shape[1])
        self.total += x.sum(0)
        self.squares += (x**2).sum(0)
        self.count += len(x)

    @property
    def spread(self) -> float:
        if not self.count or self.total is None or self.squares is None:
            return 0.0
        mean = self.total / self.count
        return float(np.sqrt(np.maximum(self.squares / self.count - mean**2, 0.0)).max(initial=0.0))


def collapse(mine: Spread, ref: Spread, what: str = "collapsed") -> str | None:
    """Why the variant's output collapsed, or None."""
    if mine.nonfinite and not ref.nonfinite:
        return f"{what}: NaN or infinity where the original's are finite"
    if ref.nonzero and not mine.nonzero:
        return f"{what}: all zero"
    if ref.count > 1 and ref.spread > 0 and mine.spread <= 1e-4 * ref.spread:
        return f"{what}: the same for every input"
    return None


@dataclass
class Judgement:
    verdict: str  # faithful, degraded, broken or unknown
    why: str
    extra: dict = field(default_factory=dict)


def judge(kind: str, measures: Mapping[str, float | None], collapsed: str | None, real_data: bool) -> Judgement:
    """One output's verdict. A collapse is broken on any data; the floors apply on real data only,
    since random inputs say nothing of how a model does on what it was made for."""
    if collapsed:
        return Judgement("broken", collapsed)
    if not real_data:
        return Judgement("unknown", RANDOM_NOTE)
    value, text = _primary(kind, measures)
    if value is None:
        return Judgement("unknown", f"no {MEASURES[kind]} to judge by on this data")
    floor, faithful = FLOOR[kind], FAITHFUL[kind]
    if kind == "detection" and measures.get("precision") is not None:
        value = min(value, measures["precision"] or 0.0)  # both ways: lost detections and invented ones
    if kind == "embedding" and (measures.get("cosine") or 0.0) < 0.9:
        return Judgement("broken", f"{text}, cosine {measures.get('cosine') or 0.0:.3f} (below 0.9)")
    if value < floor:
        return Judgement("broken", f"{text} (below the floor, {_fmt(kind, floor)})")
    if value < faithful:
        return Judgement("degraded", text)
    return Judgement("faithful", text)


def _fmt(kind: str, value: float) -> str:
    if kind == "regression":
        return "identical" if value == math.inf else f"{value:.1f} dB"
    return f"{value:.0%}"


def _primary(kind: str, m: Mapping[str, float | None]) -> tuple[float | None, str]:
    key = {"classification": "agreement", "detection": "recall", "sequence": "exact_match",
           "embedding": "neighbour_agreement", "regression": "sqnr_db"}[kind]
    value = m.get(key)
    if kind == "embedding" and value is None:  # batches too small for neighbours: cosine alone
        value = m.get("cosine")
    if value is None:
        return None, ""
    if kind == "detection":
        precision = m.get("precision")
        return value, f"recall {value:.0%}" + (f", precision {precision:.0%}" if precision is not None else "")
    return value, f"{MEASURES[kind]} {_fmt(kind, value)}"


def worst(verdicts: Iterable[str]) -> str | None:
    found = list(verdicts)
    return min(found, key=VERDICT_ORDER.index) if found else None
