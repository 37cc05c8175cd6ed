"""A variant's metrics read as typed records (core/measure/records.py): what a real optimize writes,
and what the demo ships, reads and writes back unchanged, key order included; a metrics file from
before the timing record kept its notes, interval and reference still reads."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.records import MeasuredBy, TimingRecord, ValidationScores
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.pipeline.reference_timing import read_references
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import Experiment, variant_from_dict

FP16 = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"precision": "fp16"}}]})
RECORDS = {"timing": TimingRecord, "validation": ValidationScores, "measured_by": MeasuredBy}


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """One real optimize of the sample on ONNX Runtime: its experiment folder and its metrics file."""
    folder = tmp_path_factory.mktemp("records")
    sample = load_model(sample_model_path())
    variant = optimize(sample, FP16, DataPlan.from_spec("digits", sample), folder, "v1", threads=1)
    return folder, variant, folder / "v1.metrics.json"


def rebuilt(metrics: dict) -> dict:
    """The metrics document with each typed part read and written back."""
    return {**metrics, **{key: RECORDS[key].from_dict(metrics[key]).to_dict() for key in RECORDS if key in metrics}}


def test_a_real_optimize_s_metrics_round_trip_through_the_records(measured):
    folder, variant, path = measured
    text = path.read_text()
    metrics = json.loads(text)["metrics"]
    assert set(RECORDS) <= set(metrics)  # the digits plan has a validation split: every record is exercised
    again = rebuilt(metrics)
    assert again == metrics
    assert json.dumps(again) == json.dumps(metrics)  # the same keys in the same order: a rewrite changes no byte

    timing, validation = variant.timing, variant.validation
    assert validation is not None
    assert timing.speedup_range == (metrics["timing"]["speedup_low"], metrics["timing"]["speedup_high"])
    assert variant.speedup_range == timing.speedup_range
    assert timing.baseline is not None and timing.baseline.median_ms == metrics["timing"]["baseline"]["median_ms"]
    assert timing.variant is not None and timing.variant.runs == metrics["timing"]["variant"]["runs"]
    assert timing.notes == tuple(metrics["timing"]["notes"])
    assert (timing.reference_key, timing.reference_ms) == ("ort/cpu/1 threads", metrics["timing"]["reference_ms"])
    assert validation.dataset == metrics["validation"]["dataset"] == variant.selection_split
    assert validation.variant.top1 == metrics["validation"]["variant"]["top1"] == variant.selection_score
    assert validation.baseline.verdict is None and "verdict" not in metrics["validation"]["baseline"]
    assert variant.measured_by.host == metrics["measured_by"]["host"] and variant.measured_by.target is None
    assert variant.notes == metrics["notes"]

    reopened = Experiment(folder).variants()
    assert [v.name for v in reopened] == ["v1"]
    assert reopened[0].timing == timing and reopened[0].validation == validation


def test_the_demo_s_shipped_metrics_round_trip(tmp_path):
    """The demo's files were written by other runs (OpenVINO's as-deployed speed-up among them)."""
    folder = Path(str(resources.files("paretolab.resources") / "demo_experiment"))
    files = sorted(folder.glob("*.metrics.json"))
    assert files
    for file in files:
        metrics = json.loads(file.read_text())["metrics"]
        assert json.dumps(rebuilt(metrics)) == json.dumps(metrics), file.name
    deployed = variant_from_dict(json.loads((folder / "openvino-int8.metrics.json").read_text()), folder)
    raw = deployed.metrics["timing"]["openvino_default"]
    assert deployed.timing.openvino_default is not None
    assert deployed.timing.openvino_default.precision == raw["precision"]
    assert deployed.deployed_text() == (f"vs OpenVINO default ({raw['precision']}): {raw['speedup']:.2f}x "
                                        f"({raw['speedup_low']:.2f}-{raw['speedup_high']:.2f})")


def test_an_older_metrics_file_without_the_newer_timing_keys_still_reads(measured, tmp_path):
    """Before the interval, the timing's own notes and the experiment's reference were recorded."""
    folder, _, path = measured
    doc = json.loads(path.read_text())
    timing = doc["metrics"]["timing"]
    busy = "the runs were uneven (spread 40%): measure again on an idle machine"
    for key in ("speedup_low", "speedup_high", "notes", "reference_key", "reference_ms"):
        del timing[key]
    timing["busy"] = busy
    doc["metrics"]["notes"] = ["calibrated on digits", busy]
    old = tmp_path / "old"
    old.mkdir()
    for file in folder.glob("v1.*"):
        if not file.name.endswith(".metrics.json"):
            (old / file.name).write_bytes(file.read_bytes())
    (old / "v1.metrics.json").write_text(json.dumps(doc))

    [variant] = Experiment(old).variants()
    assert variant.timing.notes is None and variant.timing.reference_key is None
    assert variant.speedup_range is None
    assert variant.speedup_text(with_basis=False) == f"{variant.speedup:.2f}x"
    assert variant.busy == busy
    assert variant.timing.to_dict() == timing  # nothing invented for the keys it lacks
    assert read_references(old) == {}  # no reference recorded: none is made up

    from paretolab.core.measure.timing import Speedup

    again = variant.remeasured(1.0, 0.5, {"busy": None, "notes": []}, Speedup(2.0, 1.9, 2.1))
    assert again.busy is None and again.notes == ["calibrated on digits"]  # the old busy was the timing's note
