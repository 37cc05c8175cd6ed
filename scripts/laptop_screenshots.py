"""Screenshots of the studio at a laptop's 1366×768, one per panel and question, into docs/laptop/
(issue 28: each must show its controls whole). Needs no display:

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/laptop_screenshots.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QApplication, QDockWidget

from paretolab.gui.app import create_app
from paretolab.gui.main_window import MainWindow
from paretolab.gui.prompts import Prompts

OUT = Path(__file__).resolve().parents[1] / "docs" / "laptop"
SIZE = (1366, 768)
RECIPE = {"steps": [{"technique": "quantize", "settings": {"backend": "ort", "precision": "int8"}}]}


def wait_until(app: QApplication, done, timeout_s: float = 300.0) -> None:  # noqa: ANN001 - a callable
    end = time.monotonic() + timeout_s
    while not done() and time.monotonic() < end:
        app.processEvents()
        time.sleep(0.02)
    for _ in range(10):
        app.processEvents()


def main() -> int:
    app = create_app()
    tmp = Path(tempfile.mkdtemp())
    window = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), experiments_root=tmp / "variants")
    window.setGeometry(0, 0, *SIZE)
    window.show()
    window.open_sample("demo")
    wait_until(app, lambda: window.job is None)
    job = window.studio.run(RECIPE, "digits")  # a point on the chart and a row in Variants and Jobs
    wait_until(app, lambda: job is None or job.state.value not in ("waiting", "running"))
    OUT.mkdir(parents=True, exist_ok=True)
    wait_until(app, lambda: False, 1.5)  # the chart draws on a timer
    window.grab().save(str(OUT / "window.png"))
    for dock in window.findChildren(QDockWidget):
        dock.raise_()
        wait_until(app, lambda: False, 0.2)
        dock.grab().save(str(OUT / f"{dock.windowTitle().lower().replace('-', '')}.png"))
    loaded = window.loaded
    inputs = ", ".join(f"{s.name} {list(s.shape)}" for s in loaded.handle.inputs) if loaded else "input"
    dialog = Prompts(window).text_dialog(
        "Input shapes", f"{loaded.handle.path.name if loaded else 'model'} takes {inputs}. Give the shape to measure and "
        "compress it with (one per input, e.g. 1x3x640x640, or name=1x3x640x640 separated by spaces); it is remembered "
        "for this model.", "1x3x32x32")
    dialog.show()
    wait_until(app, lambda: False, 0.2)
    dialog.grab().save(str(OUT / "input-shapes-dialog.png"))
    dialog.close()
    window.close()
    print("\n".join(sorted(str(p.relative_to(OUT.parents[1])) for p in OUT.glob("*.png"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
