"""Work folders of killed processes are cleaned at the next start; running ones are left alone."""

from __future__ import annotations

import os
import subprocess
import sys

from paretolab.core.files import remove_stale_work_folders, work_prefix


def test_folders_of_dead_processes_go_and_live_ones_stay(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    stale = tmp_path / f"paretolab-{dead}-recipe-abc"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "step1.onnx").write_bytes(b"x" * 1000)
    mine = tmp_path / f"{work_prefix('quant')}xyz"
    mine.mkdir()
    other = tmp_path / "paretolab-notes"  # not a work folder of ours: no process id
    other.mkdir()
    assert remove_stale_work_folders(tmp_path) == [stale]
    assert not stale.exists() and mine.exists() and other.exists()
    assert mine.name.startswith(f"paretolab-{os.getpid()}-quant-")
