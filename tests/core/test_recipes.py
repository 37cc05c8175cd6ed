"""Recipes: JSON round trip, validation that names the field, and exact reproduction."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.data import digits
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import apply_recipe, optimize
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError

PRUNE_DISTILL_INT8 = {
    "steps": [
        {"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}},
        {"technique": "distill", "settings": {"epochs": 4}},
        {"technique": "quantize", "settings": {"backend": "ort", "format": "qop-u8s8"}},
    ]
}


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path("onnx"))


def test_recipe_round_trips_through_json(tmp_path):
    recipe = Recipe.from_dict(PRUNE_DISTILL_INT8)
    again = Recipe.load(recipe.save(tmp_path / "r.json"))
    assert again == recipe
    assert again.summary() == "prune structured 50% → distill 4 epochs on labels → quantize ort int8 qop-u8s8"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"steps": [{"technique": "prnue"}]}, "step 1: unknown technique 'prnue'"),
        (
            {"steps": [{"technique": "prune", "settings": {"sparsity": "half"}}]},
            "step 1 \\(prune\\): setting 'sparsity' = 'half'",
        ),
        (
            {"steps": [{"technique": "quantize", "settings": {"bakend": "ort"}}]},
            "step 1 \\(quantize\\): unknown setting 'bakend'",
        ),
        ({"steps": [{"technique": "prune", "when": 1}]}, "step 1: unknown field 'when'"),
        (
            {"steps": [{"technique": "quantize"}, {"technique": "prune"}]},
            "step 2: prune structured 50% edits the PyTorch model, so it must come before step 1",
        ),
        (
            {"steps": [{"technique": "quantize", "settings": {"backend": "openvino"}}, {"technique": "graphopt"}]},
            "step 2: nothing can follow step 1",
        ),
        ({"stages": []}, "a recipe is an object with a 'steps' list"),
        ({"paretolab_recipe": 9, "steps": []}, "recipe version 9 is not supported"),
    ],
)
def test_invalid_recipes_name_the_field(doc, message):
    with pytest.raises(SettingsError, match=message):
        Recipe.from_dict(doc)


def test_recipe_file_that_is_not_json(tmp_path):
    (tmp_path / "r.json").write_text('{"steps": [}')
    with pytest.raises(SettingsError, match="r.json is not valid JSON \\(line 1, column 12"):
        Recipe.load(tmp_path / "r.json")


def test_recipe_reproduces_the_variant_exactly(sample, tmp_path):
    recipe = Recipe.from_dict(PRUNE_DISTILL_INT8)
    data = DataPlan.from_spec("digits", sample)
    first, _ = apply_recipe(sample, recipe, data, tmp_path / "a")
    second, _ = apply_recipe(sample, Recipe.load(recipe.save(tmp_path / "r.json")), data, tmp_path / "b")
    a = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(first)).graph.initializer}
    b = {t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(second)).graph.initializer}
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def test_optimize_writes_model_recipe_and_metrics_and_keeps_the_original(sample, tmp_path):
    before = sample_model_path().read_bytes()
    recipe = Recipe.from_dict({"steps": [PRUNE_DISTILL_INT8["steps"][0], {"technique": "distill", "settings": {"epochs": 8}},
                                         {"technique": "quantize", "settings": {"backend": "openvino"}}]})
    variant = optimize(sample, recipe, DataPlan.from_spec("digits", sample), tmp_path, "small")
    assert variant.artifact == tmp_path / "small.xml" and (tmp_path / "small.bin").exists()
    saved = json.loads((tmp_path / "small.metrics.json").read_text())
    assert saved["metrics"]["variant"]["backend"] == "openvino"
    v, b = saved["metrics"]["variant"], saved["metrics"]["baseline"]
    assert v["macs"] < b["macs"] / 3 and v["size_bytes"] < b["size_bytes"] / 2
    assert v["top1"] >= b["top1"] - 0.05
    assert saved["metrics"]["speedup"] == pytest.approx(b["latency_ms"] / v["latency_ms"])
    assert Recipe.load(tmp_path / "small.recipe.json") == recipe
    assert sample_model_path().read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.bin", "small.metrics.json", "small.recipe.json", "small.xml"]
    # every number can be reproduced from the exported file alone
    again = load_model(variant.artifact)
    from paretolab.core.measure.evaluate import evaluate

    assert evaluate(again, digits("test"), backend="openvino").top1 == pytest.approx(v["top1"])


def test_onnx_only_models_get_onnx_level_techniques(model_files, tmp_path):
    handle = load_model(model_files["onnx"])
    data = DataPlan.from_spec("random:32", handle)
    recipe = Recipe.from_dict(
        {
            "steps": [
                {"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.5}},
                {"technique": "graphopt"},
                {"technique": "quantize", "settings": {"precision": "fp16"}},
            ]
        }
    )
    artifact, reports = apply_recipe(handle, recipe, data, tmp_path / "v")
    assert reports[0]["zero_fraction"] == pytest.approx(0.5, abs=0.02)
    assert load_model(artifact).format == "onnx"
    structured = Recipe.from_dict({"steps": [{"technique": "prune"}]})
    from paretolab.core.model.eager import TechniqueUnavailable

    with pytest.raises(TechniqueUnavailable, match="ONNX only"):
        apply_recipe(handle, structured, data, tmp_path / "w")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.onnx"]


def test_refuses_to_overwrite_the_opened_model(tmp_path):
    import shutil

    for f in ("digits_cnn.onnx", "digits_cnn_state.pth"):
        shutil.copy(sample_model_path().parent / f, tmp_path / f)
    handle = load_model(tmp_path / "digits_cnn.onnx")
    with pytest.raises(Exception, match="is the model you opened"):
        optimize(
            handle,
            Recipe.from_dict({"steps": [{"technique": "graphopt"}]}),
            DataPlan.from_spec("digits", handle),
            tmp_path,
            "digits_cnn",
        )


def test_cancelled_or_failed_optimize_leaves_nothing_behind(sample, tmp_path, monkeypatch):
    from paretolab.core.errors import Cancelled
    from paretolab.core.measure.runtimes import BackendError
    from paretolab.core.pipeline import optimize as pipeline
    from paretolab.core.progress import Progress

    data = DataPlan.from_spec("digits", sample)
    recipe = Recipe.from_dict({"steps": [{"technique": "prune"}, {"technique": "quantize"}]})
    progress = Progress(lambda fraction, message: message.startswith("step 2") and progress.cancel())
    with pytest.raises(Cancelled):
        optimize(sample, recipe, data, tmp_path, "v", progress=progress)
    assert list(tmp_path.iterdir()) == []

    graphopt = Recipe.from_dict({"steps": [{"technique": "graphopt"}]})
    with pytest.raises(SettingsError, match="this one ends with graph optimization|measure it on ort or openvino"):
        optimize(sample, graphopt, data, tmp_path, "v", backend="torch")

    def runtime_fails(*args, **kwargs):
        raise BackendError("the runtime failed")

    monkeypatch.setattr(pipeline, "scorecard", runtime_fails)
    with pytest.raises(BackendError):
        optimize(sample, graphopt, data, tmp_path, "v")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("errno_code", [28, 30, 13])  # ENOSPC, EROFS, EACCES
def test_full_disk_or_read_only_folder_reports_and_changes_nothing(sample, tmp_path, monkeypatch, errno_code):
    import os as real_os

    from paretolab.core import files
    from paretolab.core.files import WriteError

    first = optimize(
        sample, Recipe.from_dict({"steps": [{"technique": "graphopt"}]}), DataPlan.from_spec("digits", sample), tmp_path, "v1"
    )
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def failing_replace(src, dst):
        raise OSError(errno_code, real_os.strerror(errno_code))

    monkeypatch.setattr(files.os, "replace", failing_replace)
    with pytest.raises(WriteError, match=f"cannot write .*v2.onnx: {real_os.strerror(errno_code)}"):
        optimize(
            sample, Recipe.from_dict({"steps": [{"technique": "graphopt"}]}), DataPlan.from_spec("digits", sample), tmp_path, "v2"
        )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    with pytest.raises(WriteError):
        first.recipe.save(tmp_path / "copy.recipe.json")
    assert not (tmp_path / "copy.recipe.json").exists()


def test_a_name_with_a_dot_keeps_all_of_it(sample, tmp_path):
    """"fp16.v2" writes fp16.v2.onnx beside fp16.v2.metrics.json, not fp16.onnx."""
    fp16 = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"precision": "fp16"}}]})
    variant = optimize(sample, fp16, DataPlan.from_spec("random:8", sample), tmp_path, "fp16.v2")
    assert variant.artifact.name == "fp16.v2.onnx" and variant.artifact.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fp16.v2.metrics.json", "fp16.v2.onnx", "fp16.v2.recipe.json"]


def test_a_library_failure_inside_a_step_is_one_line_naming_the_step(tmp_path, monkeypatch):
    """An exception from a library (here ONNX Runtime's, raised while optimizing the graph) stops
    the recipe with our one-line error, naming the step and the library; nothing is written."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail

    from paretolab.core.compress import graphopt
    from paretolab.core.errors import ParetoLabError

    def fail(*_args, **_kwargs):
        raise Fail("[ONNXRuntimeError] : 1 : FAIL : something inside the runtime\nmore lines")

    monkeypatch.setattr(graphopt, "optimize_graph", fail)
    handle = load_model(sample_model_path())
    recipe = Recipe.from_dict({"steps": [{"technique": "graphopt", "settings": {"level": "basic"}}]})
    with pytest.raises(ParetoLabError) as caught:
        optimize(handle, recipe, DataPlan.from_spec("digits", handle), tmp_path)
    assert str(caught.value) == ("step 1 (graphopt basic) failed in onnxruntime: [ONNXRuntimeError] : 1 : FAIL : "
                                 "something inside the runtime")
    assert not list(tmp_path.glob("*.onnx"))
