"""Every format loads into a ModelHandle that knows its inputs and converts to ONNX and OpenVINO."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import openvino as ov
import pytest
import torch

from model_zoo import TINY_INPUT, TINY_MACS, tiny_net
from paretolab.core.errors import ConversionError
from paretolab.core.model.handle import load_model

SHAPE = {None: TINY_INPUT}


def reference_logits(x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return tiny_net()(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module")
def x() -> np.ndarray:
    return np.random.default_rng(0).random(TINY_INPUT, dtype=np.float32)


@pytest.mark.parametrize(
    ("key", "fmt", "kwargs"),
    [
        ("onnx", "onnx", {}),
        ("onnx_external", "onnx", {}),
        ("script", "torchscript", {"input_shapes": SHAPE}),
        ("trace", "torchscript", {"input_shapes": SHAPE}),
        ("pt2", "torch.export", {}),
        ("pickle", "torch-pickle", {"trust": True, "input_shapes": SHAPE}),
        ("state_dict", "torch-state-dict", {"arch": "model_zoo:TinyNet", "input_shapes": SHAPE}),
        ("checkpoint", "torch-state-dict", {"arch": "model_zoo:TinyNet", "input_shapes": SHAPE}),
        ("openvino", "openvino", {}),
    ],
)
def test_every_format_loads_with_its_inputs_and_full_macs(model_files, key, fmt, kwargs):
    handle = load_model(model_files[key], **kwargs)
    assert handle.format == fmt
    assert [s.name for s in handle.inputs] in (["input"], ["x"])
    assert handle.inputs[0].shape[1:] == TINY_INPUT[1:]
    graph = handle.layer_graph()
    assert graph.total_macs == TINY_MACS
    assert graph.macs_complete
    assert graph.size_bytes == sum(f.stat().st_size for f in handle.files) or fmt.startswith("torch")


def test_onnx_reports_dynamic_batch_and_external_data_files(model_files):
    handle = load_model(model_files["onnx_external"])
    assert handle.inputs[0].shape == ("batch", 3, 16, 16)
    assert handle.inputs[0].dynamic_axes == (0,)
    assert [f.name for f in handle.files] == ["tiny_ext.onnx", "tiny_ext.onnx.data"]


def test_external_data_outside_the_models_folder_is_refused(model_files, tmp_path):
    import shutil

    import onnx

    from paretolab.core.errors import ModelLoadError

    model = onnx.load(str(model_files["onnx_external"]), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../outside/weights.data"
    (tmp_path / "outside").mkdir()
    shutil.copyfile(model_files["onnx_external"].with_name("tiny_ext.onnx.data"), tmp_path / "outside" / "weights.data")
    (tmp_path / "model").mkdir()
    onnx.save(model, str(tmp_path / "model" / "escape.onnx"))
    with pytest.raises(ModelLoadError, match="outside its own folder"):
        load_model(tmp_path / "model" / "escape.onnx")


def test_a_batch_written_as_minus_one_is_free_and_can_be_fixed(model_files, tmp_path):
    """Files from other frameworks write a free batch as -1: it must not count as a size (MACs
    came out negative) nor refuse --input-shape."""
    import onnx

    model = onnx.load(str(model_files["onnx"]))
    model.graph.input[0].type.tensor_type.shape.dim[0].Clear()
    model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = -1
    onnx.save(model, str(tmp_path / "minus_one.onnx"))
    handle = load_model(tmp_path / "minus_one.onnx")
    assert handle.inputs[0].shape[0] is None and handle.inputs[0].dynamic_axes == (0,)
    assert handle.layer_graph().total_macs == TINY_MACS  # a free batch is taken as 1
    fixed = load_model(tmp_path / "minus_one.onnx", input_shapes={None: (2, 3, 16, 16)})
    assert fixed.inputs[0].shape == (2, 3, 16, 16) and fixed.layer_graph().total_macs == 2 * TINY_MACS


def test_input_shape_fixes_a_dynamic_dim(model_files):
    handle = load_model(model_files["onnx"], input_shapes={None: (4, 3, 16, 16)})
    assert handle.inputs[0].shape == (4, 3, 16, 16)
    assert handle.layer_graph().total_macs == 4 * TINY_MACS


@pytest.mark.parametrize(
    ("key", "kwargs"),
    [("script", {"input_shapes": SHAPE}), ("pt2", {}), ("pickle", {"trust": True, "input_shapes": SHAPE}), ("onnx_external", {})],
)
def test_onnx_form_runs_in_onnxruntime_like_the_original(model_files, tmp_path, x, key, kwargs):
    handle = load_model(model_files[key], **kwargs)
    out = handle.to_onnx(tmp_path / "converted.onnx")
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    (logits,) = session.run(None, {session.get_inputs()[0].name: x})
    np.testing.assert_allclose(logits, reference_logits(x), rtol=1e-4, atol=1e-5)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


@pytest.mark.parametrize(("key", "kwargs"), [("onnx", {}), ("script", {"input_shapes": SHAPE}), ("pt2", {}), ("openvino", {})])
def test_openvino_form_runs_like_the_original(model_files, tmp_path, x, key, kwargs):
    handle = load_model(model_files[key], **kwargs)
    xml = handle.to_openvino(tmp_path / "converted")
    assert xml.suffix == ".xml" and xml.with_suffix(".bin").exists()
    # OpenVINO's CPU plugin defaults to bf16 where the CPU has it (this project's machines do).
    compiled = ov.Core().compile_model(str(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    logits = compiled([x])[compiled.outputs[0]]
    np.testing.assert_allclose(logits, reference_logits(x), rtol=1e-4, atol=1e-5)


def test_openvino_ir_cannot_become_onnx(model_files, tmp_path):
    with pytest.raises(ConversionError, match="cannot be converted back to ONNX"):
        load_model(model_files["openvino"]).to_onnx(tmp_path / "x.onnx")
    assert list(tmp_path.iterdir()) == []


def test_loading_never_modifies_the_users_files(model_files, tmp_path):
    before = {k: (p.stat().st_mtime_ns, p.read_bytes()) for k, p in model_files.items()}
    for key in ("onnx", "script", "pt2"):
        h = load_model(model_files[key], input_shapes=SHAPE if key == "script" else None)
        h.layer_graph()
        h.to_onnx(tmp_path / f"{key}.onnx")
    assert before == {k: (p.stat().st_mtime_ns, p.read_bytes()) for k, p in model_files.items()}


def test_files_of_an_ir_are_xml_and_bin(model_files):
    handle = load_model(model_files["openvino"])
    assert [Path(f).suffix for f in handle.files] == [".xml", ".bin"]


@pytest.mark.parametrize("suffix", [".jit", ".torchscript", ".ptl"])
def test_torchscript_archives_under_other_names_open_by_their_content(model_files, tmp_path, suffix):
    renamed = tmp_path / f"model{suffix}"
    renamed.write_bytes(model_files["script"].read_bytes())
    handle = load_model(renamed, input_shapes={None: TINY_INPUT})
    assert handle.format == "torchscript" and handle.layer_graph().total_macs == TINY_MACS


@pytest.mark.parametrize(("key", "fmt", "kwargs"), [
    ("onnx", "onnx", {}), ("script", "torchscript", {"input_shapes": {None: TINY_INPUT}}), ("pt2", "torch.export", {}),
    ("pickle", "torch-pickle", {"trust": True, "input_shapes": {None: TINY_INPUT}}),
])
def test_any_model_file_opens_by_its_content_whatever_its_name(model_files, tmp_path, key, fmt, kwargs):
    renamed = tmp_path / "model.bin"  # as model hubs and download scripts name files
    renamed.write_bytes(model_files[key].read_bytes())
    handle = load_model(renamed, **kwargs)
    assert handle.format == fmt and handle.layer_graph().total_macs == TINY_MACS
