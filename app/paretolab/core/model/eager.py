"""An editable PyTorch module for a model, for techniques that change layers in torch
(structured pruning, distillation, low-rank) — or a clear reason why there is none."""

from __future__ import annotations

import copy
import importlib
from typing import Any

from paretolab.core.errors import ParetoLabError, first_line
from paretolab.core.model.handle import ModelHandle

ARCH_KEY = "paretolab.arch"
STATE_DICT_KEY = "paretolab.state_dict"


class TechniqueUnavailable(ParetoLabError):
    """The technique cannot be applied to this kind of model."""


def eager_module(handle: ModelHandle, technique: str) -> Any:
    """A fresh copy of the model as an eager nn.Module; the handle's own module is untouched."""
    import torch

    native = handle.native
    if handle.format in ("torch-pickle", "torch-state-dict", "huggingface") and isinstance(native, torch.nn.Module):
        return copy.deepcopy(native).eval()
    if handle.format == "onnx":
        twin = _onnx_twin(handle)
        if twin is not None:
            return twin
        raise TechniqueUnavailable(
            f"{technique} needs a PyTorch model, and {handle.path.name} is ONNX only (ONNX-to-torch converters "
            "failed on common exports, so ParetoLab does not rely on them); open the PyTorch model, or use "
            "unstructured pruning, quantization or graph optimization, which work on ONNX directly"
        )
    kind = {"torchscript": "TorchScript", "torch.export": "a torch.export program", "openvino": "OpenVINO IR",
            "tflite": "TensorFlow Lite", "tensorflow": "a frozen TensorFlow graph"}.get(handle.format, handle.format)
    raise TechniqueUnavailable(
        f"{technique} needs an editable PyTorch module, and {handle.path.name} is {kind}; open the model's "
        "pickled module (with --trust) or its state_dict with --arch package.module:ClassName"
    )


def torch_edits_unavailable(handle: ModelHandle) -> str | None:
    """Why structured pruning and distillation cannot run on this model, or None if they can
    (for the GUI, which disables those controls with this as the tooltip)."""
    try:
        eager_module(handle, "structured pruning and distillation")
    except TechniqueUnavailable as exc:
        return str(exc)
    return None


def _onnx_twin(handle: ModelHandle) -> Any:
    """The eager module an ONNX file made by ParetoLab names in its metadata. The name is the file's,
    so importing it is running code the file chose: only ParetoLab's own sample classes are made
    without --trust (or the same class named with --arch), and only nn.Module classes ever."""
    import torch

    props = {p.key: p.value for p in handle.native.metadata_props}
    arch, weights = props.get(ARCH_KEY), props.get(STATE_DICT_KEY)
    if not arch or not weights:
        return None
    path = (handle.path.parent / weights).resolve()
    if not path.is_relative_to(handle.path.parent.resolve()) or not path.exists():
        return None
    given = getattr(handle.source, "arch", None)
    if arch not in _OWN_CLASSES and not handle.trusted and given != arch:
        raise TechniqueUnavailable(
            f"{handle.path.name} names its PyTorch class '{arch}' in its metadata; importing it runs that module's "
            f"code, so it is used only with --trust or --arch {arch}")
    cls = _module_class(arch, handle.path.name)
    try:
        model = cls()
        model.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    except Exception as exc:  # noqa: BLE001 - weights that do not fit, a class that needs arguments
        raise TechniqueUnavailable(f"{handle.path.name}'s PyTorch class '{arch}' could not be made with the "
                                   f"weights in {weights}: {first_line(exc)}") from None
    return model.eval()


# the classes ParetoLab's own sample models name (resources/sample): importing them runs only our code
_OWN_CLASSES = frozenset({"paretolab.core.sample:DigitsCNN", "paretolab.core.sample:DigitsResNet"})


def _module_class(arch: str, file_name: str) -> Any:
    """The nn.Module subclass "package.module:Class" names; a function or anything else is refused."""
    import torch

    module_name, _, class_name = arch.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name) if module_name and class_name else None
    except (ImportError, AttributeError) as exc:
        raise TechniqueUnavailable(f"{file_name} names the PyTorch class '{arch}', which cannot be imported "
                                   f"({exc})") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise TechniqueUnavailable(f"{file_name} names '{arch}' as its PyTorch class, which is not an nn.Module "
                                   "class; ParetoLab makes only nn.Module classes")
    return cls


def output_tensors(out: Any) -> list[Any]:
    """A module's outputs as a flat list of tensors, in order, however it returns them: a
    tensor, a tuple or list, a dict, or a dataclass (Hugging Face returns ModelOutput)."""
    import dataclasses

    if out is None:
        return []
    if isinstance(out, dict):
        return [t for v in out.values() for t in output_tensors(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in output_tensors(v)]
    if dataclasses.is_dataclass(out) and not isinstance(out, type):
        return [t for f in dataclasses.fields(out) for t in output_tensors(getattr(out, f.name))]
    return [out]


def first_output(out: Any) -> Any:
    """The first tensor a module returns: its logits, by every exporter's convention."""
    tensors = output_tensors(out)
    if not tensors:
        raise ParetoLabError("the model returned no tensor")
    return tensors[0]
