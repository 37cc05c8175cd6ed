"""Work folders: a killed process's are removed at the next start, and nothing else is — not a live
process's, not a folder the user made under a name like ours (issue 25, point 4), and ONNX Runtime's
own `ort.quant.*` folders go with the killed process's (point 8)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from paretolab.core.owned import MARKER, library_temp, remove_stale_work_folders, session_folder, work_prefix


def _run_and_die(code: str, tmpdir: Path) -> int:
    """Run `code` in a fresh Python with TMPDIR=tmpdir; it ends by SIGKILLing itself. Its pid."""
    script = ("import os, signal\nprint(os.getpid(), flush=True)\n" + textwrap.dedent(code)
              + "\nos.kill(os.getpid(), signal.SIGKILL)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "TMPDIR": str(tmpdir)})
    assert done.returncode == -9, done.stderr[-2000:]
    return int(done.stdout.split()[0])


def test_a_killed_process_s_folders_go_and_the_user_s_and_live_ones_stay(tmp_path):
    pid = _run_and_die("""
        import tempfile
        from paretolab.core.files import work_prefix
        folder = tempfile.mkdtemp(prefix=work_prefix("recipe"))
        open(folder + "/step1.onnx", "wb").write(b"x" * 1000)
    """, tmp_path)
    [stale] = list(tmp_path.glob(f"paretolab-{pid}-*"))
    assert (stale / MARKER).is_file() and list(stale.glob("recipe-*/step1.onnx"))
    users = [tmp_path / "paretolab-2024-results", tmp_path / f"paretolab-{pid}-recipe-abc", tmp_path / "paretolab-notes"]
    for folder in users:  # named like ours, made by the user: no marker, or a marker that does not name it
        folder.mkdir()
        (folder / "results.csv").write_text("a,b\n1,2\n")
    (users[1] / MARKER).write_text((stale / MARKER).read_text())  # a copied marker names another folder
    live = tmp_path / "paretolab-live"
    live.mkdir()
    (live / MARKER).write_text(json.dumps({**json.loads((stale / MARKER).read_text()), "pid": os.getpid()}))

    assert remove_stale_work_folders(tmp_path) == [stale]
    assert not stale.exists() and live.exists()
    assert all((f / "results.csv").read_text() == "a,b\n1,2\n" for f in users)


def test_this_process_s_work_folders_are_inside_its_marked_session_folder():
    prefix = work_prefix("quant")
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        assert Path(folder).parent == session_folder()
    marker = json.loads((session_folder() / MARKER).read_text())
    assert marker["pid"] == os.getpid() and len(marker["token"]) == 32 and marker["start"] > 0
    assert session_folder() not in remove_stale_work_folders(session_folder().parent)  # alive: kept


def test_library_temp_folders_land_in_ours_and_the_temp_folder_is_restored():
    before = tempfile.gettempdir()
    with library_temp() as folder, library_temp(), tempfile.TemporaryDirectory(prefix="ort.quant.") as made:
        assert Path(made).parent == folder == session_folder()
    assert tempfile.gettempdir() == before


def test_ort_quantization_temp_folders_do_not_outlive_a_killed_run(tmp_path):
    """kill -9 while ONNX Runtime calibrates: its ort.quant.* folder is inside ours, which the next start removes."""
    pid = _run_and_die("""
        import os, signal
        from paretolab.core.compress.quantization.quantize import QuantizeSettings, _ort_static
        from paretolab.core.measure.plan import DataPlan
        from paretolab.core.model.handle import load_model
        from paretolab.core.sample import sample_model_path
        import tempfile
        from pathlib import Path

        handle = load_model(sample_model_path())
        data = DataPlan.from_spec("random:8", handle).train
        batches = data.batches
        def dying(size):  # ONNX Runtime has made its temp folder when it reads calibration data
            assert any(Path(tempfile.gettempdir()).glob("ort.quant.*"))
            os.kill(os.getpid(), signal.SIGKILL)
            yield from batches(size)
        data.batches = dying
        _ort_static(sample_model_path(), Path(tempfile.mkdtemp(prefix="x-")) / "q.onnx", "qdq-s8s8",
                    QuantizeSettings(samples=8), handle, data, [])
    """, tmp_path)
    assert not list(tmp_path.glob("ort.quant.*"))
    [session] = list(tmp_path.glob(f"paretolab-{pid}-*"))
    assert list(session.glob("ort.quant.*"))
    assert remove_stale_work_folders(tmp_path) == [session]
    assert not any(p.name.startswith(("ort.quant.", f"paretolab-{pid}")) for p in tmp_path.iterdir())
