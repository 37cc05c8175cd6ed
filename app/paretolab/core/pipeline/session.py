"""A model opened for study: the loaded model, its layer graph, what can be done with it on
this machine, and its experiment's earlier variants — what the studio shows when a model
opens, gathered in one call that the GUI runs on a worker and scripts can call directly."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from paretolab.core.compress.variant import Variant
from paretolab.core.measure.data import default_data
from paretolab.core.measure.runtimes import available_backends
from paretolab.core.model.eager import torch_edits_unavailable
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.handle import ModelHandle, load_model
from paretolab.core.progress import Progress, silent
from paretolab.core.store.experiment import Experiment
from paretolab.core.tensors import guess_shapes, needs_shape


@dataclass
class LoadedModel:
    handle: ModelHandle
    graph: LayerGraph
    torch_reason: str | None = None  # why structured pruning / distillation cannot run, or None
    devices: tuple[tuple[str, str], ...] = (("ort", "cpu"), ("openvino", "cpu"))  # (backend, device) available here
    experiment_folder: Path | None = None
    earlier_variants: list[Variant] = field(default_factory=list)
    data_spec: str = "digits"  # the data to offer first: the digits for models they fit, else random inputs
    shape_guess: str | None = None  # inputs still have free dimensions: shapes to offer, in --input-shape form
    preprocess: str | None = None  # the image preprocessing recipe last used with `data_spec` (an image folder)


def open_for_study(
    path: Path,
    *,
    trust: bool = False,
    input_shapes: Mapping[str | None, Sequence[int]] | None = None,
    arch: str | None = None,
    experiments: Path | None = None,
    progress: Progress | None = None,
) -> LoadedModel:
    """Open `path` and build its layer graph (a torch export can take seconds). Input shapes
    given are remembered in the model's experiment and used when none are given next time."""
    progress = progress or silent()
    progress.report(0.05, f"opening {path.name}")
    handle = load_model(path, trust=trust, input_shapes=input_shapes, arch=arch)
    experiment = Experiment.for_model(handle, experiments)
    if input_shapes:
        experiment.remember_input_shapes({k: v for k, v in handle.fixed_shapes().items() if k is not None})
    elif (needs_shape(handle.inputs) or handle.defaulted) and experiment.input_shapes():  # a default length gives way
        remembered: dict[str | None, tuple[int, ...]] = {name: shape for name, shape in experiment.input_shapes().items()}
        handle = handle.with_input_shapes(remembered)
    progress.report(0.4, "building the layer graph")
    graph = handle.layer_graph()
    progress.report(0.9, "checking which techniques apply")
    reason = torch_edits_unavailable(handle)
    devices = tuple((b.backend, b.device) for b in available_backends())
    progress.report(0.95, "opening the model's experiment")
    progress.report(1.0, f"{path.name}: {len(graph)} layers")
    guess = guess_shapes(handle.inputs) if needs_shape(handle.inputs) else None
    data, preprocess = experiment.data_choice() or (default_data(handle.inputs)[0], None)
    return LoadedModel(handle, graph, reason, devices, experiment.folder, experiment.variants(), data, guess, preprocess)
