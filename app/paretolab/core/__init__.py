"""The engine. Never imports Qt: usable from the CLI, tests and notebooks."""

from paretolab.core.errors import ParetoLabError

__all__ = ["ParetoLabError"]
