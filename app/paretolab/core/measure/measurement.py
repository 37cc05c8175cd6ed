"""The numbers a model is judged by on one backend, typed: what the chart, the table, the
report and sweeps read, and what a variant's metrics file stores (as a plain dict)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from paretolab.core.measure.output_kinds import RANDOM_NOTE


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
    cosine: float | None = None  # mean cosine similarity to the reference's outputs (the worst output)
    sqnr_db: float | None = None  # signal-to-quantization-noise ratio to the reference (worst output); None: identical
    params: int | None = None
    macs: int | None = None
    dataset: str | None = None
    verdict: str | None = None  # the worst output's: faithful, degraded, broken, unknown (random inputs); None: unjudged
    verdict_why: str | None = None  # what it rests on, per output ("boxes (detection): recall 12%")

    @property
    def where(self) -> str:
        """Backend, device and threads, as every speed-up is qualified: "openvino/cpu, 2 threads"."""
        return f"{self.backend}/{self.device}, " + (f"{self.threads} threads" if self.threads else "default threads")

    @property
    def score(self) -> float:
        """What a model is ranked by: top-1 with labels, else agreement with the original's class,
        else (outputs that are not class scores: detections, masks, embeddings) cosine to the original."""
        return score_of(self.top1, self.agreement, self.cosine)

    @property
    def metric(self) -> str:
        """Which measure `score` is: "top-1", "agreement" or "cosine"."""
        return metric_of(self.top1, self.agreement, self.cosine)

    @property
    def broken(self) -> bool:
        """Below its kind's fidelity floor or collapsed: never on the front nor in a headline."""
        return self.verdict == "broken"

    @property
    def quality(self) -> str:
        """"broken", "unknown" (judged on random inputs, or not judgeable) or "" (judged on real data)."""
        return self.verdict if self.verdict in ("broken", "unknown") else ""

    def verdict_text(self) -> str:
        """"faithful", "broken: output0 (detection): class scores collapsed: all zero", "unknown (random inputs)"; "" unjudged."""
        if self.verdict is None:
            return ""
        if self.verdict == "unknown" and self.verdict_why == RANDOM_NOTE:
            return RANDOM_NOTE
        return f"{self.verdict}: {self.verdict_why}" if self.verdict != "faithful" and self.verdict_why else self.verdict

    def fidelity_text(self) -> str:
        """"agreement 98.4%" or "cosine 0.9991, 30.2 dB", then the verdict ("; unknown (random inputs)");
        "n/a" when unmeasured. The numbers stay as information; the verdict is what to trust."""
        if self.agreement is not None:
            numbers = f"agreement {100 * self.agreement:.1f}%"
        elif self.cosine is None:
            return "n/a"
        else:
            numbers = f"cosine {self.cosine:.4f}" + ("" if self.sqnr_db is None else f", {self.sqnr_db:.1f} dB")
        verdict = self.verdict_text()
        return f"{numbers}; {verdict}" if verdict and self.verdict != "faithful" else (
            f"{numbers}, faithful" if verdict else numbers)

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


METRIC_LABELS = {"top-1": "top-1 accuracy", "agreement": "agreement with the original's top-1",
                 "cosine": "cosine similarity to the original's outputs"}


def score_of(top1: float | None, agreement: float | None, cosine: float | None) -> float:
    return next((v for v in (top1, agreement, cosine) if v is not None), 0.0)


def metric_of(top1: float | None, agreement: float | None, cosine: float | None) -> str:
    return "top-1" if top1 is not None else "agreement" if agreement is not None or cosine is None else "cosine"
