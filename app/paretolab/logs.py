"""Where log records and library warnings go: a log file, never the user's terminal.

Libraries we call warn on stderr in their own words (torch's "Detected pickle protocol",
ONNX Runtime's "Please consider to run pre-processing" through the root logger, which
would also install its own stderr handler). The user should see only our one-line
messages, so everything else lands in a rotating log file they can attach to a bug report.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
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
    path: Path | None = log_folder() / LOG_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(path, maxBytes=2_000_000, backupCount=2, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    except OSError:
        path, handler = None, logging.NullHandler()
    handler.paretolab = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    logging.captureWarnings(True)
    return path
