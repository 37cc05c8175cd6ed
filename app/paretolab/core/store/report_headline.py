"""The report's first screen in plain words, for people who don't read code or charts: which
variant is the best trade-off, how much faster it runs (with its 95 % interval), what it costs in
accuracy and what it saves in size — and that broken or collapsed variants were left out."""

from __future__ import annotations

import html

from paretolab.core.units import percent, size

BEST_WITHIN = 0.01  # the best variant keeps the original's score within one point


def best_row(rows: list[dict], front: set[str]) -> dict | None:
    """The fastest variant on the front within one point of its original's score (the validation
    score the chart plots); none on the front: the fastest such variant anywhere. Broken and
    collapsed variants are never chosen."""
    bases = {r["backend"]: r for r in rows if r["technique"] == "baseline"}
    close = [r for r in rows if r["technique"] != "baseline" and r["backend"] in bases and not r["bad"]
             and r["score"] >= bases[r["backend"]]["score"] - BEST_WITHIN]
    close = [r for r in close if r["name"] in front] or close
    return max(close, key=lambda r: r["speedup"] or 0.0) if close else None


def _speed(best: dict) -> str:
    """Faster, slower, or no measurable change when the 95 % interval holds 1, said in one direction."""
    speed, low, high = best["speedup"] or 1.0, best.get("speedup_low"), best.get("speedup_high")
    per_input = (f": {best['latency_ms']:.3g} ms per input instead of {best['original_ms']:.3g} ms"
                 if best["original_ms"] else "")
    if low is not None and high is not None and low <= 1.0 <= high:
        return (f"<b>no measurable change</b> in speed ({speed:.2f}×, 95 % interval {low:.2f}–{high:.2f}× of the "
                f"original's){per_input}")
    if speed < 1.0:
        interval = f" (95 % interval {1 / high:.2f}–{1 / low:.2f}×)" if low is not None and high is not None else ""
        return f"<b>{1 / speed:.2f}× slower</b> than the original{interval}{per_input}"
    interval = f" (95 % interval {low:.2f}–{high:.2f}×)" if low is not None and high is not None else ""
    return f"<b>{speed:.2f}× faster</b> than the original{interval}{per_input}"


def _accuracy(best: dict, base: dict) -> str:
    """The change on the test split, in points of the measure the table shows."""
    if best["quality"] == "unknown":
        return (f"quality <b>unknown</b>: judged on random inputs ({html.escape(best['fidelity'])}); give real "
                "data (--data) to know whether it is faithful")
    if best["top1"] is not None and base["top1"] is not None:
        change = 100 * (best["top1"] - base["top1"])
        words = "no change" if abs(change) < 0.05 else f"{'+' if change > 0 else '−'}{abs(change):.1f} points"
        return (f"<b>{words}</b> of accuracy (test top-1 {percent(best['top1'])} against the original's "
                f"{percent(base['top1'])})")
    if best["agreement"] is not None:
        return f"gives the original's answer on <b>{100 * best['agreement']:.1f}%</b> of the test inputs"
    return f"on the test data, {html.escape(best['fidelity'])} to the original"


def _size(best: dict, base: dict) -> str:
    mine, original = best["size_bytes"], base["size_bytes"]
    if not (mine and original):
        return f"size {size(mine)}"
    ratio = original / mine
    if ratio >= 1.05:
        return f"<b>{ratio:.1f}× smaller</b> ({size(mine)} against {size(original)})"
    if ratio <= 0.95:
        return f"<b>{1 / ratio:.1f}× larger</b> ({size(mine)} against {size(original)})"
    return f"the <b>same size</b> ({size(mine)})"


def headline(rows: list[dict], front: set[str], measure: str) -> str:
    """The first screen: one sentence, then speed, accuracy and size on a line each, then what was left out."""
    best = best_row(rows, front)
    bad = [r["name"] for r in rows if r["bad"]]
    left_out = (f"<p class='warn'>⚠ Broken or collapsed, left out of this choice: {html.escape(', '.join(bad))} "
                "(marked ⚠ in the chart and table).</p>" if bad else "")
    chosen_how = (f"<p class='how'>How it was chosen: the fastest variant on the Pareto front that stays within 1 point of "
                  f"the original's {html.escape(measure)} (chosen on the validation split, reported on the test split)."
                  "</p>")
    if best is None:
        return (f"<section class='headline'><p class='lead'>No variant stayed within 1 point of the original's "
                f"{html.escape(measure)} without breaking; see the table for what each one cost.</p>"
                f"{chosen_how}{left_out}</section>")
    base = next(r for r in rows if r["technique"] == "baseline" and r["backend"] == best["backend"])
    name = f"<b>{html.escape(best['name'])}</b> ({html.escape(best['recipe'])})"
    low = best["speedup_low"] if best.get("speedup_low") is not None else best["speedup"]
    if (low or 1.0) <= 1.0:
        lead = (f"No variant within 1 point of the original's {html.escape(measure)} runs measurably faster on this "
                f"machine; the closest is {name}.")
    else:
        lead = f"Best trade-off: {name}."
    busy = (f"<li class='warn'>⚠ {html.escape(best['busy'])}</li>" if best["busy"] else "")
    return (f"<section class='headline'><p class='lead'>{lead}</p><ul>"
            f"<li><span>Speed</span> {_speed(best)}, on {html.escape(best['backend'])}</li>"
            f"<li><span>Accuracy</span> {_accuracy(best, base)}</li>"
            f"<li><span>Size</span> {_size(best, base)}</li>{busy}</ul>{chosen_how}{left_out}</section>")
