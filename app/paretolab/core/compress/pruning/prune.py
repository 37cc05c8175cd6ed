"""Pruning: structured channel pruning with torch-pruning, unstructured magnitude pruning.

Only structured pruning changes tensor shapes, so only it can make a dense runtime faster;
unstructured pruning zeroes weights (smaller when compressed, same speed) and says so in
its report. Structured pruning uses torch-pruning's dependency graph, so residual
connections and concatenations stay consistent; the model's output layers are never
pruned (their size is the number of classes; interface.py). It can reach its sparsity in
several steps with a recovery training between them (iterative.py).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from paretolab.core.compress.pruning.interface import (
    _channel_counts,
    _check_interface_kept,
    _check_layer_names,
    _check_structured_supported,
    _output_layers,
    _output_shapes,
)
from paretolab.core.compress.pruning.iterative import Recovery, recovery, schedule, stepped
from paretolab.core.compress.pruning.prune_heads import attention_modules, transformer_pruning, update_head_counts
from paretolab.core.compress.techniques import PRUNE
from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.data import Dataset, calibration_subset
from paretolab.core.measure.devices import DeviceChoice, timed, torch_device
from paretolab.core.model.eager import first_output, output_tensors
from paretolab.core.model.graph import LayerGraph
from paretolab.core.progress import Progress, silent
from paretolab.core.settings import SettingsError

if TYPE_CHECKING:
    from paretolab.core.compress.step import StepContext

_PRUNABLE_ONNX_OPS = {"Conv", "Gemm", "MatMul", "ConvTranspose"}


@dataclass(frozen=True)
class PruneSettings:
    method: Literal["structured", "unstructured"] = "structured"
    sparsity: float = 0.5  # share of channels (structured) or weights (unstructured) removed
    importance: Literal["l1", "l2", "taylor"] = "l1"
    scope: Literal["layer", "global"] = "layer"  # same ratio in every layer, or ranked across layers
    layer_ratios: dict[str, float] = field(default_factory=dict)  # per-layer overrides
    skip: tuple[str, ...] = ()  # layers left whole
    round_to: int = 8  # structured: keep channel counts multiples of this, so kernels stay fast
    samples: int = 64  # taylor: calibration samples for the gradients
    device: DeviceChoice = "auto"  # taylor: where the gradients are computed (auto: the GPU when torch sees one)
    steps: int = 1  # structured: reach the sparsity in this many steps, with a recovery training between them
    recover_epochs: int = 1  # structured, steps > 1: training epochs after each step but the last

    def check(self) -> None:
        for name, ratio in {"sparsity": self.sparsity, **{f"layer_ratios.{k}": v for k, v in self.layer_ratios.items()}}.items():
            PRUNE.setting("sparsity").check(ratio, name)
        PRUNE.setting("round_to").check(self.round_to)
        PRUNE.setting("steps").check(self.steps)
        PRUNE.setting("recover_epochs").check(self.recover_epochs)
        if self.method == "unstructured" and self.steps > 1:
            raise SettingsError(f"setting 'steps' = {self.steps} is for structured pruning; unstructured pruning zeroes "
                                "its weights in one step (use steps 1)")
        if self.method == "unstructured" and self.importance == "taylor":
            raise SettingsError(
                "setting 'importance' = 'taylor' is for structured pruning; unstructured pruning ranks weights by magnitude"
            )


@dataclass
class PruneReport:
    method: str
    params_before: int
    params_after: int
    macs_before: int | None = None
    macs_after: int | None = None
    zero_fraction: float | None = None  # unstructured: share of prunable weights that are zero
    channels: dict[str, tuple[int, int]] = field(default_factory=dict)  # structured: layer -> (before, after)
    heads: dict[str, tuple[int, int]] = field(default_factory=dict)  # structured: attention block -> (before, after)
    notes: list[str] = field(default_factory=list)
    gradients: dict | None = None  # taylor: {"device", "seconds"} of the gradient pass
    steps: int = 1  # structured: pruning steps taken
    recoveries: list[dict] = field(default_factory=list)  # steps > 1: the training after each step but the last

    def to_dict(self) -> dict:
        return {
            "method": self.method,
            **({"gradients": self.gradients} if self.gradients else {}),
            **({"steps": self.steps, "recoveries": list(self.recoveries)} if self.steps > 1 else {}),
            "params_before": self.params_before,
            "params_after": self.params_after,
            "macs_before": self.macs_before,
            "macs_after": self.macs_after,
            "zero_fraction": self.zero_fraction,
            "channels": {k: list(v) for k, v in self.channels.items()},
            "heads": {k: list(v) for k, v in self.heads.items()},
            "notes": list(self.notes),
        }


# -- torch -----------------------------------------------------------------------------------


def prune_module(module: Any, examples: tuple, settings: PruneSettings, data: Dataset | None = None,
                 progress: Progress | None = None, recover: Recovery | None = None) -> tuple[Any, PruneReport]:
    """Prune `module` in place (pass a copy) and return it with a report. With settings.steps > 1,
    `recover` trains the module between the steps (None: the steps follow each other untrained)."""
    import torch_pruning as tp

    progress = progress or silent()
    outputs = _output_layers(module, examples)
    _check_layer_names(module, settings, outputs)
    params_before = _param_count(module)
    macs_before = _macs(module, examples)
    progress.report(0.1, f"{settings.method} pruning to {settings.sparsity:.0%}")
    if settings.method == "unstructured":
        report = _prune_unstructured_torch(module, settings, params_before)
        report.macs_before = report.macs_after = macs_before
        return module, report

    _check_structured_supported(module)
    modules = dict(module.named_modules())
    importance = {"l1": lambda: tp.importance.MagnitudeImportance(p=1), "l2": lambda: tp.importance.MagnitudeImportance(p=2),
                  "taylor": tp.importance.TaylorImportance}[settings.importance]()
    before = _channel_counts(module)
    ignored = [modules[n] for n in (*settings.skip, *outputs)]
    attention = attention_modules(module)
    heads: dict[str, Any] = {}
    ratios = _layer_ratios(modules, settings, outputs)
    if attention and settings.steps > 1:
        raise ParetoLabError(f"iterative pruning (steps {settings.steps}) cannot prune attention heads yet: torch-pruning "
                             "counts each step's heads from the heads left, not the original ones; use steps 1")
    if attention:  # whole heads and MLP width; the residual stream keeps its size
        num_heads, whole = transformer_pruning(module, attention, outputs)
        ignored += whole
        projections = set(num_heads)
        ratios = {layer: r for layer, r in ratios.items() if layer not in projections}
        heads = {"num_heads": num_heads, "prune_num_heads": True, "prune_head_dims": False,
                 "head_pruning_ratio": settings.sparsity}
    iterative = {"iterative_steps": settings.steps, "iterative_pruning_ratio_scheduler": schedule} if settings.steps > 1 else {}
    with warnings.catch_warnings():  # "unwrapped parameters" (a ViT's class token) stay whole: nothing to tell
        warnings.simplefilter("ignore")
        pruner = tp.pruner.MetaPruner(
            module,
            examples,
            importance=importance,
            pruning_ratio=settings.sparsity,
            pruning_ratio_dict=ratios,
            ignored_layers=ignored,
            round_to=settings.round_to,
            global_pruning=settings.scope == "global",
            output_transform=output_tensors,  # dataclass and dict outputs (Hugging Face) trace like tuples
            **heads,
            **iterative,
        )
    gradients: dict[str, Any] | None = None
    recoveries: list[dict] = []
    k = settings.steps
    for step in range(1, k + 1):
        def at(share: float, step: int = step) -> float:  # where this step's work stands in the whole pruning
            return 0.1 + 0.8 * (step - 1 + share) / k

        label = f"pruning step {step}/{k}: " if k > 1 else ""
        seconds = _prune_step(module, examples, pruner, settings, data, before, progress, at, label)
        if seconds is not None:
            gradients = {"device": seconds[0], "seconds": seconds[1] + (gradients or {}).get("seconds", 0.0)}
        if step < k and recover is not None:
            progress.report(at(0.5), f"{label}pruned to {_param_count(module):,.0f} parameters, recovering")
            recoveries.append(recover(module, step, Progress(_recovery_report(progress, at, label))))
            progress.check()
    params_after = _param_count(module)
    after = _channel_counts(module)
    report = PruneReport("structured", params_before, params_after, macs_before, _macs(module, examples), gradients=gradients,
                         steps=k, recoveries=recoveries)
    report.channels = {n: (before[n], after[n]) for n in before if n in after and after[n] != before[n]}
    report.heads = update_head_counts(attention, pruner.num_heads) if attention else {}
    if settings.sparsity >= 0.1 and params_after > 0.98 * params_before:
        report.notes.append(f"structured pruning removed only {1 - params_after / params_before:.1%} of the parameters: "
                            "torch-pruning found few channels it can remove here (fused attention, custom layers such "
                            "as GPT-2's Conv1D); try unstructured pruning or weight-only quantization")
    progress.report(0.9, f"pruned: {params_before:,.0f} -> {params_after:,.0f} parameters")
    return module, report


def _prune_step(module: Any, examples: tuple, pruner: Any, settings: PruneSettings, data: Dataset | None, before: dict[str, int],
                progress: Progress, at: Any, label: str) -> tuple[str, float] | None:
    """One of torch-pruning's steps (the only one, one-shot), channels ranked on the weights as they
    are now; returns where and how long Taylor importance's gradients took (None: no gradients)."""
    gradients = None
    if settings.importance == "taylor":
        device = torch_device(settings.device, "Taylor importance")
        progress.report(at(0.25), f"{label}gradients for Taylor importance on {device.type}")
        with timed(device.type) as watch:
            _accumulate_gradients(module, examples, data, settings, device)
        gradients = (device.type, watch.seconds)
        progress.report(at(0.5), label + watch.text("the gradients for Taylor importance"))
    progress.check()
    shapes = _output_shapes(module, examples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pruner.step()
    module.zero_grad(set_to_none=True)
    module.eval()
    _check_interface_kept(module, examples, shapes, before)
    return gradients


def kept_channels(channels: int, keep: float, round_to: int) -> int:
    """How many of a layer's channels stay: the nearest multiple of `round_to` to the share kept
    (48 channels at 30 % keep 16, not 8), so fast kernels keep their shapes without pruning more
    than was asked."""
    wanted = channels * keep
    if round_to > 1 and channels >= round_to:
        return min(channels, max(round_to, round(wanted / round_to) * round_to))
    return max(1, round(wanted))


def _layer_ratios(modules: dict[str, Any], settings: PruneSettings, outputs: set[str]) -> dict[Any, float]:
    """Per-layer ratios that land each layer on kept_channels(). torch-pruning rounds the channels
    it keeps *down* to a multiple of round_to (48 channels at 70 % kept 8, losing 3 points on the
    demo against a plain Torch-Pruning user who kept 14), so the ratio given is the exact one."""
    import torch

    ratios = {modules[n]: r for n, r in settings.layer_ratios.items()}
    if settings.scope != "layer":
        return ratios
    for name, m in modules.items():
        if name in outputs or name in settings.skip:
            continue
        channels = m.out_channels if isinstance(m, torch.nn.modules.conv._ConvNd) else (
            m.out_features if isinstance(m, torch.nn.Linear) else 0)
        if channels > 1:  # in several steps: each step's ratio lands on kept_channels() too
            ratios[m] = stepped(channels, settings.layer_ratios.get(name, settings.sparsity), settings.steps,
                                lambda c, s: _exact_ratio(c, s, settings.round_to))
    return ratios


def _exact_ratio(channels: int, sparsity: float, round_to: int) -> float:
    keep = kept_channels(channels, 1.0 - sparsity, round_to)
    return max(0.0, 1.0 - (keep + 0.5) / channels)  # + 0.5: torch-pruning truncates what it keeps


def _macs(module: Any, examples: tuple) -> int | None:
    """MACs as the layer graph counts them, so every number in ParetoLab uses one definition."""
    from paretolab.core.model.torch_onnx import analysis_graph

    try:
        return analysis_graph(module, examples, [f"input_{i}" for i in range(len(examples))]).total_macs
    except Exception:  # a model the exporter cannot capture still prunes; its MACs stay unknown
        return None


def _param_count(module: Any) -> int:
    return sum(p.numel() for p in module.parameters())


def _accumulate_gradients(module: Any, examples: tuple, data: Dataset | None, settings: PruneSettings, device: Any) -> None:
    """First-order Taylor importance needs dL/dw: labels when there are some, else the
    model's own predictions as targets. Computed on `device`; the module (with its gradients,
    which torch-pruning reads) is back on the CPU afterwards."""
    import torch

    module.zero_grad()
    batches = [(examples, None)] if data is None else [
        (tuple(torch.from_numpy(a) for a in b.inputs), b.labels) for b in calibration_subset(data, settings.samples).batches(16)
    ]
    module.to(device)
    try:
        for inputs, labels in batches:
            logits = first_output(module(*(t.to(device) for t in inputs)))
            target = torch.from_numpy(labels).to(device) if labels is not None else logits.detach().argmax(1)
            torch.nn.functional.cross_entropy(logits, target).backward()
    finally:
        module.to("cpu")


def _prune_unstructured_torch(module: Any, settings: PruneSettings, params_before: int) -> PruneReport:
    import torch
    from torch.nn.utils import prune

    targets = [
        (name, m)
        for name, m in module.named_modules()
        if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear)) and name not in settings.skip
    ]
    method = prune.L1Unstructured  # |w| ranks the same whether called L1 or L2 for single weights
    if settings.scope == "global" and not settings.layer_ratios:
        prune.global_unstructured([(m, "weight") for _, m in targets], pruning_method=method, amount=settings.sparsity)
    else:
        for name, m in targets:
            prune.l1_unstructured(m, "weight", amount=settings.layer_ratios.get(name, settings.sparsity))
    for _, m in targets:
        prune.remove(m, "weight")  # make it permanent: plain weights with zeros
    weights = [m.weight for _, m in targets]
    zeros = sum(int((w == 0).sum()) for w in weights)
    total = sum(w.numel() for w in weights)
    report = PruneReport("unstructured", params_before, params_before - zeros, zero_fraction=zeros / total if total else 0.0)
    report.notes.append("unstructured pruning zeroes weights but keeps shapes: the file compresses better, "
                        "dense runtimes run it at the same speed; use structured pruning for speed")
    return report


# -- ONNX ------------------------------------------------------------------------------------


def prune_onnx(src: Path, out: Path, settings: PruneSettings, graph: LayerGraph, progress: Progress | None = None) -> PruneReport:
    """Unstructured magnitude pruning of an ONNX file's weight initializers."""
    import onnx
    from onnx import numpy_helper

    progress = progress or silent()
    if settings.method != "unstructured":
        raise SettingsError("an ONNX-only model can take unstructured pruning only (structured pruning needs PyTorch)")
    for name in (*settings.layer_ratios, *settings.skip):
        if name not in graph:
            raise SettingsError(f"no layer named '{name}' in {src.name}")
    model = onnx.load(str(src))
    inits = {t.name: t for t in model.graph.initializer}
    owners: dict[str, str] = {}
    for node in graph:
        if node.op in _PRUNABLE_ONNX_OPS and node.name not in settings.skip:
            for w in node.weights:
                if w.name in inits and len(w.shape) >= 2:
                    owners.setdefault(w.name, node.name)
    if not owners:
        raise SettingsError(f"{src.name} has no Conv, Gemm or MatMul weights to prune")
    arrays = {name: numpy_helper.to_array(inits[name]) for name in owners}
    params = sum(int(np.prod(t.dims)) for t in model.graph.initializer)
    if settings.scope == "global" and not settings.layer_ratios:
        magnitudes = np.concatenate([np.abs(a).ravel() for a in arrays.values()])
        thresholds = dict.fromkeys(arrays, np.quantile(magnitudes, settings.sparsity))
    else:
        thresholds = {
            n: np.quantile(np.abs(a), settings.layer_ratios.get(owners[n], settings.sparsity)) for n, a in arrays.items()
        }
    zeros = total = 0
    for name, array in arrays.items():
        pruned = np.where(np.abs(array) <= thresholds[name], 0, array).astype(array.dtype)
        zeros += int((pruned == 0).sum())
        total += pruned.size
        inits[name].CopyFrom(numpy_helper.from_array(pruned, name))
    progress.check()
    onnx.save(model, str(out))
    report = PruneReport("unstructured", params, params - zeros, graph.total_macs, graph.total_macs, zero_fraction=zeros / total)
    report.notes.append("unstructured pruning zeroes weights but keeps shapes: dense runtimes run it at the same speed")
    return report


def summary(settings: PruneSettings) -> str:
    return f"prune {settings.method} {settings.sparsity:.0%}" + (f" in {settings.steps} steps" if settings.steps > 1 else "")


def apply(ctx: StepContext, index: int, settings: PruneSettings) -> None:
    """Prune in torch when the model can be edited there (so later torch steps keep working),
    else prune the ONNX file's weights."""
    if settings.method == "structured" or ctx.can_edit_torch():
        module, report = prune_module(ctx.torch_module(f"{settings.method} pruning"), ctx.examples(), settings, ctx.data.train,
                                      ctx.progress, recovery(ctx, settings) if settings.steps > 1 else None)
        ctx.set_module(module)
    else:
        from paretolab.core.model.normalize import normalized_onnx

        current = ctx.file(index)
        src = normalized_onnx(current.onnx_file(), ctx.work)  # Constant-node weights become prunable initializers
        report = prune_onnx(src, ctx.out(index), settings, current.layer_graph(), ctx.progress)
        ctx.set_file(ctx.out(index))
    ctx.report(index, report.to_dict())


def _recovery_report(progress: Progress, at: Callable[[float], float], label: str) -> Callable[[float, str], None]:
    """A recovery's progress, placed in the second half of its pruning step's share."""
    return lambda fraction, message: progress.report(at(0.5 + 0.5 * fraction), f"{label}recovery: {message}")
