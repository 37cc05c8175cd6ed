"""Writing files so that a crash, a cancel, a full disk or a read-only folder never leaves
half of one behind, and says what went wrong in one line."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from paretolab.core.errors import ParetoLabError
from paretolab.core.owned import (
    MARKER,
    WRITE_FOLDER_PREFIX,
    mark_folder,
    record_write,
    remove_stale_work_folders,
    session_folder,
    work_prefix,
)

__all__ = ["WriteError", "atomic_write", "check_writable", "remove_stale_work_folders", "work_prefix", "write_json_atomic"]


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


def free_space(folder: Path) -> int | None:
    """Bytes free to this user in `folder` (or the nearest folder above it that exists)."""
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def _size(n: int | None) -> str:
    if n is None:
        return "unknown space"
    if n < 1024:
        return f"{n} bytes"
    value = n / 1024
    for unit in ("KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            break
        value /= 1024
    return f"{value:.1f} {unit}"


def _write_error(path: Path, exc: OSError) -> WriteError:
    reason = exc.strerror or str(exc)
    folder = Path(path).parent
    return WriteError(f"cannot write {path}: {reason} ({_size(free_space(folder))} free in {folder}); free some space or "
                      "choose a writable folder (nothing was changed)")


def disk_error(exc: BaseException) -> str | None:
    """The one-line message for an OSError that a full or read-only disk (or a missing
    permission) caused, wherever it was raised; None for any other error."""
    import errno

    if not isinstance(exc, OSError) or exc.errno not in (errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM,
                                                          errno.EDQUOT):
        return None
    return str(_write_error(Path(exc.filename or "a file"), exc))


def check_writable(folder: Path, need_bytes: int, what: str = "the results") -> None:
    """Fail early, in one line, when `folder` cannot take `need_bytes` more or cannot be written at
    all (read-only disk, no permission): a job that dies half-way wastes the user's time, and a
    library that runs out of space mid-write may abort the whole process (torch's C++ writer does).
    A refused folder is left as it was (folders made for the check are removed again)."""
    folder = Path(folder)
    made = [p for p in (folder, *folder.parents) if not p.exists()]
    try:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(dir=folder, prefix=".paretolab-probe-")
            os.close(fd)
            os.unlink(probe)
        except OSError as exc:
            raise WriteError(f"cannot write {what} in {folder}: {exc.strerror or exc} ({_size(free_space(folder))} "
                             "free); choose a writable folder") from None
        free = free_space(folder)
        if free is not None and free < need_bytes:
            raise WriteError(f"not enough space for {what} in {folder}: {_size(free)} free, about {_size(need_bytes)} "
                             "needed; free some space or choose another folder (nothing was written)")
    except WriteError:
        for created in made:  # innermost first
            with contextlib.suppress(OSError):
                created.rmdir()
        raise


def atomic_write(out: Path, write: Callable[[Path], object]) -> Path:
    """Run write(path) in a temp folder beside `out`, then rename what it wrote into place.

    The folder catches companion files (external data, an IR's .bin) under their final names,
    so a failed or cancelled write leaves nothing half-written next to the user's files.
    """
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=out.parent, prefix=WRITE_FOLDER_PREFIX) as tmp:
            mark_folder(Path(tmp))  # a kill -9 mid-write leaves it: marked, the next open of the folder removes it
            write(Path(tmp) / out.name)
            for written in sorted((p for p in Path(tmp).iterdir() if p.name != MARKER), key=lambda p: p.name == out.name):
                _fsync(written)  # on disk before the rename makes it visible: a crash leaves old or new
                record_write(out.parent / written.name, written)  # so a killed run's clean-up knows the file
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
        record_write(path, Path(tmp))
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
        where = folder or Path(stack.enter_context(tempfile.TemporaryDirectory(dir=session_folder(), prefix="cwd-")))
        stack.enter_context(contextlib.chdir(where))
        yield where
