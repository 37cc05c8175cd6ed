"""How long core calls report progress and learn that they were cancelled.

Core never knows who listens: the CLI prints, the GUI turns reports into signals (jobs/),
tests record them. Same shape as Orange's TaskState and superqt's generator workers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from paretolab.core.errors import Cancelled

Listener = Callable[[float, str], None]


class Progress:
    """Thread-safe progress sink with cooperative cancellation."""

    def __init__(self, listener: Listener | None = None) -> None:
        self._listener = listener
        self._cancel = threading.Event()
        self.fraction = 0.0
        self.message = ""

    def report(self, fraction: float, message: str = "") -> None:
        """Record progress (0..1) and tell the listener; a cancellation point until the work
        is done (a report of 1.0 means the result exists, so it is no longer cancelled)."""
        self.fraction = min(max(fraction, 0.0), 1.0)
        self.message = message or self.message
        if self._listener is not None:
            self._listener(self.fraction, self.message)
        if self.fraction < 1.0:
            self.check()

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def check(self) -> None:
        """Raise Cancelled if cancel() was called; call between steps."""
        if self._cancel.is_set():
            raise Cancelled(self.message or "cancelled")


def silent() -> Progress:
    """A Progress nobody listens to, for callers that do not care."""
    return Progress()
