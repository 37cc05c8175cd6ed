"""Which low-precision form of a model to keep: every candidate (ONNX Runtime's int8 formats, or
OpenVINO's int8 and bf16) is checked against FP32 and timed side by side with it on the runtime
that will run it; the fastest faithful one wins, ties going to the preferred (most portable, or
most faithful) form."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from paretolab.core.errors import Cancelled, ParetoLabError, first_line
from paretolab.core.files import atomic_write
from paretolab.core.measure.data import Dataset
from paretolab.core.measure.evaluate import EvalResult, evaluate
from paretolab.core.measure.output_kinds import RANDOM_NOTE, judge, quality
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
    agreement: float | None  # None: the first output is not class scores
    cosine: float = 0.0  # the worst output's cosine similarity to FP32 (information: blind to dead scores beside boxes)
    chosen: bool = False
    low_ms: float | None = None  # 95 % interval of the median, from side-by-side timing
    high_ms: float | None = None
    quality: float | None = None  # the worst output's per-kind measure on 0..1 (output_kinds.quality)
    quality_text: str = ""  # which output that is and what its measure says ("output0 (detection): recall 40%")
    passes: bool = False  # every output kept what its kind needs (on random inputs: the best available reading)
    verdict: str = "unknown"  # faithful, degraded, broken, or unknown on random inputs
    judged_on: str = "real data"  # or "random inputs"

    def faithful(self, min_agreement: float | None = None) -> bool:
        return self.passes

    @property
    def fidelity(self) -> float:
        return self.quality if self.quality is not None else self.agreement if self.agreement is not None else self.cosine

    def fidelity_text(self) -> str:
        if self.quality_text:
            return self.quality_text
        if self.agreement is not None:
            return f"agrees with FP32 on {self.agreement:.1%}"
        return f"cosine to FP32 {self.cosine:.4f}"


FAITHFUL_COSINE = 0.995  # about 20 dB SQNR: what int8 keeps when an output's kind gives no measure on the data
IDENTICAL_COSINE = 0.9999  # about 40 dB: indistinguishable from FP32 whatever the output means (detections excepted)


def judged(result: EvalResult, min_agreement: float) -> dict:
    """A candidate's Candidate fields from its evaluation against FP32, each output judged by its
    kind: class scores by top-1 agreement (at least `min_agreement`), detections by recall and
    precision at IoU 0.5, strings, neighbours, SQNR (output_kinds). A collapsed output is broken on
    any data. On random inputs the same measures rank the candidates as the best available reading,
    while the verdict stays unknown: random inputs say nothing of the data the model is made for."""
    passes, worst_q, worst_text = True, None, ""
    for f in result.fidelity:
        measures = {"agreement": f.agreement, "cosine": f.cosine, "sqnr_db": f.sqnr_db, **f.details}
        value, text = quality(f.kind, measures)
        if f.verdict == "broken":
            ok, value, text = False, 0.0, f.why
        elif f.kind != "detection" and f.cosine >= IDENTICAL_COSINE:
            ok = True  # an embedding shaped like class scores has no meaningful argmax to agree on
        elif f.kind == "classification" and f.agreement is not None:
            ok = f.agreement >= min_agreement
        elif value is None:  # no per-kind measure on this data (a detector that finds nothing in noise)
            ok = f.cosine >= FAITHFUL_COSINE
            text = f"{text}; cosine to FP32 {f.cosine:.4f}"
        else:
            ok = judge(f.kind, measures, None, real_data=True).verdict == "faithful"
        passes &= ok
        if worst_text == "" or (value if value is not None else 1.0) < (worst_q if worst_q is not None else 1.0):
            worst_q, worst_text = value, f"{f.name} ({f.kind}): {text}"
    return {"quality": worst_q, "quality_text": worst_text, "passes": passes and bool(result.fidelity),
            "verdict": result.verdict or "unknown", "judged_on": "real data" if result.real_data else "random inputs"}


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
                          dropped: list[str], contest: Contest = INT8_FORMS, device: str = "cpu",
                          output_kinds: Mapping[str, str] | None = None,
                          keep_fp32: Callable[[Path], None] | None = None) -> QuantizeOutcome:
    """Check every candidate against FP32 on `validation` (the data plan's, as the variant is
    evaluated: the user's data when given), each output judged by its kind (`output_kinds`, the
    user's --output-kind, overriding the guess), time them all side by side with FP32, and keep the
    fastest faithful one; candidates within the timing noise of the fastest are a tie, won by the
    contest's preferred form. With `keep_fp32` (it writes the FP32 model to a path), a winner not
    measurably faster than FP32 is not kept: FP32 is, since it costs nothing in fidelity."""
    progress.report(0.7, "checking every candidate against FP32")
    handles, fidelity, verdicts = {}, {}, {}
    for name, path in built.items():
        progress.check()
        try:
            if path.suffix == ".onnx":
                check_ort_loads(path)
            variant = handle.like(path)
            result = evaluate(variant, validation, backend=backend, device=device, reference=handle, threads=threads,
                              output_kinds=output_kinds)
            fidelity[name] = (result.agreement, result.cosine if result.cosine is not None else 0.0)
            verdicts[name] = judged(result, min_agreement)
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
    candidates = [Candidate(name, t.median_ms, *fidelity[name], low_ms=t.low_ms, high_ms=t.high_ms, **verdicts[name])
                  for name, t in zip(handles, timings)]
    outcome = QuantizeOutcome(out, "", baseline_ms=base_t.median_ms, candidates=candidates,
                              notes=[f"{d}; the other forms still competed" for d in dropped])
    if candidates[0].judged_on == "random inputs":
        outcome.notes.append(f"the {contest.kind}s were compared on random inputs ({validation.name}): each output's "
                             f"measure on them picked the best available, but its quality is {RANDOM_NOTE}; give your "
                             "data (--data) to judge it")
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
        best = max(candidates, key=lambda c: (c.verdict != "broken", c.fidelity, c.cosine))
        wanted = (f"agreed with FP32 on {min_agreement:.0%} of predictions" if best.agreement is not None
                  else "kept every output's measure for its kind (detections, strings, neighbours, SQNR)")
        outcome.warnings.append(
            f"no {contest.kind} {wanted}; kept the most faithful ({best.name}, {best.fidelity_text()}); "
            "keep sensitive layers in FP32 or use more calibration samples"
        )
    best_t = timings[list(handles).index(best.name)]
    faster = Speedup.of(base_t, best_t)
    if faster.low < 1.0 and keep_fp32 is not None:
        outcome.notes.append(f"no {' or '.join(handles)} form was measurably faster than FP32 on {backend}/{device} here "
                             f"(the best, {best.name}: {faster.text()}): kept the FP32 model")
        outcome.chosen = f"{backend}-fp32"
        keep_fp32(out)
        return outcome
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
