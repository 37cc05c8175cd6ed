"""Where heavy steps run: distillation, Taylor gradients and sensitivity scans go to the GPU when
one is there ("auto"), and say where they ran and for how long."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from paretolab.core.measure.runtimes import available_backends
from paretolab.core.settings import SettingsError

DeviceChoice = Literal["auto", "cpu", "cuda"]


def torch_device(choice: str, what: str) -> Any:
    """The torch.device for `choice`: "auto" is the GPU when torch sees one, else the CPU."""
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise SettingsError(f"{what} device 'cuda' is not available on this machine; use 'cpu' or 'auto'")
    if choice not in ("auto", "cpu", "cuda"):
        raise SettingsError(f"{what} device '{choice}' is not one of auto, cpu, cuda")
    return torch.device(choice if choice != "auto" else "cuda" if torch.cuda.is_available() else "cpu")


def ort_device(choice: str) -> str:
    """The ONNX Runtime device for `choice`: "auto" is CUDA when onnxruntime-gpu sees a GPU, else the CPU."""
    if choice != "auto":
        return choice
    return "cuda" if any((b.backend, b.device) == ("ort", "cuda") for b in available_backends()) else "cpu"


class Stopwatch:
    """How long a step took, and where: for its report and the job's log."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.seconds = 0.0

    def text(self, what: str) -> str:
        return f"{what} took {self.seconds:.1f} s on {self.where}"


@contextmanager
def timed(where: str) -> Iterator[Stopwatch]:
    watch = Stopwatch(where)
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch.seconds = time.perf_counter() - started
