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

from paretolab.core.compress.insight.explain import quick_reasons
from paretolab.core.compress.techniques import TECHNIQUES
from paretolab.core.compress.variant import Variant, collapse_warning, technique_kind
from paretolab.core.files import atomic_write
from paretolab.core.measure.measurement import Measurement
from paretolab.core.store.pareto import Point, pareto_front
from paretolab.core.store.report_charts import NAME_ALL, svg_chart
from paretolab.core.store.report_headline import headline
from paretolab.core.units import percent, size

_STYLE = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left}
tr.front td{background:#eef8ee}tr.bad td{background:#fdecea}.warn{color:#b71c1c}
.bar{display:inline-block;height:10px;background:#1f77b4}
.headline{font-size:1.35em;line-height:1.5;border:1px solid #cfe3cf;background:#f6fbf6;border-radius:8px;padding:.4em 1.2em}
.headline ul{list-style:none;padding:0;margin:.3em 0}.headline li span{display:inline-block;width:6.5em;color:#555}
.headline .how,.headline .warn{font-size:.7em}
figure{margin:1.5em 0}figcaption{font-size:.95em;color:#444}"""
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
        collapsed = "" if v.measured.broken else collapse_warning(v) or ""
        low, high = v.speedup_range or (None, None)
        rows[v.name].update(why=" ".join(_why(v)), busy=v.busy or "", vs_default=v.deployed_text() or "",
                            original_ms=v.baseline.latency_ms if v.speedup is not None else None,
                            speedup_low=low, speedup_high=high, collapsed=collapsed,
                            bad="broken" if v.measured.broken else "collapsed" if collapsed else "")
    return list(rows.values())


def _why(v: Variant) -> list[str]:
    """What capped the speed-up; for a variant measurably faster, first what bought it — MACs its
    recipe removed, or a step that computes each one in a cheaper precision — and then not the cap
    that kept MACs would put on a speed-up it got anyway."""
    reasons = quick_reasons(v)
    low = v.speedup_range[0] if v.speedup_range else v.speedup
    if low is None or low <= 1.0:
        return reasons
    share = v.measured.macs / v.baseline.macs if v.measured.macs and v.baseline.macs else 1.0
    cheaper = [s.summary() for s in v.recipe.steps if TECHNIQUES[s.technique].precision is not None]
    if share < 0.95:
        lead = f"faster: it does {share:.0%} of the original's MACs;"
    elif cheaper:
        lead = f"faster with every MAC kept: each one is computed in a cheaper precision ({', '.join(cheaper)});"
    else:
        return reasons  # nothing removed nor made cheaper: the cap stands, whatever the timing said
    return [lead, *(r for r in reasons if not r.startswith("the variant does as many MACs"))]


def _row(name: str, recipe: str, technique: str, m: Measurement, score: float, speedup_text: str,
         speedup: float | None = 1.0) -> dict:
    """`score` is what the chart plots and the front is chosen by (validation when there is one)."""
    return {"name": name, "recipe": recipe, "technique": technique, "top1": m.top1, "agreement": m.agreement,
            "cosine": m.cosine, "sqnr_db": m.sqnr_db, "fidelity": m.fidelity_text(), "metric": m.metric,
            "score": score, "latency_ms": m.latency_ms, "size_bytes": m.size_bytes, "params": m.params, "macs": m.macs,
            "backend": m.where, "speedup": speedup, "speedup_text": speedup_text, "test_split": m.dataset, "why": "",
            "verdict": "" if technique == "baseline" else m.verdict_text(),
            "quality": "" if technique == "baseline" else m.quality, "broken": m.broken,
            "busy": "", "vs_default": "", "original_ms": m.latency_ms if technique == "baseline" else None,
            "speedup_low": None, "speedup_high": None, "collapsed": "", "bad": ""}


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


def _table_row(r: dict, front: set[str]) -> str:
    """A variant's row: ★ on the front; ⚠ BROKEN or ⚠ COLLAPSED, with what happened, tinted red."""
    mark = "★ " if r["name"] in front else ""
    warning = ""
    if r["bad"]:
        mark += f'<b class="warn">⚠ {r["bad"].upper()}</b> '
        warning = f'<br><small class="warn">{html.escape(r["collapsed"] or r["verdict"])}</small>'
    css = " class=bad" if r["bad"] else " class=front" if r["name"] in front else ""
    return (f"<tr{css}><td>{mark}{html.escape(r['name'])}{warning}</td>"
            f"<td>{html.escape(r['recipe'])}</td><td>{percent(r['top1'])}</td><td>{html.escape(r['fidelity'])}</td>"
            f"<td>{r['latency_ms']:.4f}</td><td>{_speedup_cell(r)}</td><td>{size(r['size_bytes'])}</td>"
            f"<td>{html.escape(str(r['backend']))}</td><td>{html.escape(r['why'])}</td></tr>")


def _sensitivity_section(points: dict[str, float]) -> str:
    """Layers by the accuracy lost when each alone is pruned, in points, as the app's details say it."""
    if not points:
        return ""
    worst = max(points.values()) or 1.0
    bars = "".join(
        f'<tr><td>{html.escape(k)}</td><td><div class="bar" style="width:{max(1, 300 * v / worst):.0f}px"></div> '
        f"{v:.1f} points</td></tr>"
        for k, v in sorted(points.items(), key=lambda kv: -kv[1])
    )
    return ("<h2>Which layers are sensitive</h2><p>Points of accuracy lost when each layer alone is pruned (worst level "
            f"tried).</p><table>{bars}</table>")


def write_report(
    variants: list[Variant], out_dir: Path, model_name: str, sensitivity: dict[str, float] | None = None
) -> list[Path]:
    """Write report.html, report.json and variants.csv into out_dir; return their paths."""
    if not variants:
        from paretolab.core.errors import ParetoLabError

        raise ParetoLabError(f"the experiment of {model_name} has no variants yet; build some first (paretolab optimize)")
    rows = _rows(variants)
    front = {p.key for p in pareto_front([Point(r["name"], r["latency_ms"], r["score"], r["broken"]) for r in rows])}
    machine = variants[-1].machine
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    table = "".join(_table_row(r, front) for r in sorted(rows, key=lambda r: r["latency_ms"]))
    points = {k: round(100 * v, 2) for k, v in (sensitivity or {}).items()}  # one unit everywhere: points of accuracy
    sens = _sensitivity_section(points)
    machine_text = ", ".join(f"{k}: {html.escape(str(v))}" for k, v in machine.items()) or "unknown"
    split = variants[0].selection_split  # what the charts plot and the front is chosen by; the table reports test
    measure = variants[0].metric_label
    x_label = "latency, batch 1 (ms; median" + (", the average for early exit)" if any(v.exits for v in variants) else ")")
    y_label = f"{measure} on {split} (%)"
    latency_chart = svg_chart(rows, "latency_ms", x_label, front, y_label)
    sizes = [dict(r, size_kib=r["size_bytes"] / 1024) for r in rows]
    size_chart = svg_chart(sizes, "size_kib", "model size (KiB)", front, y_label)
    named = (" With this many variants only the originals, the front and the marked are named; point at the others for "
             "theirs." if len(rows) > NAME_ALL else "")
    header = "".join(f"<th>{h}</th>" for h in _COLUMNS)
    doc = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>ParetoLab report — {html.escape(model_name)}</title>
<style>{_STYLE}</style></head>
<body><h1>{html.escape(model_name)}: smaller and faster</h1>
{headline(rows, front, measure)}
<figure>{latency_chart}<figcaption>{measure.capitalize()} against latency. Square: the original.
Green line, green rim and ★: the best trade-offs (Pareto front). Hollow: judged on random inputs, quality unknown.
Grey, crossed out, ⚠ in red: broken (below its fidelity floor), kept off the front. Red dashed rim, ⚠ in red: collapsed
(lost more than 5 points against the original).{named}</figcaption></figure>
<figure>{size_chart}<figcaption>{measure.capitalize()} against model size.</figcaption></figure>
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
               "sensitivity": points, "sensitivity_unit": "points of accuracy lost"}
    json_path = atomic_write(out_dir / "report.json", lambda tmp: tmp.write_text(json.dumps(numbers, indent=1)))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    csv_path = atomic_write(out_dir / "variants.csv", lambda tmp: tmp.write_text(buffer.getvalue()))
    return [html_path, json_path, csv_path]
