"""Drive the real window like a user and save README screenshots into docs/.

Run under a display (e.g. Xvfb): opens the demo sample (the 32x32 ResNet), analyses its layers, builds a few
variants, then grabs the main window with the graph coloured by importance and the
trade-off chart with the Pareto front.

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/screenshot_studio.py
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from PySide6.QtCore import QSettings, QTimer

from paretolab.gui.app import create_app
from paretolab.gui.main_window import MainWindow

DOCS = Path(__file__).resolve().parents[1] / "docs"
RECIPES = [
    {"steps": [{"technique": "quantize", "settings": {"backend": "ort", "precision": "int8"}}]},
    {"steps": [{"technique": "quantize", "settings": {"backend": "openvino", "precision": "int8"}}]},
    {"steps": [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}}]},
    {"steps": [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}},
               {"technique": "distill", "settings": {"epochs": 4}},
               {"technique": "quantize", "settings": {"backend": "openvino", "precision": "int8"}}]},
    {"steps": [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.7}},
               {"technique": "distill", "settings": {"epochs": 4}}]},
    {"steps": [{"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.6}}]},
    {"steps": [{"technique": "quantize", "settings": {"backend": "ort", "precision": "int8"}},
               {"technique": "early_exit", "settings": {"exits": 2}}]},
]


def main() -> None:
    app = create_app()
    tmp = Path(tempfile.mkdtemp())
    window = MainWindow(QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat), experiments_root=tmp / "variants")
    window.resize(1600, 960)
    window.show()
    jobs = []

    def after_load() -> None:
        jobs.append(window.analyse_layers())
        for recipe in RECIPES:
            jobs.append(window.studio.run(recipe, "digits"))
        window.settings_panel.sparsity.setValue(0.5)
        window.settings_panel.distill.setChecked(True)
        poll.start()

    def check() -> None:
        if jobs and all(j.state.value in ("done", "failed", "cancelled") for j in jobs):
            poll.stop()
            window.graph_view.select("layers.0.conv1")
            window.variants.select("v4")
            window.chart_dock.raise_()
            window.variants_dock.raise_()
            QTimer.singleShot(800, shoot)

    def shoot() -> None:
        DOCS.mkdir(exist_ok=True)
        window.grab().save(str(DOCS / "studio.png"))
        window.chart.export(DOCS / "tradeoff.png")
        print("wrote", DOCS / "studio.png", DOCS / "tradeoff.png")
        app.quit()

    poll = QTimer(window)
    poll.setInterval(500)
    poll.timeout.connect(check)
    window.open_sample("demo").succeeded.connect(lambda _: QTimer.singleShot(100, after_load))
    app.aboutToQuit.connect(lambda: window.studio.queue.cancel_all())
    app.exec()
    sys.exit(0)


if __name__ == "__main__":
    main()
