"""Which low-precision form of a model to keep: every candidate (ONNX Runtime's int8 formats, or
OpenVINO's int8 and bf16) is checked against FP32 and timed side by side with it on the runtime
that will run it; the fastest faithful one wins, ties going to the preferred (most portable, or
most faithful) form."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

from paretolab.core.errors import Cancelled, ParetoLabError, first_line
from paretolab.core.files import atomic_write
from paretolab.core.measure.data import Dataset
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.runtimes import check_ort_loads
from paretolab.core.measure.timing import Speedup, time_side_by_side
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress
from paretolab.core.settings import SettingsError

# Most portable first: QDQ S8S8 runs on every runtime that reads quantized ONNX (TensorRT,
# OpenVINO, ...); QOperator ops are ONNX Runtime's own. Timing ties go to the more portable.
PORTABILITY = ("qdq-s8s8", "qdq-u8s8", "qop-s8s8", "qop-u8s8")


@dataclass(frozen=True)
class Contest:
    """What the candidates are (for messages), how the winner is named, and who wins a tie."""
    kind: str = "int8 form"
    prefix: str = "int8-"  # the winner is chosen as f"{backend}-{prefix}{name}"
    preference: tuple[str, ...] = PORTABILITY
    tie_reason: str = "the more portable format"


INT8_FORMS = Contest()


@dataclass
class Candidate:
    name: str
    median_ms: float
    agreement: float | None  # None: the outputs are not class scores
    cosine: float = 0.0  # the worst output's cosine similarity to FP32
    chosen: bool = False
    low_ms: float | None = None  # 95 % interval of the median, from side-by-side timing
    high_ms: float | None = None

    def faithful(self, min_agreement: float) -> bool:
        """Class scores agree with FP32's top-1 often enough; other outputs (boxes, masks,
        embeddings) stay close to FP32's. Near-identical outputs pass either way: an embedding
        shaped like class scores has no meaningful argmax to agree on."""
        if self.cosine >= IDENTICAL_COSINE:
            return True
        return self.agreement >= min_agreement if self.agreement is not None else self.cosine >= FAITHFUL_COSINE

    @property
    def fidelity(self) -> float:
        return self.agreement if self.agreement is not None else self.cosine

    def fidelity_text(self) -> str:
        if self.agreement is not None:
            return f"agrees with FP32 on {self.agreement:.1%}"
        return f"cosine to FP32 {self.cosine:.4f}"


FAITHFUL_COSINE = 0.995  # about 20 dB SQNR: what int8 keeps on outputs that are not class scores
IDENTICAL_COSINE = 0.9999  # about 40 dB: indistinguishable from FP32 whatever the output means


@dataclass
class QuantizeOutcome:
    artifact: Path
    chosen: str
    kept_fp32: list[str] = field(default_factory=list)
    baseline_ms: float | None = None
    candidates: list[Candidate] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def pick_fastest_faithful(handle: ModelHandle, built: dict[str, Path], backend: str, min_agreement: float,
                           validation: Dataset, out: Path, threads: int | None, progress: Progress,
                           dropped: list[str], contest: Contest = INT8_FORMS, device: str = "cpu") -> QuantizeOutcome:
    """Check every candidate against FP32, time them all side by side with FP32, and keep the
    fastest faithful one; candidates within the timing noise of the fastest are a tie, won by
    the contest's preferred form."""
    progress.report(0.7, "checking every candidate against FP32")
    handles, fidelity = {}, {}
    for name, path in built.items():
        progress.check()
        try:
            if path.suffix == ".onnx":
                check_ort_loads(path)
            variant = handle.like(path)
            result = evaluate(variant, validation, backend=backend, device=device, reference=handle, threads=threads)
            fidelity[name] = (result.agreement, result.cosine if result.cosine is not None else 0.0)
            handles[name] = variant
        except (Cancelled, SettingsError):
            raise
        except Exception as exc:  # a candidate the runtime cannot load or run drops out; the others compete
            dropped.append(f"{name} does not run on {backend} ({first_line(exc)})")
    if not handles:
        raise ParetoLabError(f"no {contest.kind} of {handle.path.name} runs on {backend}: {'; '.join(dropped)}; "
                             "try FP16 or the other runtime's int8")
    progress.report(0.8, "timing FP32 and every candidate side by side")
    base_t, *timings = time_side_by_side([handle, *handles.values()], backend=backend, device=device, threads=threads,
                                         rounds=8, budget_s=4.0)
    candidates = [Candidate(name, t.median_ms, *fidelity[name], low_ms=t.low_ms, high_ms=t.high_ms)
                  for name, t in zip(handles, timings)]
    outcome = QuantizeOutcome(out, "", baseline_ms=base_t.median_ms, candidates=candidates,
                              notes=[f"{d}; the other forms still competed" for d in dropped])
    faithful = [c for c in candidates if c.faithful(min_agreement)]
    if faithful:
        fastest = min(faithful, key=lambda c: c.median_ms)
        ties = [c for c in faithful if (c.low_ms or c.median_ms) <= (fastest.high_ms or fastest.median_ms)]
        order = contest.preference
        best = min(ties, key=lambda c: order.index(c.name) if c.name in order else len(order))
        if best is not fastest:
            outcome.notes.append(f"{best.name} timed within the noise of {fastest.name} ({best.median_ms:.3f} against "
                                 f"{fastest.median_ms:.3f} ms): kept {best.name}, {contest.tie_reason}")
    else:
        best = max(candidates, key=lambda c: (c.fidelity, c.cosine))
        wanted = (f"agreed with FP32 on {min_agreement:.0%} of predictions" if best.agreement is not None
                  else f"kept a cosine of {FAITHFUL_COSINE} to FP32's outputs")
        outcome.warnings.append(
            f"no {contest.kind} {wanted}; kept the most faithful ({best.name}, {best.fidelity_text()}); "
            "keep sensitive layers in FP32 or use more calibration samples"
        )
    best_t = timings[list(handles).index(best.name)]
    faster = Speedup.of(base_t, best_t)
    if faster.low < 1.0:
        outcome.warnings.append(
            f"the fastest faithful {contest.kind} ({best.name}) is not measurably faster than FP32 on {backend}/{device} here "
            f"({faster.text()}); keep the FP32 model for speed"
        )
    best.chosen = True
    outcome.chosen = f"{backend}-{contest.prefix}{best.name}"
    if out.suffix == ".xml":  # OpenVINO IR: the weights first, then the topology that names them
        atomic_write(out.with_suffix(".bin"), lambda tmp: shutil.copyfile(built[best.name].with_suffix(".bin"), tmp))
    atomic_write(out, lambda tmp: shutil.copyfile(built[best.name], tmp))
    return outcome
