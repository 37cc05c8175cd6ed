"""Timing models side by side, so that a speed-up is a ratio measured under the same load.

Models timed one after the other meet different machines: a busy neighbour, a frequency step,
a cache that another process evicted. Here every model is opened, warmed up, then timed in
alternating rounds (A B C A B C ...), so drift hits them alike; each gets a median with a 95 %
confidence interval (order statistics of the median), and a ratio whose interval holds 1 is
reported as a tie. A machine whose runs vary a lot is called busy instead of published as fact.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from paretolab.core.errors import first_line
from paretolab.core.measure.data import Dataset, random_inputs
from paretolab.core.measure.load import others_note
from paretolab.core.measure.runtimes import BackendError, OpenVinoRunner, Runner, check_available, open_runner
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress, silent

BUSY_SPREAD = 0.25  # interquartile range over median above which runs are too uneven to trust
OPENVINO_DEFAULT = "openvino-default"  # OpenVINO as deployed: no precision hint (bf16 on AMX/AVX512-BF16 CPUs)


@dataclass(frozen=True)
class Timing:
    median_ms: float
    low_ms: float  # 95 % confidence interval of the median
    high_ms: float
    runs: int
    spread: float  # interquartile range / median: how evenly the runs went

    @classmethod
    def from_seconds(cls, seconds: Sequence[float]) -> Timing:
        ms = np.sort(np.asarray(seconds, dtype=float) * 1000.0)
        n = len(ms)
        half = 1.96 * math.sqrt(n) / 2
        low = ms[max(0, int(math.floor(n / 2 - half)))]
        high = ms[min(n - 1, int(math.ceil(n / 2 + half)))]
        q1, median, q3 = np.percentile(ms, [25, 50, 75])
        return cls(float(median), float(low), float(high), n, float((q3 - q1) / median) if median > 0 else 0.0)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Speedup:
    """How many times faster `variant` ran than `baseline`, with the interval the two medians'
    intervals allow. `tie`: the interval holds 1, so no difference was measured."""

    value: float
    low: float
    high: float

    @classmethod
    def of(cls, baseline: Timing, variant: Timing) -> Speedup:
        return cls(baseline.median_ms / variant.median_ms, baseline.low_ms / variant.high_ms, baseline.high_ms / variant.low_ms)

    @property
    def tie(self) -> bool:
        return self.low <= 1.0 <= self.high

    def text(self) -> str:
        return f"{self.value:.2f}x ({self.low:.2f}-{self.high:.2f})"


def time_side_by_side(
    handles: Sequence[ModelHandle],
    *,
    backend: str | Sequence[str] = "ort",
    device: str = "cpu",
    threads: int | None = None,
    rounds: int = 12,
    budget_s: float = 6.0,
    progress: Progress | None = None,
    batch: int = 1,
) -> list[Timing]:
    """Latency of each model on one batch (of `batch` samples), timed in alternating rounds on one
    device; `backend` is one for all or one per model (to compare runtimes, as the benchmarks do)."""
    progress = progress or silent()
    backends = [backend] * len(handles) if isinstance(backend, str) else list(backend)
    runners = [_runner(h, b, device, threads) for h, b in zip(handles, backends)]
    try:
        calls = [r.bind(random_inputs(h.inputs, count=batch, seed=0).load(np.arange(batch)))
                 for r, h in zip(runners, handles)]
        per_round = _calls_per_round(calls, [h.path.name for h in handles], rounds, budget_s)
        times: list[list[float]] = [[] for _ in calls]
        clock = time.perf_counter
        for r in range(rounds):
            progress.report(r / rounds, f"timing {len(calls)} models side by side, round {r + 1} of {rounds}")
            for call, found in zip(calls, times):
                for _ in range(per_round):
                    t0 = clock()
                    call()
                    found.append(clock() - t0)
        return [Timing.from_seconds(t) for t in times]
    finally:
        for runner in runners:
            runner.close()


def _runner(handle: ModelHandle, backend: str, device: str, threads: int | None) -> Runner:
    if backend == OPENVINO_DEFAULT:
        check_available("openvino", device)
        return OpenVinoRunner(handle, device, threads, as_deployed=True)
    return open_runner(handle, backend, device, threads)


def _calls_per_round(calls: Sequence, names: Sequence[str], rounds: int, budget_s: float) -> int:
    """Warm every model up, then fit the rounds into the budget (at least 3 calls per round)."""
    return max(3, min(50, int(budget_s / rounds / max(_warm_up(calls, names), 1e-6))))


def _warm_up(calls: Sequence, names: Sequence[str]) -> float:
    """Run each call three times and return the seconds one call of each took together. A model
    that cannot run its inputs fails here, in one line, before any timing."""
    slowest = 0.0
    for call, name in zip(calls, names):
        try:
            call()
        except Exception as exc:  # the runtime's own error, raised by its bound call
            raise BackendError(f"{name} failed on its inputs while timing: {first_line(exc)}") from None
        for _ in range(2):
            call()
        t0 = time.perf_counter()
        call()
        slowest += time.perf_counter() - t0
    return slowest


def busy_note(timings: Sequence[Timing], others_cpus: float | None = None) -> str | None:
    """Why these timings should not be trusted, or None: uneven runs, other processes holding the
    CPUs while timing (`others_cpus`, from measure.load), or a loaded machine."""
    taken = others_note(others_cpus) if others_cpus is not None else None
    if taken:  # the cause, when we saw it: named first
        return taken
    worst = max((t.spread for t in timings), default=0.0)
    if worst > BUSY_SPREAD:
        return (f"timings varied by {worst:.0%} between runs (interquartile range over median): the machine was busy, "
                "so the speed-ups are uncertain; measure again on an idle machine")
    try:
        load = os.getloadavg()[0]
    except OSError:
        return None
    cpus = os.cpu_count() or 1
    if load > 1.5 * cpus:
        return f"the machine was loaded (load average {load:.1f} on {cpus} CPUs) while timing: the speed-ups are uncertain"
    return None


@dataclass(frozen=True)
class DataTiming:
    """Batch-1 latency of a model whose cost depends on its input (an early-exit model): the
    average over real samples, which is what a stream of requests costs, and its spread."""

    mean_ms: float
    low_ms: float  # 95 % confidence interval of the mean
    high_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    samples: int
    passes: int

    @classmethod
    def from_ms(cls, per_sample_ms: np.ndarray, passes: int) -> DataTiming:
        ms = np.asarray(per_sample_ms, dtype=float)
        half = 1.96 * float(ms.std(ddof=1)) / math.sqrt(len(ms)) if len(ms) > 1 else 0.0
        p50, p90, p99 = np.percentile(ms, [50, 90, 99])
        return cls(float(ms.mean()), float(ms.mean() - half), float(ms.mean() + half), float(p50), float(p90), float(p99),
                   len(ms), passes)

    def to_dict(self) -> dict:
        return asdict(self)


def time_over_data(
    handles: Sequence[ModelHandle],
    dataset: Dataset,
    *,
    backend: str = "ort",
    device: str = "cpu",
    threads: int | None = None,
    samples: int = 400,
    budget_s: float = 8.0,
    progress: Progress | None = None,
) -> tuple[list[DataTiming], Speedup]:
    """Each model run on the same samples one at a time, the models alternating on every sample
    (so drift hits them alike); a sample's time is its median over the passes. Returns each
    model's timing and the first's average over the second's as a speed-up, its interval by
    resampling the samples (paired)."""
    progress = progress or silent()
    chosen = np.unique(np.linspace(0, len(dataset) - 1, min(samples, len(dataset))).astype(np.int64))
    runners = [open_runner(h, backend, device, threads) for h in handles]
    try:
        arrays = [dataset.load(chosen[i:i + 1]) for i in range(len(chosen))]
        calls = [[r.bind(a) for a in arrays] for r in runners]
        one = _warm_up([c[0] for c in calls], [h.path.name for h in handles])
        passes = max(1, min(5, int(budget_s / max(one * len(chosen), 1e-6))))
        times = np.zeros((len(handles), passes, len(chosen)))
        clock = time.perf_counter
        for p in range(passes):
            progress.report(p / passes, f"timing {len(handles)} models on {len(chosen)} samples, pass {p + 1} of {passes}")
            for s in range(len(chosen)):
                order = range(len(handles)) if (s + p) % 2 == 0 else reversed(range(len(handles)))
                for m in order:
                    t0 = clock()
                    calls[m][s]()
                    times[m, p, s] = clock() - t0
        per_model = np.median(times, axis=1) * 1000.0  # [models, samples]
    finally:
        for runner in runners:
            runner.close()
    timings = [DataTiming.from_ms(ms, passes) for ms in per_model]
    return timings, _paired_speedup(per_model[0], per_model[1]) if len(handles) > 1 else Speedup(1.0, 1.0, 1.0)


def _paired_speedup(baseline_ms: np.ndarray, variant_ms: np.ndarray, resamples: int = 2000) -> Speedup:
    rng = np.random.default_rng(0)
    picks = rng.integers(0, len(baseline_ms), (resamples, len(baseline_ms)))
    ratios = baseline_ms[picks].mean(1) / variant_ms[picks].mean(1)
    low, high = np.percentile(ratios, [2.5, 97.5])
    return Speedup(float(baseline_ms.mean() / variant_ms.mean()), float(low), float(high))
