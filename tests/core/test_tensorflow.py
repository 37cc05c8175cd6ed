"""TensorFlow Lite models and frozen TensorFlow graphs open through OpenVINO's frontends and go the
OpenVINO path: analysis, profiling, importance, OpenVINO int8/FP16 variants; the techniques that
need an ONNX or PyTorch form say so in one line (tests/tensorflow_models.py writes the models
without TensorFlow; numpy is the reference)."""

from __future__ import annotations

import numpy as np
import pytest

import tensorflow_models  # type: ignore[import-not-found]
from paretolab.core.compress.insight.importance import weight_importance
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import ModelLoadError, ParetoLabError
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.profile import profile_model
from paretolab.core.measure.runtimes import open_runner
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize

WRITERS = {"tflite": (".tflite", tensorflow_models.write_tflite),
           "tensorflow": (".pb", tensorflow_models.write_frozen_graph)}
KINDS = {"tflite": "TensorFlow Lite", "tensorflow": "TensorFlow graph"}


@pytest.fixture(scope="module", params=list(WRITERS))
def tf_file(request, tmp_path_factory):
    suffix, write = WRITERS[request.param]
    path = tmp_path_factory.mktemp(request.param) / f"classifier{suffix}"
    return path, write(path)


def test_opens_with_its_layers_and_costs(tf_file):
    handle = load_model(tf_file[0])
    assert handle.format in KINDS and handle.files == [handle.path]
    (image,) = handle.inputs
    assert image.name.startswith("image") and image.batch_axis == 0 and list(image.shape[1:]) == [8, 8, 1]
    graph = handle.layer_graph()
    assert graph.total_params == 36 + 4 + 2560 + 10
    assert graph.total_macs == 8 * 8 * 4 * 9 + 256 * 10  # conv + fully connected
    assert "logits" in {n.name for n in graph}  # named after its tensor, not the frontend's number


def test_tflite_is_recognised_by_content(tmp_path):
    path = tmp_path / "classifier.model"
    tensorflow_models.write_tflite(path)
    handle = load_model(path)
    assert handle.format == "tflite" and handle.layer_graph().total_macs > 0


def test_a_saved_model_folder_is_refused_with_the_converter_to_use(tmp_path):
    (tmp_path / "exported").mkdir()
    tensorflow_models.write_frozen_graph(tmp_path / "exported" / "saved_model.pb")
    for path in (tmp_path / "exported", tmp_path / "exported" / "saved_model.pb"):
        with pytest.raises(ModelLoadError, match="SavedModel; convert it with `ovc"):
            load_model(path)


def test_runs_on_openvino_by_default_and_matches_numpy(tf_file):
    path, weights = tf_file
    image = np.random.default_rng(1).normal(size=(3, 8, 8, 1)).astype(np.float32)
    with open_runner(load_model(path)) as runner:
        assert runner.backend == "openvino"
        (logits,) = runner.run([image])
    np.testing.assert_allclose(logits, tensorflow_models.reference(image, weights), rtol=1e-4, atol=1e-5)


def test_profiles_at_several_batches_and_ranks_weights(tf_file):
    handle = load_model(tf_file[0])
    result = profile_model(handle, batch_sizes=(1, 4), runs=10, warmup=2, budget_s=0.5, async_budget_s=0.2)
    assert [s.batch for s in result.latency] == [1, 4] and result.backend == "openvino"
    assert result.layers
    layers = weight_importance(handle)
    assert sorted(layer.op for layer in layers) == ["Convolution", "MatMul"] and all(layer.l1 > 0 for layer in layers)


def _quantize(backend: str, precision: str) -> dict:
    return {"steps": [{"technique": "quantize", "settings": {"backend": backend, "precision": precision}}]}


@pytest.mark.parametrize("precision, min_cosine", [("int8", 0.99), ("fp16", 0.9999)])
def test_openvino_variants_are_made_measured_and_faithful(tf_file, tmp_path, precision, min_cosine):
    handle = load_model(tf_file[0])
    recipe = Recipe.from_dict(_quantize("openvino", precision))
    variant = optimize(handle, recipe, DataPlan.from_spec("random:32", handle), tmp_path, "v")
    assert variant.artifact.suffix == ".xml" and variant.measured.backend == "openvino"
    assert variant.measured.cosine >= min_cosine, variant.measured.fidelity_text()
    assert load_model(variant.artifact).layer_graph().total_macs == handle.layer_graph().total_macs


@pytest.mark.parametrize("recipe", [
    {"steps": [{"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.3}}]},
    _quantize("ort", "int8"),
])
def test_techniques_that_need_onnx_or_torch_say_so_in_one_line(tf_file, tmp_path, recipe):
    handle = load_model(tf_file[0])
    with pytest.raises(ParetoLabError) as caught:
        optimize(handle, Recipe.from_dict(recipe), DataPlan.from_spec("random:16", handle), tmp_path, "v")
    message = str(caught.value)
    assert "\n" not in message and KINDS[handle.format] in message and "tf2onnx" in message, message
    assert not list(tmp_path.iterdir())  # no partial variant


def test_a_damaged_file_is_one_line(tf_file, tmp_path):
    broken = tmp_path / f"broken{tf_file[0].suffix}"
    broken.write_bytes(tf_file[0].read_bytes()[:300])
    with pytest.raises(ModelLoadError) as caught:
        load_model(broken)
    assert broken.name in str(caught.value) and "\n" not in str(caught.value)


def test_the_command_line_profiles_it_on_openvino_and_refuses_onnx_runtime_in_one_line(tf_file, capsys):
    from paretolab.cli import main

    assert main(["profile", str(tf_file[0]), "--batch", "1", "--runs", "5", "--no-layers", "--json"]) == 0
    assert '"backend": "openvino"' in capsys.readouterr().out
    assert main(["profile", str(tf_file[0]), "--backend", "ort"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "TensorFlow" in err and "tf2onnx" in err
