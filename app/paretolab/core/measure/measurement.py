"""The numbers a model is judged by on one backend, typed: what the chart, the table, the
report and sweeps read, and what a variant's metrics file stores (as a plain dict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Measurement:
    backend: str
    latency_ms: float
    size_bytes: int
    device: str = "cpu"
    threads: int | None = None  # None: the runtime's default
    top1: float | None = None
    top5: float | None = None
    agreement: float | None = None  # share of top-1 predictions equal to the reference's
    params: int | None = None
    macs: int | None = None
    dataset: str | None = None

    @property
    def where(self) -> str:
        """Backend, device and threads, as every speed-up is qualified: "openvino/cpu, 2 threads"."""
        return f"{self.backend}/{self.device}, " + (f"{self.threads} threads" if self.threads else "default threads")

    @property
    def score(self) -> float:
        """The accuracy a model is ranked by: top-1 with labels, else agreement with the original."""
        return self.top1 if self.top1 is not None else (self.agreement or 0.0)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict) -> Measurement:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


def speedup(baseline: Measurement | None, variant: Measurement | None) -> float | None:
    """How many times faster than the baseline; None when either is unmeasured."""
    if baseline is None or variant is None or not variant.latency_ms:
        return None
    return baseline.latency_ms / variant.latency_ms
