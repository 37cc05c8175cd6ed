"""`paretolab optimize` end to end."""

from __future__ import annotations

import json

import pytest

from paretolab.cli import main
from paretolab.core.sample import sample_model_path

ONNX = str(sample_model_path("onnx"))


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_optimize_with_step_options(capsys, tmp_path):
    code, out, err = run_cli(capsys, "optimize", ONNX, "--prune", "structured:0.5", "--quantize", "ort-int8",
                             "--keep-fp32", "features.0", "--out", str(tmp_path), "--name", "small")
    assert code == 0, err
    assert "recipe    prune structured 50% → quantize ort int8 auto" in out
    assert (tmp_path / "small.onnx").exists()
    recipe = json.loads((tmp_path / "small.recipe.json").read_text())
    assert recipe["steps"][1]["settings"]["keep_fp32"] == ["features.0"]
    metrics = json.loads((tmp_path / "small.metrics.json").read_text())["metrics"]
    timing = metrics["timing"]
    printed = next(line for line in out.splitlines() if line.startswith("speed-up"))
    assert printed == (f"speed-up  {metrics['speedup']:.2f}x ({timing['speedup_low']:.2f}-{timing['speedup_high']:.2f}) "
                       "vs the original on ort/cpu, default threads (95% interval, alternating rounds)")
    assert metrics["baseline"]["backend"] == metrics["variant"]["backend"] == "ort"
    assert metrics["speedup"] == pytest.approx(metrics["baseline"]["latency_ms"] / metrics["variant"]["latency_ms"])


def test_optimize_from_a_recipe_file_json_output(capsys, tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"steps": [{"technique": "quantize", "settings": {"precision": "fp16"}}]}))
    code, out, _ = run_cli(capsys, "optimize", ONNX, "--recipe", str(recipe), "--out", str(tmp_path / "o"), "--json")
    assert code == 0
    doc = json.loads(out)
    assert doc["summary"] == "quantize ort fp16" and doc["metrics"]["variant"]["top1"] > 0.98


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--prune", "structured:1.2"], "'sparsity' must be between 0 and 0.99"),
        (["--prune", "half"], "is not METHOD:SPARSITY"),
        ([], "nothing to do"),
        (["--recipe", "missing.json"], "no such recipe file"),
        (["--quantize", "ort-int8", "--keep-fp32", "features.9"], "keep_fp32 names no layer 'features.9'"),
        (["--quantize", "ort-int8", "--data", "random"], "samples"),
        (["--early-exit", "no.such.layer"], "no exit can go after 'no.such.layer'"),
        (["--early-exit", "9"], "setting 'exits' must be between 1 and 8"),
        (["--quantize", "openvino-int8", "--early-exit"], "nothing can follow step 1 (quantize openvino int8)"),
    ],
)
def test_optimize_mistakes_exit_2(capsys, tmp_path, argv, expected):
    code, out, err = run_cli(capsys, "optimize", ONNX, "--out", str(tmp_path), *argv)
    if expected == "samples":  # unlabelled random data still quantizes; the result has no accuracy
        assert code == 0 and "n/a" in out
        return
    assert code == 2 and expected in err and err.count("\n") == 1
    assert not any(p.suffix in (".onnx", ".xml") for p in tmp_path.iterdir())


def test_early_exit_from_the_command_line(capsys, tmp_path):
    code, out, err = run_cli(capsys, "optimize", str(sample_model_path("demo")), "--early-exit", "layers.1",
                             "--exit-budget", "1", "--out", str(tmp_path), "--name", "ee")
    assert code == 0, err
    assert "recipe    early exit after layers.1 (≤1 pt)" in out
    assert "averages over the samples" in out
    latency = next(line for line in out.splitlines() if line.startswith("latency"))
    assert "average" in latency and "p99" in latency and "360 samples of digits32:test" in latency
    exits = next(line for line in out.splitlines() if line.startswith("exits"))
    assert exits.startswith("exits     after layers.1: ") and "the end: " in exits
    metrics = json.loads((tmp_path / "ee.metrics.json").read_text())["metrics"]
    assert [e["exit"] for e in metrics["exits"]] == ["after layers.1", "the end"]

    # the numbers come back from the file alone: where inputs leave (evaluate) and the average latency (profile)
    code, out, err = run_cli(capsys, "evaluate", str(tmp_path / "ee.onnx"), "--data", "digits")
    assert code == 0, err
    assert f"exits     after layers.1: {metrics['exits'][0]['share']:.1%}" in out
    code, out, err = run_cli(capsys, "profile", str(tmp_path / "ee.onnx"), "--over-data", "digits", "--json")
    assert code == 0, err
    timing = json.loads(out)
    assert timing["samples"] == 360 and timing["p50_ms"] <= timing["p90_ms"] <= timing["p99_ms"]


def test_structured_pruning_of_torchscript_says_what_to_open(capsys, tmp_path):
    code, _, err = run_cli(
        capsys, "optimize", str(sample_model_path("torchscript")), "--prune", "structured:0.5", "--out", str(tmp_path)
    )
    assert code == 2 and "TorchScript" in err and "--arch" in err


def test_importance_with_sensitivity(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code, out, err = run_cli(capsys, "importance", ONNX, "--sensitivity", "prune", "--levels", "0.5,0.9", "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert [x["layer"] for x in doc["layers"]] == ["features.0", "features.2", "features.5", "classifier.1", "classifier.4"]
    assert all(x["taylor"] > 0 for x in doc["layers"])
    assert len(doc["sensitivity"]["rows"]) == 10 and doc["sensitivity"]["metric"] == "top1"
    assert list((tmp_path / "paretolab" / "sensitivity").glob("*.json"))
    code, out, _ = run_cli(capsys, "importance", ONNX)
    assert code == 0 and "taylor" in out.splitlines()[0]
    with pytest.raises(SystemExit):
        main(["importance", ONNX, "--levels", "0,2"])


def test_run_reproduces_a_variant_from_its_recipe(capsys, tmp_path):
    import numpy as np
    import onnx

    code, _, err = run_cli(
        capsys,
        "optimize",
        ONNX,
        "--prune",
        "structured:0.5",
        "--quantize",
        "ort-fp16",
        "--out",
        str(tmp_path / "a"),
        "--name",
        "first",
    )
    assert code == 0, err
    recipe = tmp_path / "a" / "first.recipe.json"
    code, out, err = run_cli(capsys, "run", str(recipe), ONNX, "--out", str(tmp_path / "b"), "--name", "again", "--json")
    assert code == 0, err
    first = json.loads((tmp_path / "a" / "first.metrics.json").read_text())["metrics"]["variant"]
    again = json.loads(out)["metrics"]["variant"]
    assert again["top1"] == first["top1"] and again["params"] == first["params"]  # deterministic steps: exactly
    weights = [{t.name: onnx.numpy_helper.to_array(t) for t in onnx.load(str(p)).graph.initializer}
               for p in (tmp_path / "a" / "first.onnx", tmp_path / "b" / "again.onnx")]
    assert weights[0].keys() == weights[1].keys() and all(np.array_equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_sweep_command(capsys, tmp_path):
    code, out, err = run_cli(capsys, "sweep", ONNX, "--budget", "3m", "--trials", "3", "--out", str(tmp_path / "exp"))
    assert code == 0, err
    assert out.startswith("3 trials;") and "* = Pareto front" in out
    assert len(list((tmp_path / "exp").glob("*.metrics.json"))) >= 1
    with pytest.raises(SystemExit):
        main(["sweep", ONNX, "--budget", "soon"])


def test_collapsed_variant_is_flagged_and_distillation_from_the_command_line_fixes_it(capsys, tmp_path):
    code, out, err = run_cli(
        capsys, "optimize", ONNX, "--prune", "structured:0.5", "--out", str(tmp_path), "--name", "bare", "--json"
    )
    assert code == 0, err
    bare = json.loads(out)["metrics"]
    assert bare["variant"]["top1"] < bare["baseline"]["top1"] - 0.3  # 50% of the channels without retraining
    code, out, err = run_cli(capsys, "optimize", ONNX, "--prune", "structured:0.5", "--out", str(tmp_path), "--name", "bare2")
    assert "warning   top-1 fell from 98.9% to" in out and "add distillation from the original; prune less than 50%" in out

    code, out, err = run_cli(capsys, "optimize", ONNX, "--prune", "structured:0.5", "--distill", "8", "--distill-loss", "both",
                             "--temperature", "3", "--out", str(tmp_path), "--name", "distilled")
    assert code == 0, err
    assert "recipe    prune structured 50% → distill 8 epochs" in out and "warning   top-1 fell" not in out
    recipe = json.loads((tmp_path / "distilled.recipe.json").read_text())
    assert recipe["steps"][1] == {
        "technique": "distill",
        "settings": {**recipe["steps"][1]["settings"], "epochs": 8, "temperature": 3.0, "alpha": 0.7},
    }
    metrics = json.loads((tmp_path / "distilled.metrics.json").read_text())["metrics"]
    assert metrics["variant"]["top1"] > metrics["baseline"]["top1"] - 0.05


def test_every_command_option_says_what_it_does():
    from paretolab.cli_parser import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    undocumented = [f"{name} {'/'.join(action.option_strings) or action.dest}" for name, sub in commands.items()
                    for action in sub._actions if action.help is None and action.dest != "help"]
    assert not undocumented, undocumented


def test_a_variant_measured_on_pytorch_is_exported_for_pytorch_serving_with_its_numbers(capsys, tmp_path):
    code, out, err = run_cli(capsys, "optimize", ONNX, "--prune", "structured:0.3", "--backend", "torch",
                             "--out", str(tmp_path), "--name", "small")
    assert code == 0, err
    assert "vs the original on torch/cpu" in out and (tmp_path / "small.pt2").exists()
    code, out, err = run_cli(capsys, "export", str(tmp_path / "small.pt2"), "--format", "pytorch",
                             "--out", str(tmp_path / "shipped" / "model"), "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["path"].endswith("model.pt2") and doc["matches"] and doc["agreement"] == 1.0
    code, out, err = run_cli(capsys, "export", str(tmp_path / "small.pt2"), "--format", "onnx",
                             "--out", str(tmp_path / "shipped" / "model"))
    assert code == 0 and "matches the variant's numbers" in out, out + err


def test_export_mistakes_exit_2(capsys, tmp_path):
    code, _, err = run_cli(capsys, "optimize", ONNX, "--quantize", "ort-int8", "--out", str(tmp_path), "--name", "q")
    assert code == 0, err
    code, _, err = run_cli(capsys, "export", str(tmp_path / "q.onnx"), "--format", "pytorch", "--out", str(tmp_path / "x"))
    assert code == 2 and "q.onnx has no PyTorch form" in err and err.count("\n") == 1
    code, _, err = run_cli(capsys, "export", ONNX, "--format", "onnx", "--out", str(tmp_path / "x"))
    assert code == 2 and "no variant with metrics there" in err
    assert not list((tmp_path).glob("x*"))


def test_optimize_without_a_name_takes_the_next_free_one_and_never_overwrites(capsys, tmp_path):
    for expected in ("v1", "v2"):
        code, out, err = run_cli(capsys, "optimize", ONNX, "--quantize", "ort-fp16", "--out", str(tmp_path))
        assert code == 0 and (tmp_path / f"{expected}.onnx").exists(), err
    code, _, err = run_cli(capsys, "optimize", ONNX, "--quantize", "ort-fp16", "--out", str(tmp_path), "--name", "v1")
    assert code == 2 and "v1.onnx already exists; choose another --name" in err
