"""Time to the first window: a fresh interpreter from start until the main window is shown and
the event loop has run once, as `paretolab` starts it (before it opens the demo model and
preloads the runtimes on a worker). Measured side by side, in alternating rounds, with the
same start after importing torch and ONNX first: what every start paid while the GUI's
imports reached the engine.

    QT_QPA_PLATFORM=offscreen python bench/startup.py [--rounds 7] [--old-tree DIR]

--old-tree DIR adds a third case: an older checkout's app/ folder (PYTHONPATH), e.g. from
`git archive <commit> app | tar -x -C DIR`, for a before/after of a change.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

HEAVY = ("torch", "onnx", "onnxruntime", "openvino", "nncf", "torch_pruning")
WINDOW = """
import sys, tempfile
from pathlib import Path
{pre}
from PySide6.QtCore import QSettings, QTimer
from paretolab.gui.app import create_app
from paretolab.gui.main_window import MainWindow

app = create_app()
folder = Path(tempfile.mkdtemp())
window = MainWindow(settings=QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat), experiments_root=folder / "v")
window.show()
QTimer.singleShot(0, app.quit)  # the first turn of the event loop: the window is on screen
app.exec()
print("LOADED", ",".join(m for m in {heavy!r} if m in sys.modules))
"""


def first_window_s(pre: str = "", pythonpath: str | None = None) -> tuple[float, str]:
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as home:
        env["HOME"] = env["XDG_CONFIG_HOME"] = home
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-c", WINDOW.format(pre=pre, heavy=HEAVY)], env=env,
                              capture_output=True, text=True, check=True)
        elapsed = time.perf_counter() - start
    loaded = next(line for line in done.stdout.splitlines() if line.startswith("LOADED")).split(" ", 1)[-1]
    return elapsed, loaded or "none"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--old-tree", help="an older checkout's app/ folder to time beside this one")
    args = parser.parse_args()
    cases = {"now": ("", None), "torch and ONNX imported first": ("import torch, onnx", None)}
    if args.old_tree:
        cases["old tree"] = ("", args.old_tree)
    times: dict[str, list[float]] = {name: [] for name in cases}
    loaded: dict[str, str] = {}
    first_window_s()  # warm the file cache: the first start reads every library from disk
    for _ in range(args.rounds):
        for name, (pre, path) in cases.items():
            seconds, loaded[name] = first_window_s(pre, path)
            times[name].append(seconds)
    now = statistics.median(times["now"])
    print(f"{'case':32} {'median s':>9} {'min s':>7} {'x now':>6}  runtimes loaded when the window shows")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:32} {median:9.2f} {min(values):7.2f} {median / now:6.2f}  {loaded[name]}")


if __name__ == "__main__":
    main()
