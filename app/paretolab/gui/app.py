"""Start the desktop app."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path

from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from paretolab import __version__
from paretolab.gui.main_window import MainWindow
from paretolab.jobs.job import wait_for_all_jobs
from paretolab.jobs.preload import preload_job


def create_app() -> QApplication:
    app = QApplication.instance() or QApplication(sys.argv)
    app.setOrganizationName("ParetoLab")
    app.setApplicationName("ParetoLab")
    app.setApplicationVersion(__version__)
    app.setStyle("Fusion")  # consistent widgets everywhere; colours still follow the system palette
    app.setWindowIcon(app_icon())
    app.setDesktopFileName("io.github.paretolab.ParetoLab")  # Wayland matches the window to its desktop entry
    return app


def app_icon() -> QIcon:
    """The application icon: the SVG for any size, and the rendered PNGs where SVG is not drawn."""
    icons = resources.files("paretolab.resources") / "icons"
    icon = QIcon(str(icons / "paretolab.svg"))
    for size in (16, 24, 32, 48, 64, 128, 256, 512):
        icon.addFile(str(icons / f"paretolab-{size}.png"))
    return icon


def run_app(model: str | Path | None = None) -> int:
    """Open the main window on `model`, or on the built-in demo ResNet; return the exit code."""
    app = create_app()
    window = MainWindow()
    app.aboutToQuit.connect(wait_for_all_jobs)
    window.show()
    preload = preload_job()
    preload.start()
    if model:
        window.open_model(model)
    else:
        window.open_sample("demo")  # the ResNet whose trade-offs show, not the 8×8 CNN the tests use
    return app.exec()
