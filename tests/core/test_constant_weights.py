"""ONNX files that keep their weights in Constant nodes (as Paddle2ONNX and others write them):
every weight-editing technique works on them, and the user's file is left as it was."""

from __future__ import annotations

import hashlib

import onnx
import pytest

from paretolab.core.compress.quantization.quantize import int8_layer_error
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.data import digits
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path


@pytest.fixture(scope="module")
def constant_weights(tmp_path_factory):
    model = onnx.load(str(sample_model_path()))
    constants = [onnx.helper.make_node("Constant", [], [t.name], value=t) for t in model.graph.initializer]
    del model.graph.initializer[:]
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(constants + nodes)
    path = tmp_path_factory.mktemp("constants") / "constant_weights.onnx"
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("steps", [
    [{"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.3}}],
    [{"technique": "quantize", "settings": {"backend": "ort", "precision": "int8", "format": "qdq-s8s8"}}],
    [{"technique": "quantize", "settings": {"backend": "ort", "precision": "dynamic-int8"}}],
    [{"technique": "quantize", "settings": {"backend": "ort", "precision": "fp16"}}],
    [{"technique": "quantize", "settings": {"backend": "openvino", "precision": "int8"}}],
])
def test_weight_editing_techniques_work_on_constant_node_weights(constant_weights, tmp_path, steps):
    before = hashlib.sha256(constant_weights.read_bytes()).hexdigest()
    handle = load_model(constant_weights)
    assert handle.layer_graph().total_params == load_model(sample_model_path()).layer_graph().total_params
    variant = optimize(handle, Recipe.from_dict({"steps": steps}), DataPlan.from_spec("digits", handle), tmp_path, "v")
    assert variant.measured.top1 >= variant.baseline.top1 - 0.02 and variant.measured.agreement >= 0.97
    if steps[0]["technique"] == "prune":  # the Constant-node weights were found and pruned
        assert variant.reports[0]["zero_fraction"] > 0.25
    assert hashlib.sha256(constant_weights.read_bytes()).hexdigest() == before  # the user's file is untouched


def test_int8_error_per_layer_works_on_constant_node_weights(constant_weights):
    sqnr = int8_layer_error(load_model(constant_weights), digits("train"))
    assert {"features.0", "features.2", "features.5"} <= set(sqnr) and all(v > 10 for v in sqnr.values())
