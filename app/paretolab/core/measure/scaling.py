"""How a sequence model's cost grows with its sequence length: MACs (from the layer graph at each
length) and batch-1 latency (one runner, fed each length in turn), side by side.

Attention makes MACs grow faster than the sequence (its score and value products are quadratic),
so a model's cost at 512 tokens is not four times its cost at 128; users pick a serving length
from this table, and compression choices shift with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from paretolab.core.errors import InputShapeError
from paretolab.core.measure.data import random_inputs
from paretolab.core.measure.plan import id_ranges
from paretolab.core.measure.profile import LatencyStats, time_calls
from paretolab.core.measure.runtimes import check_available, default_backend, open_runner
from paretolab.core.model.handle import ModelHandle, load_model
from paretolab.core.progress import Progress, silent
from paretolab.core.tensors import TensorSpec, is_free


@dataclass
class ScalingPoint:
    sequence: int
    macs: int | None
    median_ms: float
    p90_ms: float

    @property
    def ms_per_token(self) -> float:
        return self.median_ms / self.sequence


@dataclass
class ScalingResult:
    model: str
    backend: str
    device: str
    points: list[ScalingPoint]

    def to_dict(self) -> dict:
        return {"model": self.model, "backend": self.backend, "device": self.device,
                "points": [{**asdict(p), "ms_per_token": p.ms_per_token} for p in self.points]}


def sequence_axes(handle: ModelHandle) -> dict[str, int]:
    """The sequence axis of each input that has one: the free axis its file declares that is not
    the batch. Refused when the model's sequence length is fixed."""
    declared = {s.name: s for s in handle.source.inputs}
    axes = {}
    for spec in handle.inputs:
        free = [axis for axis, dim in enumerate(declared.get(spec.name, spec).shape)
                if is_free(dim) and axis != spec.batch_axis]
        if len(free) == 1:
            axes[spec.name] = free[0]
    if not axes:
        raise InputShapeError(f"{handle.path.name} has no free sequence axis (its inputs are "
                              f"{', '.join(str(s) for s in handle.source.inputs)}); export it with a dynamic sequence")
    return axes


def sequence_scaling(handle: ModelHandle, lengths: Sequence[int], *, backend: str | None = None, device: str = "cpu",
                     threads: int | None = None, runs: int = 50, budget_s: float = 2.0,
                     progress: Progress | None = None) -> ScalingResult:
    """MACs and batch-1 latency of `handle` at each sequence length in `lengths`."""
    progress = progress or silent()
    backend = backend or default_backend(handle)
    check_available(backend, device)
    axes = sequence_axes(handle)
    ranges = id_ranges(handle)
    onnx = None if handle.runs_on_openvino_only else handle.onnx_file()  # one export, free sequence: every length
    points = []
    with open_runner(handle, backend, device, threads) as runner:
        for i, length in enumerate(sorted(set(lengths))):
            progress.report(i / len(lengths), f"sequence {length}: MACs and latency")
            specs = [_at_length(s, axes.get(s.name), length) for s in handle.inputs]
            shapes: dict[str | None, tuple[int, ...]] = {s.name: tuple(int(d) for d in s.shape if d is not None)
                                                         for s in specs}
            graph = load_model(onnx or handle.path, input_shapes=shapes).layer_graph()
            inputs = random_inputs(specs, count=1, id_ranges=ranges).load(np.arange(1))
            call = runner.bind(inputs)
            stats = LatencyStats.from_times(1, time_calls(call, warmup=3, runs=runs, budget_s=budget_s))
            points.append(ScalingPoint(length, graph.total_macs if graph.macs_complete else None, stats.median_ms,
                                       stats.p90_ms))
    progress.report(1.0, f"{len(points)} sequence lengths")
    return ScalingResult(handle.path.name, backend, device, points)


def _at_length(spec: TensorSpec, axis: int | None, length: int) -> TensorSpec:
    if axis is None:
        return spec
    shape = list(spec.shape)
    shape[axis] = length
    return TensorSpec(spec.name, tuple(shape), spec.dtype, spec.batch_axis)
