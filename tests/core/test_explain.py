"""Why a variant is (not) faster: expected against measured speed-up, with the reasons, on
variants built to be slow on this CPU."""

from __future__ import annotations

import json

import pytest

from paretolab.cli import main
from paretolab.core.compress.explain import explain
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path


def _variant(tmp_path, settings: dict):
    original = load_model(sample_model_path())
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": settings}]})
    variant = optimize(original, recipe, DataPlan.from_spec("digits", original), tmp_path, "v")
    return original, variant


@pytest.mark.parametrize("settings, reason", [
    ({"backend": "ort", "precision": "dynamic-int8"}, "dynamic int8 quantizes activations on every call"),
    ({"backend": "ort", "precision": "fp16"}, "FP16 halves the file, not the time"),
    ({"backend": "ort", "precision": "int8", "format": "qdq-s8s8", "keep_fp32": ["features.0"]},
     "1 of 5 convolutions and products stay in FP32 (features.0"),
])
def test_slow_variants_are_explained(tmp_path, settings, reason):
    original, variant = _variant(tmp_path, settings)
    result = explain(original, variant, original.like(variant.artifact), layer_times=False)
    assert result.measured == variant.speedup and result.expected >= 1.0
    assert any(reason in r for r in result.reasons), result.reasons


def test_a_faster_int8_form_that_lost_is_named():
    from paretolab.core.compress.explain import _format_choice

    class Fake:
        reports = [{"candidates": [{"name": "qop-u8s8", "median_ms": 0.02, "chosen": False},
                                   {"name": "qdq-s8s8", "median_ms": 0.03, "chosen": True}]}]

    (reason,) = _format_choice(Fake())  # type: ignore[arg-type]
    assert reason.startswith("qop-u8s8 ran faster (0.020 against 0.030 ms) but qdq-s8s8 was kept")


def test_the_command_line_explains_a_written_variant_with_its_layer_times(tmp_path, capsys):
    _variant(tmp_path, {"backend": "ort", "precision": "dynamic-int8"})
    assert main(["explain", str(tmp_path / "v.onnx"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["variant"] == "v" and doc["basis"].startswith("MACs 1.00x fewer")
    slower = {s["layer"] for s in doc["slower_layers"]}  # ConvInteger is slower than FP32 convolutions here
    assert slower & {"features.0", "features.2", "features.5"}, doc["slower_layers"]
    assert all(s["variant_ms"] > s["original_ms"] for s in doc["slower_layers"])
    assert main(["explain", str(tmp_path / "missing.onnx")]) == 2
    assert "no variant with metrics there" in capsys.readouterr().err


def test_a_measured_precision_choice_is_explained_by_the_precision_that_won(tmp_path):
    original, variant = _variant(tmp_path, {"backend": "openvino", "precision": "fastest"})
    (report,) = [r for r in variant.reports if r.get("technique") == "quantize"]
    won = report["chosen"].removeprefix("openvino-")
    assert won in ("int8", "bf16")
    result = explain(original, variant, original.like(variant.artifact), layer_times=False)
    assert f"× {won} " in result.basis, result.basis


def test_a_pytorch_precision_measured_on_the_gpu_expects_tensor_cores_not_cpu_features():
    from paretolab.core.compress.explain import GPU_HALF_GAIN, quick_reasons
    from paretolab.core.compress.variant import Variant

    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "torch", "precision": "fp16"}}]})
    where = {"backend": "torch", "device": "cuda", "latency_ms": 1.0, "size_bytes": 1, "macs": 100}
    variant = Variant("v", recipe, sample_model_path(), "", {"variant": {**where, "latency_ms": 0.5},
                                                             "baseline": where, "speedup": 2.0})
    original = load_model(sample_model_path())
    result = explain(original, variant, original, layer_times=False)
    assert result.expected == GPU_HALF_GAIN and "fp16 on a GPU's tensor cores" in result.basis
    assert not any("CPU" in r for r in result.reasons + quick_reasons(variant))
