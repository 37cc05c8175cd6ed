"""The numbers a variant is judged by, measured like for like.

The original runs on the variant's own backend, device and thread count, in the same session:
accuracy on the test split (reported), accuracy on the validation split (what sweeps and the
chart select by, so the test split is never used to choose), and latency timed side by side
in alternating rounds, with the speed-up's confidence interval and a note when the machine was
too busy to trust it.
"""

from __future__ import annotations

from paretolab.core.measure.data import Dataset
from paretolab.core.measure.evaluate import EvalResult, evaluate
from paretolab.core.measure.machine import machine_info
from paretolab.core.measure.measurement import Measurement
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.runtimes import default_backend
from paretolab.core.measure.timing import Speedup, busy_note, time_side_by_side
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress, silent


def scorecard(original: ModelHandle, variant: ModelHandle, data: DataPlan, *, backend: str, device: str = "cpu",
              threads: int | None = None, progress: Progress | None = None) -> dict:
    """A variant's metrics document: the variant and the original (both on `backend`/`device`),
    the speed-up with its interval, the validation scores, notes and the machine."""
    progress = progress or silent()
    progress.report(0.84, f"evaluating the variant and the original on {data.test.name}")
    mine = _evaluate(variant, data.test, backend, device, threads, original)
    base = _evaluate(original, data.test, backend, device, threads)
    progress.report(0.9, f"timing the variant and the original side by side on {backend}/{device}")
    base_t, mine_t = time_side_by_side([original, variant], backend=backend, device=device, threads=threads)
    faster = Speedup.of(base_t, mine_t)
    metrics: dict = {
        "variant": _measurement(variant, mine, backend, device, threads, mine_t.median_ms).to_dict(),
        "baseline": _measurement(original, base, backend, device, threads, base_t.median_ms, reference=False).to_dict(),
        "speedup": faster.value,
        "timing": {"variant": mine_t.to_dict(), "baseline": base_t.to_dict(), "speedup_low": faster.low,
                   "speedup_high": faster.high, "rounds": "alternating, batch 1"},
        "size_ratio": variant.size_bytes / original.size_bytes if original.size_bytes else None,
        "notes": list(data.notes),
        "machine": machine_info(),
    }
    if data.validation is not data.test:
        progress.report(0.96, f"evaluating on {data.validation.name} (what sweeps and the chart select by)")
        metrics["validation"] = {
            "dataset": data.validation.name,
            "variant": _scores(_evaluate(variant, data.validation, backend, device, threads, original)),
            "baseline": _scores(_evaluate(original, data.validation, backend, device, threads), reference=False),
        }
    busy = busy_note([base_t, mine_t])
    if busy:
        metrics["notes"].append(busy)
    if faster.tie:
        metrics["notes"].append(f"no measurable speed-up: {faster.text()} against the original on {backend}/{device}")
    elif faster.high < 1.0:
        metrics["notes"].append(f"this variant is slower than the original on {backend}/{device} ({faster.text()})")
    return metrics


def _evaluate(handle: ModelHandle, dataset: Dataset, backend: str, device: str, threads: int | None,
              reference: ModelHandle | None = None) -> EvalResult:
    return evaluate(handle, dataset, backend=backend, device=device, reference=reference,
                    reference_backend=default_backend(reference) if reference else None,
                    threads=threads)


def _scores(result: EvalResult, reference: bool = True) -> dict:
    """Top-1 and fidelity; the original (`reference` False) agrees with itself perfectly."""
    return {"top1": result.top1, **_fidelity(result, reference)}


def _fidelity(result: EvalResult, reference: bool) -> dict:
    if not reference:
        classifier = result.top1 is not None or result.outputs_are_classes
        return {"agreement": 1.0 if classifier else None, "cosine": 1.0, "sqnr_db": None}
    return {"agreement": result.agreement, "cosine": result.cosine, "sqnr_db": result.sqnr_db}


def _measurement(handle: ModelHandle, result: EvalResult, backend: str, device: str, threads: int | None, latency_ms: float,
                 reference: bool = True) -> Measurement:
    graph = handle.layer_graph()
    return Measurement(backend=backend, device=device, threads=threads, top1=result.top1, top5=result.top5,
                       latency_ms=latency_ms, size_bytes=handle.size_bytes, params=graph.total_params, macs=graph.total_macs,
                       dataset=result.dataset, **_fidelity(result, reference))
