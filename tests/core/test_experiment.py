"""The experiment store: reopening shows every finished variant; a killed job loses only itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import Experiment

FP16 = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"precision": "fp16"}}]})


def killed_while_writing(folder, name: str, files: dict[str, bytes]) -> None:
    """A run that claimed `name` in `folder`, wrote `files` under it and was killed (SIGKILL)."""
    script = (
        "import os, signal, sys\nfrom pathlib import Path\nfrom paretolab.core.files import atomic_write\n"
        "from paretolab.core.owned import Claim\n"
        f"folder = Path({str(folder)!r})\nClaim.take(folder, {name!r})\n"
        f"for file, data in {files!r}.items():\n    atomic_write(folder / file, lambda p, d=data: p.write_bytes(d))\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    folder.mkdir(parents=True, exist_ok=True)
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == -signal.SIGKILL


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path())


def test_experiment_is_keyed_by_content_and_lists_finished_variants(sample, tmp_path):
    experiment = Experiment.for_model(sample, tmp_path)
    assert experiment.folder.parent == tmp_path and experiment.folder.name.startswith("digits_cnn-")
    assert experiment.variants() == []
    made = optimize(sample, FP16, DataPlan.from_spec("digits", sample), experiment.folder, "v1")
    killed_while_writing(experiment.folder, "v2", {"v2.onnx": b"half a model from a killed job"})
    (experiment.folder / "mine.onnx").write_bytes(b"a model of the user's, in the same folder")
    (experiment.folder / "v3.metrics.json").write_text("{not json")
    found = experiment.variants()
    assert [v.name for v in found] == ["v1"] and found[0].recipe == FP16
    assert found[0].metrics["variant"]["top1"] == made.metrics["variant"]["top1"]
    assert found[0].metrics["machine"]["cores"] >= 1 and found[0].created
    assert not (experiment.folder / "v2.onnx").exists() and not (experiment.folder / "v2.claim").exists()
    assert (experiment.folder / "mine.onnx").exists()  # never ParetoLab's: never removed
    assert experiment.skipped and experiment.skipped[0].startswith("v3.metrics.json")


def test_a_process_killed_mid_job_loses_only_that_job(sample, tmp_path):
    experiment = Experiment.for_model(sample, tmp_path)
    optimize(sample, FP16, DataPlan.from_spec("digits", sample), experiment.folder, "v1")
    before = json.loads((experiment.folder / "v1.metrics.json").read_text())
    recipe = tmp_path / "long.json"
    recipe.write_text(
        json.dumps({"steps": [{"technique": "prune"}, {"technique": "distill", "settings": {"epochs": 500, "patience": 500}}]})
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "paretolab", "optimize", str(sample.path), "--recipe", str(recipe),
         "--out", str(experiment.folder), "--name", "v2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    time.sleep(8)  # well into distillation (imports, pruning and the first epochs take a few seconds)
    assert process.poll() is None, "the job ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    reopened = Experiment(experiment.folder).variants()
    assert [v.name for v in reopened] == ["v1"]
    assert json.loads((experiment.folder / "v1.metrics.json").read_text()) == before
    assert sorted(p.name for p in experiment.folder.iterdir() if not p.name.startswith(".")) == [
        "v1.metrics.json", "v1.onnx", "v1.recipe.json"]


def test_a_sweep_killed_after_writing_variants_keeps_them_and_its_leftovers_are_cleaned(sample, tmp_path):
    """SIGKILL in the middle of a sweep, once trials have landed: every finished variant is intact
    and loads, the trial in flight leaves nothing a reopen shows, and the next start removes the
    killed process's work folders."""
    from paretolab.core.files import remove_stale_work_folders

    folder, scratch = tmp_path / "experiment", tmp_path / "tmp"
    scratch.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "paretolab", "sweep", str(sample.path), "--out", str(folder), "--budget", "10m"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "TMPDIR": str(scratch)},
    )
    try:
        deadline = time.monotonic() + 240
        while len(list(folder.glob("*.metrics.json"))) < 2 and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
        assert process.poll() is None, "the sweep ended before it could be killed"
        assert len(list(folder.glob("*.metrics.json"))) >= 2, "no trial finished in time"
        time.sleep(0.5)  # into the next trial
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=30)
    written = {m.name.removesuffix(".metrics.json") for m in folder.glob("*.metrics.json")}
    reopened = Experiment(folder).variants()
    assert {v.name for v in reopened} == written and len(written) >= 2
    for variant in reopened:
        assert variant.artifact.exists() and load_model(variant.artifact).layer_graph().total_params > 0
        assert variant.measured.latency_ms > 0 and variant.speedup is not None
    names = {p.name.split(".")[0] for p in folder.iterdir() if p.is_file() and p.suffix in (".onnx", ".xml", ".bin", ".json")}
    assert names == written  # the trial in flight left no model file behind
    assert (folder / "sweep.journal").exists()  # a resumed sweep picks up where this one stopped
    left = [d for d in scratch.glob(f"paretolab-{process.pid}-*")]
    assert set(remove_stale_work_folders(scratch)) >= set(left)
    assert not list(scratch.glob(f"paretolab-{process.pid}-*"))


def test_two_windows_never_take_the_same_name(sample, tmp_path):
    a = Experiment.for_model(sample, tmp_path)
    b = Experiment.for_model(sample, tmp_path)  # a second window on the same experiment
    first, second = a.claim_name(), b.claim_name()
    assert (first, second) == ("v1", "v2")
    (a.folder / "v1.onnx").write_bytes(b"being written by window a")
    assert b.variants() == [] and (a.folder / "v1.onnx").exists()  # claimed by a live process: being written
    a.release(first)
    b.release(second)
    killed_while_writing(a.folder, "v7", {"v7.pt2": b"what it had written"})  # a process that died holding a name
    a.variants()
    assert not (a.folder / "v7.claim").exists() and not (a.folder / "v7.pt2").exists()


def test_a_killed_run_s_name_never_costs_the_user_a_file_put_there_since(tmp_path):
    """Issue 25: a killed run leaves its claim; the user then saves their own model under that name.
    The next open removes the claim, never the user's file (it is not the file the run wrote)."""
    folder = tmp_path / "exp"
    killed_while_writing(folder, "v2", {"v2.onnx": b"half a model", "v2.recipe.json": b"{}"})
    (folder / "v2.onnx").unlink()
    (folder / "v2.onnx").write_bytes(b"the user's own model, saved here later")
    (folder / "v2.recipe.json").write_bytes(b"{}")  # same name, same size, but another file
    (folder / "v9.claim").write_text("999999999")  # not a ParetoLab claim (no valid marker): its files stay
    (folder / "v9.onnx").write_bytes(b"a user's model")
    assert Experiment(folder).variants() == []
    assert (folder / "v2.onnx").read_bytes() == b"the user's own model, saved here later"
    assert (folder / "v2.recipe.json").exists() and not (folder / "v2.claim").exists()
    assert (folder / "v9.claim").exists() and (folder / "v9.onnx").exists()


@pytest.mark.parametrize("name", ["../../x", "/tmp/abs", "a/b", "..", ".hidden", "x" * 65, "v1.claim", ""])
def test_a_variant_name_is_a_plain_file_name(sample, tmp_path, name):
    with pytest.raises(ParetoLabError, match="is not a usable variant name"):
        optimize(sample, FP16, DataPlan.from_spec("digits", sample), tmp_path / "a" / "b", name)
    assert not list(tmp_path.rglob("*.onnx")) and not list(tmp_path.rglob("*.json"))


def test_a_name_is_made_by_one_run_at_a_time_and_never_over_a_user_s_file(sample, tmp_path):
    a, b = Experiment(tmp_path), Experiment(tmp_path)  # two runs on one folder
    with a.claimed("best"), pytest.raises(ParetoLabError, match="another ParetoLab run .* is making 'best'"), \
            b.claimed("best"):
        pass
    (tmp_path / "mine.metrics.json").write_text('{"the user": "numbers"}')
    with pytest.raises(ParetoLabError, match="mine.metrics.json already exists"):
        optimize(sample, FP16, DataPlan.from_spec("digits", sample), tmp_path, "mine")
    assert (tmp_path / "mine.metrics.json").read_text() == '{"the user": "numbers"}'
    assert not list(tmp_path.glob("*.claim"))


def test_optimize_says_in_one_line_when_the_disk_is_too_full_or_read_only(sample, tmp_path, monkeypatch):
    import shutil

    from paretolab.core.files import WriteError

    full = shutil.disk_usage(tmp_path)._replace(free=4096)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: full)
    with pytest.raises(WriteError, match=r"not enough space for the variant in .*out: 4.0 KB free, about"):
        optimize(sample, FP16, DataPlan.from_spec("digits", sample), tmp_path / "out", "v1")
    monkeypatch.undo()
    (tmp_path / "file").write_text("a file where a folder should be")
    with pytest.raises(WriteError, match="cannot write the variant in .*file/out"):
        optimize(sample, FP16, DataPlan.from_spec("digits", sample), tmp_path / "file" / "out", "v1")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["file"]


def test_commands_that_read_a_folder_never_remove_the_users_models_there(sample, tmp_path, capsys):
    """explain, export and report look for variants in the folder they are given: the models a
    user keeps there are not orphans of ParetoLab's, whatever their names."""
    import shutil

    from paretolab.cli import main

    mine = [shutil.copyfile(sample.path, tmp_path / name) for name in ("v1.onnx", "model.onnx")]
    (tmp_path / "model.pt2").write_bytes(b"a torch.export program of the user's")
    assert main(["explain", str(tmp_path / "model.onnx")]) == 2
    assert main(["export", str(tmp_path / "v1.onnx"), "--format", "onnx", "--out", str(tmp_path / "out")]) == 2
    assert main(["report", str(tmp_path), "--out", str(tmp_path / "report")]) in (0, 2)
    assert all(p.exists() for p in mine) and (tmp_path / "model.pt2").exists()
    with pytest.raises(ParetoLabError, match="model.onnx already exists; choose another --name"):
        optimize(sample, FP16, DataPlan.from_spec("digits", sample), tmp_path, "model")
    capsys.readouterr()


def test_an_image_folder_and_its_recipe_are_remembered_while_the_folder_exists(tmp_path):
    experiment = Experiment(tmp_path / "exp")
    images = tmp_path / "images"
    images.mkdir()
    experiment.remember_data("digits", None)  # the built-in data needs no remembering
    assert experiment.data_choice() is None
    experiment.remember_data(str(images), "size=224,channels=BGR")
    assert Experiment(tmp_path / "exp").data_choice() == (str(images), "size=224,channels=BGR")
    images.rmdir()
    assert experiment.data_choice() is None  # a folder that went away is not offered


def test_a_file_half_written_by_a_killed_run_goes_and_a_user_s_hidden_folder_stays(tmp_path):
    script = ("import os, signal\nfrom pathlib import Path\nfrom paretolab.core.files import atomic_write\n"
              "def half(path):\n    path.write_bytes(b'half a model')\n    os.kill(os.getpid(), signal.SIGKILL)\n"
              f"atomic_write(Path({str(tmp_path)!r}) / 'v1.onnx', half)\n")
    assert subprocess.run([sys.executable, "-c", script], timeout=120).returncode == -signal.SIGKILL
    [left] = list(tmp_path.glob(".paretolab-*"))
    assert (left / "v1.onnx").exists() and not (tmp_path / "v1.onnx").exists()
    (tmp_path / ".paretolab-notes").mkdir()  # the user's, named like ours
    (tmp_path / ".paretolab-notes" / "todo.txt").write_text("keep me")
    assert Experiment(tmp_path).variants() == []
    assert not left.exists() and (tmp_path / ".paretolab-notes" / "todo.txt").read_text() == "keep me"


def test_a_re_timing_replaces_the_old_timings_notes_and_keeps_the_others(sample, tmp_path):
    """A re-profile on a quiet machine must not leave the first run's "busy" beside its clean timing
    (the table, chart and report would call the new speed-up uncertain)."""
    from paretolab.core.measure.timing import Speedup
    from paretolab.core.pipeline.scorecard import timing_notes

    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"precision": "fp16"}}]})
    variant = optimize(sample, recipe, DataPlan.from_spec("digits", sample), tmp_path, "v1", threads=1)
    busy = "other processes kept 1.9 of 2 CPUs busy: measure again on an idle machine"
    variant.metrics["timing"].update(busy=busy, notes=[busy])
    variant.metrics["notes"] = ["calibrated on digits", busy]

    quiet = {"busy": None}
    faster = Speedup(1.01, 0.98, 1.04)
    quiet["notes"] = timing_notes(quiet, faster, "ort/cpu")
    updated = variant.remeasured(1.0, 0.99, quiet, faster)

    assert updated.busy is None
    assert updated.metrics["notes"] == ["calibrated on digits", "no measurable speed-up: 1.01x (0.98-1.04) against "
                                        "the original on ort/cpu"]
    again = updated.remeasured(1.0, 0.5, {"busy": None, "notes": []}, Speedup(2.0, 1.9, 2.1))
    assert again.metrics["notes"] == ["calibrated on digits"]
