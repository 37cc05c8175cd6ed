"""Files and shapes written to hurt: an input too large for memory is refused before anything is
allocated, a malformed recipe or paretolab.json is one line naming the file and the field (never
'internal error'), and a tensor name with a quote, backslash and newline survives a Triton
config.pbtxt."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from paretolab.cli import main
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import InputShapeError, ModelLoadError
from paretolab.core.model.formats.torch_file import SPEC_FILE
from paretolab.core.model.handle import load_model
from paretolab.core.settings import SettingsError
from paretolab.core.store.export import triton_config
from paretolab.core.tensors import TensorSpec, check_fits_in_memory

GiB = 2**30


class _Conv(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x).mean((2, 3))


def _free_size_onnx(path):
    """A convolution that takes any image size ([N, 3, H, W], all free)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, "H", "W"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4, None, None])
    weight = helper.make_tensor("w", TensorProto.FLOAT, [4, 3, 3, 3], np.ones(108, np.float32))
    graph = helper.make_graph([helper.make_node("Conv", ["x", "w"], ["y"], name="conv")], "g", [x], [y], [weight])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)
    return path


def _torchscript(path, spec: str | None = None):
    extra = {SPEC_FILE: spec} if spec is not None else {}
    torch.jit.save(torch.jit.script(_Conv().eval()), str(path), _extra_files=extra)
    return path


@pytest.fixture
def tight_memory(monkeypatch):
    """1 GiB available, whatever the machine has: the refusals below must come before any allocation."""
    import psutil

    class Tight:
        available = 1 * GiB
        total = 2 * GiB

    monkeypatch.setattr(psutil, "virtual_memory", lambda: Tight())
    # a tripwire: were a refused shape allocated anyway, this test fails instead of taking 4.8 GB
    real_rng = np.random.default_rng

    def guarded_rng(*args, **kwargs):
        rng = real_rng(*args, **kwargs)
        draw = rng.standard_normal

        class Guard:
            def __getattr__(self, name):
                return getattr(rng, name)

            def standard_normal(self, size=None, *a, **k):
                assert int(np.prod(size, dtype=np.float64)) * 8 < 256 * 2**20, f"allocating {size}"
                return draw(size, *a, **k)

        return Guard()

    monkeypatch.setattr(np.random, "default_rng", guarded_rng)


def _one_line_error(capsys, argv) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert "\n" not in err and "internal error" not in err, err
    return err


def test_an_input_larger_than_memory_is_refused_before_profile_allocates_it(tmp_path, capsys, tight_memory):
    model = _free_size_onnx(tmp_path / "conv.onnx")
    err = _one_line_error(capsys, ["profile", str(model), "--input-shape", "1x3x20000x20000"])
    assert "input 'x' [1, 3, 20000, 20000] float32 needs 4.47 GiB (4,800,000,000 bytes)" in err, err
    assert "only 1 GiB of memory is available" in err and "--input-shape" in err


def test_a_torchscript_input_larger_than_memory_is_refused(tmp_path, capsys, tight_memory):
    model = _torchscript(tmp_path / "conv.pt")
    err = _one_line_error(capsys, ["profile", str(model), "--input-shape", "1x3x20000x20000"])
    assert "input 'x' [1, 3, 20000, 20000] float32 needs 4.47 GiB" in err or \
           "input 'input' [1, 3, 20000, 20000] float32 needs 4.47 GiB" in err, err


def test_a_shape_declared_in_paretolab_json_is_refused_before_it_is_made(tmp_path, capsys, tight_memory):
    spec = json.dumps({"inputs": [{"name": "x", "shape": [300000000, 4], "dtype": "float32"}], "outputs": []})
    model = _torchscript(tmp_path / "declared.pt", spec)
    err = _one_line_error(capsys, ["profile", str(model)])
    assert "input 'x' [300000000, 4] float32 needs 4.47 GiB" in err, err


def test_check_fits_in_memory_counts_in_python_ints(monkeypatch):
    import psutil

    monkeypatch.setattr(psutil, "virtual_memory", lambda: type("M", (), {"available": 8 * GiB})())
    check_fits_in_memory("x", (1, 3, 224, 224), "float32")
    with pytest.raises(InputShapeError, match=r"input 'ids' \[70000, 70000, 70000, 70000\] int64 needs"):
        check_fits_in_memory("ids", (70000,) * 4, "int64")  # 1.9e20 elements: overflows an int64 product


@pytest.mark.parametrize("doc, field", [
    ({"steps": [{"technique": "prune", "settings": [1, 2]}]}, "step 1 (prune)"),
    ({"steps": [{"technique": "prune", "settings": {"amount": {"nested": [1]}}}]}, "amount"),
    ({"steps": [{"technique": "prune", "settings": {"amount": "half"}}]}, "amount"),
    ({"steps": [{"technique": ["prune"], "settings": {}}]}, "step 1: each step needs a 'technique'"),
    ({"steps": [{"technique": {"name": "prune"}}]}, "step 1: each step needs a 'technique'"),
    ({"steps": {"technique": "prune"}}, "a 'steps' list"),
    ([{"technique": "prune"}], "a 'steps' list"),
])
def test_a_malformed_recipe_names_the_file_and_the_field(tmp_path, doc, field):
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SettingsError) as exc:
        Recipe.load(path)
    message = str(exc.value)
    assert "recipe.json" in message and field in message and "\n" not in message, message


@pytest.mark.parametrize("content, expected", [
    ("[" * 100000 + "]" * 100000, "nests its JSON too deeply"),
    (b"\xff\xfe{}", "is not UTF-8 text"),
    ("{\"steps\": [", "is not valid JSON"),
])
def test_a_recipe_that_is_not_json_text_is_one_line(tmp_path, capsys, content, expected):
    path = tmp_path / "recipe.json"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(SettingsError, match=expected):
        Recipe.load(path)
    model = _free_size_onnx(tmp_path / "conv.onnx")
    err = _one_line_error(capsys, ["optimize", str(model), "--input-shape", "1x3x8x8", "--recipe", str(path),
                                   "--out", str(tmp_path / "exp"), "--data", "random:2"])
    assert "recipe.json" in err and expected in err


@pytest.mark.parametrize("spec, field", [
    ("[1, 2]", "paretolab.json is a JSON list"),
    ("{\"inputs\": {\"x\": 1}}", "'inputs' is a object"),
    ("{\"inputs\": [\"x\"]}", "inputs[0] is a string"),
    ("{\"inputs\": [{\"name\": 3, \"shape\": [1], \"dtype\": \"float32\"}]}", "inputs[0].name is a number"),
    ("{\"inputs\": [{\"name\": \"x\", \"shape\": \"1x3\", \"dtype\": \"float32\"}]}", "inputs[0].shape ('x') is a string"),
    ("{\"inputs\": [{\"name\": \"x\", \"shape\": [3e8, 4], \"dtype\": \"float32\"}]}", "inputs[0].shape[0] ('x') is 300000000.0"),
    ("{\"inputs\": [{\"name\": \"x\", \"shape\": [[1], 4], \"dtype\": \"float32\"}]}", "inputs[0].shape[0] ('x') is [1]"),
    ("{\"inputs\": [{\"name\": \"x\", \"shape\": [true], \"dtype\": \"float32\"}]}", "inputs[0].shape[0] ('x') is true"),
    ("{\"inputs\": [{\"name\": \"x\", \"shape\": [1], \"dtype\": \"object\"}]}", "inputs[0].dtype ('x') is \"object\""),
    ("{\"outputs\": [{\"name\": \"y\", \"shape\": {}, \"dtype\": \"float32\"}]}", "outputs[0].shape ('y') is a object"),
    ("{\"inputs\": " + "[" * 5000 + "]" * 5000 + "}", "is not valid JSON"),
    ("not json", "is not valid JSON"),
])
def test_a_bad_paretolab_json_in_torchscript_names_the_file_and_the_field(tmp_path, spec, field):
    model = _torchscript(tmp_path / "bad.pt", spec)
    with pytest.raises(ModelLoadError) as exc:
        load_model(model)
    message = str(exc.value)
    assert message.startswith("bad.pt: paretolab.json") and field in message and "\n" not in message, message


def test_a_bad_paretolab_json_in_a_pt2_names_the_file_and_the_field(tmp_path):
    program = torch.export.export(_Conv().eval(), (torch.zeros(1, 3, 8, 8),))
    path = tmp_path / "bad.pt2"
    torch.export.save(program, str(path), extra_files={SPEC_FILE: json.dumps({"inputs": [{"name": "x", "shape": "big"}]})})
    with pytest.raises(ModelLoadError, match=r"bad.pt2: paretolab.json: inputs\[0\].shape \('x'\) is a string"):
        load_model(path)


def _model_config_class():
    """Triton's ModelConfig, the part config.pbtxt uses here, declared from its model_config.proto so
    protobuf's own text-format parser reads the file as Triton's does (tritonclient is not a dependency)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    proto = descriptor_pb2.FileDescriptorProto(name="triton_test_model_config.proto", package="inference_test")
    kinds = proto.enum_type.add(name="DataType")
    for number, name in enumerate(["TYPE_INVALID", "TYPE_BOOL", "TYPE_UINT8", "TYPE_UINT16", "TYPE_UINT32", "TYPE_UINT64",
                                   "TYPE_INT8", "TYPE_INT16", "TYPE_INT32", "TYPE_INT64", "TYPE_FP16", "TYPE_FP32",
                                   "TYPE_FP64", "TYPE_STRING", "TYPE_BF16"]):
        kinds.value.add(name=name, number=number)
    for message in ("ModelInput", "ModelOutput"):
        tensor = proto.message_type.add(name=message)
        tensor.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
        tensor.field.add(name="data_type", number=2, type=F.TYPE_ENUM, type_name=".inference_test.DataType",
                         label=F.LABEL_OPTIONAL)
        tensor.field.add(name="dims", number=4 if message == "ModelInput" else 3, type=F.TYPE_INT64, label=F.LABEL_REPEATED)
    config = proto.message_type.add(name="ModelConfig")
    config.field.add(name="name", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    config.field.add(name="platform", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    config.field.add(name="backend", number=17, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    config.field.add(name="max_batch_size", number=4, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    config.field.add(name="input", number=5, type=F.TYPE_MESSAGE, type_name=".inference_test.ModelInput",
                     label=F.LABEL_REPEATED)
    config.field.add(name="output", number=6, type=F.TYPE_MESSAGE, type_name=".inference_test.ModelOutput",
                     label=F.LABEL_REPEATED)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(proto)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("inference_test.ModelConfig"))


def test_triton_config_escapes_quotes_backslashes_and_newlines_in_names():
    from google.protobuf import text_format

    awkward = 'in"put\\x\nnext line é'
    inputs, outputs = [TensorSpec(awkward, ("batch", 3, 8, 8), "float32")], [TensorSpec("out\"put", ("batch", 10), "int64")]
    text = triton_config('my "model"\\v1', 'platform: "onnxruntime_onnx"', inputs, outputs)
    plain = triton_config("m", 'platform: "onnxruntime_onnx"', [TensorSpec("i", ("batch", 3, 8, 8), "float32")],
                          [TensorSpec("o", ("batch", 10), "int64")])
    assert len(text.splitlines()) == len(plain.splitlines())  # no line break inside a name
    config = text_format.Parse(text, _model_config_class()())
    assert config.name == 'my "model"\\v1' and config.platform == "onnxruntime_onnx" and config.max_batch_size == 64
    assert config.input[0].name == awkward and list(config.input[0].dims) == [3, 8, 8]
    assert config.output[0].name == "out\"put" and config.output[0].data_type == 9  # TYPE_INT64
