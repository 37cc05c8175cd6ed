"""The report's charts and table, read back from the written HTML: round ticks, names that overlap
neither each other nor a point, and broken or collapsed variants marked in the table and chart."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET

import pytest

from paretolab.core.compress.variant import Recipe, collapse_warning
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import Experiment
from paretolab.core.store.report import write_report
from paretolab.core.store.report_charts import FONT, elide, nice_ticks, place_labels, tick_text

SVG = "{http://www.w3.org/2000/svg}"
RECIPES = {
    "fp16": [{"technique": "quantize", "settings": {"precision": "fp16"}}],
    "int8": [{"technique": "quantize", "settings": {"precision": "int8"}}],
    "unstructured70": [{"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.7}}],
    "structured50": [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}}],
}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    """A real experiment on the sample: two quantize-only variants, one pruned until it collapsed
    (test top-1 98.9% → 77.5%, still above its fidelity floor) and one pruned until it broke."""
    folder = tmp_path_factory.mktemp("report")
    sample = load_model(sample_model_path())
    experiment = Experiment.for_model(sample, folder / "exp")
    plan = DataPlan.from_spec("digits", sample)
    for name, steps in RECIPES.items():
        optimize(sample, Recipe.from_dict({"steps": steps}), plan, experiment.folder, name)
    variants = experiment.variants()
    write_report(variants, folder / "out", "digits")
    return variants, (folder / "out" / "report.html").read_text()


def svgs(doc: str) -> list[ET.Element]:
    return [ET.fromstring(s) for s in re.findall(r"<svg.*?</svg>", doc, re.S)]


def is_round_step(ticks: list[float]) -> bool:
    """Evenly spaced by 1, 2, 2.5 or 5 times a power of ten, each tick a multiple of the step."""
    steps = {round(b - a, 9) for a, b in zip(ticks, ticks[1:])}
    if len(steps) != 1:
        return False
    step = steps.pop()
    mantissa = step / 10 ** math.floor(math.log10(step))
    return any(abs(mantissa - m) < 1e-6 for m in (1, 2, 2.5, 5)) and all(
        abs(t / step - round(t / step)) < 1e-6 for t in ticks)


def test_the_charts_ticks_are_round_numbers(report):
    _, doc = report
    for svg in svgs(doc):
        for axis in ("xtick", "ytick"):
            texts = [t.text for t in svg.iter(f"{SVG}text") if t.get("class") == axis]
            assert 3 <= len(texts) <= 7, texts
            assert len({len(t.split(".")[-1]) for t in texts if "." in t}) <= 1  # one number of decimals per axis
            assert is_round_step([float(t) for t in texts]), texts  # not 9.0 / 27.3 / 45.6


def label_boxes(svg: ET.Element) -> list[tuple[float, float, float, float]]:
    """Each name's box, at 0.6 em a character (wide for a sans-serif font), from its anchor."""
    boxes = []
    for t in svg.iter(f"{SVG}text"):
        if t.get("class") != "label":
            continue
        x, y, width = float(t.get("x")), float(t.get("y")), 0.6 * FONT * len(t.text)
        left = {"start": x, "middle": x - width / 2, "end": x - width}[t.get("text-anchor")]
        boxes.append((left, y - 0.8 * FONT, left + width, y + 0.25 * FONT))
    return boxes


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_point_names_overlap_neither_each_other_nor_a_point_and_stay_in_the_chart(report):
    variants, doc = report
    for svg in svgs(doc):
        boxes = label_boxes(svg)
        assert len(boxes) == len(variants) + 1  # every variant and the original named
        assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if overlap(a, b)]
        dots = [(float(c.get("cx")) - 6, float(c.get("cy")) - 6, float(c.get("cx")) + 6, float(c.get("cy")) + 6)
                for c in svg.iter(f"{SVG}circle")]
        assert not [(a, d) for a in boxes for d in dots if overlap(a, d)]
        width = float(svg.get("viewBox").split()[2])
        assert all(b[0] >= 0 and b[2] <= width for b in boxes)
        assert svg.get("width") == "100%"  # drawn at the page's width, not squeezed two to a row


def test_a_crowd_of_points_gets_names_that_do_not_overlap():
    """Twelve variants within a few pixels of each other (a sweep's neighbours)."""
    points = [(400 + 3 * i, 200 + 2 * (i % 3), f"variant-{i:02d}") for i in range(12)]
    placed = place_labels(points, (74, 18, 936, 384))
    boxes = []
    for x, y, anchor, text, _ in placed:
        width = 0.6 * FONT * len(text)
        left = {"start": x, "middle": x - width / 2, "end": x - width}[anchor]
        boxes.append((left, y - 0.8 * FONT, left + width, y + 0.25 * FONT))
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if overlap(a, b)]
    assert any(leader for *_, leader in placed)  # names set far from their points are tied to them


def test_nice_ticks_and_their_text():
    assert nice_ticks(0.0, 0.0281) == [0.0, 0.005, 0.01, 0.015, 0.02, 0.025, 0.03]
    assert [tick_text(t, nice_ticks(0.0, 0.0281)) for t in (0.0, 0.01)] == ["0.000", "0.010"]
    assert nice_ticks(20.2, 100.0) == [20, 40, 60, 80, 100]
    assert nice_ticks(98.9, 100.0)[0] <= 98.9 and is_round_step(nice_ticks(98.9, 100.0))
    assert elide("prune75-distill-openvino-int8") == "prune75-di…envino-int8" and elide("q8") == "q8"


def test_broken_and_collapsed_variants_are_marked_in_the_table_and_the_chart(report):
    variants, doc = report
    broken = {v.name for v in variants if v.measured.broken}
    collapsed = {v.name for v in variants if not v.measured.broken and collapse_warning(v)}
    assert broken == {"structured50"} and collapsed == {"unstructured70"}  # what the sample does at these settings
    rows = re.findall(r"<tr class=bad>.*?</tr>", doc)
    table = " ".join(rows)
    assert "⚠ BROKEN</b> structured50" in table and "⚠ COLLAPSED</b> unstructured70" in table
    assert "top-1 fell from" in table and "prune less than 70%" in table  # what happened, and what to do
    assert len(rows) == 2  # the faithful ones are not tinted
    for svg in svgs(doc):
        kinds = {c.get("class"): c.find(f"{SVG}title").text for c in svg.iter(f"{SVG}circle")}
        assert kinds["broken"].startswith("structured50") and kinds["collapsed"].startswith("unstructured70")
        red = {t.text for t in svg.iter(f"{SVG}text") if t.get("class") == "label" and t.get("fill") == "#d62728"}
        assert red == {"⚠ structured50", "⚠ unstructured70"}


def test_a_sweep_sized_chart_names_the_originals_the_front_and_the_marked(tmp_path):
    """Forty variants (the demo's, each as if measured five times with a little spread in
    time): naming each would cover the chart, so only the points a reader needs are named."""
    from dataclasses import replace

    from tests.core.test_report_headline import demo_variants

    variants = []
    for k in range(5):
        for v in demo_variants():
            measured = {**v.metrics["variant"], "latency_ms": v.measured.latency_ms * (1 + 0.03 * k)}
            variants.append(replace(v, name=f"{v.name}-{k}", metrics={**v.metrics, "variant": measured}))
    write_report(variants, tmp_path, "demo ResNet")
    doc = (tmp_path / "report.html").read_text()
    svg = svgs(doc)[0]
    names = {t.text.removeprefix("★ ").removeprefix("⚠ ") for t in svg.iter(f"{SVG}text") if t.get("class") == "label"}
    bad = {v.name for v in variants if v.measured.broken or collapse_warning(v)}
    assert {"baseline", "baseline openvino/cpu"} | bad <= names and len(names) < len(variants) // 2
    assert "only the originals, the front and the marked are named" in doc
    boxes = label_boxes(svg)
    assert not [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1:] if overlap(a, b)]
