"""`paretolab gui --self-test`: the whole app in one minute, for installers and bundles to check
that Qt, ONNX Runtime, OpenVINO and torch are really found. It opens the built-in sample, builds
one variant (FP16 with ONNX Runtime, the quickest technique) and exits 0 when the variant reached
the chart, 1 otherwise. Settings and experiments go to a temporary folder: nothing of the user's
is read or written."""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication

from paretolab.gui.main_window import MainWindow
from paretolab.jobs.job import JobState, wait_for_all_jobs

QUANTIZATION = "FP16, ONNX Runtime"


def run_self_test(timeout_s: float = 300.0) -> int:
    """Open the sample, build a variant, check it is on the chart; print one line, return 0 or 1."""
    from paretolab.gui.app import create_app

    app = create_app()
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="paretolab-self-test-") as folder:
        settings = QSettings(str(Path(folder) / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings=settings, experiments_root=Path(folder) / "experiments")
        window.show()
        try:
            message = _check(app, window, start + timeout_s)
        finally:
            window.close()
            wait_for_all_jobs()
    ok = message.startswith("passed")
    print(f"paretolab self-test {message} ({time.perf_counter() - start:.1f} s)", file=sys.stdout if ok else sys.stderr)
    return 0 if ok else 1


def _check(app: QApplication, window: MainWindow, deadline: float) -> str:
    window.open_sample()
    if not _wait(app, lambda: window.loaded is not None and window.job is None, deadline):
        return "failed: the built-in sample did not open"
    graph = window.loaded.graph if window.loaded else None
    if graph is None or not len(graph):
        return "failed: the sample opened without a layer graph"
    window.settings_panel.target.setCurrentText(QUANTIZATION)
    job = window.studio.run(window.settings_panel.recipe(), window.settings_panel.data_spec())
    if not _wait(app, lambda: job.state not in (JobState.WAITING, JobState.RUNNING), deadline):
        return "failed: the compression job did not finish in time"
    if job.state != JobState.DONE:
        return f"failed: the compression job failed: {job.error}"
    variant = job.result
    if variant.name not in window.chart.points:
        return f"failed: {variant.name} did not reach the chart"
    return (f"passed: opened {window.loaded.handle.path.name} ({len(graph)} layers), built {variant.name} "
            f"({variant.recipe.summary()}, {variant.speedup_text()}) and charted it")


def _wait(app: QApplication, done: Callable[[], bool], deadline: float) -> bool:
    while not done():
        if time.perf_counter() > deadline:
            return False
        app.processEvents()
        time.sleep(0.01)
    return True
