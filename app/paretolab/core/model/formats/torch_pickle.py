"""Pickled PyTorch files: a whole nn.Module (torch.save(model)), a state_dict, or a training
checkpoint holding one. Unpickling runs code, so it happens only with the user's trust, and the
classes a pickle names must be importable: the model's own folder is tried, then the user is
asked for the folder that holds them (--code DIR)."""

from __future__ import annotations

import contextlib
import gc
import importlib
import logging
import pickle
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from paretolab.core.errors import (
    ArchitectureRequiredError,
    CodeRequiredError,
    ModelLoadError,
    UntrustedModelError,
    first_line,
)
from paretolab.core.files import add_code_path
from paretolab.core.model.formats.torch_file import TorchSource

log = logging.getLogger(__name__)
_CHECKPOINT_KEYS = ("state_dict", "model_state_dict", "model_state", "model", "net", "module", "weights", "ema")


def _state_dict_of(obj: Any) -> dict | None:
    """The state_dict inside `obj` (a bare one, or a checkpoint dict holding one)."""
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for key in _CHECKPOINT_KEYS:
            inner = _state_dict_of(obj.get(key))
            if inner is not None:
                return inner
    return None


def _module_of(obj: Any) -> torch.nn.Module | None:
    if isinstance(obj, torch.nn.Module):
        return obj
    if isinstance(obj, dict):
        for key in _CHECKPOINT_KEYS:
            if isinstance(obj.get(key), torch.nn.Module):
                return obj[key]
    return None


def build_arch(arch: str, state_dict: dict, path: Path) -> torch.nn.Module:
    """Instantiate "package.module:ClassName" with no arguments and load the weights into it."""
    module_name, _, class_name = arch.partition(":")
    if not module_name or not class_name:
        raise ModelLoadError(f"--arch '{arch}' is not of the form package.module:ClassName")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"--arch '{arch}' cannot be imported ({exc}); check the module is on PYTHONPATH") from None
    if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
        raise ModelLoadError(f"--arch '{arch}' is not an nn.Module class; name the model's class")
    try:
        model = cls()
        result = model.load_state_dict(state_dict, strict=False)
    except Exception as exc:  # a size mismatch: name the first one, not torch's "Error(s) in loading" header
        lines = [line.strip() for line in str(exc).splitlines() if "size mismatch" in line] or [first_line(exc)]
        raise ModelLoadError(f"the weights in {path.name} do not fit --arch '{arch}': {lines[0]}") from None
    if result.missing_keys or result.unexpected_keys:
        parts = [f"{len(keys)} {what} ({', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''})"
                 for what, keys in (("missing", result.missing_keys), ("unexpected", result.unexpected_keys)) if keys]
        raise ModelLoadError(f"the weights in {path.name} do not fit --arch '{arch}': {' and '.join(parts)} keys")
    return model.eval()


@contextlib.contextmanager
def _quiet_unpickling() -> Iterator[None]:
    """A damaged pickle can leave torch's unpickler holding a bytearray whose buffer is still
    exported; when it is freed, CPython prints "SystemError: deallocated bytearray object has
    exported buffers" through sys.excepthook, on the user's terminal. Free it here, with both
    hooks sending that complaint to the log: the load has already failed with our one line."""
    hooks = sys.unraisablehook, sys.excepthook
    sys.unraisablehook = lambda info: log.info("ignored while unpickling: %s", info.exc_value)
    sys.excepthook = lambda kind, value, tb: log.info("ignored while unpickling: %s: %s", kind.__name__, value)
    try:
        yield
    except BaseException as exc:
        exc.__context__ = None  # the failed unpickler's frames (and buffers) go now, not when our error is freed
        gc.collect(1)  # young generations only: a full collection costs 0.1-0.4 s with torch loaded
        raise
    finally:
        sys.unraisablehook, sys.excepthook = hooks


def load_pickle(path: Path, trust: bool, arch: str | None) -> TorchSource:
    try:
        with _quiet_unpickling():
            return _load_pickle_unquiet(path, trust, arch)
    except SystemError as exc:  # the same CPython complaint, raised instead of reported
        raise _corrupt(path, exc) from None


def _load_pickle_unquiet(path: Path, trust: bool, arch: str | None) -> TorchSource:
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights_only" not in str(exc) and "Unsupported global" not in str(exc):
            raise _corrupt(path, exc) from None
        if not trust:
            raise UntrustedModelError(
                f"{path.name} is a pickled Python object: loading it runs code stored in the file. "
                "Open it only if you trust its source (CLI: --trust), or save the model as TorchScript, "
                ".pt2 or ONNX instead"
            ) from None
        obj = _unpickle_with_code(path)
    except Exception as exc:
        raise _corrupt(path, exc) from None

    module = _module_of(obj)
    if module is not None:
        return TorchSource(path=path, native=module.eval(), format="torch-pickle")
    state_dict = _state_dict_of(obj)
    if state_dict is None:
        found = f" with keys {', '.join(map(str, list(obj)[:8]))}" if isinstance(obj, dict) and obj else ""
        raise ModelLoadError(f"{path.name} holds a {type(obj).__name__}{found}, none of them a model or a state_dict "
                             f"(looked under {', '.join(_CHECKPOINT_KEYS)}); save the model or its state_dict alone")
    if arch is None:
        raise ArchitectureRequiredError(
            f"{path.name} holds only weights (a state_dict of {len(state_dict)} tensors), not a model; "
            "say which class they belong to with --arch package.module:ClassName"
        )
    return TorchSource(path=path, native=build_arch(arch, state_dict, path), format="torch-state-dict")


def _unpickle_with_code(path: Path) -> Any:
    """torch.load with code: a pickled model names its classes by module; the model's own folder
    (where train.py and model.py usually sit) is tried before asking for another."""
    for attempt in range(2):
        try:
            return torch.load(str(path), map_location="cpu", weights_only=False)
        except ModuleNotFoundError as exc:
            if attempt == 0 and str(path.parent.resolve()) not in sys.path:
                add_code_path(path.parent)
                continue
            missing = exc.name or "?"
            raise CodeRequiredError(
                f"{path.name} names classes from the module '{missing}', which is not importable here: give the "
                f"folder that holds {missing.split('.')[0]} with --code DIR (the app asks for it)", missing
            ) from None
        except Exception as exc:  # the pickle may name classes that cannot be found here
            raise ModelLoadError(f"{path.name} could not be unpickled: {first_line(exc)}; the classes it names must "
                                 "be importable here (give their folder with --code DIR)") from None
    raise AssertionError("unreachable")


def _corrupt(path: Path, exc: BaseException) -> ModelLoadError:
    reason = first_line(exc)
    return ModelLoadError(f"{path.name} is not a readable PyTorch file (corrupt or truncated: {reason}); re-save it")
