"""The report's charts, drawn as inline SVG (no scripts, nothing fetched): axes with round ticks
(a 1-2-5 step, as matplotlib's MaxNLocator picks them), names placed where they overlap neither
another name nor a point, and broken or collapsed variants marked so that no one ships them."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from paretolab.core.compress.techniques import TECHNIQUE_COLOURS
from paretolab.core.store.pareto import Point, pareto_front, step_line
from paretolab.core.units import size

WIDTH, HEIGHT = 960, 440  # the SVG's own units; the page draws it at the body's full width
LEFT, BOTTOM, TOP, RIGHT = 74, 56, 18, 24
FONT = 15  # tick and point labels, in SVG units: about 15 px on a 960 px wide page
NAME_ALL = 16  # up to this many points every one is named; beyond, the originals, the front and the marked
LABEL_CHARS = 22  # longer names are elided in the middle (the full name is in the tooltip and the table)
FRONT_COLOUR, BAD_COLOUR = "#2ca02c", "#d62728"
Box = tuple[float, float, float, float]  # left, top, right, bottom in SVG units


def nice_ticks(low: float, high: float, most: int = 7) -> list[float]:
    """Round tick values covering [low, high]: a step of 1, 2, 2.5 or 5 times a power of ten giving
    at most `most` ticks, the first at or below `low`, the last at or above `high`."""
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"ticks need finite bounds, not {low}..{high}")
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / max(1, most - 1)
    power = 10.0 ** math.floor(math.log10(raw))
    for factor in (1.0, 2.0, 2.5, 5.0, 10.0):
        step = factor * power
        first, last = math.floor(low / step + 1e-9), math.ceil(high / step - 1e-9)
        if last - first + 1 <= most:
            break
    return [round(i * step, 12) for i in range(first, last + 1)]


def tick_text(value: float, ticks: Sequence[float]) -> str:
    """Every tick with the same, fewest decimals its step needs: 0, 0.005, 0.01 → "0.000", "0.005", "0.010"."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else 1.0
    decimals = next(d for d in range(12) if abs(round(step, d) - step) < 1e-9 * max(1.0, step))
    return f"{value:.{decimals}f}"


def elide(name: str, chars: int = LABEL_CHARS) -> str:
    """"prune75-distill-openvino-int8" → "prune75-dis…envino-int8": both ends, where names differ."""
    if len(name) <= chars:
        return name
    head = (chars - 1) // 2
    return name[:head] + "…" + name[len(name) - (chars - 1 - head):]


def _text_box(x: float, y: float, text: str, anchor: str) -> Box:
    """The box a label drawn at baseline (x, y) covers; 0.6 em per character is generous for sans-serif."""
    width = 0.6 * FONT * len(text)
    left = x - width if anchor == "end" else x - width / 2 if anchor == "middle" else x
    return left, y - 0.8 * FONT, left + width, y + 0.25 * FONT


def _distance(x: float, y: float, box: Box) -> float:
    return math.hypot(max(box[0] - x, 0.0, x - box[2]), max(box[1] - y, 0.0, y - box[3]))


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(points: Sequence[tuple[float, float, str]], area: Box, markers: Sequence[tuple[float, float]] = ()
                 ) -> list[tuple[float, float, str, str, bool]]:
    """For each (x, y, text) point in pixels: (x, y, anchor, text, leader) of its name, placed at the
    first spot — beside, above or below the point, then stacked further up or down — that overlaps
    no placed name and no point and stays inside `area`. A name right by its point must be nearer
    to it than to any other point; a name stacked away gets a leader line instead. `markers`: every
    point drawn, named or not (default: the named ones)."""
    markers = list(markers) or [(x, y) for x, y, _ in points]
    dots = [(x - 7, y - 7, x + 7, y + 7) for x, y in markers]
    placed: list[Box] = []
    result = []
    for x, y, text in points:
        others = [(ox, oy) for ox, oy in markers if (ox, oy) != (x, y)]
        spots = [(x + 11, y + 5, "start", False), (x - 11, y + 5, "end", False), (x, y - 13, "middle", False),
                 (x, y + 25, "middle", False)]
        for k in (-1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -8, 8, -10, 10):  # stacked up or down
            spots += [(x + 11, y + 5 + k * 19, "start", True), (x - 11, y + 5 + k * 19, "end", True)]
        chosen = None
        for lx, ly, anchor, leader in spots:
            box = _text_box(lx, ly, text, anchor)
            inside = box[0] >= area[0] and box[2] <= area[2] and box[1] >= area[1] and box[3] <= area[3]
            ambiguous = not leader and any(_distance(ox, oy, box) < _distance(x, y, box) for ox, oy in others)
            if inside and not ambiguous and not any(_overlaps(box, other) for other in placed + dots):
                chosen = (lx, ly, anchor, leader, box)
                break
        if chosen is None:  # a crowded corner: the first spot inside the plot, overlap and all
            lx, ly, anchor, leader = next((spot for spot in spots if area[0] <= _text_box(*spot[:2], text, spot[2])[0]
                                           and _text_box(*spot[:2], text, spot[2])[2] <= area[2]), spots[0])
            chosen = (lx, ly, anchor, True, _text_box(lx, ly, text, anchor))
        lx, ly, anchor, leader, box = chosen
        placed.append(box)
        result.append((lx, ly, anchor, text, leader))
    return result


def svg_chart(rows: list[dict], x_key: str, x_label: str, front: set[str], y_label: str) -> str:
    """The score (y, in %) against rows' x_key, the Pareto front as a staircase; each row's "bad" is
    "broken" (grey, crossed), "collapsed" (red dashed rim) or ""."""
    xs = [r[x_key] for r in rows]
    ys = [100 * r["score"] for r in rows]
    x_ticks = nice_ticks(0.0, max(xs) * 1.05 or 1.0)
    y_ticks = nice_ticks(min(ys), max(100.0, max(ys)))
    (x0, x1), (y0, y1) = (x_ticks[0], x_ticks[-1]), (y_ticks[0], y_ticks[-1])
    plot = (LEFT, TOP, WIDTH - RIGHT, HEIGHT - BOTTOM)
    y1 += 0.08 * (y1 - y0)  # room above the top tick for the names of the most accurate points

    def px(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (plot[2] - LEFT)

    def py(y: float) -> float:
        return plot[3] - (y - y0) / (y1 - y0) * (plot[3] - TOP)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" role="img" '
        f'font-family="system-ui,sans-serif" aria-label="{html.escape(y_label)} against {html.escape(x_label)}">',
        f'<rect x="{LEFT}" y="{TOP}" width="{plot[2] - LEFT}" height="{plot[3] - TOP}" fill="white" stroke="#bbb"/>',
    ]
    for yv in y_ticks:
        parts.append(f'<line x1="{LEFT}" x2="{plot[2]}" y1="{py(yv):.1f}" y2="{py(yv):.1f}" stroke="#eee"/>')
        parts.append(f'<text class="ytick" x="{LEFT - 8}" y="{py(yv) + 5:.1f}" font-size="{FONT}" '
                     f'text-anchor="end">{tick_text(yv, y_ticks)}</text>')
    for xv in x_ticks:
        parts.append(f'<line x1="{px(xv):.1f}" x2="{px(xv):.1f}" y1="{TOP}" y2="{plot[3]}" stroke="#f3f3f3"/>')
        parts.append(f'<text class="xtick" x="{px(xv):.1f}" y="{plot[3] + 20}" font-size="{FONT}" '
                     f'text-anchor="middle">{tick_text(xv, x_ticks)}</text>')
    parts.append(f'<text x="{(LEFT + plot[2]) / 2}" y="{HEIGHT - 10}" font-size="{FONT + 1}" '
                 f'text-anchor="middle">{html.escape(x_label)}</text>')
    mid = (TOP + plot[3]) / 2
    parts.append(f'<text x="20" y="{mid}" font-size="{FONT + 1}" transform="rotate(-90 20 {mid})" '
                 f'text-anchor="middle">{html.escape(y_label)}</text>')
    fx, fy = step_line(pareto_front([Point(r["name"], r[x_key], r["score"], r["broken"]) for r in rows]))
    if fx:
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(100 * y):.1f}" for i, (x, y) in enumerate(zip(fx, fy)))
        parts.append(f'<path d="{path}" fill="none" stroke="{FRONT_COLOUR}" stroke-width="2"/>')
    labels, named = [], []
    for r, x, y in zip(rows, xs, ys):
        parts.append(_marker(r, px(x), py(y), r["name"] in front,
                             f"{r['name']}: {r['recipe']} — {y:.2f}%, {x_label.split(',')[0]} {x:.4g}, "
                             f"{size(r['size_bytes'])}" + (f" — {r['bad'].upper()}" if r["bad"] else "")))
        if len(rows) <= NAME_ALL or r["technique"] == "baseline" or r["name"] in front or r["bad"]:
            mark = "⚠ " if r["bad"] else "★ " if r["name"] in front else ""
            labels.append((px(x), py(y), mark + elide(r["name"])))
            named.append(r)
    placed = place_labels(labels, plot, [(px(x), py(y)) for x, y in zip(xs, ys)])
    for (x, y, _), (lx, ly, anchor, text, leader), r in zip(labels, placed, named):
        if leader:  # from the marker's rim to the nearest point of the name's box
            box = _text_box(lx, ly, text, anchor)
            ex, ey = min(max(x, box[0]), box[2]), min(max(y, box[1]), box[3])
            rim = 8 / (math.hypot(ex - x, ey - y) or 1.0)
            parts.append(f'<line x1="{x + (ex - x) * rim:.1f}" y1="{y + (ey - y) * rim:.1f}" x2="{ex:.1f}" y2="{ey:.1f}" '
                         'stroke="#888"/>')
        fill = f' fill="{BAD_COLOUR}"' if r["bad"] else ""
        parts.append(f'<text class="label" x="{lx:.1f}" y="{ly:.1f}" font-size="{FONT}" text-anchor="{anchor}"{fill}>'
                     f"{html.escape(text)}</text>")
    parts.append("</svg>")
    return "".join(parts)


def _marker(r: dict, x: float, y: float, on_front: bool, tip: str) -> str:
    """The original a square; a variant a circle in its technique's colour, rimmed green on the
    front; broken: grey and crossed out; collapsed: a red dashed rim; judged on random inputs: hollow."""
    title = f"<title>{html.escape(tip)}</title>"
    colour = TECHNIQUE_COLOURS.get(r["technique"], TECHNIQUE_COLOURS["other"])
    if r["technique"] == "baseline":
        return (f'<rect class="baseline" x="{x - 7:.1f}" y="{y - 7:.1f}" width="14" height="14" fill="{colour}" '
                f'stroke="#333">{title}</rect>')
    stroke, dash, width = (FRONT_COLOUR, "", 3) if on_front else ("#333", "", 1.5)
    if r["bad"] == "broken":
        colour, stroke = "#bbbbbb", BAD_COLOUR
    elif r["bad"] == "collapsed":
        stroke, dash, width = BAD_COLOUR, ' stroke-dasharray="3 2"', 2.5
    elif r["quality"] == "unknown":
        colour, stroke = "none", "#999999"
    marker = (f'<circle class="{r["bad"] or "variant"}" cx="{x:.1f}" cy="{y:.1f}" r="7" fill="{colour}" '
              f'stroke="{stroke}" stroke-width="{width}"{dash}>{title}</circle>')
    if r["bad"] == "broken":
        marker += (f'<path d="M{x - 6:.1f},{y - 6:.1f}L{x + 6:.1f},{y + 6:.1f}M{x - 6:.1f},{y + 6:.1f}L{x + 6:.1f},'
                   f'{y - 6:.1f}" stroke="{BAD_COLOUR}" stroke-width="2"/>')
    return marker
