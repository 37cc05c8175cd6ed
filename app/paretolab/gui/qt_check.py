"""Say in one line why Qt cannot open a window, before Qt aborts the process.

When the X11 platform plugin cannot load (missing xcb libraries) or there is no display,
Qt prints a misleading hint and calls abort() (exit 134). We look first: is a display
reachable, and can the dynamic linker resolve everything the xcb plugin needs? This module
imports no Qt code, only finds the plugin file inside the installed PySide6.
"""

from __future__ import annotations

import ctypes
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from paretolab.core.errors import ParetoLabError

# Qt loads this one with dlopen at run time, so ldd never lists it.
XCB_DLOPENED = ("libxcb-cursor.so.0",)
# The packages `make run` needs on Debian/Ubuntu (README); found with ldd on PySide6's xcb plugin.
DEBIAN_PACKAGES = (
    "libegl1 libgl1 libfontconfig1 libfreetype6 libglib2.0-0 libx11-6 libx11-xcb1 libxkbcommon0 "
    "libxkbcommon-x11-0 libxcb1 libxcb-cursor0 libxcb-glx0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 "
    "libxcb-randr0 libxcb-render0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1 "
    "libxcb-xfixes0 libxcb-xkb1"
)
NON_WINDOW_PLATFORMS = {"offscreen", "minimal", "vnc", "linuxfb", "eglfs", "minimalegl", "vkkhrdisplay"}


class QtStartError(ParetoLabError):
    """The desktop app cannot start here (no display, or system libraries missing)."""


def check_qt_can_start(env: dict[str, str] | None = None) -> None:
    """Raise QtStartError with the one-line reason when Qt would abort; else return."""
    problem = qt_start_problem(env if env is not None else dict(os.environ))
    if problem:
        raise QtStartError(problem)


def qt_start_problem(env: dict[str, str]) -> str | None:
    if not sys.platform.startswith("linux"):
        return None
    platform = env.get("QT_QPA_PLATFORM", "").split(":")[0].split(";")[0].strip()
    if platform in NON_WINDOW_PLATFORMS:
        return None
    wayland = platform.startswith("wayland") or (
        not platform and env.get("WAYLAND_DISPLAY") and (not env.get("DISPLAY") or env.get("XDG_SESSION_TYPE") == "wayland")
    )
    if wayland:
        return None if env.get("WAYLAND_DISPLAY") else (
            "no Wayland display (WAYLAND_DISPLAY is unset): start ParetoLab from a desktop session, "
            "or use the headless commands (paretolab --help)"
        )
    display = env.get("DISPLAY", "")
    if not display:
        return (
            "no display to open a window on (DISPLAY is unset): start ParetoLab from a desktop session, "
            "run it under Xvfb (xvfb-run paretolab), or use the headless commands (paretolab --help)"
        )
    if not display_reachable(display):
        return f"cannot connect to the X display '{display}': check DISPLAY, or run under Xvfb (xvfb-run paretolab)"
    missing = missing_xcb_libraries()
    if missing:
        packages = " ".join(dict.fromkeys(debian_package(lib) for lib in missing))
        return (
            f"Qt's X11 plugin cannot load: missing system libraries {', '.join(missing)}; "
            f"on Debian/Ubuntu: sudo apt-get install {packages}"
        )
    return None


def display_reachable(display: str) -> bool:
    """Whether an X server answers at `display` (":0", "host:1.0", "unix:2")."""
    match = re.fullmatch(r"(?P<host>[^:]*):(?P<number>\d+)(\.\d+)?", display)
    if match is None:
        return False
    host, number = match["host"], int(match["number"])
    if host in ("", "unix") or host.startswith("/"):
        socket_path = f"/tmp/.X11-unix/X{number}" if not host.startswith("/") else display.rsplit(":", 1)[0]
        if os.path.exists(socket_path):
            return _connects(socket.AF_UNIX, socket_path)
        if host == "":  # abstract socket (Linux): the server listens without a file
            return _connects(socket.AF_UNIX, f"\0/tmp/.X11-unix/X{number}")
        return False
    return _connects(socket.AF_INET, (host, 6000 + number))


def _connects(family: int, address) -> bool:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(2.0)
        try:
            sock.connect(address)
        except OSError:
            return False
    return True


def missing_xcb_libraries() -> list[str]:
    """Shared libraries the xcb platform plugin needs that the dynamic linker cannot find."""
    plugin = _xcb_plugin()
    missing: list[str] = []
    if plugin is not None:
        try:
            listing = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            listing = ""  # no ldd (not glibc): Qt will say it itself
        missing += parse_ldd_missing(listing)
    for name in XCB_DLOPENED:
        try:
            ctypes.CDLL(name)
        except OSError:
            missing.append(name)
    return list(dict.fromkeys(missing))


def parse_ldd_missing(listing: str) -> list[str]:
    return list(dict.fromkeys(m.group(1) for m in re.finditer(r"^\s*(\S+) => not found", listing, re.MULTILINE)))


def debian_package(library: str) -> str:
    """The Debian package that ships a shared library, by Debian's naming rule:
    libxcb-icccm.so.4 -> libxcb-icccm4, libxkbcommon-x11.so.0 -> libxkbcommon-x11-0."""
    stem, _, version = library.partition(".so.")
    version = version.split(".")[0]
    name = stem.lower()
    return f"{name}-{version}" if name[-1:].isdigit() else f"{name}{version}"


def _xcb_plugin() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return None
    plugin = Path(spec.origin).parent / "Qt" / "plugins" / "platforms" / "libqxcb.so"
    return plugin if plugin.exists() else None
