"""Jobs the studio runs: optimize a model with a recipe, export a variant."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from paretolab.core.compress.importance import default_cache, sensitivity_scan, weight_importance
from paretolab.core.compress.optimize import optimize
from paretolab.core.compress.quantize import int8_layer_error
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.data import open_dataset
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.profile import layer_breakdown, profile_model
from paretolab.core.model.handle import ModelHandle, load_model
from paretolab.core.progress import Progress
from paretolab.core.store.export import export_variant
from paretolab.jobs.job import Job


def optimize_job(handle: ModelHandle, recipe: Recipe, data: str, out_dir: Path, name: str, threads: int | None = None,
                 device: str = "cpu") -> Job:
    def run(progress: Progress):
        return optimize(handle, recipe, DataPlan.from_spec(data, handle), out_dir, name, device=device, threads=threads,
                        progress=progress)

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


@dataclass
class LayerAnalysis:
    importance: list  # LayerImportance
    sensitivity: object | None  # SensitivityResult
    times: list  # LayerTime, ONNX Runtime
    int8_sqnr: dict  # layer -> output SQNR (dB) with the whole model in int8


def analysis_job(handle: ModelHandle, data: str) -> Job:
    """Importance, a pruning sensitivity scan and per-layer time: what the graph is coloured by."""

    def run(progress: Progress) -> LayerAnalysis:
        train = open_dataset("digits:train" if data == "digits" else data, handle.inputs)
        held_out = open_dataset("digits:val" if data == "digits" else data, handle.inputs)
        progress.report(0.05, "weight importance")
        importance = weight_importance(handle, train)
        progress.report(0.3, "sensitivity scan")
        scan = sensitivity_scan(handle, held_out, levels=(0.3, 0.6, 0.9), cache=default_cache(),
                                progress=Progress(lambda f, m: progress.report(0.3 + 0.45 * f, m)))
        progress.report(0.8, "int8 error per layer")
        int8 = int8_layer_error(handle, train)
        progress.report(0.9, "time per layer")
        times = layer_breakdown(handle, "ort", "cpu", None)
        progress.report(1.0, "layers analysed")
        return LayerAnalysis(importance, scan, times, int8)

    return Job(f"Analyse layers of {handle.path.name}", run)


def compare_job(original: ModelHandle, variants: list[tuple[str, Path, str]], data: str) -> Job:
    def run(progress: Progress):
        from paretolab.core.compress.compare import compare_variants
        from paretolab.core.measure.data import calibration_subset

        dataset = open_dataset("digits:val" if data == "digits" else data, original.inputs)
        progress.report(0.1, "timing and comparing every layer")
        handles = [(name, load_model(path), backend) for name, path, backend in variants]
        return compare_variants(original, handles, calibration_subset(dataset, 64))

    return Job("Compare " + " and ".join(name for name, _, _ in variants), run)


def report_job(experiment_folder: Path, out_dir: Path, model_name: str) -> Job:
    def run(progress: Progress) -> list[Path]:
        from paretolab.core.store.experiment import Experiment
        from paretolab.core.store.report import write_report

        progress.report(0.2, "writing the report")
        return write_report(Experiment(experiment_folder).variants(), out_dir, model_name)

    return Job(f"Report on {model_name}", run)


def sweep_job(handle: ModelHandle, data: str, folder: Path, settings, torch_edits: bool) -> Job:
    """Explore settings; each finished trial arrives through job.partial as a Variant."""
    from paretolab.core.store.experiment import Experiment
    from paretolab.core.store.sweep import sweep

    def run(progress: Progress):
        return sweep(handle, DataPlan.from_spec(data, handle), Experiment(folder), settings, torch_edits=torch_edits,
                     progress=progress, on_variant=job.partial.emit)

    job = Job(f"Explore {handle.path.name} ({settings.budget_s / 60:.0f} min)", run)
    return job
