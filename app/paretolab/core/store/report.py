"""A report for people who don't read code: one self-contained HTML file (charts drawn as
inline SVG, no scripts, nothing fetched), plus a JSON of all numbers and a CSV of variants."""

from __future__ import annotations

import csv
import html
import io
import json
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from paretolab.core.compress.explain import quick_reasons
from paretolab.core.compress.techniques import TECHNIQUE_COLOURS
from paretolab.core.compress.variant import Variant, technique_kind
from paretolab.core.files import atomic_write
from paretolab.core.measure.measurement import Measurement
from paretolab.core.store.pareto import Point, pareto_front, step_line
from paretolab.core.units import percent, size

_STYLE = """body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}
tr.front td{background:#eef8ee}.bar{display:inline-block;height:10px;background:#1f77b4}
.charts{display:flex;flex-wrap:wrap;gap:1em}.charts figure{margin:0;flex:1 1 460px}"""
_COLUMNS = ("Variant", "How it was made", "Top-1 (test)", "Fidelity to the original (test)", "Latency ms",
            "Speed-up (95% interval)", "Size", "Measured on", "Why (not) faster")


def _rows(variants: list[Variant]) -> list[dict]:
    """One row per variant and one per place the original was measured (backend and device):
    each speed-up is against the original on the variant's own backend, device and threads."""
    rows: dict[str, dict] = {}
    for v in variants:
        if v.baseline_key not in rows:
            b = v.baseline if v.baseline.cosine is not None else replace(v.baseline, agreement=1.0)  # older files
            rows[v.baseline_key] = _row(v.baseline_key, f"the original model, FP32 on {b.where}", "baseline", b,
                                        v.baseline_selection_score, "1.00x")
    for v in variants:
        rows[v.name] = _row(v.name, v.recipe.summary(), technique_kind(v.recipe), v.measured, v.selection_score,
                            v.speedup_text(with_basis=False), v.speedup)
        rows[v.name]["why"] = " ".join(quick_reasons(v))
        rows[v.name].update(busy=v.busy or "", vs_default=v.deployed_text() or "",
                            original_ms=v.baseline.latency_ms if v.speedup is not None else None)
    return list(rows.values())


def _row(name: str, recipe: str, technique: str, m: Measurement, score: float, speedup_text: str,
         speedup: float | None = 1.0) -> dict:
    """`score` is what the chart plots and the front is chosen by (validation when there is one)."""
    return {"name": name, "recipe": recipe, "technique": technique, "top1": m.top1, "agreement": m.agreement,
            "cosine": m.cosine, "sqnr_db": m.sqnr_db, "fidelity": m.fidelity_text(), "metric": m.metric,
            "score": score, "latency_ms": m.latency_ms, "size_bytes": m.size_bytes, "params": m.params, "macs": m.macs,
            "backend": m.where, "speedup": speedup, "speedup_text": speedup_text, "test_split": m.dataset, "why": "",
            "verdict": "" if technique == "baseline" else m.verdict_text(),
            "quality": "" if technique == "baseline" else m.quality, "broken": m.broken,
            "busy": "", "vs_default": "", "original_ms": m.latency_ms if technique == "baseline" else None}


def _exits_section(variants: list[Variant]) -> str:
    """Early-exit variants: where the test inputs left, how right they were there, and the latency's spread."""
    rows = ""
    for v in (v for v in variants if v.exits and not v.cancelled):
        spread = html.escape(v.latency_text() or "")
        for i, e in enumerate(v.exits):
            rows += (f"<tr><td>{html.escape(v.name) if i == 0 else ''}</td><td>{html.escape(e['exit'])}</td>"
                     f"<td>{e['share']:.1%}</td><td>{percent(e.get('top1'))}</td><td>{spread if i == 0 else ''}</td></tr>")
    if not rows:
        return ""
    return ("<h2>Early exits</h2><p>An early-exit variant answers an input at the first exit sure enough of it; its latency "
            "depends on the input, so it is the average over the test samples, each timed alone (batch 1) beside the "
            "original.</p><table><tr><th>Variant</th><th>Exit</th><th>Share of test inputs</th><th>Top-1 of those</th>"
            f"<th>Latency</th></tr>{rows}</table>")


def _svg_chart(rows: list[dict], x_key: str, x_label: str, front: set[str], split: str, measure: str) -> str:
    """The score (y: accuracy, or fidelity to the original) against x_key, the Pareto front as a staircase."""
    w, h, left, bottom, top, right = 640, 360, 60, 40, 16, 16
    xs = [r[x_key] for r in rows]
    ys = [100 * r["score"] for r in rows]
    x0, x1 = 0.0, max(xs) * 1.08 or 1.0
    y0, y1 = min(ys) - 1.0, max(100.0, max(ys)) + 0.5

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (w - left - right)

    def py(y: float) -> float:
        return h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" role="img" '
        f'aria-label="accuracy against {html.escape(x_label)}">',
        f'<rect x="{left}" y="{top}" width="{w - left - right}" height="{h - top - bottom}" fill="white" stroke="#ccc"/>',
    ]
    for i in range(6):
        yv = y0 + (y1 - y0) * i / 5
        xv = x0 + (x1 - x0) * i / 5
        parts.append(f'<text x="{left - 6}" y="{py(yv) + 4:.1f}" font-size="11" text-anchor="end">{yv:.1f}</text>')
        parts.append(f'<text x="{px(xv):.1f}" y="{h - bottom + 16}" font-size="11" text-anchor="middle">{xv:.3g}</text>')
        parts.append(f'<line x1="{left}" x2="{w - right}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" stroke="#eee"/>')
    parts.append(f'<text x="{(w + left) / 2}" y="{h - 6}" font-size="12" text-anchor="middle">{html.escape(x_label)}</text>')
    mid = (h - bottom) / 2
    parts.append(f'<text x="14" y="{mid}" font-size="12" transform="rotate(-90 14 {mid})" text-anchor="middle">'
                 f"{html.escape(measure)} on {html.escape(split)} (%)</text>")
    points = [Point(r["name"], r[x_key], r["score"], r["broken"]) for r in rows]
    fx, fy = step_line(pareto_front(points))
    if fx:
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(100 * y):.1f}" for i, (x, y) in enumerate(zip(fx, fy)))
        parts.append(f'<path d="{path}" fill="none" stroke="#2ca02c" stroke-width="1.5"/>')
    for r, x, y in zip(rows, xs, ys):
        colour = TECHNIQUE_COLOURS.get(r["technique"], TECHNIQUE_COLOURS["other"])
        what = f"{html.escape(r['name'])}: {html.escape(r['recipe'])}"
        title = f"<title>{what} — {y:.2f}%, {r['latency_ms']:.4f} ms, {size(r['size_bytes'])}</title>"
        if r["name"] == "baseline":
            box = f'x="{px(x) - 6:.1f}" y="{py(y) - 6:.1f}" width="12" height="12"'
            parts.append(f'<rect {box} fill="{colour}" stroke="#333">{title}</rect>')
        else:
            stroke = "#d62728" if r["name"] in front else "#333"
            if r["quality"] == "broken":  # grey, crossed: off the front whatever its speed
                colour, stroke = "#bbbbbb", "#d62728"
            elif r["quality"] == "unknown":  # hollow: judged on random inputs, quality unknown
                colour, stroke = "none", "#999999"
            circle = f'cx="{px(x):.1f}" cy="{py(y):.1f}" r="6"'
            parts.append(f'<circle {circle} fill="{colour}" stroke="{stroke}" stroke-width="1.5">{title}</circle>')
        parts.append(f'<text x="{px(x) + 8:.1f}" y="{py(y) - 8:.1f}" font-size="11">{html.escape(r["name"])}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _best_line(rows: list[dict], front: set[str], measure: str) -> str:
    """The fastest variant on the front within 1 point of its original, chosen by the score the chart
    shows (validation), its test accuracy reported beside the original's. A broken variant is never named."""
    bases = {r["backend"]: r for r in rows if r["technique"] == "baseline"}
    close = [r for r in rows if r["technique"] != "baseline" and r["backend"] in bases and not r["broken"]
             and r["score"] >= bases[r["backend"]]["score"] - 0.01]
    close = [r for r in close if r["name"] in front] or close  # the front's; else (all slower) the closest
    broken = [r["name"] for r in rows if r["broken"]]
    flagged = (f" Broken, left off the front: {html.escape(', '.join(broken))}." if broken else "")
    if not close:
        return f"No variant that is not broken stayed within 1 point of the original's {measure}.{flagged}"
    return _best_of(close, bases, measure) + flagged


def _best_of(close: list[dict], bases: dict[str, dict], measure: str) -> str:
    best = max(close, key=lambda r: r["speedup"] or 0.0)
    base, speed = bases[best["backend"]], best["speedup"] or 1.0
    what = f"<b>{html.escape(best['name'])}</b> ({html.escape(best['recipe'])})"
    size_share = f"{best['size_bytes'] / base['size_bytes']:.0%} of the size"
    if speed <= 1.0:
        return (f"No variant within 1 point of the original's {measure} runs faster than it on this machine; the closest "
                f"is {what}, {1 / speed:.2f}× slower but {size_share}.")
    if best["quality"] == "unknown":
        result = (f"its quality is unknown: judged on random inputs ({html.escape(best['fidelity'])}); give real data "
                  "(--data) to know whether it is faithful.")
    elif best["top1"] is None:
        result = f"on the test data, {html.escape(best['fidelity'])} to the original."
    else:
        result = f"test top-1 {percent(best['top1'])} against {percent(base['top1'])}."
    return (f"Best variant within 1 point of the original's {measure}: {what} — {best['speedup_text']} faster than the "
            f"original on {html.escape(best['backend'])}, {size_share}; {result}")


def _speedup_cell(r: dict) -> str:
    """The speed-up, the original's latency from the same rounds (so it never reads against the
    latency column), a ⚠ busy marker with its reason, and the ratio against OpenVINO's default."""
    cell = html.escape(r["speedup_text"])
    if r["original_ms"] is not None and r["technique"] != "baseline":
        cell += f"<br><small>original {r['original_ms']:.4f} ms in the same rounds</small>"
    if r["busy"]:
        cell += f' <span class="busy" title="{html.escape(r["busy"], quote=True)}">⚠ busy</span>'
    if r["vs_default"]:
        cell += f"<br><small>{html.escape(r['vs_default'])} (the original with no precision hint; above: pinned to f32)</small>"
    return cell


def write_report(
    variants: list[Variant], out_dir: Path, model_name: str, sensitivity: dict[str, float] | None = None
) -> list[Path]:
    """Write report.html, report.json and variants.csv into out_dir; return their paths."""
    if not variants:
        from paretolab.core.errors import ParetoLabError

        raise ParetoLabError(f"the experiment of {model_name} has no variants yet; build some first (paretolab optimize)")
    rows = _rows(variants)
    front = {p.key for p in pareto_front([Point(r["name"], r["latency_ms"], r["score"], r["broken"]) for r in rows])}
    machine = variants[-1].metrics.get("machine", {})
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = "".join(
        f"<tr{' class=front' if r['name'] in front else ''}><td>{'★ ' if r['name'] in front else ''}"
        f"{'⚠ BROKEN ' if r['broken'] else ''}{html.escape(r['name'])}</td>"
        f"<td>{html.escape(r['recipe'])}</td><td>{percent(r['top1'])}</td><td>{html.escape(r['fidelity'])}</td>"
        f"<td>{r['latency_ms']:.4f}</td><td>{_speedup_cell(r)}</td><td>{size(r['size_bytes'])}</td>"
        f"<td>{html.escape(str(r['backend']))}</td><td>{html.escape(r['why'])}</td></tr>"
        for r in sorted(rows, key=lambda r: r["latency_ms"])
    )
    sens = ""
    if sensitivity:
        worst = max(sensitivity.values()) or 1.0
        bars = "".join(
            f'<tr><td>{html.escape(k)}</td><td><div class="bar" style="width:{max(1, 300 * v / worst):.0f}px"></div> '
            f"{100 * v:.1f} pts</td></tr>"
            for k, v in sorted(sensitivity.items(), key=lambda kv: -kv[1])
        )
        sens = ("<h2>Which layers are sensitive</h2><p>Accuracy lost when each layer alone is pruned (worst level tried).</p>"
                f"<table>{bars}</table>")
    machine_text = ", ".join(f"{k}: {html.escape(str(v))}" for k, v in machine.items()) or "unknown"
    split = variants[0].selection_split  # what the charts plot and the front is chosen by; the table reports test
    measure = variants[0].metric_label
    x_label = "latency, batch 1 (ms; median" + (", the average for early exit)" if any(v.exits for v in variants) else ")")
    latency_chart = _svg_chart(rows, "latency_ms", x_label, front, split, measure)
    sizes = [dict(r, size_kib=r["size_bytes"] / 1024) for r in rows]
    size_chart = _svg_chart(sizes, "size_kib", "model size (KiB)", front, split, measure)
    header = "".join(f"<th>{h}</th>" for h in _COLUMNS)
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ParetoLab report — {html.escape(model_name)}</title>
<style>{_STYLE}</style></head>
<body><h1>{html.escape(model_name)}: smaller and faster</h1>
<p>{_best_line(rows, front, measure)}</p>
<div class="charts"><figure>{latency_chart}<figcaption>{measure.capitalize()} against latency. Square: the original.
Green line and ★: the best trade-offs (Pareto front). Hollow: judged on random inputs, quality unknown.
Grey with a red rim: broken (below its fidelity floor or collapsed), kept off the front.</figcaption></figure>
<figure>{size_chart}<figcaption>{measure.capitalize()} against model size.</figcaption></figure></div>
<h2>Variants</h2><table><tr>{header}</tr>{table}</table>
{_exits_section(variants)}
{sens}
<h2>Where this was measured</h2><p>{machine_text}. Report written {created} by ParetoLab; every number can be reproduced
from the variant files with <code>paretolab evaluate</code> and <code>paretolab profile</code>.</p>
</body></html>
"""
    out_dir = Path(out_dir)
    html_path = atomic_write(out_dir / "report.html", lambda tmp: tmp.write_text(doc, encoding="utf-8"))
    numbers = {"model": model_name, "written": created, "machine": machine, "variants": rows, "pareto_front": sorted(front),
               "sensitivity": sensitivity or {}}
    json_path = atomic_write(out_dir / "report.json", lambda tmp: tmp.write_text(json.dumps(numbers, indent=1)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    csv_path = atomic_write(out_dir / "variants.csv", lambda tmp: tmp.write_text(buffer.getvalue()))
    return [html_path, json_path, csv_path]
