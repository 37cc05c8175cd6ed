"""The original's latency, kept once per experiment and backend/device/threads, as a yardstick.

Each variant's speed-up is the ratio of two medians from the same alternating rounds, so it is
consistent with the latencies beside it; but a row timed while a neighbour hogged the machine has
a slow original and a slow variant, and its ratio can swing far from the next row's. The first
time the original is timed in an experiment on a backend/device/threads, its median is kept in
the experiment folder; a later row whose original ran more than REFERENCE_DRIFT away from it is
marked busy, with both figures, so nobody compares it with the other rows as if it were like.
"""

from __future__ import annotations

import json
from pathlib import Path

from paretolab.core.files import write_json_atomic

REFERENCE_FILE = "original_timing.json"
REFERENCE_DRIFT = 0.30  # the original re-timed this much slower or faster than its reference: the load changed


def reference_key(backend: str, device: str, threads: int | None) -> str:
    return f"{backend}/{device}/{threads or 'default'} threads"


def read_references(folder: Path) -> dict[str, float]:
    try:
        doc = json.loads((folder / REFERENCE_FILE).read_text())
        return {str(k): float(v["median_ms"]) for k, v in doc.items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def check_against_reference(folder: Path, timing: dict, *, backend: str, device: str,
                            threads: int | None) -> str | None:
    """Keep the original's median as this experiment's reference when there is none yet; else a
    busy note when this row's original differs from it by more than REFERENCE_DRIFT. `timing` (a
    scorecard's timing record) gains the reference it was compared with."""
    if "over_data" in timing or "baseline" not in timing:  # averages over samples: another measure
        return None
    now = float(timing["baseline"]["median_ms"])
    key = reference_key(backend, device, threads)
    references = read_references(folder)
    if key not in references:
        kept = {k: {"median_ms": v} for k, v in references.items()}
        write_json_atomic(folder / REFERENCE_FILE, {**kept, key: {"median_ms": now}})
        timing["reference_ms"] = now
        return None
    reference = references[key]
    timing["reference_ms"] = reference
    if reference > 0 and abs(now / reference - 1.0) > REFERENCE_DRIFT:
        return (f"the original took {now:.4f} ms in this variant's rounds but {reference:.4f} ms when first timed in "
                f"this experiment on {key}: the machine's load changed, so compare this speed-up with other rows "
                "with care; measure again on an idle machine")
    return None
