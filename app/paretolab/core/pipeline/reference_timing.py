"""The original's latency, kept once per experiment and backend/device/threads, as a yardstick.

Each variant's speed-up is the ratio of two medians from the same alternating rounds, so it is
consistent with the latencies beside it; but a row timed while a neighbour hogged the machine has
a slow original and a slow variant, and its ratio can swing far from the next row's. The first
variant timed in an experiment on a backend/device/threads records the original's median as the
reference (in its own metrics: the folder holds only the variants' files); a later row whose
original ran more than REFERENCE_DRIFT away from it is marked busy, with both figures, so nobody
compares it with the other rows as if it were like.
"""

from __future__ import annotations

import json
from pathlib import Path

from paretolab.core.measure.records import TimingRecord

REFERENCE_DRIFT = 0.30  # the original re-timed this much slower or faster than its reference: the load changed


def reference_key(backend: str, device: str, threads: int | None) -> str:
    return f"{backend}/{device}/{threads or 'default'} threads"


def read_references(folder: Path) -> dict[str, float]:
    """The reference of each backend/device/threads, from the variants saved in `folder`: the one
    the earliest of them recorded (a damaged or foreign metrics file is passed over)."""
    found: dict[str, tuple[float, float]] = {}  # key -> (file time, reference)
    for path in Path(folder).glob("*.metrics.json"):
        try:
            timing = TimingRecord.from_dict(json.loads(path.read_text())["metrics"]["timing"])
            if timing.reference_key is None or timing.reference_ms is None:
                continue
            key, ms, when = str(timing.reference_key), float(timing.reference_ms), path.stat().st_mtime
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            continue
        if key not in found or when < found[key][0]:
            found[key] = (when, ms)
    return {k: ms for k, (_, ms) in found.items()}


def check_against_reference(folder: Path, timing: dict, *, backend: str, device: str,
                            threads: int | None) -> str | None:
    """This row's original against the experiment's reference: a busy note when they differ by
    more than REFERENCE_DRIFT. `timing` (a scorecard's timing record) gains the reference it was
    compared with, or becomes the reference when the experiment has none yet."""
    record = TimingRecord.from_dict(timing)
    rounds = record.baseline.median_ms if record.baseline and record.over_data is None else None
    if rounds is None:  # averages over samples: another measure
        return None
    now = float(rounds)
    key = reference_key(backend, device, threads)
    reference = read_references(folder).get(key, now)
    timing["reference_key"], timing["reference_ms"] = key, reference
    if reference > 0 and abs(now / reference - 1.0) > REFERENCE_DRIFT:
        return (f"the original took {now:.4f} ms in this variant's rounds but {reference:.4f} ms when first timed in "
                f"this experiment on {key}: the machine's load changed, so compare this speed-up with other rows "
                "with care; measure again on an idle machine")
    return None


def with_drift(timing: dict, drifted: str | None) -> dict:
    """`timing` marked busy with the drift note too, when the original ran far from the reference:
    the row's speed-up is its own rounds' ratio, and against other rows it may mislead."""
    if drifted:
        timing["busy"] = "; ".join(filter(None, [timing.get("busy"), drifted]))
    return timing
