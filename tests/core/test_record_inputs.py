"""`paretolab record`: the user's own script runs once and the inputs its model receives become --data."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from paretolab.core.measure.data import DataError, open_dataset
from paretolab.core.measure.record import record_inputs
from paretolab.core.tensors import TensorSpec

X = TensorSpec("x", ("batch", 4), "float32")


def relu_onnx(path: Path, input_name: str = "x") -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Relu", [input_name], ["y"])], "relu",
                              [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def script(folder: Path, body: str) -> list[str]:
    path = folder / "user_script.py"
    path.write_text(textwrap.dedent(body))
    return [sys.executable, str(path)]


def test_an_onnx_runtime_script_records_each_call_by_input_name(tmp_path: Path) -> None:
    model = relu_onnx(tmp_path / "relu.onnx")
    command = script(tmp_path, """
        import sys, numpy as np, onnxruntime as ort
        session = ort.InferenceSession(sys.argv[1], providers=["CPUExecutionProvider"])
        for i in range(3):
            session.run(None, {"x": np.full((2, 4), 500.0 * i, np.float32)})
        print("done")
    """) + [str(model)]
    made = record_inputs(model, [X], command, tmp_path / "inputs.npz", cwd=tmp_path)
    recorded = np.load(made.path)
    assert made.samples == 6 and made.calls == 3 and list(recorded.files) == ["x"]
    assert recorded["x"].shape == (6, 4) and list(recorded["x"][:, 0]) == [0, 0, 500, 500, 1000, 1000]
    data = open_dataset(str(made.path), [X])  # the recording is --data as any .npz is
    assert len(data) == 6 and data.load(np.array([5]))[0].max() == 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inputs.npz", "relu.onnx", "user_script.py"]  # nothing else
    with pytest.raises(DataError, match="exists; .* --force"):
        record_inputs(model, [X], command, tmp_path / "inputs.npz", cwd=tmp_path)
    few = record_inputs(model, [X], command, tmp_path / "inputs.npz", max_samples=3, force=True, cwd=tmp_path)
    assert few.samples == 3 and np.load(few.path)["x"].shape == (3, 4)


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
@pytest.mark.parametrize("how", ["jit", "export", "pickled", "state_dict"])
def test_a_torch_script_records_the_calls_of_the_loaded_model(tmp_path: Path, how: str) -> None:
    import torch

    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    model = tmp_path / {"jit": "net.pt", "export": "net.pt2", "pickled": "net.pth", "state_dict": "weights.pth"}[how]
    if how == "jit":
        torch.jit.save(torch.jit.script(net), str(model))
        load = "net = torch.jit.load(sys.argv[1])"
    elif how == "export":
        torch.export.save(torch.export.export(net, (torch.ones(1, 4),)), str(model))
        load = "net = torch.export.load(sys.argv[1]).module()"
    elif how == "pickled":  # a whole nn.Module, as torch.save(model) writes it
        torch.save(net, str(model))
        load = "net = torch.load(sys.argv[1], weights_only=False)"
    else:
        torch.save({"model": net.state_dict()}, str(model))
        load = ("net = torch.nn.Sequential(torch.nn.Linear(4, 3))\n"
                "        net.load_state_dict(torch.load(sys.argv[1])['model'])")
    command = script(tmp_path, f"""
        import sys, torch
        {load}
        other = torch.nn.Linear(4, 4)
        with torch.no_grad():
            for i in range(2):
                net(torch.full((1, 4), float(i + 1)))
                other(torch.zeros(5, 4))  # another model of the script: not recorded
    """) + [str(model)]
    made = record_inputs(model, [X], command, tmp_path / "inputs.npz", cwd=tmp_path)
    assert made.calls == 2 and list(np.load(made.path)["x"][:, 0]) == [1.0, 2.0]


def test_a_failing_script_or_one_that_never_runs_the_model_is_one_line(tmp_path: Path) -> None:
    model, other = relu_onnx(tmp_path / "relu.onnx"), relu_onnx(tmp_path / "other.onnx", "pixels")
    failing = script(tmp_path, "import sys\nprint('loading', file=sys.stderr)\nraise SystemExit('weights not found: w.bin')\n")
    with pytest.raises(DataError, match="exited with status 1: weights not found: w.bin") as failed:
        record_inputs(model, [X], failing, tmp_path / "a.npz", cwd=tmp_path)
    elsewhere = script(tmp_path, """
        import sys, numpy as np, onnxruntime as ort
        ort.InferenceSession(sys.argv[1]).run(None, {"pixels": np.zeros((1, 4), np.float32)})
    """) + [str(other)]
    with pytest.raises(DataError, match=r"never ran relu.onnx: it ran .*other.onnx \(inputs pixels\)") as never:
        record_inputs(model, [X], elsewhere, tmp_path / "a.npz", cwd=tmp_path)
    with pytest.raises(DataError, match="needs the command"):
        record_inputs(model, [X], ["--"], tmp_path / "a.npz")
    assert not (tmp_path / "a.npz").exists() and "\n" not in str(failed.value) + str(never.value)


def test_the_record_command_passes_the_scripts_own_options_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from paretolab.cli import main

    model = relu_onnx(tmp_path / "relu.onnx")
    command = script(tmp_path, """
        import argparse, numpy as np, onnxruntime as ort
        parser = argparse.ArgumentParser()
        parser.add_argument("--model")
        parser.add_argument("-o")  # the same option as record's own: it belongs to the script
        args = parser.parse_args()
        ort.InferenceSession(args.model).run(None, {"x": np.ones((3, 4), np.float32)})
    """)
    monkeypatch.chdir(tmp_path)
    assert main(["record", "relu.onnx", "-o", "in.npz", "--", *command, "--model", str(model), "-o", "x"]) == 0
    assert "recorded 3 samples from 1 call(s) into in.npz" in capsys.readouterr().out
    assert main(["record", "relu.onnx", "-o", "in.npz", "--", *command]) == 2
    assert "exists" in capsys.readouterr().err


def scores_onnx(path: Path) -> Path:
    """x [batch, 16] @ W -> 8 scores: a model whose inputs live in 0..1000, far from random N(0, 1)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).standard_normal((16, 8)).astype(np.float32)
    weights -= weights.mean(axis=0)  # scores depend on how inputs differ, not on their common size
    graph = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "scores",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 16])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
                              [numpy_helper.from_array(weights, "w")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


def top1_agreement(original: Path, variant: Path, inputs: np.ndarray) -> float:
    import onnxruntime as ort

    runs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, {"x": inputs})[0]
            for p in (original, variant)]
    return float(np.mean(runs[0].argmax(1) == runs[1].argmax(1)))


def test_optimize_calibrates_int8_on_the_recorded_data_not_on_random(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from paretolab.cli import main
    from paretolab.core.compress.quantization.quant_settings import QuantizeSettings
    from paretolab.core.compress.quantization.quantize import quantize
    from paretolab.core.measure.data import random_inputs
    from paretolab.core.model.handle import load_model

    model = scores_onnx(tmp_path / "scores.onnx")
    command = script(tmp_path, """
        import sys, numpy as np, onnxruntime as ort
        session = ort.InferenceSession(sys.argv[1])
        rng = np.random.default_rng(1)
        for _ in range(8):
            session.run(None, {"x": rng.uniform(0, 1000, (16, 16)).astype(np.float32)})
    """) + [str(model)]
    real = record_inputs(model, [TensorSpec("x", ("batch", 16), "float32")], command, tmp_path / "real.npz").path
    held_out = np.random.default_rng(2).uniform(0, 1000, (256, 16)).astype(np.float32)
    code = main(["optimize", str(model), "--quantize", "ort-int8", "--data", str(real), "--out", str(tmp_path / "v"),
                 "--name", "int8"])
    assert code == 0, capsys.readouterr().err
    on_real = top1_agreement(model, tmp_path / "v" / "int8.onnx", held_out)
    handle = load_model(model)  # the same quantizer calibrated on random N(0, 1) inputs clips every real value
    quantize(handle, QuantizeSettings(format="qdq-s8s8"), random_inputs(handle.inputs, 128), tmp_path / "random.onnx")
    on_random = top1_agreement(model, tmp_path / "random.onnx", held_out)
    assert on_real >= 0.9 and on_random <= 0.6, (on_real, on_random)


def test_an_openvino_script_records_the_compiled_models_calls(tmp_path: Path) -> None:
    import openvino as ov

    model = tmp_path / "relu.xml"
    ov.save_model(ov.convert_model(str(relu_onnx(tmp_path / "relu.onnx"))), str(model))
    command = script(tmp_path, """
        import sys, numpy as np, openvino as ov
        compiled = ov.Core().compile_model(sys.argv[1], "CPU")
        compiled({"x": np.full((2, 4), 1.0, np.float32)})  # by name
        compiled.create_infer_request().infer([np.full((1, 4), 2.0, np.float32)])  # in order
    """) + [str(model)]
    made = record_inputs(model, [X], command, tmp_path / "inputs.npz", cwd=tmp_path)
    assert made.calls == 2 and list(np.load(made.path)["x"][:, 0]) == [1.0, 1.0, 2.0]
