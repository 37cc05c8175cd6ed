"""Import the heavy runtimes on a worker thread when the app starts.

Loading a C extension holds Python's interpreter lock; done lazily in the middle of a job
it would freeze the window for a fraction of a second, so do it once, up front, while the
user is still looking at the first model."""

from __future__ import annotations

import gc
import importlib

from paretolab.core.progress import Progress
from paretolab.jobs.job import Job

MODULES = ("torch", "onnx", "onnxruntime", "onnxruntime.quantization", "openvino", "nncf", "torch_pruning")


def preload_job() -> Job:
    def run(progress: Progress) -> list[str]:
        loaded = []
        for i, name in enumerate(MODULES):
            progress.report(i / len(MODULES), f"loading {name}")
            try:
                importlib.import_module(name)
                loaded.append(name)
            except ImportError:  # a missing optional runtime shows up later, where it is used
                pass
        return loaded

    job = Job("Load runtimes", run)
    job.succeeded.connect(lambda _: freeze_long_lived_objects())
    return job


def freeze_long_lived_objects() -> None:
    """Move everything alive now (the imported libraries: torch alone creates hundreds of
    thousands of objects) out of the cyclic garbage collector's reach. A full collection
    holds the interpreter lock; over all those objects it took 0.1-0.4 s, which froze the
    window in the middle of jobs. Call on the GUI thread once the runtimes are loaded."""
    gc.collect()
    gc.freeze()
