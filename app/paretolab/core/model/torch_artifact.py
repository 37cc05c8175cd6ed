"""A PyTorch file of an edited module, for measuring and serving a variant with PyTorch.

A torch.export program (.pt2) is what PyTorch serving and AOTInductor load; modules that
torch.export cannot capture (data-dependent control flow) are traced to TorchScript (.pt)
instead. Either way the file records its inputs, so ParetoLab opens it like any model.
"""

from __future__ import annotations

import inspect
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from paretolab.core.errors import ConversionError, first_line
from paretolab.core.files import atomic_write
from paretolab.core.tensors import TensorSpec, check_fits_in_memory, concrete_shapes, free_axes

if TYPE_CHECKING:
    from paretolab.core.model.handle import ModelHandle

TORCH_SUFFIXES = (".pt2", ".pt")
TORCH_FORMATS = ("torch.export", "torchscript")  # the formats those files open as
log = logging.getLogger(__name__)


def save_torch_artifact(module: Any, examples: tuple, inputs: Sequence[TensorSpec], free: Sequence[Mapping[int, str]],
                        stem: Path) -> Path:
    """Write `module` to `stem`.pt2 (or `stem`.pt) with the axes in `free` left free; return the path."""
    import torch

    from paretolab.core.model.formats.torch_file import SPEC_FILE

    module = module.eval()
    # the inputs as the original names them (the file's own names are forward's arguments: "x", "tensors_0")
    shapes = [[axes.get(i, d) for i, d in enumerate(s.shape)] for s, axes in zip(inputs, free)]  # free axes by name
    spec = {SPEC_FILE: json.dumps({"inputs": [{"name": s.name, "shape": shape, "dtype": s.dtype}
                                              for s, shape in zip(inputs, shapes)]})}
    wide = tuple(_doubled(t, axes) for t, axes in zip(examples, free))  # size 1 would be specialised: export at 2
    try:
        program = torch.export.export(module, wide, dynamic_shapes=_dynamic_shapes(module, wide, free), strict=False)
        return atomic_write(stem.with_name(stem.name + ".pt2"),
                            lambda tmp: torch.export.save(program, str(tmp), extra_files=spec))
    except Exception as first:  # noqa: BLE001 - any capture failure: try tracing
        log.info("torch.export could not capture the module (%s); tracing it to TorchScript", first_line(first))
    try:
        with torch.no_grad():
            traced = torch.jit.trace(module, examples, check_trace=False)
        return atomic_write(stem.with_name(stem.name + ".pt"), lambda tmp: torch.jit.save(traced, str(tmp), _extra_files=spec))
    except Exception as exc:
        raise ConversionError(f"the edited model could be saved neither with torch.export nor as TorchScript: "
                              f"{first_line(exc)}") from None


def as_program(handle: ModelHandle) -> ModelHandle:
    """`handle` as a torch.export program, as ParetoLab writes variants (converted once per handle)."""
    if handle.format == "torch.export":
        return handle
    return handle.converted("program", lambda folder: handle.like(_program_of(handle, folder / handle.path.stem)))


def _program_of(handle: ModelHandle, stem: Path) -> Path:
    """`handle`'s PyTorch model (its own module, or the one an ONNX file made from it names) saved at `stem`."""
    import torch

    from paretolab.core.model.eager import eager_module

    module = getattr(handle.source, "module", None)
    if module is None:
        module = eager_module(handle, "running on PyTorch")
    shapes, unresolved = concrete_shapes(handle.inputs)
    if unresolved:
        raise ConversionError(f"give {handle.path.name}'s input shapes (--input-shape) to save it as a PyTorch program")
    for spec in handle.inputs:
        check_fits_in_memory(spec.name, shapes[spec.name], spec.dtype)
    example = tuple(torch.full(shapes[s.name], s.value, dtype=getattr(torch, s.dtype)) if s.value is not None
                    else torch.rand(shapes[s.name]) if getattr(torch, s.dtype).is_floating_point
                    else torch.zeros(shapes[s.name], dtype=getattr(torch, s.dtype)) for s in handle.inputs)
    return save_torch_artifact(module, example, handle.inputs, free_axes(handle.inputs, handle.source.inputs), stem)


def torch_sibling(artifact: Path) -> Path | None:
    """The PyTorch file saved beside a variant's ONNX or IR file, if there is one."""
    stem = artifact.name.removesuffix(artifact.suffix)
    return next((p for p in (artifact.with_name(stem + s) for s in TORCH_SUFFIXES) if p.exists() and p != artifact), None)


def _doubled(tensor: Any, axes: Mapping[int, str]) -> Any:
    import torch

    for axis in axes:
        if tensor.dim() > axis and tensor.shape[axis] == 1:
            tensor = torch.cat([tensor, tensor], dim=axis)
    return tensor


def _dynamic_shapes(module: Any, examples: tuple, free: Sequence[Mapping[int, str]]) -> tuple:
    """torch.export's dynamic_shapes: per argument, its free axes; a forward(*inputs) takes them as one tuple."""
    from torch.export import Dim

    shapes = tuple({axis: Dim.AUTO for axis in axes if axis < t.dim()} or None for t, axes in zip(examples, free))
    params = list(inspect.signature(module.forward).parameters.values())
    return (shapes,) if params and params[0].kind is inspect.Parameter.VAR_POSITIONAL else shapes
