"""Speed-ups that survive a loaded machine: the speed-up is the ratio of latencies timed in the
same alternating rounds, the original is kept once per experiment as a reference, a row whose
original drifted from it or that was timed while other processes held the CPUs is marked busy in
the CLI output and the report, and an OpenVINO variant is also compared with OpenVINO's default.
The load signal is substituted, so nothing here depends on how busy this machine is."""

from __future__ import annotations

import json
import os

import pytest

from paretolab import render
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.load import CpuSnapshot, others_cpus, others_note
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.pipeline.reference_timing import reference_key
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import Experiment
from paretolab.core.store.report import write_report

OV_FP16 = {"steps": [{"technique": "quantize", "settings": {"backend": "openvino", "precision": "fp16"}}]}


@pytest.fixture(scope="module")
def small():
    return load_model(sample_model_path())


@pytest.fixture
def idle(monkeypatch):
    """No other process on the machine, and runs as even as can be: only what a test injects is busy."""
    from paretolab.core.pipeline import scorecard

    monkeypatch.setattr(scorecard, "others_cpus", lambda start, end: 0.0)
    monkeypatch.setattr(scorecard, "busy_note", lambda timings, others_cpus=None: None)


def build(small, folder, name, backend="ort"):
    steps = OV_FP16 if backend == "openvino" else {"steps": [{"technique": "quantize", "settings": {"precision": "fp16"}}]}
    return optimize(small, Recipe.from_dict(steps), DataPlan.from_spec("digits", small), folder, name, threads=1)


def test_other_processes_holding_the_cpus_are_measured_from_cpu_times():
    start = CpuSnapshot(wall_s=10.0, machine_busy_s=100.0, mine_s=5.0)
    end = CpuSnapshot(wall_s=12.0, machine_busy_s=104.0, mine_s=6.0)  # 4 CPU-s in 2 s, 1 of them ours
    assert others_cpus(start, end) == pytest.approx(1.5)
    assert others_note(0.2, cpus=2) is None
    assert "other processes kept 1.5 of 2 CPUs busy" in others_note(1.5, cpus=2)


def test_the_speed_up_is_the_ratio_of_the_same_rounds_and_the_original_is_kept_as_a_reference(small, tmp_path, idle):
    experiment = Experiment.for_model(small, tmp_path / "exp")
    v1 = build(small, experiment.folder, "v1")
    assert v1.speedup == pytest.approx(v1.baseline.latency_ms / v1.measured.latency_ms)  # never against the column
    assert "the original's" in v1.speedup_basis() and f"{v1.measured.latency_ms:.4f} ms" in v1.speedup_basis()
    key = reference_key("ort", "cpu", 1)
    assert v1.metrics["timing"]["reference_key"] == key
    assert v1.busy is None and v1.metrics["timing"]["reference_ms"] == pytest.approx(v1.baseline.latency_ms)
    assert sorted(p.name for p in experiment.folder.iterdir() if not p.name.startswith("v1.")) == []  # no file of its own

    # The machine's load changes between rows: this row's original runs far from the reference.
    saved = experiment.folder / "v1.metrics.json"
    doc = json.loads(saved.read_text())
    doc["metrics"]["timing"]["reference_ms"] = 100.0 * v1.baseline.latency_ms
    saved.write_text(json.dumps(doc))
    v2 = build(small, experiment.folder, "v2")
    assert v2.busy and f"{v2.baseline.latency_ms:.4f} ms in this variant's rounds" in v2.busy
    assert f"{100.0 * v1.baseline.latency_ms:.4f} ms when first timed" in v2.busy
    assert v2.metrics["timing"]["reference_ms"] == pytest.approx(100.0 * v1.baseline.latency_ms)
    assert "⚠" in render.variant(v2) and v2.busy in render.variant(v2)


def test_a_machine_held_by_other_processes_is_marked_busy_in_the_cli_and_the_report(small, tmp_path, monkeypatch):
    from paretolab.core.pipeline import scorecard

    monkeypatch.setattr(scorecard, "others_cpus", lambda start, end: float(os.cpu_count() or 1))
    experiment = Experiment.for_model(small, tmp_path / "exp")
    variant = build(small, experiment.folder, "v1")
    assert variant.metrics["timing"]["others_cpus"] == float(os.cpu_count() or 1)
    assert variant.busy and "other processes kept" in variant.busy  # above the spread and the load average
    assert variant.busy in variant.metrics["notes"]
    assert f"busy      ⚠ {variant.busy}" in render.variant(variant)
    html = write_report([variant], tmp_path / "report", "digits")[0].read_text()
    assert "⚠ busy" in html and "other processes kept" in html
    assert f"original {variant.baseline.latency_ms:.4f} ms in the same rounds" in html


def test_an_openvino_variant_is_also_compared_with_openvinos_default_precision(small, tmp_path, monkeypatch, idle):
    from paretolab.core.pipeline import scorecard

    monkeypatch.setattr(scorecard, "openvino_default_precision", lambda device: "bf16")  # as on AMX, on any CPU
    experiment = Experiment.for_model(small, tmp_path / "exp")
    variant = build(small, experiment.folder, "v1", backend="openvino")
    deployed = variant.metrics["timing"]["openvino_default"]
    assert deployed["precision"] == "bf16" and deployed["speedup_low"] <= deployed["speedup"] <= deployed["speedup_high"]
    assert deployed["speedup"] == pytest.approx(deployed["baseline"]["median_ms"] / variant.measured.latency_ms)
    assert variant.deployed_text().startswith("vs OpenVINO default (bf16): ")
    shown = render.variant(variant)
    assert "against the original pinned to f32" in shown and variant.deployed_text() in shown
    html = write_report([variant], tmp_path / "report", "digits")[0].read_text()
    assert "vs OpenVINO default (bf16)" in html

    ort = build(small, experiment.folder, "v2")  # ONNX Runtime has no such default: nothing to compare
    assert "openvino_default" not in ort.metrics["timing"] and ort.deployed_text() is None
