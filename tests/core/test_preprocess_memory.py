"""An image folder's preprocessing is asked once and remembered per model, in the user's config folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from paretolab.cli import main
from paretolab.core.measure.images import model_key, preprocess_memory
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model


def pooled_onnx(path: Path, scale: float = 1.0) -> Path:
    """[batch, 3, 16, 16] -> [batch, 3]: the mean of each channel (times `scale`, so files differ)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"]), helper.make_node("Flatten", ["p"], ["f"]),
             helper.make_node("Mul", ["f", "k"], ["y"])]
    graph = helper.make_graph(nodes, "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 16, 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])],
                              [numpy_helper.from_array(np.float32(scale), "k")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture()
def config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.delenv("PARETOLAB_CONFIG_DIR", raising=False)  # the suite's private folder: here, the real lookup
    return home / ".config"


def images(folder: Path) -> Path:
    folder.mkdir()
    for i in range(2):
        Image.fromarray(np.full((20, 20, 3), 100 * i, np.uint8)).save(folder / f"{i}.png")
    return folder


def test_a_recipe_given_once_is_used_again_for_that_model_only(tmp_path: Path, config_home: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    model, other = pooled_onnx(models / "pool.onnx"), pooled_onnx(models / "other.onnx", 2.0)
    folder = images(tmp_path / "imgs")
    handle = load_model(model)
    first = DataPlan.from_spec(str(folder), handle, "mean=0/0/0,std=1/1/1,scale=1")
    memory = preprocess_memory()
    assert memory.parent == config_home / "paretolab" and sorted(p.name for p in models.iterdir()) == ["other.onnx",
                                                                                                        "pool.onnx"]
    assert any(f"(as given; remembered for pool.onnx in {memory}; change with --preprocess)" in n for n in first.notes)
    again = DataPlan.from_spec(str(folder), handle)  # no recipe: the remembered one, not the ImageNet default
    assert again.test.preprocess.mean == (0, 0, 0) and again.test.preprocess.scale == 1
    assert again.test.load(np.array([1]))[0].max() == 100  # raw pixels, as remembered
    assert any(f"(remembered for pool.onnx in {memory}" in n for n in again.notes)
    fresh = DataPlan.from_spec(str(folder), load_model(other))  # another model: inferred, then remembered for it
    assert fresh.test.preprocess.mean == (0.485, 0.456, 0.406)
    assert any("inferred from the model's input; remembered for other.onnx" in n for n in fresh.notes)
    saved = json.loads(memory.read_text())
    assert saved[model_key(model)]["recipe"].startswith("size=16,") and model_key(other) in saved
    changed = DataPlan.from_spec(str(folder), handle, "mean=0.5/0.5/0.5,std=0.5/0.5/0.5")  # the flag changes it
    assert DataPlan.from_spec(str(folder), handle).test.preprocess.mean == (0.5, 0.5, 0.5) and changed.notes


def test_evaluate_says_which_recipe_it_used_and_where_it_is_remembered(tmp_path: Path, config_home: Path,
                                                                       capsys: pytest.CaptureFixture[str]) -> None:
    model, folder = pooled_onnx(tmp_path / "pool.onnx"), images(tmp_path / "imgs")
    preprocess_memory().parent.mkdir(parents=True)
    preprocess_memory().write_text("{not json")  # a damaged memory is started afresh, not an error
    assert main(["evaluate", str(model), "--data", str(folder)]) == 0
    err = capsys.readouterr().err
    assert "note: images preprocessed as size=16,mean=0.485/0.456/0.406" in err
    assert f"remembered for pool.onnx in {preprocess_memory()}; change with --preprocess" in err
