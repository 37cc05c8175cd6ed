"""Jobs that open models, for the GUI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from paretolab.jobs.job import Job

if TYPE_CHECKING:
    from paretolab.core.pipeline.session import LoadedModel

def load_model_job(
    path: Path,
    *,
    trust: bool = False,
    input_shapes: Mapping[str | None, Sequence[int]] | None = None,
    arch: str | None = None,
    experiments: Path | None = None,
) -> Job:
    """A quick job: it need not wait for the compute job in progress. The engine (and with it
    torch and the runtimes) is imported on the worker, so the window opens without waiting for it."""
    def run(progress) -> LoadedModel:
        from paretolab.core.pipeline.session import open_for_study

        return open_for_study(path, trust=trust, input_shapes=input_shapes, arch=arch, experiments=experiments,
                              progress=progress)

    return Job(f"Open {path.name}", run, exclusive=False)
