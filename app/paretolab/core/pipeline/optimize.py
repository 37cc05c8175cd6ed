"""Apply a recipe to a model: every step on a fresh copy, the result saved as a Variant.

The model the user opened is never modified: torch steps edit a deep copy of the eager
module, file steps write new files in a private work folder, and only the finished
artifact is moved (atomically) into the output folder.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path

from paretolab.core.compress.step import StepContext
from paretolab.core.compress.techniques import TECHNIQUES, check_recipe
from paretolab.core.compress.variant import Recipe, Step, Variant
from paretolab.core.errors import Cancelled, ParetoLabError, first_line
from paretolab.core.files import atomic_write, check_writable, work_prefix
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.runtimes import TORCH_BACKENDS, available_backends, check_available
from paretolab.core.model.handle import ModelHandle
from paretolab.core.pipeline.prefix_cache import PrefixCache, torch_prefix
from paretolab.core.pipeline.reference_timing import check_against_reference, with_drift
from paretolab.core.pipeline.scorecard import scorecard
from paretolab.core.progress import Progress, silent
from paretolab.core.settings import SettingsError
from paretolab.core.store.experiment import Experiment


def apply_recipe(
    handle: ModelHandle,
    recipe: Recipe,
    data: DataPlan,
    out: Path,
    *,
    threads: int | None = None,
    progress: Progress | None = None,
    reuse: PrefixCache | None = None,
    device: str = "cpu",
    torch_artifact: bool = False,
) -> tuple[Path, list[dict]]:
    """Run every step; write the final artifact to `out` (suffix chosen by the result's
    format) and return its path with the steps' reports. A recipe that ends by editing the
    PyTorch model also leaves a PyTorch file beside it, or — `torch_artifact` — as the artifact.
    With `reuse`, the PyTorch prefix (pruning, distillation) is taken from, or added to, that
    cache. `device` is where the variant will be measured (steps that time candidates do it there)."""
    progress = progress or silent()
    recipe.check_order()
    with tempfile.TemporaryDirectory(prefix=work_prefix("recipe")) as tmp:
        pipeline = StepContext(handle, data, Path(tmp), threads, progress, handle, device=device)
        # the cache keeps ONNX files: a variant that is a PyTorch file, or whose later step trains the module the
        # prefix left (quantization-aware training), is trained afresh, so a recipe gives one variant in any order
        prefix = torch_prefix(recipe) if reuse is not None and not torch_artifact else 0
        if any(step.trains_module() for step in recipe.steps[prefix:]):
            prefix = 0
        key = reuse.key(handle.files, recipe.steps[:prefix], f"{data.train.name}:{len(data.train)}") if reuse and prefix else None
        cached = reuse.load(key) if reuse and key else None
        if cached is not None:
            pipeline.set_file(cached[0])
            pipeline.reports = [{**r, "reused": True} for r in cached[1]]
            progress.report(
                0.0, f"reusing the result of {' → '.join(s.summary() for s in recipe.steps[:prefix])} from this sweep"
            )
        for i, step in enumerate(recipe.steps, start=1):
            if cached is not None and i <= prefix:
                continue
            if key and cached is None and i == prefix + 1 and not pipeline.cancelled:
                _remember_prefix(pipeline, reuse, key, prefix, last=False)
            if pipeline.cancelled:
                pipeline.reports.append({"step": i, "skipped": "cancelled during distillation"})
                continue
            progress.report((i - 1) / max(1, len(recipe.steps)) * 0.8, f"step {i}/{len(recipe.steps)}: {step.summary()}")
            _apply_step(pipeline, i, step)
        if key and cached is None and prefix == len(recipe.steps) and not pipeline.cancelled:
            _remember_prefix(pipeline, reuse, key, prefix, last=True)
        if torch_artifact:
            if not pipeline.cancelled:
                progress.check()
            _room_for_module(pipeline, out)
            return pipeline.torch_file(out), pipeline.reports
        sibling = _torch_sibling(pipeline, out)
        try:
            result = pipeline.file(len(recipe.steps) + 1)
            if not pipeline.cancelled:
                progress.check()
            final = _place(result, out)
        except BaseException:
            if sibling:
                sibling.unlink(missing_ok=True)
            raise
    return final, pipeline.reports


def _torch_sibling(pipeline: StepContext, out: Path) -> Path | None:
    """The edited module as a PyTorch file beside the variant, for PyTorch serving; a module that
    can be saved neither way is noted in the last step's report, not an error (the ONNX file is the variant)."""
    if pipeline.module is None:
        return None
    _room_for_module(pipeline, out)
    try:
        return pipeline.torch_file(out)
    except ParetoLabError as exc:
        pipeline.reports[-1].setdefault("notes", []).append(f"no PyTorch file of this variant: {exc}")
        return None


def _room_for_module(pipeline: StepContext, out: Path) -> None:
    """torch's C++ file writer aborts the whole process (terminate, c10::Error) when the disk fills
    under it: check for room for the module's weights twice over, plus a margin, before it writes."""
    weights = sum(t.numel() * t.element_size() for t in pipeline.module.state_dict().values() if hasattr(t, "numel"))
    check_writable(out.parent, 2 * weights + (1 << 20), f"the PyTorch file of {out.name}")


def _apply_step(pipeline: StepContext, index: int, step: Step) -> None:
    """One step; a library's exception (ONNX Runtime, OpenVINO, NNCF, torch-pruning, onnx) becomes
    our one-line error naming the step, with the traceback in the log."""
    try:
        TECHNIQUES[step.technique].run(pipeline, index, step.settings)
    except (ParetoLabError, Cancelled, MemoryError):
        raise
    except Exception as exc:
        logging.getLogger(__name__).error("step %d (%s) failed", index, step.summary(), exc_info=exc)
        raise ParetoLabError(f"step {index} ({step.summary()}) failed in {_library_of(exc)}: {first_line(exc)}") from exc


def _library_of(exc: BaseException) -> str:
    """The package the exception came from: its class's, or for a builtin one (IndexError inside
    torch-pruning) the package of the innermost frame that raised it."""
    package = type(exc).__module__.split(".")[0]
    if package != "builtins":
        return package
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame.tb_frame.f_globals.get("__name__", "python").split(".")[0] if frame is not None else "python"


def _remember_prefix(pipeline: StepContext, cache: PrefixCache | None, key: str, prefix: int, *, last: bool) -> None:
    """Store the PyTorch prefix's result (as ONNX); when it ends the recipe, the module stays the model."""
    module = pipeline.module if last else None
    handle = pipeline.file(prefix + 1)
    if cache is not None and len(handle.files) == 1:  # a model with external data is too big to be worth copying
        cache.store(key, handle.files[0], pipeline.reports)
    if module is not None:
        pipeline.set_module(module)  # the variant's PyTorch file is saved from it


def _place(result: ModelHandle, out: Path) -> Path:
    """Copy the result to `out` + its format's suffix ("v1.2" stays "v1.2", not "v1")."""
    if result.format == "openvino":
        xml = out.with_name(out.name + ".xml")
        atomic_write(
            xml, lambda tmp: (shutil.copyfile(result.files[1], tmp.with_suffix(".bin")), shutil.copyfile(result.files[0], tmp))
        )
        return xml
    target = out.with_name(out.name + ".onnx")
    atomic_write(target, lambda tmp: shutil.copyfile(result.onnx_file(), tmp))
    return target


def optimize(
    handle: ModelHandle,
    recipe: Recipe,
    data: DataPlan,
    out_dir: Path,
    name: str | None = None,
    *,
    backend: str | None = None,
    device: str = "cpu",
    threads: int | None = None,
    progress: Progress | None = None,
    reuse: PrefixCache | None = None,
) -> Variant:
    """Apply `recipe`, then measure the variant and the original side by side on `backend`/
    `device` (pipeline/scorecard.py); write the artifact, its recipe and its metrics into the
    experiment in `out_dir`, as `name` or the next free v1, v2, ... ONNX Runtime's and OpenVINO's
    quantization candidates are timed on the CPU; PyTorch precisions on `device`."""
    experiment = Experiment(out_dir)
    backend = measure_backend(recipe, backend, device)
    check_recipe(handle, recipe.steps, data.output_kinds)
    check_space(handle, Path(out_dir))
    claim = experiment.new_name() if name is None else experiment.claimed(name, tuple(handle.files))
    with claim as claimed:
        artifact, reports = apply_recipe(handle, recipe, data, Path(out_dir) / claimed, threads=threads, progress=progress,
                                         reuse=reuse, device=device, torch_artifact=backend in TORCH_BACKENDS)
        return record_variant(handle, recipe, data, experiment, claimed, artifact, reports, backend=backend,
                              device=device, threads=threads, progress=progress)


SPACE_FACTOR, SPACE_MARGIN = 3, 16 << 20


def check_space(handle: ModelHandle, out_dir: Path) -> None:
    """The output folder and the temp folder can be written and hold about three copies of the
    model (the variant, its PyTorch file, a step's intermediate) plus a margin — checked before
    minutes of work, in one line, rather than a library failing (or aborting) half-way."""
    need = SPACE_FACTOR * sum(f.stat().st_size for f in handle.files if f.is_file()) + SPACE_MARGIN
    check_writable(out_dir, need, "the variant")
    check_writable(Path(tempfile.gettempdir()), need, "work files (the system temp folder, TMPDIR)")


def measure_backend(recipe: Recipe, backend: str | None, device: str) -> str:
    """The backend a recipe's variant is measured on, checked here: `backend`, else its quantizer's,
    else ONNX Runtime — or, on a device ONNX Runtime lacks here (a GPU without onnxruntime-gpu),
    PyTorch for recipes that end in PyTorch, then OpenVINO."""
    backend = backend or _backend_of(recipe, device)
    if backend in TORCH_BACKENDS and recipe.output() != "torch":
        last = recipe.steps[-1].summary() if recipe.steps else "an empty recipe"
        raise SettingsError(f"a variant runs on PyTorch when its recipe ends by editing the PyTorch model (prune, "
                            f"low-rank, distill, a PyTorch precision), and this one ends with {last}; measure it on "
                            "ort or openvino")
    check_available(backend, device)
    return backend


def record_variant(handle: ModelHandle, recipe: Recipe, data: DataPlan, experiment: Experiment, name: str, artifact: Path,
                   reports: list[dict], *, backend: str, device: str = "cpu", threads: int | None = None,
                   progress: Progress | None = None, extra: dict | None = None) -> Variant:
    """Measure a built artifact against the original (scorecard) and save it in the experiment
    as `name`, with `extra` added to its metrics; the artifact is removed if measuring fails."""
    progress = progress or silent()
    if any(r.get("cancelled") for r in reports):
        note = f"cancelled during distillation: the best student so far is in {artifact}, unmeasured"
        experiment.save(Variant(name, recipe, artifact, str(handle.path), {"cancelled": True, "notes": [note]}, reports))
        raise Cancelled(note)
    try:
        metrics = scorecard(
            handle, handle.like(artifact), data, backend=backend, device=device, threads=threads, progress=progress
        )
        drifted = check_against_reference(experiment.folder, metrics["timing"], backend=backend, device=device,
                                          threads=threads)
        if drifted:
            with_drift(metrics["timing"], drifted)
            metrics["notes"].append(drifted)
            metrics["timing"].setdefault("notes", []).append(drifted)
    except BaseException:  # an artifact without its metrics is half a result: remove what this run wrote
        experiment.remove_written(name)
        raise
    variant = Variant(name, recipe, artifact, str(handle.path), {**metrics, **(extra or {})}, reports)
    experiment.save(variant)
    progress.report(1.0, f"{name}: {metrics['speedup']:.2f}x the speed of the original on {backend}/{device}")
    return variant


def _backend_of(recipe: Recipe, device: str) -> str:
    chosen = [b for b in (_step_backend(s) for s in recipe.steps) if b is not None]
    if chosen:  # a step made the variant for one runtime (quantization): measure it there
        return chosen[-1]
    here = {b.backend for b in available_backends() if b.device == device}
    able = ["ort", "torch", "openvino"] if recipe.output() == "torch" else ["ort", "openvino"]
    return next((b for b in able if b in here), "ort")


def _step_backend(step: Step) -> str | None:
    backend = TECHNIQUES[step.technique].backend
    return backend(step.settings) if backend is not None else None
