"""Writing files so that a crash, a cancel, a full disk or a read-only folder never leaves
half of one behind, and says what went wrong in one line."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from paretolab.core.errors import ParetoLabError


class WriteError(ParetoLabError):
    """A file could not be written (no space, no permission, read-only disk)."""


def files_digest(paths: list[Path]) -> str:
    """SHA-256 of the files' contents, read in blocks (models can be gigabytes)."""
    import hashlib

    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as stream:
            for block in iter(lambda: stream.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _write_error(path: Path, exc: OSError) -> WriteError:
    reason = exc.strerror or str(exc)
    return WriteError(f"cannot write {path}: {reason}; free some space or choose a writable folder (nothing was changed)")


def atomic_write(out: Path, write: Callable[[Path], object]) -> Path:
    """Run write(path) in a temp folder beside `out`, then rename what it wrote into place.

    The folder catches companion files (external data, an IR's .bin) under their final names,
    so a failed or cancelled write leaves nothing half-written next to the user's files.
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=".paretolab-") as tmp:
            write(Path(tmp) / out.name)
            for written in sorted(Path(tmp).iterdir(), key=lambda p: p.name == out.name):
                _fsync(written)  # on disk before the rename makes it visible: a crash leaves old or new
                os.replace(written, out.parent / written.name)  # the main file last
    except OSError as exc:
        raise _write_error(out, exc) from None
    return out


def _fsync(path: Path) -> None:
    if path.is_file():
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def write_json_atomic(path: Path, doc: Any) -> None:
    """Temp file, fsync, rename: a crash leaves the old file or the new one, never half."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:
        raise _write_error(path, exc) from None
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(doc, f, indent=1, default=_jsonable)
            f.write("\n")
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; this is a normal user file
        os.replace(tmp, path)
    except OSError as exc:
        raise _write_error(path, exc) from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, float) and value != value:
        return None
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def work_prefix(kind: str) -> str:
    """The name start of a private work folder in the system temp folder; it carries our process
    id, so a later start can tell the folders of killed processes from those of running ones."""
    return f"paretolab-{os.getpid()}-{kind}-"


def remove_stale_work_folders(root: Path | None = None) -> list[Path]:
    """Remove the work folders that killed ParetoLab processes left behind; return them."""
    import shutil

    import psutil

    removed = []
    for folder in Path(root or tempfile.gettempdir()).glob("paretolab-*"):
        pid = folder.name.split("-")[1]
        if folder.is_dir() and pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def add_code_path(folder: Path) -> None:
    """Make the Python code in `folder` importable, so pickles naming its classes load (the user's
    --code, or the folder the app asked for)."""
    entry = str(Path(folder).resolve())
    if entry not in sys.path:
        sys.path.insert(0, entry)


_CWD_LOCK = threading.Lock()


@contextlib.contextmanager
def inside(folder: Path | None = None) -> Iterator[Path]:
    """Run library code that writes into the current folder (ONNX Runtime's symbolic shape
    inference leaves "sym_shape_infer_temp.onnx" there when it cannot finish) inside `folder`,
    or a temporary one; one caller at a time, as the working folder is the whole process's."""
    with _CWD_LOCK, contextlib.ExitStack() as stack:
        where = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=work_prefix("cwd"))))
        stack.enter_context(contextlib.chdir(where))
        yield where
