"""`paretolab backends`, `evaluate` and `profile` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from paretolab.cli import main
from paretolab.core.measure.data import digits
from paretolab.core.sample import sample_info, sample_model_path

ONNX = str(sample_model_path("onnx"))
TORCHSCRIPT = str(sample_model_path("torchscript"))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_backends(capsys):
    code, out, _ = run_cli(capsys, "backends", "--json")
    assert code == 0
    pairs = {(b["backend"], b["device"]) for b in json.loads(out)["backends"]}
    assert ("openvino", "cpu") in pairs and ("ort", "cpu") in pairs
    code, out, _ = run_cli(capsys, "backends")
    assert out.splitlines()[0].split() == ["backend", "device", "version", "detail"]


@pytest.mark.parametrize(("model", "backend"), [(TORCHSCRIPT, "torch"), (ONNX, "ort"), (ONNX, "openvino")])
def test_evaluate_sample_on_each_backend(capsys, model, backend):
    code, out, err = run_cli(
        capsys, "evaluate", model, "--backend", backend, "--reference", TORCHSCRIPT, "--reference-backend", "torch", "--json"
    )
    assert code == 0, err
    doc = json.loads(out)
    assert doc["top1"] == pytest.approx(sample_info()["accuracy"]["test"], abs=0.005)
    assert doc["fidelity"][0]["agreement"] >= 0.999


def test_evaluate_text_output(capsys):
    code, out, _ = run_cli(capsys, "evaluate", ONNX, "--data", "digits:val")
    assert code == 0
    assert "data      digits:val: 359 samples" in out
    assert f"accuracy  top-1 {100 * sample_info()['accuracy']['val']:.2f}%" in out


def test_profile_text_and_json(capsys):
    code, out, _ = run_cli(capsys, "profile", ONNX, "--backend", "openvino", "--batch", "1,4", "--runs", "30", "--budget", "1")
    assert code == 0
    assert "median ms" in out and "p99 ms" in out and "async" in out
    assert "features.5" in out  # the per-layer breakdown names graph layers
    code, out, _ = run_cli(capsys, "profile", ONNX, "--batch", "2", "--runs", "20", "--budget", "1", "--json", "--threads", "1")
    doc = json.loads(out)
    assert doc["latency"][0]["batch"] == 2 and doc["threads"] == 1
    assert any(layer["layer"] == "features.0" for layer in doc["layers"])


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["profile", ONNX, "--device", "cuda"], "no device 'cuda'"),
        (["evaluate", ONNX, "--data", "random"], "no labels and no reference"),
        (["evaluate", ONNX, "--data", "/nonexistent/folder"], "no such file or folder"),
    ],
)
def test_measure_mistakes(capsys, argv, expected):
    code, out, err = run_cli(capsys, *argv)
    if expected == "no labels and no reference":  # not a mistake: a result with a note
        assert code == 0 and expected in out
        return
    assert code == 2 and expected in err and err.count("\n") == 1


def test_a_model_without_a_pytorch_form_is_refused_on_torch_in_one_line(capsys, model_files):
    code, _, err = run_cli(capsys, "profile", str(model_files["onnx"]), "--backend", "torch")
    assert code == 2 and "torch backend needs a PyTorch model" in err and err.count("\n") == 1


def test_data_that_does_not_fit_the_model(capsys, tmp_path, model_files):
    code, _, err = run_cli(capsys, "evaluate", str(model_files["onnx"]), "--data", "digits")
    assert code == 2 and "samples of shape [1, 8, 8]" in err and "takes [3, 16, 16]" in err
    (tmp_path / "empty").mkdir()
    code, _, err = run_cli(capsys, "evaluate", ONNX, "--data", str(tmp_path / "empty"))
    assert code == 2 and "has no images" in err
    np.savez(tmp_path / "bad.npz", x=digits("val").load(np.arange(4))[0], y=np.array([0, 1, 2, 30]))
    code, _, err = run_cli(capsys, "evaluate", ONNX, "--data", str(tmp_path / "bad.npz"))
    assert code == 2 and "labels from 0 to 30" in err


def test_bad_batch_list_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["profile", ONNX, "--batch", "1,zero"])
    assert exc.value.code == 2


def test_a_declared_input_too_big_for_memory_is_one_line(capsys, tmp_path):
    import onnx

    proto = onnx.load(str(sample_model_path()))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    dims[2].dim_value = dims[3].dim_value = 200000
    huge = tmp_path / "huge.onnx"
    onnx.save(proto, str(huge))
    code = main(["evaluate", str(huge), "--data", "random:8"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "input 'input' is [batch, 1, 200000, 200000]" in err


def test_profile_skips_a_batch_the_fixed_shape_cannot_take_with_a_note(capsys, tmp_path):
    """A file exported at batch 1 cannot run batch 8 on OpenVINO: that batch is skipped with one
    line, never a traceback."""
    import warnings

    import torch

    from model_zoo import tiny_net
    from paretolab.cli import main

    path = tmp_path / "fixed.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(tiny_net(), (torch.rand(1, 3, 16, 16),), str(path), dynamo=False, input_names=["x"])
    code = main(["profile", str(path), "--backend", "openvino", "--no-layers", "--runs", "20", "--budget", "0.5"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "note      batch 8 skipped: OpenVINO cannot take input 0 of fixed.onnx shaped (8, 3, 16, 16)" in out
    assert "Traceback" not in out + err and "\n    1 " in out


def test_an_unexpected_error_is_one_line_and_the_details_go_to_the_log(capsys, monkeypatch):
    from paretolab import cli
    from paretolab.core.sample import sample_model_path

    def bug(args):
        raise KeyError("a bug of ours")

    monkeypatch.setattr(cli, "cmd_inspect", bug)
    code = cli.main(["inspect", str(sample_model_path())])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert err.startswith("paretolab: internal error: KeyError: 'a bug of ours' (details in ")


def test_evaluate_takes_an_image_preprocessing_recipe_and_refuses_a_bad_one(capsys, tmp_path):
    import numpy as np
    from PIL import Image

    from paretolab.cli import main
    from paretolab.core.sample import sample_model_path

    for label in ("zero", "one"):
        (tmp_path / label).mkdir()
        Image.fromarray(np.full((8, 8), 200, np.uint8)).save(tmp_path / label / "a.png")
    model = str(sample_model_path())
    assert main(["evaluate", model, "--data", str(tmp_path), "--preprocess", "resize=8,mean=0,std=1,scale=16"]) == 0
    out, _ = capsys.readouterr()
    assert "imgs: 2 samples" not in out and ": 2 samples in" in out and "accuracy  top-1" in out
    assert main(["evaluate", model, "--data", str(tmp_path), "--preprocess", "std=wide"]) == 2
    _, err = capsys.readouterr()
    assert err.strip() == "paretolab: error: preprocessing 'std=wide': give one number per channel, e.g. std=0.229/0.224/0.225"
