"""What techniques need of the open model, each checked in one line before any work.

A technique's description names these (technique_spec.Requirement); the checks import their
libraries only when they run, so the descriptions stay light. A verdict is kept per model
(the GUI asks on every change of a setting; loading an eager module each time would freeze it).
"""

from __future__ import annotations

import weakref
from functools import partial
from typing import Any

from paretolab.core.compress.technique_spec import Requirement
from paretolab.core.errors import ParetoLabError

_verdicts: dict[int, dict[tuple, ParetoLabError | None]] = {}


def _remembered(handle: Any, key: tuple, check: Any) -> None:
    """Run `check()` once per model and key; raise its error again on every later ask."""
    if id(handle) not in _verdicts:
        _verdicts[id(handle)] = {}
        weakref.finalize(handle, _verdicts.pop, id(handle), None)
    verdicts = _verdicts[id(handle)]
    if key not in verdicts:
        try:
            check()
            verdicts[key] = None
        except ParetoLabError as exc:
            verdicts[key] = exc
        except Exception:  # noqa: BLE001 - not the model's lack: the step itself meets it and says what failed
            verdicts[key] = None
    refused = verdicts[key]
    if refused is not None:
        raise refused.with_traceback(None)


def torch_module(handle: Any, kinds: dict[str, str] | None, what: str) -> None:
    """An editable (eager) PyTorch module: a pickled module, a state_dict with its class, a
    Hugging Face model, or an ONNX file ParetoLab exported from one."""
    from paretolab.core.model.eager import eager_module

    _remembered(handle, ("torch-module", what), lambda: eager_module(handle, what))


def class_scores(handle: Any, kinds: dict[str, str] | None, what: str) -> None:
    """One output holding class scores (heads that answer early answer with classes)."""
    from paretolab.core.compress.exits.early_exit import refuse_non_classifier

    key = ("class-scores", tuple(sorted((kinds or {}).items())))
    _remembered(handle, key, lambda: refuse_non_classifier(handle, kinds))


def _opset(handle: Any) -> int | None:
    """The ONNX opset the model's ONNX form uses (a PyTorch model's: the one it is exported with)."""
    if handle.format != "onnx":
        from paretolab.core.model.torch_onnx import OPSET

        return OPSET if handle.format.startswith("torch") or handle.format == "huggingface" else None
    import onnx

    model = onnx.load(str(handle.path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _opset_at_least(version: int, handle: Any, kinds: dict[str, str] | None, what: str) -> None:
    def check() -> None:
        found = _opset(handle)
        if found is not None and found < version:
            raise ParetoLabError(f"{what} needs ONNX opset {version} or newer, and {handle.path.name} uses opset {found}; "
                                 f"convert it first (onnx.version_converter.convert_version(model, {version}))")

    _remembered(handle, ("opset", version), check)


TORCH_MODULE = Requirement("torch-module", "an editable PyTorch module", torch_module)
CLASS_SCORES = Requirement("class-scores", "a classifier's class scores", class_scores)


def opset_at_least(version: int) -> Requirement:
    """ONNX opset `version` or newer (per-channel QDQ, for instance, needs 13)."""
    return Requirement(f"opset>={version}", f"ONNX opset {version} or newer", partial(_opset_at_least, version))
