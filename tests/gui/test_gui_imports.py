"""The window opens before any ML runtime loads: torch, ONNX, ONNX Runtime, OpenVINO and the
libraries on them load on first use (a job on a worker, or the preload after the window shows),
so the user sees a window in about a second instead of waiting for torch. Each check runs in a
fresh interpreter: this test session has long since imported everything."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

HEAVY = ("torch", "onnx", "onnxruntime", "openvino", "nncf", "torch_pruning", "transformers")

# Records, for each heavy library, the chain of our modules that first imported it, so a failure
# names the import to make lazy instead of only saying that torch is loaded.
RECORDER = textwrap.dedent(
    """
    import json, sys, traceback
    HEAVY = {heavy!r}
    first = {{}}

    class Recorder:
        def find_spec(self, name, path=None, target=None):
            if name in HEAVY and name not in first:
                first[name] = " > ".join(
                    f"{{f.filename.rsplit('paretolab', 1)[-1]}}:{{f.lineno}}"
                    for f in traceback.extract_stack() if "paretolab" in f.filename
                )
            return None

    sys.meta_path.insert(0, Recorder())
    """
)
REPORT = "print(json.dumps({name: first.get(name, '?') for name in HEAVY if name in sys.modules}))"


def loaded_by(code: str, tmp_path) -> dict[str, str]:
    """The heavy libraries loaded after running `code` in a fresh interpreter, each with the chain
    of our modules that imported it."""
    script = RECORDER.format(heavy=HEAVY) + textwrap.dedent(code) + "\n" + REPORT
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_main_window_loads_no_runtime(tmp_path):
    loaded = loaded_by("import paretolab.gui.main_window, paretolab.gui.app", tmp_path)
    assert not loaded, "importing the GUI loaded " + "; ".join(f"{lib} via {chain}" for lib, chain in loaded.items())


def test_the_window_shows_before_any_runtime_loads(tmp_path):
    loaded = loaded_by(
        f"""
        from PySide6.QtCore import QSettings
        from paretolab.gui.app import create_app
        from paretolab.gui.main_window import MainWindow

        app = create_app()
        window = MainWindow(settings=QSettings({str(tmp_path / "settings.ini")!r}, QSettings.Format.IniFormat),
                            experiments_root=__import__("pathlib").Path({str(tmp_path / "variants")!r}))
        window.show()
        app.processEvents()
        assert window.isVisible()
        window.close()
        """,
        tmp_path,
    )
    assert not loaded, "showing the window loaded " + "; ".join(f"{lib} via {chain}" for lib, chain in loaded.items())
