"""Jobs the studio runs: optimize a model with a recipe, export a variant.

Each job imports the engine inside the function it runs on the worker: importing this module
(and with it the window) loads neither torch nor a runtime."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from paretolab.core.progress import Progress
from paretolab.jobs.job import Job

if TYPE_CHECKING:
    from paretolab.core.compress.variant import Recipe, Variant
    from paretolab.core.model.handle import ModelHandle


def optimize_job(handle: ModelHandle, recipe: Recipe, data: str, folder: Path, threads: int | None = None,
                 device: str = "cpu", preprocess: str | None = None) -> Job:
    """Build a variant into the experiment in `folder`, under the next free name (claimed there,
    on the worker: the experiment's lock may be held by another window)."""

    def run(progress: Progress) -> Variant:
        from paretolab.core.measure.plan import DataPlan
        from paretolab.core.pipeline.optimize import optimize
        from paretolab.core.store.experiment import Experiment

        variant = optimize(handle, recipe, DataPlan.from_spec(data, handle, preprocess), folder, device=device,
                           threads=threads, progress=progress)
        Experiment(folder).remember_data(data, preprocess)  # an image folder is offered again next time
        return variant

    return Job(f"New variant: {recipe.summary()}", run)


def export_job(artifact: Path, fmt: str, dest: Path, data: str, expected_top1: float | None, *, force: bool = False,
               protect: tuple[Path, ...] = ()) -> Job:
    """`force`: the user already agreed to replace `dest` (the Save dialog asked); the variant's
    own files and `protect` (the model it came from) are never replaced."""
    def run(progress: Progress):
        from paretolab.core.measure.plan import DataPlan
        from paretolab.core.model.handle import load_model
        from paretolab.core.store.export import export_variant

        variant = load_model(artifact)
        return export_variant(variant, fmt, dest, DataPlan.from_spec(data, variant).test, expected_top1=expected_top1,
                              progress=progress, force=force, protect=protect)

    return Job(f"Export {artifact.name} as {fmt}", run)


def reprofile_job(original: ModelHandle, variant: Variant, data: str = "digits", threads: int | None = None) -> Job:
    """Time the variant and the original side by side again, on the variant's backend and
    device (an early-exit variant on the test samples of `data`), and keep the new latencies in
    its experiment; returns the updated Variant."""
    where = f"{variant.measured.backend}/{variant.measured.device}"

    def run(progress: Progress) -> Variant:
        from paretolab.core.measure.plan import DataPlan
        from paretolab.core.pipeline.retime import retimed
        from paretolab.core.store.experiment import Experiment

        updated = retimed(original, variant, DataPlan.from_spec(data, original).test, threads=threads, progress=progress)
        Experiment(variant.artifact.parent).save(updated)
        return updated

    return Job(f"Time {variant.name} against the original on {where}", run)


def scaling_job(handle: ModelHandle, lengths: list[int], device: str = "cpu") -> Job:
    """MACs and batch-1 latency of the model at each sequence length (ScalingResult)."""
    def run(progress: Progress):
        from paretolab.core.measure.scaling import sequence_scaling

        return sequence_scaling(handle, lengths, device=device, progress=progress)

    return Job(f"Sequence lengths {', '.join(map(str, lengths))}: MACs and latency", run)


def explain_job(original: ModelHandle, variant: Variant) -> Job:
    """Why the variant is (not) faster (core.compress.insight.explain.Explanation)."""
    def run(progress: Progress):
        from paretolab.core.compress.insight.explain import explain

        return explain(original, variant, original.like(variant.artifact))

    return Job(f"Explain {variant.name}'s speed-up", run)


def delete_job(variant: Variant) -> Job:
    def run(progress: Progress) -> None:
        from paretolab.core.store.experiment import Experiment

        Experiment(variant.artifact.parent).delete(variant)

    return Job(f"Delete {variant.name}", run, exclusive=False)


def rename_job(variant: Variant, new_name: str) -> Job:
    """Returns the renamed Variant; fails with a one-line reason for a bad or taken name."""
    def run(progress: Progress) -> Variant:
        from paretolab.core.store.experiment import Experiment

        return Experiment(variant.artifact.parent).rename(variant, new_name)

    return Job(f"Rename {variant.name} to {new_name}", run, exclusive=False)


def save_recipe_job(recipe: Recipe, dest: Path) -> Job:
    return Job(f"Save recipe to {dest.name}", lambda progress: recipe.save(dest), exclusive=False)


def analysis_job(handle: ModelHandle, data: str) -> Job:
    """Importance, a pruning sensitivity scan, int8 error and per-layer time: what the graph is coloured by."""
    def run(progress: Progress):
        from paretolab.core.compress.insight.analysis import analyse_layers
        from paretolab.core.measure.plan import DataPlan

        return analyse_layers(handle, DataPlan.from_spec(data, handle), progress)

    return Job(f"Analyse layers of {handle.path.name}", run)


def compare_job(original: ModelHandle, variants: list[Variant], data: str) -> Job:
    """Two variants layer by layer (Comparison), each with its speed-up and why it is (not) more."""
    def run(progress: Progress):
        from paretolab.core.compress.insight.compare import compare_variants
        from paretolab.core.compress.insight.explain import quick_reasons
        from paretolab.core.measure.data import calibration_subset
        from paretolab.core.measure.plan import DataPlan
        from paretolab.core.model.handle import load_model

        dataset = DataPlan.from_spec(data, original).validation
        progress.report(0.1, "timing and comparing every layer")
        handles = [(v.name, load_model(v.artifact), v.measured.backend) for v in variants]
        comparison = compare_variants(original, handles, calibration_subset(dataset, 64))
        comparison.why = [f"{v.name}: {v.speedup_text()}" + "".join(f"; {r}" for r in quick_reasons(v)) for v in variants]
        return comparison

    return Job("Compare " + " and ".join(v.name for v in variants), run)


def report_job(experiment_folder: Path, out_dir: Path, model_name: str) -> Job:
    def run(progress: Progress) -> list[Path]:
        from paretolab.core.store.experiment import Experiment
        from paretolab.core.store.report import write_report

        progress.report(0.2, "writing the report")
        return write_report(Experiment(experiment_folder).variants(), out_dir, model_name)

    return Job(f"Report on {model_name}", run, exclusive=False)


def sweep_job(handle: ModelHandle, data: str, folder: Path, settings, torch_edits: bool,
              preprocess: str | None = None, ray: str | None = None) -> Job:
    """Explore settings, here or with its trials on Ray (`ray`: "local" or a cluster's address);
    each finished trial arrives through job.partial as a Variant."""
    def run(progress: Progress):
        from paretolab.core.measure.plan import DataPlan
        from paretolab.core.pipeline.cluster import ClusterSettings, sweep_on
        from paretolab.core.store.experiment import Experiment

        cluster = ClusterSettings(None if ray == "local" else ray) if ray else None
        return sweep_on(cluster, handle, DataPlan.from_spec(data, handle, preprocess), Experiment(folder), settings,
                        torch_edits=torch_edits, progress=progress, on_variant=job.partial.emit)

    where = f", on Ray{f' at {ray}' if ray != 'local' else ''}" if ray else ""
    job = Job(f"Explore {handle.path.name} ({settings.budget_s / 60:.0f} min{where})", run)
    return job
