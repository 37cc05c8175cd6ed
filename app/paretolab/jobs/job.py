"""Job: one core call on a worker thread, with progress, cancel, result and error signals."""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThreadPool, Signal
from superqt.utils import FunctionWorker

from paretolab.core.errors import Cancelled
from paretolab.core.progress import Progress


class JobState(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(QObject):
    """Runs fn(progress) on the global thread pool.

    Signals are emitted from the worker thread and delivered on the GUI thread (Qt queues
    them because the Job lives there), so slots may touch widgets.
    """

    progressed = Signal(float, str)
    partial = Signal(object)  # a result that is ready before the job ends (a sweep's finished trial)
    succeeded = Signal(object)
    failed = Signal(object)  # the exception
    cancelled = Signal()
    finished = Signal()  # after any of the three above

    def __init__(self, title: str, fn: Callable[[Progress], Any], parent: QObject | None = None, *,
                 exclusive: bool = True) -> None:
        super().__init__(parent)
        self.title = title
        self.exclusive = exclusive  # False: a quick job that need not wait for the compute job in progress
        self.state = JobState.WAITING
        self.started_at: float | None = None
        self.progress = Progress(listener=self.progressed.emit)
        self.log: list[str] = []
        self.error: BaseException | None = None
        self.result: Any = None
        self.progressed.connect(self._record)
        self._worker = FunctionWorker(fn, self.progress)
        self._worker.returned.connect(self._on_returned)
        self._worker.errored.connect(self._on_errored)

    def start(self) -> None:
        self.state = JobState.RUNNING
        self.started_at = time.monotonic()
        self._worker.start()

    def cancel(self) -> None:
        """Ask the job to stop at its next progress check (within a second for core calls)."""
        self.progress.cancel()

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else time.monotonic() - self.started_at

    def eta(self) -> float | None:
        """Seconds left, from the pace so far; None until there is a pace to go by."""
        done = self.progress.fraction
        if self.state != JobState.RUNNING or done < 0.02:
            return None
        return self.elapsed() * (1 - done) / done

    def _record(self, fraction: float, message: str) -> None:
        if message and (not self.log or self.log[-1] != message):
            self.log.append(message)

    def _on_returned(self, result: Any) -> None:
        self.result = result
        self.state = JobState.DONE
        self.succeeded.emit(result)
        self.finished.emit()

    def _on_errored(self, error: BaseException) -> None:
        if isinstance(error, Cancelled):
            self.state = JobState.CANCELLED
            self.cancelled.emit()
        else:
            self.state = JobState.FAILED
            self.error = error
            self.log.append(f"failed: {error}")
            self.failed.emit(error)
        self.finished.emit()


def wait_for_all_jobs(timeout_ms: int = 10_000) -> bool:
    """Block until every worker has finished; used on quit so no thread outlives the app."""
    return QThreadPool.globalInstance().waitForDone(timeout_ms)
