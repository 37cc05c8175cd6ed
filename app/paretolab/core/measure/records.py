"""A variant's metrics document, typed: the timing record, the validation scores and who measured
it, read as data classes instead of by string key. Torch-free, so the GUI may import it.

The metrics file stays the plain JSON the scorecard writes. Each record remembers which keys its
document had, in their order, and keeps keys it does not know, so `from_dict(d).to_dict() == d`
(same order too) for every file ever written — older files lack some keys, newer ones may add some."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self


@dataclass(frozen=True)
class _Record:
    """Reads a dict tolerantly (missing keys are None, unknown ones kept) and writes it back as read."""

    _keys: tuple[str, ...] = field(default=(), compare=False, repr=False)  # the keys the document had, in order
    _extra: dict = field(default_factory=dict, compare=False, repr=False)  # keys this version does not know
    _nested: ClassVar[dict[str, type[_Record]]] = {}  # fields that are records themselves

    @classmethod
    def from_dict(cls, doc: Any) -> Self:
        doc = doc if isinstance(doc, dict) else {}
        known = {f.name for f in fields(cls)} - {"_keys", "_extra"}
        values = {k: cls._read(k, v) for k, v in doc.items() if k in known}
        return cls(_keys=tuple(doc), _extra={k: v for k, v in doc.items() if k not in known}, **values)

    @classmethod
    def _read(cls, key: str, value: Any) -> Any:
        if key in cls._nested and isinstance(value, dict):
            return cls._nested[key].from_dict(value)
        return tuple(value) if isinstance(value, list) else value

    def to_dict(self) -> dict:
        """The document read, with the fields set since (a new key goes after the old ones)."""
        names = [f.name for f in fields(self) if f.name not in ("_keys", "_extra")]
        order = [k for k in self._keys if k in names or k in self._extra]
        order += [n for n in names if n not in self._keys and getattr(self, n) is not None]
        return {k: self._write(self._extra[k] if k in self._extra else getattr(self, k)) for k in order}

    @staticmethod
    def _write(value: Any) -> Any:
        if isinstance(value, _Record):
            return value.to_dict()
        return list(value) if isinstance(value, tuple) else value


@dataclass(frozen=True)
class RoundsTiming(_Record):
    """One model's batch-1 latency from alternating rounds (measure.timing.Timing as stored)."""

    median_ms: float | None = None
    low_ms: float | None = None  # 95 % confidence interval of the median
    high_ms: float | None = None
    runs: int | None = None
    spread: float | None = None  # interquartile range / median


@dataclass(frozen=True)
class SamplesTiming(_Record):
    """An input-dependent model's latency over real samples (measure.timing.DataTiming as stored)."""

    mean_ms: float | None = None
    low_ms: float | None = None
    high_ms: float | None = None
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    samples: int | None = None
    passes: int | None = None


@dataclass(frozen=True)
class OverData(_Record):
    """An early-exit variant and the original, each timed over the same samples of `dataset`."""

    _nested: ClassVar[dict[str, type[_Record]]] = {"variant": SamplesTiming, "baseline": SamplesTiming}
    dataset: str | None = None
    variant: SamplesTiming = field(default_factory=SamplesTiming)
    baseline: SamplesTiming = field(default_factory=SamplesTiming)


@dataclass(frozen=True)
class DeployedSpeedup(_Record):
    """The speed-up against the original as OpenVINO runs it with no precision hint (bf16 CPUs)."""

    _nested: ClassVar[dict[str, type[_Record]]] = {"baseline": RoundsTiming}
    precision: str | None = None
    baseline: RoundsTiming | None = None
    speedup: float | None = None
    speedup_low: float | None = None
    speedup_high: float | None = None


@dataclass(frozen=True)
class TimingRecord(_Record):
    """metrics["timing"]: how the latencies were timed (pipeline.scorecard.latencies), the reference
    the row was compared with (pipeline.reference_timing) and the notes the timing earned."""

    _nested: ClassVar[dict[str, type[_Record]]] = {
        "variant": RoundsTiming, "baseline": RoundsTiming, "over_data": OverData, "openvino_default": DeployedSpeedup}
    variant: RoundsTiming | None = None  # alternating rounds; None when timed over data
    baseline: RoundsTiming | None = None
    over_data: OverData | None = None  # an early-exit variant's averages over samples
    speedup_low: float | None = None  # the speed-up's 95 % interval; None for the oldest variants
    speedup_high: float | None = None
    rounds: str | None = None  # how it was timed, in words
    others_cpus: float | None = None  # CPUs other processes held meanwhile
    busy: str | None = None  # why the speed-up is uncertain
    openvino_default: DeployedSpeedup | None = None
    notes: tuple[str, ...] | None = None  # what the timing earned the variant's notes; None: recorded before they were kept apart
    reference_key: str | None = None  # backend/device/threads of the experiment's reference original
    reference_ms: float | None = None

    @property
    def speedup_range(self) -> tuple[float, float] | None:
        if self.speedup_low is None or self.speedup_high is None:
            return None
        return self.speedup_low, self.speedup_high


@dataclass(frozen=True)
class Scores(_Record):
    """One model's scores on the validation split (the original's lack the verdict)."""

    top1: float | None = None
    agreement: float | None = None
    cosine: float | None = None
    sqnr_db: float | None = None
    verdict: str | None = None
    verdict_why: str | None = None


@dataclass(frozen=True)
class ValidationScores(_Record):
    """metrics["validation"]: the variant and the original on the split sweeps and the chart select by."""

    _nested: ClassVar[dict[str, type[_Record]]] = {"variant": Scores, "baseline": Scores}
    dataset: str | None = None
    variant: Scores = field(default_factory=Scores)
    baseline: Scores = field(default_factory=Scores)


@dataclass(frozen=True)
class MeasuredBy(_Record):
    """metrics["measured_by"]: the machine and process that measured the variant (a cluster's record)."""

    host: str | None = None
    pid: int | None = None
    target: bool | None = None  # True: a Ray target, not the driver
    seconds: float | None = None  # how long measuring took
