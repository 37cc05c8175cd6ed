"""Latency, throughput, memory and per-layer time of a model on one backend.

Each batch size is warmed up, then timed call by call until a run count or a time budget
is reached. Per-layer times come from a separate pass with the runtime's own profiler
(ONNX Runtime's trace, OpenVINO's performance counters), so profiling overhead never
touches the latency numbers; they are mapped onto LayerGraph names.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paretolab.core.files import work_prefix
from paretolab.core.measure.data import random_inputs
from paretolab.core.measure.layer_times import LayerTime, map_layer_times
from paretolab.core.measure.machine import machine_info
from paretolab.core.measure.runtimes import (
    BackendError,
    OpenVinoRunner,
    OrtRunner,
    check_available,
    default_backend,
    open_runner,
)
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress, silent


@dataclass
class LatencyStats:
    batch: int
    runs: int
    median_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    throughput: float  # samples per second at this batch size, from the median

    @classmethod
    def from_times(cls, batch: int, seconds: Sequence[float]) -> LatencyStats:
        ms = np.asarray(seconds) * 1000.0
        median = float(np.median(ms))
        return cls(
            batch=batch,
            runs=len(ms),
            median_ms=median,
            p90_ms=float(np.percentile(ms, 90)),
            p99_ms=float(np.percentile(ms, 99)),
            mean_ms=float(ms.mean()),
            std_ms=float(ms.std(ddof=1)) if len(ms) > 1 else 0.0,
            min_ms=float(ms.min()),
            throughput=batch * 1000.0 / median if median > 0 else float("inf"),
        )


@dataclass
class ProfileResult:
    model: str
    format: str
    backend: str
    device: str
    threads: int | None
    latency: list[LatencyStats]
    file_size_bytes: int
    peak_rss_mib: float
    rss_increase_mib: float
    async_throughput: float | None = None  # samples/s with several requests in flight
    async_requests: int | None = None
    layers: list[LayerTime] = field(default_factory=list)
    machine: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def latency_at(self, batch: int) -> LatencyStats:
        return next(s for s in self.latency if s.batch == batch)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)


class _PeakMemory:
    """Peak resident memory of this process while the block runs.

    On Linux the kernel keeps the high-water mark (VmHWM) and lets us reset it, which costs
    nothing while timing. Elsewhere a background thread samples RSS every 20 ms; that thread
    competes with the runtime for cores, so it is only the fallback.
    """

    _STATUS = Path("/proc/self/status")
    _CLEAR = Path("/proc/self/clear_refs")

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self.start = self._process.memory_info().rss
        self.peak = self.start
        self._kernel = self._reset_high_water_mark()
        self._stop = threading.Event()
        self._thread = None if self._kernel else threading.Thread(target=self._sample, daemon=True)

    def _reset_high_water_mark(self) -> bool:
        try:
            self._CLEAR.write_text("5")
            return self._high_water_mark() is not None
        except OSError:
            return False

    def _high_water_mark(self) -> int | None:
        for line in self._STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        return None

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._process.memory_info().rss)

    def __enter__(self) -> _PeakMemory:
        if self._thread is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
        kernel_peak = self._high_water_mark() if self._kernel else None
        self.peak = max(self.peak, kernel_peak or 0, self._process.memory_info().rss)


def time_calls(
    call: Callable[[], object], *, warmup: int, runs: int, budget_s: float, progress: Progress | None = None
) -> list[float]:
    """Seconds per call: `warmup` untimed calls, then up to `runs` timed ones within `budget_s`
    (at least 5, so a slow model still gets a median)."""
    for _ in range(warmup):
        call()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    clock = time.perf_counter
    while len(times) < runs and (len(times) < 5 or clock() < deadline):
        t0 = clock()
        call()
        times.append(clock() - t0)
        if progress is not None and len(times) % 16 == 0:
            progress.check()
    return times


def profile_model(
    handle: ModelHandle,
    *,
    backend: str | None = None,
    device: str = "cpu",
    batch_sizes: Sequence[int] = (1, 8),
    threads: int | None = None,
    warmup: int = 10,
    runs: int = 200,
    budget_s: float = 5.0,
    per_layer: bool = True,
    async_budget_s: float = 1.0,
    progress: Progress | None = None,
) -> ProfileResult:
    """Profile `handle` on one backend; inputs are random, shaped like the model's."""
    progress = progress or silent()
    backend = backend or default_backend(handle)
    check_available(backend, device)
    steps = len(batch_sizes) + int(per_layer) + int(backend == "openvino")
    with _PeakMemory() as memory:
        progress.report(0.0, f"opening {handle.path.name} on {backend}/{device}")
        with open_runner(handle, backend, device, threads) as runner:
            stats: list[LatencyStats] = []
            notes: list[str] = []
            for i, batch in enumerate(batch_sizes):
                progress.report(i / steps, f"timing batch {batch}")
                inputs = _inputs_for(handle, batch)
                try:
                    call = runner.bind(inputs)
                except BackendError as exc:
                    if not stats and i == len(batch_sizes) - 1:
                        raise
                    notes.append(f"batch {batch} skipped: {exc} (the model's input shape is fixed)")
                    continue
                stats.append(
                    LatencyStats.from_times(
                        batch, time_calls(call, warmup=warmup, runs=runs, budget_s=budget_s, progress=progress)
                    )
                )
    result = ProfileResult(
        model=handle.path.name,
        format=handle.format,
        backend=backend,
        device=device,
        threads=threads,
        latency=stats,
        file_size_bytes=handle.size_bytes,
        peak_rss_mib=memory.peak / 2**20,
        rss_increase_mib=max(0.0, (memory.peak - memory.start) / 2**20),
        machine=machine_info(),
        notes=notes,
    )
    done = len(batch_sizes)
    if backend == "openvino":
        progress.report(done / steps, "timing asynchronous throughput")
        result.async_throughput, result.async_requests = _openvino_async_throughput(handle, device, threads, async_budget_s)
        done += 1
    if per_layer:
        progress.report(done / steps, "timing each layer")
        result.layers = layer_breakdown(handle, backend, device, threads)
    progress.report(1.0, f"profiled {handle.path.name}")
    return result


def _inputs_for(handle: ModelHandle, batch: int) -> list[np.ndarray]:
    specs = [s for s in handle.inputs]
    data = random_inputs(specs, count=batch, seed=0)
    return data.load(np.arange(batch))


def _openvino_async_throughput(handle: ModelHandle, device: str, threads: int | None, budget_s: float) -> tuple[float, int]:
    import openvino as ov

    runner = OpenVinoRunner(handle, device, threads, hint="THROUGHPUT")
    try:
        jobs = int(runner.compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        queue = ov.AsyncInferQueue(runner.compiled, jobs)
        inputs = _inputs_for(handle, 1)
        for _ in range(jobs):  # warm-up
            queue.start_async(inputs)
        queue.wait_all()
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < budget_s:
            queue.start_async(inputs)
            count += 1
        queue.wait_all()
        return count / (time.perf_counter() - start), jobs
    finally:
        runner.close()


def layer_breakdown(handle: ModelHandle, backend: str, device: str, threads: int | None, runs: int = 20) -> list[LayerTime]:
    """Mean time per layer per run (batch 1) from the runtime's profiler; [] where it has none."""
    inputs = _inputs_for(handle, 1)
    originals: dict[str, list[str]] = {}
    if backend == "ort":
        raw = _ort_layer_times(handle, device, threads, inputs, runs)
    elif backend == "openvino":
        raw, originals = _openvino_layer_times(handle, device, threads, inputs, runs)
    else:
        return []
    return map_layer_times(raw, handle.layer_graph(), originals)


def _ort_layer_times(handle: ModelHandle, device: str, threads: int | None, inputs: list[np.ndarray], runs: int,
                     warmup: int = 3) -> dict[str, tuple[str, float]]:
    """One profiled session: `warmup` + `runs` calls; each node's first `warmup` events are the
    warm-up (events come in time order) and are left out of the mean."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix=work_prefix("ortprof")) as folder:
        runner = OrtRunner(handle, device, threads, profile_prefix=str(Path(folder) / "profile"))
        call = runner.bind(inputs)
        for _ in range(warmup + runs):
            call()
        events = json.loads(Path(runner.end_profiling()).read_text())
    durations: dict[str, tuple[str, list[float]]] = {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        name = event["name"].removesuffix("_kernel_time")
        durations.setdefault(name, (event.get("args", {}).get("op_name", ""), []))[1].append(event["dur"] / 1000.0)
    return {name: (op, sum(ms[warmup:]) / runs) for name, (op, ms) in durations.items() if len(ms) > warmup}


def _openvino_layer_times(
    handle: ModelHandle, device: str, threads: int | None, inputs: list[np.ndarray], runs: int
) -> tuple[dict[str, tuple[str, float]], dict[str, list[str]]]:
    """Mean time per executed node, and the model nodes each was fused from."""
    runner = OpenVinoRunner(handle, device, threads, perf_counters=True)
    try:
        originals = _fused_from(runner.compiled)
        call = runner.bind(inputs)
        call()
        totals: dict[str, tuple[str, float]] = {}
        for _ in range(runs):
            call()
            for info in runner.request.get_profiling_info():
                if info.status.name != "EXECUTED":
                    continue
                op, total = totals.get(info.node_name, (info.node_type, 0.0))
                totals[info.node_name] = (op, total + info.real_time.total_seconds() * 1000.0)
    finally:
        runner.close()
    return {name: (op, total / runs) for name, (op, total) in totals.items()}, originals


def _fused_from(compiled: Any) -> dict[str, list[str]]:
    """OpenVINO's executed graph names each node's origins in rt_info["originalLayersNames"]."""
    found: dict[str, list[str]] = {}
    for op in compiled.get_runtime_model().get_ordered_ops():
        info = op.get_rt_info()
        if "originalLayersNames" in info:
            names = [n for n in str(info["originalLayersNames"].astype(str)).split(",") if n]
            found[op.get_friendly_name()] = names
    return found
