"""Issue 25's "done when": no command changes or removes a file ParetoLab did not write.

A folder of user files (a model, a recipe, a CSV, a subfolder, a file named like a variant) and a
folder of the user's in the temp folder named like ours are checksummed before and after every
command run on them; refusals (names with folders, exports over existing files, a full or
read-only disk) are one line, exit 2, and write nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from paretolab.cli import main
from paretolab.core.sample import sample_model_path


def checksums(*folders: Path) -> dict[str, str]:
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for folder in folders for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.fixture
def user_files(tmp_path, monkeypatch):
    """The user's folder and temp folder; commands run with the temp folder as TMPDIR."""
    mine, tmp = tmp_path / "mine", tmp_path / "tmp"
    (mine / "sub").mkdir(parents=True)
    shutil.copyfile(sample_model_path(), mine / "model.onnx")
    shutil.copyfile(sample_model_path(), mine / "v1.onnx")  # named like a variant ParetoLab would make
    (mine / "recipe.json").write_text(json.dumps({"steps": [{"technique": "quantize", "settings": {"precision": "fp16"}}]}))
    (mine / "results.csv").write_text("variant,top1\nbaseline,0.97\n")
    (mine / "sub" / "notes.txt").write_text("my notes\n")
    (tmp / "paretolab-2024-results").mkdir(parents=True)  # named like a work folder of ours
    (tmp / "paretolab-2024-results" / "table.csv").write_text("a,b\n")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    return mine, tmp


def run(args: list[str], capsys) -> tuple[int, str]:
    code = main(args)
    return code, capsys.readouterr().err


def test_no_command_changes_a_file_it_did_not_write(user_files, tmp_path, capsys):
    mine, tmp = user_files
    before = checksums(mine, tmp)
    model, out = str(mine / "model.onnx"), tmp_path / "out"

    def unchanged() -> None:
        after = checksums(mine, tmp)
        assert {k: after.get(k) for k in before} == before

    for args in (
        ["inspect", model],
        ["profile", model, "--batch", "1", "--runs", "3", "--no-layers"],
        ["optimize", model, "--recipe", str(mine / "recipe.json"), "--out", str(mine)],  # into the user's folder: v2
        ["explain", str(mine / "v2.onnx"), "--no-layers"],
        ["export", str(mine / "v2.onnx"), "--format", "onnx", "--out", str(out / "exported.onnx")],
        ["report", str(mine), "--out", str(out / "report")],
        ["sweep", model, "--out", str(out / "sweep"), "--trials", "1", "--budget", "90s"],
    ):
        code, err = run(args, capsys)
        assert code == 0, (args, err)
        unchanged()
    assert (mine / "v2.onnx").exists() and (out / "exported.onnx").exists()
    assert any((out / "sweep").glob("*.metrics.json")) and any((out / "report").iterdir())

    refused = {  # each one line, exit 2, nothing written
        "is not a usable variant name": ["optimize", model, "--quantize", "ort-fp16", "--out", str(out), "--name", "../../x"],
        "not a usable variant name": ["optimize", model, "--quantize", "ort-fp16", "--out", str(out), "--name",
                                      str(mine / "results")],
        "v1.onnx already exists": ["optimize", model, "--quantize", "ort-fp16", "--out", str(mine), "--name", "v1"],
        "model.onnx is the model this variant was made from": ["export", str(mine / "v2.onnx"), "--format", "onnx",
                                                               "--out", model],
        "ParetoLab never writes over it": ["export", str(mine / "v2.onnx"), "--format", "onnx", "--out", model, "--force"],
        "v2.onnx is the model this variant was made from (or the variant itself)": [
            "export", str(mine / "v2.onnx"), "--format", "onnx", "--out", str(mine / "v2.onnx"), "--force"],
        "v1.onnx exists; pass --force": ["export", str(mine / "v2.onnx"), "--format", "onnx", "--out",
                                         str(mine / "v1.onnx")],
    }
    for message, args in refused.items():
        written = set(checksums(mine, tmp, out))
        code, err = run(args, capsys)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, (args, err)
        assert set(checksums(mine, tmp, out)) == written
        unchanged()
    assert not (tmp_path / "x.onnx").exists() and not (mine.parent / "x.onnx").exists()


def test_export_replaces_an_earlier_export_only_with_force(user_files, tmp_path, capsys):
    mine, _ = user_files
    assert run(["optimize", str(mine / "model.onnx"), "--quantize", "ort-fp16", "--out", str(tmp_path / "exp")], capsys)[0] == 0
    target = tmp_path / "deploy.onnx"
    target.write_bytes(b"an earlier file of the user's")
    args = ["export", str(tmp_path / "exp" / "v1.onnx"), "--format", "onnx", "--out", str(target)]
    assert run(args, capsys)[0] == 2 and target.read_bytes() == b"an earlier file of the user's"
    assert run([*args, "--force"], capsys)[0] == 0 and target.read_bytes() != b"an earlier file of the user's"


def test_a_second_run_with_the_same_name_is_refused_while_the_first_makes_it(tmp_path):
    """Two runs with one --name both exited 0 and one result was lost: the second now gets one line, exit 2."""
    import signal
    import time

    recipe = tmp_path / "long.json"
    recipe.write_text(json.dumps({"steps": [{"technique": "prune"},
                                            {"technique": "distill", "settings": {"epochs": 500, "patience": 500}}]}))
    out = tmp_path / "exp"
    command = [sys.executable, "-m", "paretolab", "optimize", str(sample_model_path()), "--out", str(out), "--name", "best"]
    first = subprocess.Popen([*command, "--recipe", str(recipe)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "best.claim").exists() and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert first.poll() is None and (out / "best.claim").exists(), "the first run never claimed its name"
        second = subprocess.run([*command, "--quantize", "ort-fp16"], capture_output=True, text=True, timeout=300)
        assert second.returncode == 2 and len(second.stderr.strip().splitlines()) == 1, second.stderr
        assert f"another ParetoLab run (process {first.pid}) is making 'best'" in second.stderr
        assert first.poll() is None and not (out / "best.onnx").exists()  # the first run's name, untouched
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)


def test_backends_leaves_a_user_folder_named_like_ours(tmp_path):
    """The issue's reproducer, as a user runs it: `mkdir $TMPDIR/paretolab-2024-results; paretolab backends`."""
    folder = tmp_path / "paretolab-2024-results"
    folder.mkdir()
    (folder / "table.csv").write_text("a,b\n")
    done = subprocess.run([sys.executable, "-m", "paretolab", "backends"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    assert (folder / "table.csv").read_text() == "a,b\n"
    assert [p.name for p in tmp_path.glob("paretolab-*")] == ["paretolab-2024-results"]  # ours went with the process


@pytest.fixture
def small_disk(tmp_path):
    """A real 64 KB filesystem (tmpfs), when this user may mount one."""
    point = tmp_path / "small"
    point.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(point)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here ({done.stderr.strip() or 'not permitted'}): the free-space and "
                    "read-only checks are covered with substituted disk figures in tests/core/test_experiment.py")
    yield point
    subprocess.run(["umount", "-l", str(point)], check=False)


def test_a_full_or_read_only_disk_is_one_line_and_exit_2(small_disk, tmp_path, capsys):
    model = str(sample_model_path())
    assert run(["optimize", model, "--quantize", "ort-fp16", "--out", str(tmp_path / "exp")], capsys)[0] == 0
    variant = str(tmp_path / "exp" / "v1.onnx")
    commands = [["optimize", model, "--quantize", "ort-fp16", "--out", str(small_disk / "exp")],
                ["sweep", model, "--out", str(small_disk / "sweep"), "--trials", "1", "--budget", "90s"],
                ["export", variant, "--format", "onnx", "--out", str(small_disk / "v1.onnx")],
                ["export", variant, "--format", "triton", "--out", str(small_disk / "triton")]]

    def refused(expected: str) -> None:
        for args in commands:
            code, err = run(args, capsys)
            assert code == 2 and len(err.strip().splitlines()) == 1 and expected in err, (args, err)
            assert str(small_disk) in err and " free" in err, err
            assert sorted(p.name for p in small_disk.iterdir()) == (["filler"] if (small_disk / "filler").exists() else [])

    refused("KB free")  # 64 KB: too little for the variant, known before any work
    fd = os.open(small_disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:  # until 0 bytes are free
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)
    assert shutil.disk_usage(small_disk).free == 0
    refused("0 bytes free")
    (small_disk / "filler").unlink()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    refused("Read-only file system")


def test_a_disk_that_fills_while_torch_writes_is_one_line_not_an_abort(small_disk):
    """Past the up-front estimate (set to nothing here), torch's C++ writer would abort the process
    (terminate, c10::Error, exit 134) on a full disk: the room for its file is checked first."""
    script = ("import sys\nimport paretolab.core.pipeline.optimize as o\no.SPACE_FACTOR = o.SPACE_MARGIN = 0\n"
              "from paretolab.cli import main\n"
              f"sys.exit(main(['optimize', {str(sample_model_path())!r}, '--prune', 'structured:0.5', '--out', "
              f"{str(small_disk / 'exp')!r}, '--data', 'random:16']))\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-3000:]
    assert "not enough space for the PyTorch file of v1" in done.stderr and "KB free" in done.stderr
    assert [p.name for p in (small_disk / "exp").iterdir() if not p.name.startswith(".")] == []
