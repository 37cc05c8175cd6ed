"""Jobs that open models, for the GUI."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from paretolab.core.pipeline.session import LoadedModel, open_for_study
from paretolab.jobs.job import Job

__all__ = ["LoadedModel", "load_model_job"]


def load_model_job(
    path: Path,
    *,
    trust: bool = False,
    input_shapes: Mapping[str | None, Sequence[int]] | None = None,
    arch: str | None = None,
    experiments: Path | None = None,
) -> Job:
    """A quick job: it need not wait for the compute job in progress."""
    return Job(f"Open {path.name}", lambda progress: open_for_study(path, trust=trust, input_shapes=input_shapes, arch=arch,
                                                                    experiments=experiments, progress=progress), exclusive=False)
