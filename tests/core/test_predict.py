"""The settings panel's predictions match what the techniques then produce on real models."""

from __future__ import annotations

import pytest

from paretolab.core.compress.insight.predict import predict
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path())


@pytest.mark.parametrize(("sparsity", "quantize", "precision"), [
    (0.3, None, "fp32"),  # channel counts round to multiples of 8: 16 channels at 30% keep 8
    (0.5, ("ort", "int8"), "int8"),  # the case that read ~14 KiB predicted, 22.4 KiB measured
    (0.0, ("ort", "fp16"), "fp16"),
    (0.0, ("openvino", "int8"), "int8"),  # an IR's XML topology outweighs a small model's weights
])
def test_prediction_brackets_the_measured_variant(sample, tmp_path, sparsity, quantize, precision):
    steps = [{"technique": "prune", "settings": {"method": "structured", "sparsity": sparsity}}] if sparsity else []
    if quantize:
        steps.append({"technique": "quantize", "settings": {"backend": quantize[0], "precision": quantize[1]}})
    variant = optimize(sample, Recipe.from_dict({"steps": steps}), DataPlan.from_spec("digits", sample), tmp_path, "v")
    measured = variant.metrics["variant"]
    guess = predict(sample.layer_graph(), sparsity=sparsity, precision=precision, backend=quantize[0] if quantize else "ort")
    assert guess.macs == measured["macs"]  # MACs describe the model, not its precision: int8 counts the same
    if sparsity or quantize == ("ort", "int8"):
        assert guess.params == measured["params"]  # int8 files count no scales or zero points as parameters
    assert 0.95 * guess.size_low <= measured["size_bytes"] <= 1.1 * guess.size_high  # whichever int8 format wins
