"""The variants table: names sort as people count, collapsed variants stand out."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from paretolab.core.compress.variant import Recipe, Variant
from paretolab.gui.variants_table import VariantsTable

PRUNE = Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}}]})


def _variant(name: str, top1: float) -> Variant:
    metrics = {"baseline": {"top1": 0.99, "latency_ms": 1.0, "size_bytes": 4000, "backend": "ort"},
               "variant": {"top1": top1, "latency_ms": 0.5, "size_bytes": 1000, "backend": "ort"}, "speedup": 2.0}
    return Variant(name, PRUNE, Path(f"/nowhere/{name}.onnx"), "model.onnx", metrics)


def test_names_sort_naturally_and_a_collapsed_variant_is_flagged(qtbot):
    table = VariantsTable()
    qtbot.addWidget(table)
    for name in ("v10", "v2", "v1", "v9"):
        table.add(_variant(name, 0.98 if name != "v9" else 0.23))
    table.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
    names = [table.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 2) for r in range(4)]
    assert names == ["v1", "v2", "v9", "v10"]
    shown = {table.proxy.index(r, 0).data(): table.proxy.index(r, 0).data(Qt.ItemDataRole.ToolTipRole) for r in range(4)}
    assert shown["⚠ v9"].endswith("Warning: top-1 fell from 99.0% to 23.0%: this variant has collapsed; "
                                  "add distillation from the original; prune less than 50%")
    assert "Warning" not in shown["v2"]


def _judged(name: str, verdict: str, why: str, latency_ms: float) -> Variant:
    metrics = {"baseline": {"cosine": 1.0, "latency_ms": 1.0, "size_bytes": 4000, "backend": "ort", "dataset": "d"},
               "variant": {"cosine": 0.9999, "sqnr_db": 40.0, "latency_ms": latency_ms, "size_bytes": 1000,
                           "backend": "ort", "dataset": "d", "verdict": verdict, "verdict_why": why}, "speedup": 2.0}
    return Variant(name, PRUNE, Path(f"/nowhere/{name}.onnx"), "model.onnx", metrics)


def test_a_broken_variant_is_flagged_and_off_the_chart_front_and_random_inputs_say_unknown(qtbot):
    from paretolab.gui.tradeoff_chart import ChartPoint, TradeoffChart

    table, chart = VariantsTable(), TradeoffChart()
    qtbot.addWidget(table)
    qtbot.addWidget(chart)
    dead = _judged("v1", "broken", "output0 (detection): class scores collapsed: the same for every input", 0.2)
    guess = _judged("v2", "unknown", "unknown (random inputs)", 0.5)
    good = _judged("v3", "faithful", "output0 (detection): recall 100%, precision 100%", 0.8)
    for v in (dead, guess, good):
        table.add(v)
        chart.set_point(ChartPoint(v.name, v.name, v.measured.latency_ms, v.selection_score, 1000, "prune",
                                   quality=v.measured.quality))
    cells = {table.proxy.index(r, 0).data(Qt.ItemDataRole.UserRole + 2): (
        table.proxy.index(r, 0).data(), table.proxy.index(r, 3).data(), table.proxy.index(r, 0).data(
            Qt.ItemDataRole.ToolTipRole)) for r in range(3)}
    assert cells["v1"][0] == "⚠ v1" and "broken and kept off the Pareto front" in cells["v1"][2]
    assert cells["v1"][1].endswith("broken: output0 (detection): class scores collapsed: the same for every input")
    assert cells["v2"][0] == "v2" and cells["v2"][1].endswith("unknown (random inputs)")
    assert "quality unknown: judged on random inputs" in cells["v2"][2]
    assert cells["v3"][1].endswith("faithful") and "Warning" not in cells["v3"][2]
    chart.redraw()
    assert chart.front_keys() == ["v2"]  # v1 is fastest and scores the same, but broken: off the front
    spots = {s.data(): s for s in chart.scatter.points()}
    assert spots["v2"].brush().color().alpha() == 0  # hollow: quality unknown
    assert spots["v1"].symbol() == "x"


def test_a_busy_speed_up_is_marked_in_the_table_and_the_chart_tooltip(qtbot):
    from paretolab.gui.studio import Studio

    variant = _variant("v2", 0.98)
    variant.metrics["timing"] = {"busy": "other processes kept 1.9 of 2 CPUs busy while timing",
                                 "openvino_default": {"precision": "bf16", "speedup": 1.5, "speedup_low": 1.4,
                                                      "speedup_high": 1.6}}
    table = VariantsTable()
    qtbot.addWidget(table)
    table.add(variant)
    assert table.model.index(0, 5).data().endswith("⚠ busy")
    tip = table.model.index(0, 5).data(Qt.ItemDataRole.ToolTipRole)
    assert "speed-up = the original's 1.0000 ms / this variant's 0.5000 ms, timed in the same rounds" in tip
    assert "⚠ other processes kept 1.9 of 2 CPUs busy" in tip and "vs OpenVINO default (bf16): 1.50x (1.40-1.60)" in tip
    label = Studio._point(variant).label
    assert "⚠ busy: other processes kept 1.9" in label and "vs OpenVINO default (bf16)" in label


def test_a_re_profile_far_from_the_experiments_reference_is_marked_busy(qtbot, tmp_path):
    import json

    from paretolab.core.measure.plan import DataPlan
    from paretolab.core.model.handle import load_model
    from paretolab.core.pipeline.optimize import optimize
    from paretolab.core.sample import sample_model_path
    from paretolab.jobs.studio_jobs import reprofile_job

    small = load_model(sample_model_path())
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"precision": "fp16"}}]})
    variant = optimize(small, recipe, DataPlan.from_spec("digits", small), tmp_path, "v1", threads=1)
    saved = tmp_path / "v1.metrics.json"
    doc = json.loads(saved.read_text())
    doc["metrics"]["timing"]["reference_ms"] = 1000.0  # a far-off reference
    saved.write_text(json.dumps(doc))
    job = reprofile_job(small, variant, threads=1)
    with qtbot.waitSignal(job.succeeded, timeout=120_000) as done:
        job.start()
    updated = done.args[0]
    assert updated.busy and "1000.0000 ms when first timed in this experiment" in updated.busy
