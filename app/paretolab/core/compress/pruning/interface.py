"""What structured pruning must leave as it was: the model's interface.

The layers whose width the outputs depend on (a classifier's classes, a head behind a reshape) are
never pruned, layer names in the settings must exist and be prunable, and a pruned model that no
longer runs or whose outputs changed size is refused here, in one line naming the layer, rather
than later with pages of torch log.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paretolab.core.errors import ParetoLabError, first_line
from paretolab.core.model.eager import output_tensors
from paretolab.core.settings import SettingsError

if TYPE_CHECKING:
    from paretolab.core.compress.pruning.prune import PruneSettings


def _output_layers(module: Any, examples: tuple) -> set[str]:
    """Names of the leaf modules whose output width the model's outputs depend on: those an
    output is computed from without passing through another module (a classifier, a head behind
    a reshape, a projection behind tanh, both sides of a residual sum at the end). Their sizes are
    the model's interface and never change."""
    import torch

    owner: dict[Any, str] = {}
    frozen: list[Any] = []

    def record(name: str, out: Any) -> None:
        for tensor in output_tensors(out):
            if tensor.grad_fn is not None:
                owner.setdefault(tensor.grad_fn, name)

    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: record(name, out))
             for name, m in module.named_modules() if name and not list(m.children())]
    try:
        frozen = [p for p in module.parameters() if not p.requires_grad]
        for p in frozen:  # grad_fn links are the trace: frozen weights must leave one too
            p.requires_grad_(True)
        with torch.enable_grad():
            outputs = module(*examples)
    finally:
        for h in hooks:
            h.remove()
        for p in frozen:
            p.requires_grad_(False)
    found: set[str] = set()
    pending = [t.grad_fn for t in output_tensors(outputs)]
    seen: set[Any] = set()
    while pending:
        fn = pending.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if fn in owner:
            found.add(owner[fn])
        else:
            pending.extend(next_fn for next_fn, _ in fn.next_functions)
    return found


def _check_structured_supported(module: Any) -> None:
    """torch-pruning has no rule for recurrent layers: their hidden state feeds back into itself,
    and its dependency search never ends on a model with one (Torch-Pruning PR #515 is open)."""
    import torch

    recurrent = [f"{name} ({type(m).__name__})" for name, m in module.named_modules() if isinstance(m, torch.nn.RNNBase)]
    if recurrent:
        raise ParetoLabError(
            f"structured pruning cannot resize a model with recurrent layers ({', '.join(recurrent[:3])}): torch-pruning "
            "cannot follow a hidden state that feeds back into itself; use unstructured pruning, low-rank or quantization"
        )


def _check_layer_names(module: Any, settings: PruneSettings, outputs: set[str]) -> None:
    import torch

    modules = dict(module.named_modules())
    prunable = [
        n for n, m in modules.items() if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.Linear))
    ]
    for name in (*settings.layer_ratios, *settings.skip):
        if name not in modules:
            raise SettingsError(f"no layer named '{name}'; prunable layers: {', '.join(prunable[:12])}")
        if name not in prunable and name not in settings.skip:
            kind = type(modules[name]).__name__
            raise SettingsError(f"layer '{name}' ({kind}) has no weights to prune; prunable layers: {', '.join(prunable[:12])}")
        if name in outputs and settings.layer_ratios.get(name, 0) > 0:
            raise SettingsError(f"layer '{name}' cannot be pruned: its outputs are the model's outputs, so its size is fixed")


def _output_shapes(module: Any, examples: tuple) -> list[tuple[int, ...]]:
    import torch

    with torch.no_grad():
        return [tuple(t.shape) for t in output_tensors(module(*examples))]


def _check_interface_kept(module: Any, examples: tuple, shapes: list[tuple[int, ...]], before: dict[str, int]) -> None:
    """Refuse, in one line naming the layer, a pruned model that no longer runs (a hard-coded
    reshape such as x.view(b, 512) before a fixed Linear) or whose outputs changed size (an
    embedding width, a final layer the output trace missed): caught here, in the pruning step,
    not later in distillation with pages of torch log."""
    changed = [n for n, c in _channel_counts(module).items() if n in before and c != before[n]]
    last = changed[-1] if changed else "a layer"
    try:
        now = _output_shapes(module, examples)
    except Exception as exc:
        raise ParetoLabError(
            f"structured pruning cannot resize this model: after pruning '{last}' it no longer runs "
            f"({first_line(exc)}) — a reshape to a fixed size follows it; skip that layer (skip: ['{last}']) or use "
            "unstructured pruning") from None
    if now != shapes:
        raise ParetoLabError(
            f"structured pruning would change the model's output size ({shapes} -> {now}) through layer '{last}': its "
            f"width is part of the model's interface; skip it (skip: ['{last}']) or use unstructured pruning")


def _channel_counts(module: Any) -> dict[str, int]:
    counts = {}
    for name, m in module.named_modules():
        out = getattr(m, "out_channels", None) or getattr(m, "out_features", None)
        if isinstance(out, int) and name:
            counts[name] = out
    return counts
