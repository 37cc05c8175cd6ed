"""`paretolab model.onnx` opens the app on the file, as `netron model.onnx` does; a missing path is one line."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from paretolab import cli
from paretolab.core.sample import sample_model_path


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the app's settings file is read where Linux keeps it")
def test_a_file_as_the_first_argument_opens_the_app_on_it(tmp_path):
    model = tmp_path / "my model.onnx"
    shutil.copyfile(sample_model_path(), model)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env.update(QT_QPA_PLATFORM="offscreen", HOME=str(tmp_path), XDG_CONFIG_HOME=str(tmp_path / "config"),
               XDG_DATA_HOME=str(tmp_path / "data"), PARETOLAB_LOG_DIR=str(tmp_path / "log"))
    app = subprocess.Popen([sys.executable, "-m", "paretolab", model.name], cwd=tmp_path, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    settings = tmp_path / "config" / "ParetoLab" / "ParetoLab.conf"
    try:
        deadline = time.monotonic() + 180
        # the window remembers a model among its recent files once it has opened it
        while not (settings.is_file() and str(model) in settings.read_text()):
            assert app.poll() is None, app.communicate()
            assert time.monotonic() < deadline, "the app did not open the model within 180 s"
            time.sleep(0.5)
    finally:
        app.send_signal(signal.SIGTERM)
        _, err = app.communicate(timeout=60)
    assert "invalid choice" not in err


def test_a_folder_as_the_first_argument_opens_the_app_on_it(tmp_path, monkeypatch):
    opened = []
    monkeypatch.setattr("paretolab.gui.app.run_app", lambda model: opened.append(model) or 0)
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    assert cli.main([str(tmp_path)]) == 0
    assert opened == [str(tmp_path)]


@pytest.mark.parametrize("missing", ["model.onnx", "models/bert", "~/no-such-model.pt2"])
def test_a_missing_path_is_one_line_naming_it_and_exit_2(missing, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.main([missing]) == 2
    err = capsys.readouterr().err
    assert err == f"paretolab: error: {missing}: no such file or folder; give a model file or folder to open, or a command " \
                  "(paretolab --help)\n"


def test_a_mistyped_command_still_lists_the_commands(capsys):
    with pytest.raises(SystemExit) as exited:
        cli.main(["inpsect"])
    assert exited.value.code == 2 and "invalid choice: 'inpsect'" in capsys.readouterr().err
