"""`paretolab inspect` end to end, in-process for speed and as a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from model_zoo import TINY_MACS, TINY_PARAMS
from paretolab.cli import main
from paretolab.core.sample import sample_model_path

SHAPE = ["--input-shape", "1x3x16x16"]


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_inspect_sample_prints_summary_and_layer_table(capsys):
    code, out, err = run_cli(capsys, "inspect", str(sample_model_path()))
    assert code == 0 and err == ""
    assert "format   onnx" in out
    assert "input    input [batch, 1, 8, 8] float32" in out
    assert "params 40.4 K (40,394)" in out and "MACs 616 K" in out
    table = out.split("\n\n", 1)[1].splitlines()
    assert table[0].split() == ["layer", "op", "output", "shape", "params", "MACs", "%", "MACs"]
    assert len(table) == 13
    assert table[3].split()[:2] == ["features.2", "Conv"]


@pytest.mark.parametrize(
    ("key", "extra"),
    [
        ("onnx", []),
        ("script", SHAPE),
        ("pt2", []),
        ("pickle", ["--trust", *SHAPE]),
        ("state_dict", ["--arch", "model_zoo:TinyNet", *SHAPE]),
        ("openvino", []),
    ],
)
def test_inspect_json_for_every_format(capsys, model_files, key, extra):
    code, out, _ = run_cli(capsys, "inspect", str(model_files[key]), "--json", *extra)
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"]["macs"] == TINY_MACS
    if key in ("script", "pt2", "pickle", "state_dict"):
        assert doc["summary"]["params"] == TINY_PARAMS
        assert [n["name"] for n in doc["nodes"] if n["op"] == "Conv"] == ["stem", "block.conv"]


def test_inspect_sorted_by_macs(capsys):
    _, out, _ = run_cli(capsys, "inspect", str(sample_model_path("torchscript")), "--sort", "macs")
    rows = out.split("\n\n", 1)[1].splitlines()[1:]
    assert {rows[0].split()[0], rows[1].split()[0]} == {"features.2", "features.5"}


@pytest.mark.parametrize(
    ("key", "extra", "expected"),
    [
        ("pickle", SHAPE, "--trust"),
        ("state_dict", SHAPE, "--arch"),
        ("script", [], "--input-shape"),
        ("onnx", ["--input-shape", "1x3xfoo"], "not valid"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(capsys, model_files, key, extra, expected):
    code, out, err = run_cli(capsys, "inspect", str(model_files[key]), *extra)
    assert code == 2 and out == ""
    assert err.startswith("paretolab: error: ") and err.count("\n") == 1 and expected in err


@pytest.mark.parametrize("key", ["empty", "truncated_onnx", "future_opset", "xml_without_bin", "unknown_ext"])
def test_broken_files_exit_2(capsys, bad_files, key):
    code, _, err = run_cli(capsys, "inspect", str(bad_files[key]))
    assert code == 2 and bad_files[key].name in err and err.count("\n") == 1


def test_real_entry_point_and_exit_code(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "paretolab", "inspect", str(sample_model_path())], capture_output=True, text=True, timeout=120
    )
    assert ok.returncode == 0 and "features.5" in ok.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "paretolab", "inspect", str(tmp_path / "gone.onnx")], capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 2
    assert missing.stderr.strip() == f"paretolab: error: {tmp_path / 'gone.onnx'}: no such file; check the path"


def test_core_and_cli_never_import_qt():
    code = (
        "import sys, pkgutil, importlib, paretolab.core, paretolab.cli\n"
        "for m in pkgutil.walk_packages(paretolab.core.__path__, 'paretolab.core.'):\n"
        "    importlib.import_module(m.name)\n"
        "from paretolab.core.model.handle import load_model\n"
        "from paretolab.core.sample import sample_model_path\n"
        "load_model(sample_model_path()).layer_graph()\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('PySide6', 'shiboken6', 'pyqtgraph', 'superqt', 'qtpy'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr


def test_library_warnings_go_to_the_log_not_the_terminal(tmp_path):
    import torch

    pickled = tmp_path / "protocol4.pt"
    torch.save(torch.nn.Linear(2, 2), pickled, pickle_protocol=4)  # torch warns about the protocol while refusing it
    env = {**os.environ, "PARETOLAB_LOG_DIR": str(tmp_path / "log")}
    result = subprocess.run([sys.executable, "-m", "paretolab", "inspect", str(pickled)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("paretolab: error: protocol4.pt is a pickled")
    assert "Detected pickle protocol 4" in (tmp_path / "log" / "paretolab.log").read_text()


def test_a_hugging_face_text_folder_opens_at_a_default_length_and_a_named_shape_fixes_both_inputs(capsys, tmp_path):
    """Every input of a BERT classifier is [batch, sequence] token ids: it opens at batch 1 and 128
    tokens with a note, and input_ids=1x64 gives attention_mask the same batch and length."""
    pytest.importorskip("transformers")
    import hf_models

    folder = hf_models.write("bert", tmp_path)
    code, out, err = run_cli(capsys, "inspect", str(folder))
    assert code == 0, err
    assert "note: input_ids, attention_mask opened at batch 1 and 128 tokens" in err and "--input-shape 1xN" in err
    assert "[1, 128, 32]" in out
    code, out, err = run_cli(capsys, "inspect", str(folder), "--input-shape", "input_ids=1x64")
    assert code == 0, err
    assert "note:" not in err and "[1, 64, 32]" in out and "[1, 128" not in out
    code, out, err = run_cli(capsys, "inspect", str(folder), "--input-shape", "2x16", "--json")
    assert code == 0, err
    assert {tuple(i["shape"]) for i in json.loads(out)["inputs"]} == {(2, 16)}


@pytest.mark.parametrize("shape", [[], ["--input-shape", "input_ids=1x32"]])
def test_optimize_opens_a_hugging_face_text_folder_without_a_shape_or_with_one_named_shape(capsys, tmp_path, shape):
    pytest.importorskip("transformers")
    import hf_models

    folder = hf_models.write("bert", tmp_path)
    code, out, err = run_cli(capsys, "optimize", str(folder), *shape, "--quantize", "ort-dynamic", "--data", "random:8",
                             "--out", str(tmp_path / "out"), "--json")
    assert code == 0, err
    assert ("128 tokens" in err) == (not shape)
    assert json.loads(out)["metrics"]["variant"]["cosine"] > 0.9
