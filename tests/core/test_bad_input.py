"""Every mistake a user can make while opening a model gives one clear line naming the file."""

from __future__ import annotations

import pytest

from model_zoo import TINY_INPUT
from paretolab.core.errors import (
    ArchitectureRequiredError,
    InputShapeError,
    ModelLoadError,
    UntrustedModelError,
)
from paretolab.core.model.handle import load_model
from paretolab.core.tensors import parse_input_shapes


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text and text.strip() == text and len(text) < 400
    return text


def test_missing_file(tmp_path):
    with pytest.raises(ModelLoadError) as exc:
        load_model(tmp_path / "nope.onnx")
    assert "nope.onnx: no such file" in one_line(exc)


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ModelLoadError, match="is a folder"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        ("empty", "empty.onnx is empty"),
        ("unknown_ext", "unknown model format '.xyz'"),
        ("keras", "model.h5 is a Keras model; export it to TFLite"),
        ("truncated_onnx", "truncated.onnx is not a readable ONNX file"),
        ("garbage_onnx", "garbage.onnx"),
        ("future_opset", "future_opset.onnx uses ONNX opset 99"),
        ("xml_without_bin", "tiny.xml needs its weights file tiny.bin"),
        ("truncated_script", "truncated_tiny_script.pt is not a readable PyTorch file"),
        ("truncated_pt2", "truncated_tiny.pt2 is not a readable torch.export program"),
        ("truncated_pickle", "truncated_tiny_module.pth is not a readable PyTorch file"),
    ],
)
def test_broken_files_name_the_file_and_the_fix(bad_files, key, expected):
    with pytest.raises(ModelLoadError) as exc:
        load_model(bad_files[key])
    assert expected in one_line(exc)


def test_untrusted_pickle_is_refused_with_the_reason_and_the_way_in(model_files):
    with pytest.raises(UntrustedModelError) as exc:
        load_model(model_files["pickle"])
    message = one_line(exc)
    assert "tiny_module.pth" in message and "runs code" in message and "--trust" in message


def test_state_dict_needs_an_architecture(model_files):
    for key in ("state_dict", "checkpoint"):
        with pytest.raises(ArchitectureRequiredError) as exc:
            load_model(model_files[key])
        assert "state_dict" in one_line(exc) and "--arch" in one_line(exc)


def test_arch_that_does_not_fit_the_weights(model_files):
    misfit = r"do not fit --arch 'model_zoo:Residual': \d+ missing \(.+\) and \d+ unexpected"
    with pytest.raises(ModelLoadError, match=misfit) as exc:
        load_model(model_files["state_dict"], arch="model_zoo:Residual")
    assert "\n" not in str(exc.value) and "Error(s)" not in str(exc.value)
    with pytest.raises(ModelLoadError, match="cannot be imported"):
        load_model(model_files["state_dict"], arch="no_such_pkg.mod:Net")
    with pytest.raises(ModelLoadError, match="package.module:ClassName"):
        load_model(model_files["state_dict"], arch="TinyNet")


def test_torchscript_without_recorded_shape_suggests_one(model_files):
    handle = load_model(model_files["script"])
    with pytest.raises(InputShapeError) as exc:
        handle.layer_graph()
    assert "--input-shape" in one_line(exc) and "1x3x224x224" in one_line(exc)
    assert exc.value.suggestion.startswith("1x3x224x224")


@pytest.mark.parametrize("text", ["1x3xabc", "", "1x0x4", "224 224"])
def test_malformed_input_shape(text):
    with pytest.raises(InputShapeError, match="is not valid"):
        parse_input_shapes([text])


def test_input_shape_that_does_not_fit_the_model(model_files):
    with pytest.raises(InputShapeError, match="has 4 dimensions"):
        load_model(model_files["onnx"], input_shapes={None: (1, 3, 16)})
    with pytest.raises(InputShapeError, match="fixed size 3 on axis 1"):
        load_model(model_files["onnx"], input_shapes={None: (1, 4, 16, 16)})
    with pytest.raises(InputShapeError, match="no input named 'image'; its inputs are: input"):
        load_model(model_files["onnx"], input_shapes={"image": TINY_INPUT})


def test_wrong_input_shape_for_a_torch_model_names_the_problem(model_files):
    handle = load_model(model_files["script"], input_shapes={None: (1, 5, 16, 16)})
    with pytest.raises(InputShapeError) as exc:
        handle.layer_graph()
    message = one_line(exc)
    assert "tiny_script.pt does not accept x [1, 5, 16, 16] float32" in message  # named as its forward names it
    assert "expected input[1, 5, 16, 16] to have 3 channels" in message


def test_model_bigger_than_free_memory_is_refused_before_loading(model_files, monkeypatch):
    import psutil

    class Tight:
        available = 1000

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tight())
    with pytest.raises(ModelLoadError) as exc:
        load_model(model_files["onnx"])
    assert "tiny.onnx is 0.0 GiB" in one_line(exc) and "memory is free" in one_line(exc)


def test_a_checkpoint_under_an_unknown_key_lists_what_it_holds(tmp_path):
    import torch

    path = tmp_path / "odd.pt"
    torch.save({"epoch": 3, "optimizer": {"lr": 0.1}, "weights_of_mine": {"fc.weight": torch.zeros(2, 2)}}, path)
    with pytest.raises(ModelLoadError, match="holds a dict with keys epoch, optimizer, weights_of_mine, none of them") as exc:
        load_model(path, trust=True)
    assert "\n" not in str(exc.value)
