"""Where log records and library warnings go: a log file, never the user's terminal.

Libraries we call warn on stderr in their own words (torch's "Detected pickle protocol",
ONNX Runtime's "Please consider to run pre-processing" through the root logger, which
would also install its own stderr handler). The user should see only our one-line
messages, so everything else lands in a rotating log file they can attach to a bug report.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

LOG_NAME = "paretolab.log"


def log_folder() -> Path:
    from platformdirs import user_log_dir

    return Path(os.environ.get("PARETOLAB_LOG_DIR") or user_log_dir("ParetoLab", appauthor=False))


def setup_logging() -> Path | None:
    """Send log records and warnings.warn() calls to the log file; return its path (None when
    no folder is writable, then they are dropped rather than printed)."""
    root = logging.getLogger()
    ours = next((h for h in root.handlers if getattr(h, "paretolab", False)), None)
    if ours is not None:  # set up already (the CLI's main called twice in one process)
        return Path(ours.baseFilename) if isinstance(ours, logging.FileHandler) else None
    root.setLevel(logging.INFO)
    # Native libraries print from C++, past Python's logging: TensorFlow (under OpenVINO's and ONNX's
    # converters) reads its level from the environment when it loads; Ray's output is captured
    # around its calls (native_stderr_to_log); ONNX Runtime's sessions are made with severity 3.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    file = log_folder() / LOG_NAME
    path: Path | None = file
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(file, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except OSError:
        path, handler = None, logging.NullHandler()
    handler.paretolab = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    logging.captureWarnings(True)
    return path


@contextlib.contextmanager
def native_stderr_to_log(name: str) -> Iterator[list[str]]:
    """Point file descriptor 2 at a temporary file while a library's native code talks (Ray's C++
    client prints a warning a second while it retries), then log its lines as `name`'s; the list
    yielded holds the text afterwards, so the caller can recognise a cause in it."""
    said: list[str] = []
    with contextlib.suppress(Exception):
        sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all (a GUI started without one): nothing reaches a terminal anyway
        yield said
        return
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield said
        finally:
            with contextlib.suppress(Exception):
                sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace")
            said.append(text)
            logger = logging.getLogger(f"paretolab.native.{name}")  # not the library's own: it may have raised its level
            for line in text.splitlines():
                if line.strip():
                    logger.info("%s", line)
