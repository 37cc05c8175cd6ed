"""When Qt cannot open a window, `paretolab` says why in one line and exits 2 (not Qt's abort)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from paretolab.gui.qt_check import debian_package, parse_ldd_missing, qt_start_problem


def _gui_env(**changes: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env.update({k: v for k, v in changes.items() if v is not None})
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 and Wayland checks are for Linux")
def test_no_display_is_one_line_and_exit_2():
    result = subprocess.run([sys.executable, "-m", "paretolab"], env=_gui_env(), capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1
    assert "DISPLAY is unset" in result.stderr and "xvfb-run" in result.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 and Wayland checks are for Linux")
def test_unreachable_display_is_one_line_and_exit_2():
    with socket.socket() as probe:  # a TCP port nobody listens on: display number = port - 6000
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    display = f"127.0.0.1:{port - 6000}" if port > 6000 else "127.0.0.1:59"
    result = subprocess.run([sys.executable, "-m", "paretolab", "gui"], env=_gui_env(DISPLAY=display),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip() == (
        f"paretolab: error: cannot connect to the X display '{display}': check DISPLAY, or run under Xvfb (xvfb-run paretolab)"
    )


def test_offscreen_and_other_platforms_are_left_to_qt():
    assert qt_start_problem(_gui_env(QT_QPA_PLATFORM="offscreen")) is None
    if sys.platform.startswith("linux"):
        assert "WAYLAND_DISPLAY is unset" in qt_start_problem(_gui_env(QT_QPA_PLATFORM="wayland"))


def test_missing_libraries_are_named_with_their_debian_packages():
    listing = (
        "\tlibQt6XcbQpa.so.6 => /venv/PySide6/Qt/lib/libQt6XcbQpa.so.6 (0x00007f)\n"
        "\tlibxcb-icccm.so.4 => not found\n"
        "\tlibxcb-keysyms.so.1 => not found\n"
        "\tlibxcb-icccm.so.4 => not found\n"
    )
    assert parse_ldd_missing(listing) == ["libxcb-icccm.so.4", "libxcb-keysyms.so.1"]
    assert [debian_package(n) for n in ("libxcb-cursor.so.0", "libxcb-icccm.so.4", "libxkbcommon-x11.so.0", "libEGL.so.1")] == [
        "libxcb-cursor0", "libxcb-icccm4", "libxkbcommon-x11-0", "libegl1",
    ]
