"""Jobs the studio runs: optimize a model with a recipe, export a variant."""

from __future__ import annotations

from pathlib import Path

from paretolab.core.data import open_dataset
from paretolab.core.export import export_variant
from paretolab.core.model import ModelHandle, load_model
from paretolab.core.optimize import DataPlan, optimize
from paretolab.core.profile import profile_model
from paretolab.core.progress import Progress
from paretolab.core.variant import Recipe
from paretolab.jobs.job import Job


def optimize_job(handle: ModelHandle, recipe: Recipe, data: str, out_dir: Path, name: str, threads: int | None = None) -> Job:
    def run(progress: Progress):
        return optimize(handle, recipe, DataPlan.from_spec(data, handle), out_dir, name, threads=threads, progress=progress)

    return Job(f"{name}: {recipe.summary()}", run)


def export_job(artifact: Path, fmt: str, dest: Path, data: str, expected_top1: float | None) -> Job:
    def run(progress: Progress):
        variant = load_model(artifact)
        dataset = open_dataset("digits:test" if data == "digits" else data, variant.inputs)
        return export_variant(variant, fmt, dest, dataset, expected_top1=expected_top1, progress=progress)

    return Job(f"Export {artifact.name} as {fmt}", run)


def profile_job(artifact: Path, backend: str, threads: int | None = None) -> Job:
    def run(progress: Progress):
        return profile_model(load_model(artifact), backend=backend, threads=threads, progress=progress)

    return Job(f"Profile {artifact.name} on {backend}", run)
