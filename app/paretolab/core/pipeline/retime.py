"""Timing a measured variant again beside its original (the studio's re-profile, the demo's build
script): one path, so the reference check, the busy note and the timing's own notes are the same
wherever a variant is re-timed."""

from __future__ import annotations

from paretolab.core.compress.variant import Variant
from paretolab.core.measure.data import Dataset
from paretolab.core.model.handle import ModelHandle, load_model
from paretolab.core.pipeline.reference_timing import check_against_reference, with_drift
from paretolab.core.pipeline.scorecard import latencies, timing_notes
from paretolab.core.progress import Progress


def retimed(original: ModelHandle, variant: Variant, test: Dataset, *, threads: int | None = None,
            progress: Progress | None = None) -> Variant:
    """`variant` with a new side-by-side timing on its own backend and device; the notes the old
    timing earned are replaced by this one's. Nothing is saved: the caller keeps it in its experiment."""
    m = variant.measured
    threads = threads or m.threads
    (base_ms, mine_ms), timing, faster = latencies(original, load_model(variant.artifact), test, backend=m.backend,
                                                   device=m.device, threads=threads, progress=progress)
    with_drift(timing, check_against_reference(variant.artifact.parent, timing, backend=m.backend, device=m.device,
                                               threads=threads))
    timing["notes"] = timing_notes(timing, faster, f"{m.backend}/{m.device}")
    return variant.remeasured(base_ms, mine_ms, timing, faster)
