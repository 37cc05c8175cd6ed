"""What this process provably made, so that clean-up never removes a file or folder of the user's.

A name is no proof: a user may keep `$TMPDIR/paretolab-2024-results`, or put their own `v3.onnx`
where a killed run had claimed `v3`. So every work folder lives inside this process's session
folder, which holds a marker (pid, the process's start time, a random token), and every claimed
variant name is a marker file created exclusively (O_EXCL) that records the identity (device,
inode, size, mtime) of each file written under it. Clean-up removes a session folder only when
its marker is valid and its process is gone, and a file only while it is still the very file
that run wrote.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

MARKER = ".paretolab-owner"
WRITE_FOLDER_PREFIX = ".paretolab-"  # files being written beside their final place (files.atomic_write)
_SESSION_LOCK = threading.RLock()
_session: dict[str, Any] = {}  # pid, token, start, folder of this process's session folder
_library_temp_users = 0


def identity() -> dict[str, Any]:
    """This process: its pid, its start time (tells it from a later process given the same pid)
    and a random token (made once per process)."""
    import psutil

    with _SESSION_LOCK:
        if _session.get("pid") != os.getpid():  # first call, or a forked child
            _session.clear()
            _session.update(pid=os.getpid(), token=secrets.token_hex(16), start=psutil.Process().create_time())
        return {"pid": _session["pid"], "start": _session["start"], "token": _session["token"]}


def owner_alive(doc: dict[str, Any]) -> bool:
    """Whether the process a marker names still runs (the same process, not a later one with its pid)."""
    import psutil

    try:
        return abs(psutil.Process(int(doc["pid"])).create_time() - float(doc["start"])) < 0.05
    except (psutil.Error, KeyError, TypeError, ValueError):
        return False


def read_marker(path: Path) -> dict[str, Any] | None:
    """A marker's fields when `path` is a regular file holding a valid one, else None."""
    try:
        if not path.is_file() or path.is_symlink():
            return None
        doc = json.loads(path.read_text())
        int(doc["pid"]), float(doc["start"])
        if not isinstance(doc["token"], str) or len(doc["token"]) != 32:
            return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return doc


def session_folder() -> Path:
    """This process's private folder in the system temp folder (made on first use, marked,
    removed when the process exits; a killed process's is removed by the next start)."""
    me = identity()
    with _SESSION_LOCK:
        folder = _session.get("folder")
        if folder is not None and folder.is_dir():
            return folder
        folder = Path(tempfile.gettempdir()) / f"paretolab-{me['pid']}-{me['token'][:12]}"
        folder.mkdir(mode=0o700)
        (folder / MARKER).write_text(json.dumps(me))
        _session["folder"] = folder
        atexit.register(_remove_session, folder, me["pid"])
        return folder


def _remove_session(folder: Path, pid: int) -> None:
    if os.getpid() == pid:  # never from a forked child that inherited the hook
        shutil.rmtree(folder, ignore_errors=True)


def work_prefix(kind: str) -> str:
    """Where a private work folder's name starts: inside this process's session folder, so
    `tempfile.TemporaryDirectory(prefix=work_prefix("quant"))` makes one there (an absolute
    prefix puts it in that folder whatever `dir` is)."""
    return str(session_folder() / f"{kind}-")


@contextlib.contextmanager
def library_temp() -> Iterator[Path]:
    """Let a library's own temp folders (ONNX Runtime's `ort.quant.*`) land in the session folder,
    so a process killed inside the library leaves nothing the next start cannot remove. The temp
    folder is the whole process's: set while any caller is inside, restored by the last to leave."""
    global _library_temp_users
    folder = session_folder()
    with _SESSION_LOCK:
        if _library_temp_users == 0:
            _session["saved_tempdir"] = tempfile.tempdir
            tempfile.tempdir = str(folder)
        _library_temp_users += 1
    try:
        yield folder
    finally:
        with _SESSION_LOCK:
            _library_temp_users -= 1
            if _library_temp_users == 0:
                tempfile.tempdir = _session.pop("saved_tempdir", None)


def remove_stale_work_folders(root: Path | None = None) -> list[Path]:
    """Remove the session folders of ParetoLab processes that were killed; return them. A folder
    is removed only when it holds a valid marker naming it, made by this user, of a process
    that no longer runs: any other folder, whatever its name, is left alone."""
    removed = []
    base = Path(root) if root is not None else Path(tempfile.gettempdir())
    if base == _session.get("folder"):  # a library's temp folder is pointed at ours just now
        base = base.parent
    for folder in base.glob("paretolab-*"):
        if _stale_session(folder):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


def mark_folder(folder: Path) -> None:
    """Mark a folder this process made, so that a later process may remove it once this one is gone."""
    (Path(folder) / MARKER).write_text(json.dumps(identity()))


def remove_stale_write_folders(folder: Path) -> list[Path]:
    """Remove the marked temp folders that killed processes left in `folder` while they wrote a
    file there (an unmarked folder, whatever its name, is left alone); return them."""
    removed = []
    for found in Path(folder).glob(f"{WRITE_FOLDER_PREFIX}*"):
        try:
            if found.is_symlink() or not found.is_dir() or found.stat().st_uid != os.getuid():
                continue
        except OSError:
            continue
        doc = read_marker(found / MARKER)
        if doc is not None and not owner_alive(doc):
            shutil.rmtree(found, ignore_errors=True)
            removed.append(found)
    return removed


def _stale_session(folder: Path) -> bool:
    try:
        if folder.is_symlink() or not folder.is_dir() or folder.stat().st_uid != os.getuid():
            return False
    except OSError:
        return False
    doc = read_marker(folder / MARKER)
    return (doc is not None and folder.name == f"paretolab-{int(doc['pid'])}-{doc['token'][:12]}"
            and not owner_alive(doc))


# -- claimed names ------------------------------------------------------------------------------

_ACTIVE: dict[tuple[str, str], Claim] = {}  # (folder, name) -> claim, for atomic writes to record into


class Claim:
    """A name claimed in a folder by this process: `NAME.claim`, created exclusively."""

    def __init__(self, folder: Path, name: str) -> None:
        self.folder, self.name = Path(folder), name
        self.path = self.folder / f"{name}.claim"
        self.doc: dict[str, Any] = {**identity(), "files": []}

    @classmethod
    def take(cls, folder: Path, name: str) -> Claim:
        """Claim `name` (FileExistsError when a claim file is there already; OSError when the folder
        cannot be written)."""
        claim = cls(folder, name)
        fd = os.open(claim.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(claim.doc, f)
        except OSError:
            claim.path.unlink(missing_ok=True)
            raise
        with _SESSION_LOCK:
            _ACTIVE[(str(claim.folder.resolve()), name)] = claim
        return claim

    def record(self, name: str, stat: os.stat_result) -> None:
        """Note that this run wrote `name` (its identity as `stat` gives it), before it appears there."""
        with _SESSION_LOCK:
            self.doc["files"].append({"name": name, **file_identity(stat)})
            tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
            try:
                tmp.write_text(json.dumps(self.doc))
                os.replace(tmp, self.path)
            except OSError:
                tmp.unlink(missing_ok=True)  # a full or read-only disk leaves no half-written record
                raise

    def written(self) -> list[Path]:
        """The files this claim recorded that are still the very files it wrote."""
        return still_written(self.folder, self.doc)

    def release(self) -> None:
        with _SESSION_LOCK:
            _ACTIVE.pop((str(self.folder.resolve()), self.name), None)
        doc = read_marker(self.path)
        if doc is not None and doc["token"] == self.doc["token"]:  # still ours
            self.path.unlink(missing_ok=True)


def claim_for(path: Path) -> Claim | None:
    """The active claim of this process that `path` (about to be written) falls under: NAME.*
    in its folder, the longest NAME when several match ("v1" and "v1.2")."""
    with _SESSION_LOCK:
        if not _ACTIVE:
            return None
        folder = str(Path(path).parent.resolve())
        found = [c for (f, n), c in _ACTIVE.items() if f == folder and Path(path).name.startswith(n + ".")]
    return max(found, key=lambda c: len(c.name), default=None)


def file_identity(stat: os.stat_result) -> dict[str, int]:
    return {"dev": stat.st_dev, "ino": stat.st_ino, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def still_written(folder: Path, doc: dict[str, Any]) -> list[Path]:
    """The files a claim's record names that are still, by identity, the ones its run wrote."""
    found = []
    for entry in doc.get("files", []):
        try:
            name = str(entry["name"])
            if not name or "/" in name or os.sep in name or name in (".", ".."):
                continue
            path = Path(folder) / name
            stat = path.lstat()
            if path.is_file() and not path.is_symlink() and file_identity(stat) == {k: int(entry[k]) for k in
                                                                                     ("dev", "ino", "size", "mtime_ns")}:
                found.append(path)
        except (OSError, KeyError, TypeError, ValueError):
            continue
    return found


def record_write(final: Path, written: Path) -> None:
    """Before `written` is renamed to `final`: if `final` falls under a claim of this process, record it."""
    claim = claim_for(final)
    if claim is not None:
        claim.record(Path(final).name, os.stat(written))
