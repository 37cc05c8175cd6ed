"""The numbers a variant is judged by, measured like for like.

The original runs on the variant's own backend, device and thread count, in the same session:
accuracy on the test split (reported), accuracy on the validation split (what sweeps and the
chart select by, so the test split is never used to choose), and latency timed side by side
in alternating rounds, with the speed-up's confidence interval and a note when the machine was
too busy to trust it.
"""

from __future__ import annotations

import time

from paretolab.core.measure.data import Dataset
from paretolab.core.measure.evaluate import EvalResult, evaluate
from paretolab.core.measure.load import cpu_snapshot, others_cpus
from paretolab.core.measure.machine import machine_info, this_process
from paretolab.core.measure.measurement import Measurement
from paretolab.core.measure.metrics import fidelity_dict
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.runtimes import TORCH_BACKENDS, default_backend, openvino_default_precision
from paretolab.core.measure.timing import OPENVINO_DEFAULT, Speedup, busy_note, time_over_data, time_side_by_side
from paretolab.core.model.exits import average_macs, early_exit_info
from paretolab.core.model.handle import ModelHandle
from paretolab.core.model.torch_artifact import as_program
from paretolab.core.progress import Progress, silent


def scorecard(original: ModelHandle, variant: ModelHandle, data: DataPlan, *, backend: str, device: str = "cpu",
              threads: int | None = None, progress: Progress | None = None) -> dict:
    """A variant's metrics document: the variant and the original (both on `backend`/`device`),
    the speed-up with its interval, the validation scores, notes and the machine."""
    progress = progress or silent()
    started = time.perf_counter()
    like_for_like = backend in TORCH_BACKENDS and variant.format == "torch.export" and original.format != "torch.export"
    if like_for_like:  # a program run eagerly pays ~0.2 ms a call in input checks that the module it came from does not
        original = as_program(original)
    progress.report(0.84, f"evaluating the variant and the original on {data.test.name}")
    kinds = data.output_kinds
    mine = _evaluate(variant, data.test, backend, device, threads, original, kinds)
    base = _evaluate(original, data.test, backend, device, threads)
    progress.report(0.9, f"timing the variant and the original side by side on {backend}/{device}")
    (base_ms, mine_ms), timing, faster = latencies(original, variant, data.test, backend=backend, device=device,
                                                   threads=threads)
    metrics: dict = {
        "variant": _measurement(variant, mine, backend, device, threads, mine_ms).to_dict(),
        "baseline": _measurement(original, base, backend, device, threads, base_ms, reference=False).to_dict(),
        "speedup": faster.value,
        "timing": timing,
        "size_ratio": variant.size_bytes / original.size_bytes if original.size_bytes else None,
        "notes": list(data.notes),
        "machine": machine_info(),
        "measured_by": this_process(),
        **({"exits": mine.exits} if mine.exits else {}),
    }
    if like_for_like:
        metrics["notes"].append("the original ran as a torch.export program, as the variant does: the speed-up is the "
                                "technique's, not the file format's")
    if data.validation is not data.test:
        progress.report(0.96, f"evaluating on {data.validation.name} (what sweeps and the chart select by)")
        metrics["validation"] = {
            "dataset": data.validation.name,
            "variant": _scores(_evaluate(variant, data.validation, backend, device, threads, original, kinds)),
            "baseline": _scores(_evaluate(original, data.validation, backend, device, threads), reference=False),
        }
    timing["notes"] = timing_notes(timing, faster, f"{backend}/{device}")
    metrics["notes"] += timing["notes"]
    if mine.fidelity:
        metrics["fidelity"] = [fidelity_dict(f) for f in mine.fidelity]  # per output: its kind, measures and verdict
    metrics["measured_by"]["seconds"] = time.perf_counter() - started
    return metrics


def timing_notes(timing: dict, faster: Speedup, where: str) -> list[str]:
    """What a timing earns a variant's notes: busy (the table, chart, report and CLI then mark its
    speed-up as uncertain), no measurable speed-up, slower. The timing record keeps them too, so a
    re-profile replaces them instead of leaving a stale "busy" beside a clean new timing."""
    notes = [timing["busy"]] if timing.get("busy") else []
    if faster.tie:
        notes.append(f"no measurable speed-up: {faster.text()} against the original on {where}")
    elif faster.high < 1.0:
        notes.append(f"this variant is slower than the original on {where} ({faster.text()})")
    return notes


def latencies(original: ModelHandle, variant: ModelHandle, data: Dataset, *, backend: str, device: str = "cpu",
              threads: int | None = None, progress: Progress | None = None) -> tuple[tuple[float, float], dict, Speedup]:
    """The original's and the variant's batch-1 latency (ms), the timing record, and the speed-up.
    A model whose cost depends on its input (early exit) is timed on the samples of `data` — its
    number is the average, with p50/p90/p99 — and the original beside it on the same samples;
    any other pair on one input in alternating rounds, by the median. Both latencies come from the
    same rounds, so the speed-up is their ratio. The record says when the machine was busy (uneven
    runs, or other processes holding the CPUs), and on an OpenVINO CPU whose default precision is
    not f32 it also holds the speed-up against the original as deployed (no precision hint)."""
    start = cpu_snapshot()
    if variant.format == "onnx" and early_exit_info(variant.native) is not None:
        (base_t, mine_t), faster = time_over_data([original, variant], data, backend=backend, device=device,
                                                  threads=threads, progress=progress)
        others = others_cpus(start, cpu_snapshot())
        timing = {"over_data": {"dataset": data.name, "variant": mine_t.to_dict(), "baseline": base_t.to_dict()},
                  "speedup_low": faster.low, "speedup_high": faster.high,
                  "rounds": f"each of {mine_t.samples} samples of {data.name} in turn, batch 1, the average",
                  "others_cpus": others, "busy": busy_note([], others_cpus=others)}
        return (base_t.mean_ms, mine_t.mean_ms), timing, faster
    default = openvino_default_precision(device) if backend == "openvino" and device == "cpu" else "f32"
    handles, backends = [original, variant], [backend, backend]
    if default != "f32":
        handles, backends = [*handles, original], [*backends, OPENVINO_DEFAULT]
    base, mine, *deployed = time_side_by_side(handles, backend=backends, device=device, threads=threads,
                                              progress=progress)
    others = others_cpus(start, cpu_snapshot())
    faster = Speedup.of(base, mine)
    timing = {"variant": mine.to_dict(), "baseline": base.to_dict(), "speedup_low": faster.low,
              "speedup_high": faster.high, "rounds": "alternating, batch 1", "others_cpus": others,
              "busy": busy_note([*deployed, base, mine], others_cpus=others)}
    if deployed:
        vs = Speedup.of(deployed[0], mine)
        timing["openvino_default"] = {"precision": default, "baseline": deployed[0].to_dict(), "speedup": vs.value,
                                      "speedup_low": vs.low, "speedup_high": vs.high}
    return (base.median_ms, mine.median_ms), timing, faster


def _evaluate(handle: ModelHandle, dataset: Dataset, backend: str, device: str, threads: int | None,
              reference: ModelHandle | None = None, output_kinds: dict[str, str] | None = None) -> EvalResult:
    """On PyTorch the reference is the original on PyTorch, eager (FP32 there); elsewhere on its own runtime's CPU."""
    own = "torch" if backend in TORCH_BACKENDS else default_backend(reference) if reference else None
    return evaluate(handle, dataset, backend=backend, device=device, reference=reference,
                    reference_backend=own if reference else None, threads=threads, output_kinds=output_kinds)


def _scores(result: EvalResult, reference: bool = True) -> dict:
    """Top-1 and fidelity; the original (`reference` False) agrees with itself perfectly."""
    return {"top1": result.top1, **_fidelity(result, reference)}


def _fidelity(result: EvalResult, reference: bool) -> dict:
    if not reference:
        classifier = result.top1 is not None or result.outputs_are_classes
        return {"agreement": 1.0 if classifier else None, "cosine": 1.0, "sqnr_db": None}
    return {"agreement": result.agreement, "cosine": result.cosine, "sqnr_db": result.sqnr_db,
            "verdict": result.verdict, "verdict_why": result.verdict_why}


def _measurement(handle: ModelHandle, result: EvalResult, backend: str, device: str, threads: int | None, latency_ms: float,
                 reference: bool = True) -> Measurement:
    graph = handle.layer_graph()
    info = early_exit_info(handle.native) if handle.format == "onnx" else None
    macs = average_macs(info, result.exits) if info and result.exits else graph.total_macs  # early exit: the average
    return Measurement(backend=backend, device=device, threads=threads, top1=result.top1, top5=result.top5,
                       latency_ms=latency_ms, size_bytes=handle.size_bytes, params=graph.total_params, macs=macs,
                       dataset=result.dataset, **_fidelity(result, reference))
