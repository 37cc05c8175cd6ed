"""Inputs held at a value in every run: a voice-activity model whose sample rate picks its path
(as Silero VAD's does) runs only at a real rate, so inspect, profile and optimize each take it
with --hold (or from random:N:NAME=VALUE) and every run inside them (graph building, timing,
profiling, calibration, candidate checks, evaluation) gets it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from paretolab.cli import main
from paretolab.core.errors import InputShapeError
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model

HIDDEN, FRAME = 16, 64


class SileroLike(torch.nn.Module):
    """forward(x, sr) as Silero's: the slice step comes from the sample rate, so any other rate fails
    ("slice step must be positive"); then frames through an LSTM to a speech probability."""

    def __init__(self) -> None:
        super().__init__()
        self.lstm = torch.nn.LSTM(FRAME, HIDDEN, batch_first=True)
        self.head = torch.nn.Linear(HIDDEN, 1)

    def forward(self, x: torch.Tensor, sr: int) -> torch.Tensor:
        if sr == 16000:
            step = 512 // 512
        elif sr == 8000:
            step = 2
        else:
            step = 0
        x = x[:, ::step]
        out, _ = self.lstm(x.reshape(x.shape[0], -1, 64))  # FRAME: TorchScript reads no module globals
        return torch.sigmoid(self.head(out[:, -1]))


def silero_jit(path):
    torch.manual_seed(0)
    torch.jit.script(SileroLike().eval()).save(str(path))
    return path


def silero_onnx(path):
    """The ONNX twin: input [?, ?], state [2, ?, HIDDEN], sr int64 scalar. An If on sr == 16000 cuts the
    signal into LSTM frames; any other rate gives the LSTM a 2-D tensor, which ONNX Runtime refuses
    ("Input X must have 3 dimensions only"), as Silero's ONNX file fails at a random rate."""
    rng = np.random.default_rng(0)
    then = helper.make_graph([helper.make_node("Reshape", ["input", "frames_shape"], ["batched"]),
                              helper.make_node("Transpose", ["batched"], ["frames_then"], perm=[1, 0, 2])], "then", [],
                             [helper.make_tensor_value_info("frames_then", TensorProto.FLOAT, None)])
    other = helper.make_graph([helper.make_node("Reshape", ["input", "flat_shape"], ["frames_else"])], "else", [],
                              [helper.make_tensor_value_info("frames_else", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("Equal", ["sr", "rate"], ["is_16k"]),
             helper.make_node("If", ["is_16k"], ["frames"], then_branch=then, else_branch=other),
             helper.make_node("Split", ["state", "halves"], ["h0", "c0"], axis=0),
             helper.make_node("LSTM", ["frames", "W", "R", "B", "", "h0", "c0"], ["Y", "Yh", "Yc"], hidden_size=HIDDEN),
             helper.make_node("Squeeze", ["Yh", "axis0"], ["last"]),
             helper.make_node("MatMul", ["last", "head"], ["logit"]),
             helper.make_node("Sigmoid", ["logit"], ["output"]),
             helper.make_node("Concat", ["Yh", "Yc"], ["next_state"], axis=0)]
    arrays = {"rate": np.array(16000, np.int64), "frames_shape": np.array([0, -1, FRAME], np.int64),
              "flat_shape": np.array([-1, 32], np.int64), "halves": np.array([1, 1], np.int64),
              "W": rng.standard_normal((1, 4 * HIDDEN, FRAME)).astype(np.float32) * 0.1,
              "R": rng.standard_normal((1, 4 * HIDDEN, HIDDEN)).astype(np.float32) * 0.1,
              "B": np.zeros((1, 8 * HIDDEN), np.float32), "axis0": np.array([0], np.int64),
              "head": rng.standard_normal((HIDDEN, 1)).astype(np.float32)}
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, None]),
              helper.make_tensor_value_info("state", TensorProto.FLOAT, [2, None, HIDDEN]),
              helper.make_tensor_value_info("sr", TensorProto.INT64, [])]
    outputs = [helper.make_tensor_value_info("output", TensorProto.FLOAT, [None, 1]),
               helper.make_tensor_value_info("next_state", TensorProto.FLOAT, [2, None, HIDDEN])]
    graph = helper.make_graph(nodes, "vad", inputs, outputs, [numpy_helper.from_array(a, n) for n, a in arrays.items()])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))
    return path


@pytest.fixture()
def vad_models(tmp_path):
    return {"torchscript": (silero_jit(tmp_path / "silero_vad.jit"), ["--input-shape", "x=1x512"]),
            "onnx": (silero_onnx(tmp_path / "silero_vad.onnx"),
                     ["--input-shape", "input=1x512", "--input-shape", f"state=2x1x{HIDDEN}"])}


def _cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_models_really_need_the_rate(vad_models):
    """The models behave as Silero's do: a rate other than 16000 or 8000 fails."""
    import onnxruntime as ort

    path, _ = vad_models["onnx"]
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {"input": np.zeros((1, 512), np.float32), "state": np.zeros((2, 1, HIDDEN), np.float32)}
    assert session.run(None, {**feeds, "sr": np.array(16000, np.int64)})[0].shape == (1, 1)
    with pytest.raises(Exception, match="3 dimensions"):
        session.run(None, {**feeds, "sr": np.array(1, np.int64)})
    module = torch.jit.load(str(vad_models["torchscript"][0]))
    assert module(torch.zeros(1, 512), 16000).shape == (1, 1)
    with pytest.raises(Exception, match="slice step must be positive"):
        module(torch.zeros(1, 512), 3)


def test_a_torchscript_vad_without_its_rate_says_how_to_hold_it(vad_models, capsys):
    path, shape = vad_models["torchscript"]
    code, _, err = _cli(capsys, "inspect", path, *shape, "--input-shape", "sr=scalar")
    assert code == 2 and "slice step must be positive" in err and "--hold sr=VALUE" in err and len(err.splitlines()) == 1
    code, _, err = _cli(capsys, "inspect", path, "--input-shape", "1x512")  # the suggestion fits a signal model
    assert code == 2 and "--hold sr=VALUE" in err and "224" not in err


@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
def test_inspect_and_profile_run_with_the_rate_held(vad_models, capsys, kind):
    path, shape = vad_models[kind]
    code, out, err = _cli(capsys, "inspect", path, *shape, "--hold", "sr=16000")
    assert code == 0, err
    assert "LSTM" in out
    code, out, err = _cli(capsys, "profile", path, *shape, "--hold", "sr=16000", "--batch", "1", "--runs", "5",
                          "--budget", "0.5", "--json")
    assert code == 0, err
    import json

    result = json.loads(out)
    assert result["latency"][0]["runs"] >= 1 and any("LSTM" in layer["op"] for layer in result["layers"])


def test_the_held_rate_reaches_the_graph_built_by_running_the_model(vad_models):
    """MACs the ONNX shapes cannot give are measured by running the model once: at the held rate, the
    LSTM's frames are known and counted (40,960 = 8 steps x 4 gates x 16 x (64 + 16))."""
    path, _ = vad_models["onnx"]
    shapes = {"input": (1, 512), "state": (2, 1, HIDDEN)}
    held = load_model(path, input_shapes=shapes, held={"sr": 16000})
    lstm = next(n for n in held.layer_graph() if "LSTM" in n.name)
    assert lstm.macs == 8 * 4 * HIDDEN * (FRAME + HIDDEN)
    assert [s.value for s in held.inputs] == [None, None, 16000.0]
    loose = next(n for n in load_model(path, input_shapes=shapes).layer_graph() if "LSTM" in n.name)
    assert not loose.macs  # a random rate takes the other branch: unknown, not wrong


@pytest.mark.parametrize("kind", ["torchscript", "onnx"])
@pytest.mark.parametrize("hold", [["--hold", "sr=16000"], ["--data", "random:16:sr=16000"]])
def test_optimize_quantizes_with_the_rate_held_in_every_run(vad_models, capsys, tmp_path, kind, hold):
    path, shape = vad_models[kind]
    data = [] if "--data" in hold else ["--data", "random:16"]
    code, out, err = _cli(capsys, "optimize", path, *shape, *hold, *data, "--quantize", "ort-int8",
                          "--out", tmp_path / "out", "--json")
    assert code == 0, err
    import json

    measured = json.loads(out)["metrics"]["variant"]
    assert measured["cosine"] > 0.9
    assert measured["macs"] >= 8 * 4 * HIDDEN * (FRAME + HIDDEN)  # the LSTM is counted: its graph ran at the rate


def test_a_held_value_must_name_an_input_and_be_a_number(vad_models, capsys):
    path, shape = vad_models["onnx"]
    code, _, err = _cli(capsys, "inspect", path, *shape, "--hold", "rate=16000")
    assert code == 2 and "no input named 'rate'" in err and "input, state, sr" in err
    code, _, err = _cli(capsys, "inspect", path, *shape, "--hold", "sr=fast")
    assert code == 2 and "--hold 'sr=fast' is not NAME=NUMBER" in err


def test_held_values_carry_to_files_made_from_the_model(vad_models, tmp_path):
    path, _ = vad_models["onnx"]
    handle = load_model(path, input_shapes={"input": (1, 512), "state": (2, 1, HIDDEN)}, held={"sr": 16000})
    copy = tmp_path / "copy.onnx"
    copy.write_bytes(path.read_bytes())
    made = handle.like(copy)
    assert made.held == {"sr": 16000.0} and made.inputs[0].shape == (1, 512)
    x, state, sr = DataPlan.from_spec("random:4", made).test.load(np.arange(4))
    assert int(sr) == 16000 and x.shape == (4, 512)


def test_a_free_signal_model_is_asked_for_shapes_that_fit_its_rank(vad_models):
    path, _ = vad_models["onnx"]
    handle = load_model(path, held={"sr": 16000})
    with pytest.raises(InputShapeError) as caught:
        DataPlan.from_spec("random:4", handle)
    assert "--input-shape input=1x128" in str(caught.value) and "224" not in str(caught.value)


def test_a_cluster_worker_opens_the_model_with_its_rate_held(vad_models):
    """A sweep on Ray ships the model to workers: the held rate travels with its shapes."""
    from paretolab.core.pipeline import ray_tasks

    path, _ = vad_models["onnx"]
    handle = load_model(path, input_shapes={"input": (1, 512), "state": (2, 1, HIDDEN)}, held={"sr": 16000})
    payload = ray_tasks.model_payload(handle)
    payload["digest"] = "held-test"  # not the cache of another test's worker
    opened = ray_tasks.open_shipped(payload)
    assert opened.held == {"sr": 16000.0} and opened.inputs[0].shape == (1, 512)


@pytest.mark.parametrize("form", ["qop-u8s8", "qdq-s8s8"])
def test_every_int8_form_of_the_vad_counts_its_lstm_at_the_held_rate(vad_models, tmp_path, capsys, form):
    """Whichever int8 form is fastest on the day, its MACs are measured by running it at the held rate
    (a QOperator file's inferred types once failed that run, and its MACs read 0)."""
    import json

    path, shape = vad_models["onnx"]
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"steps": [{"technique": "quantize",
                                             "settings": {"backend": "ort", "precision": "int8", "format": form}}]}))
    code, out, err = _cli(capsys, "optimize", path, *shape, "--hold", "sr=16000", "--data", "random:8", "--recipe", recipe,
                          "--out", tmp_path / "out", "--json")
    assert code == 0, err
    assert json.loads(out)["metrics"]["variant"]["macs"] >= 8 * 4 * HIDDEN * (FRAME + HIDDEN)


def test_a_torchscript_signal_model_is_asked_for_a_signal_shape_not_an_image(tmp_path, capsys):
    """TorchScript keeps a Conv1d's kernel_size as a list: the hint must still read it as 1-D."""
    model = torch.nn.Sequential(torch.nn.Conv1d(129, 8, 3), torch.nn.ReLU())
    path = tmp_path / "spectral.jit"
    torch.jit.script(model).save(str(path))
    code, _, err = _cli(capsys, "inspect", path)
    assert code == 2 and "1x129x64" in err and "224" not in err
