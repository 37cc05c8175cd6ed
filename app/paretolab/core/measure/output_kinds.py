"""What each output of a model is, and how a variant's copy of it is judged against the original's.

One cosine over a detector's outputs says nothing: box coordinates in pixels sit beside scores in
0..1, so a copy with every class score zeroed still has cosine 1.000. Each output is judged by its
kind instead: class agreement, detections matched at IoU 0.5, decoded strings, embedding
neighbours, or SQNR for maps and other numbers. The kind is guessed from the output's name and
shape; `--output-kind name=kind` overrides the guess.

A YOLO-style detector's single output comes in three layouts, told apart by this rule:
- [b, 4+C, N] with N at least 8x the rows (YOLOv8/v11 as Ultralytics exports it): channels first,
  boxes then class scores, no objectness;
- [b, N, D] with N at least 8x D: rows of boxes then scores. YOLOv5 rows hold objectness in
  column 4 then C class scores (D = 5+C; a detection's score is objectness x class); YOLOv8 rows
  transposed hold class scores from column 4 (D = 4+C). Which one: `--output-kind
  NAME=detection-v5` or `detection-v8` when given; else the class count the file's metadata names
  (Ultralytics' `names` dict, or `nc` / `num_classes`): D = 5+C is v5, D = 4+C is v8; else D = 84
  (COCO's 80 classes with no objectness) is v8; else v5, the common form of [b, N, 5+C] exports.
Scores outside 0..1 are taken for logits and passed through a sigmoid.
"""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from paretolab.core.errors import ParetoLabError

KINDS = ("classification", "detection", "sequence", "embedding", "regression")
DETECTION_LAYOUTS = {"detection-v5": "objectness", "detection-v8": "rows"}  # --output-kind NAME=detection-v5
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


def score_threshold(metadata: Mapping[str, str]) -> float:
    """The detector's own score threshold when its file names one (ONNX metadata `conf`,
    `score_threshold`, ...), else YOLO's default."""
    for key in ("score_threshold", "conf_threshold", "confidence_threshold", "conf_thres", "conf"):
        try:
            value = float(metadata.get(key, ""))
        except ValueError:
            continue
        if 0 < value < 1:
            return value
    return SCORE_THRESHOLD


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
            if not eq or not name or (kind not in KINDS and kind not in DETECTION_LAYOUTS):
                raise ParetoLabError(f"--output-kind '{item}': write OUTPUT=KIND, KIND one of {', '.join(KINDS)} "
                                     "(detection-v5 or detection-v8 for a YOLO output whose rows do or do not hold "
                                     "objectness; e.g. --output-kind boxes=detection,emb=embedding)")
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
    return [base_kind(given.get(n)) or _guess(n, a, boxes) for n, a in zip(names, arrays)]


def base_kind(kind: str | None) -> str | None:
    """"detection-v5" and "detection-v8" are detections with their layout named."""
    return "detection" if kind in DETECTION_LAYOUTS else kind


def detector_classes(metadata: Mapping[str, str]) -> int | None:
    """How many classes the detector's file says it has: Ultralytics' `names` ({0: 'person', ...}),
    or `nc` / `num_classes`."""
    names = metadata.get("names")
    if names:
        try:
            parsed = ast.literal_eval(names)  # a literal only: never code
            if isinstance(parsed, (dict, list, tuple)) and parsed:
                return len(parsed)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            pass
    for key in ("nc", "num_classes"):
        if str(metadata.get(key, "")).isdigit():
            return int(metadata[key])
    return None


def detection_layout(a: np.ndarray | Sequence[int], given: str | None = None, classes: int | None = None) -> str | None:
    """"channels-first", "objectness" (YOLOv5 rows) or "rows" (YOLOv8 rows), by the rule in this
    module's docstring; `given`: the --output-kind (detection-v5 / detection-v8)."""
    shape = tuple(a.shape if isinstance(a, np.ndarray) else a)
    layout = yolo_layout(np.empty((0, *shape[1:]))) if len(shape) == 3 else None
    if layout is None and given in DETECTION_LAYOUTS and len(shape) == 3:
        layout = "objectness"  # named a YOLO output though its shape is unusual: rows
    if layout in (None, "channels-first"):
        return layout
    if given in DETECTION_LAYOUTS:
        return DETECTION_LAYOUTS[given]
    width = shape[2]
    if classes:
        if width == 4 + classes:
            return "rows"
        if width == 5 + classes:
            return "objectness"
    return "rows" if width == 84 else "objectness"


def declared_kind(name: str, shape: Sequence[object], given: Mapping[str, str] | None = None) -> str:
    """An output's kind from its name and declared shape alone (free dims unknown): what a step
    can check before any work, as early exit does."""
    if given and name in given:
        return base_kind(given[name]) or given[name]
    hint = _hint(name)
    dims = [d if isinstance(d, int) and d > 0 else 0 for d in shape]
    if len(dims) == 3 and "box" in name.lower() and dims[2] == 4:
        return "regression"
    if len(dims) == 3 and all(dims[1:]) and yolo_layout(np.empty((0, *dims[1:]))) is not None and _may_be_yolo(name, hint):
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
    if a.ndim == 3 and yolo_layout(a) is not None and _may_be_yolo(name, hint):
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


def _may_be_yolo(name: str, hint: str | None) -> bool:
    """A language model's [b, T, vocab] "logits" is shaped like a YOLO output too."""
    return hint not in ("sequence", "embedding") and "logit" not in name.lower()


def yolo_layout(a: np.ndarray) -> str | None:
    """"channels-first" for [b, 4+C, N] (YOLOv8), "objectness" for [b, N, 5+C] (YOLOv5; YOLOv8's
    transposed [b, N, 4+C] is told apart by detection_layout), else None."""
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


SQNR_FULL_DB = 40.0  # an output's SQNR at which it counts as indistinguishable: quality 1.0


def quality(kind: str, measures: Mapping[str, float | None]) -> tuple[float | None, str]:
    """An output's primary measure on one 0..1 scale (1: the original's), and its text, so outputs
    of different kinds can be ranked and charted together: agreement, exact matches and neighbour
    agreement are shares already; detections take the lower of recall and precision (lost and
    invented detections alike); SQNR maps 0..40 dB onto 0..1. None when this data gave no measure."""
    value, text = _primary(kind, measures)
    if value is None:
        return None, f"no {MEASURES[kind]} on this data"
    if kind == "detection" and measures.get("precision") is not None:
        value = min(value, measures["precision"] or 0.0)
    if kind == "regression":
        value = 1.0 if value == math.inf else min(max(value / SQNR_FULL_DB, 0.0), 1.0)
    return float(value), text


def worst_quality(fidelity: Iterable[Mapping]) -> tuple[float | None, str, list[str]]:
    """From a variant's stored per-output fidelity (metrics["fidelity"]): the worst output's
    quality (0..1), what it rests on ("output0 (detection): recall 40%, precision 100%"), and the
    kinds judged. None when no output gave a measure."""
    found: list[tuple[float, str]] = []
    kinds: list[str] = []
    for f in fidelity:
        kind = f.get("kind") or "regression"
        kinds += [kind] if kind not in kinds else []
        sqnr = math.inf if f.get("identical") else f.get("sqnr_db")
        measures = {"agreement": f.get("agreement"), "cosine": f.get("cosine"), "sqnr_db": sqnr, **(f.get("details") or {})}
        value, text = quality(kind, measures)
        if f.get("verdict") == "broken":
            value, text = 0.0, f"broken, {f.get('why') or text}"
        if value is not None:
            found.append((value, f"{f.get('name')} ({kind}): {text}"))
    value, text = min(found, key=lambda v: v[0]) if found else (None, "")
    return value, text, kinds


def worst(verdicts: Iterable[str]) -> str | None:
    found = list(verdicts)
    return min(found, key=VERDICT_ORDER.index) if found else None
