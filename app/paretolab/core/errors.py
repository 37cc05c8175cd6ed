"""The one exception family for mistakes a user can make.

Each message names the file or setting at fault and says what to do, in one line, so the
CLI can print it as is (exit code 2) and the GUI can put it in a dialog. Anything that is
not a ParetoLabError is our bug and keeps its traceback.
"""

from __future__ import annotations


class ParetoLabError(Exception):
    """A problem the user can fix; str(error) is the whole one-line message."""


class ModelLoadError(ParetoLabError):
    """The model file is missing, unreadable, corrupt or of an unsupported kind."""


class UntrustedModelError(ModelLoadError):
    """The file is a pickle that would run code when loaded; retry with trust=True to accept."""


class ArchitectureRequiredError(ModelLoadError):
    """The file holds only weights (a state_dict); an `arch` ("pkg.module:Class") is needed."""


class CodeRequiredError(ModelLoadError):
    """A pickle names a class whose module is not importable here; `module` is the missing one."""

    def __init__(self, message: str, module: str) -> None:
        super().__init__(message)
        self.module = module


class InputShapeError(ParetoLabError):
    """An input shape is missing, malformed or does not fit the model."""

    def __init__(self, message: str, suggestion: str | None = None) -> None:
        super().__init__(message)
        self.suggestion = suggestion


class ConversionError(ParetoLabError):
    """The model cannot be turned into the requested format."""


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when the message is empty."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Cancelled(Exception):
    """Raised by Progress.check() when the user cancelled; not an error."""
