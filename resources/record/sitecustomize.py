"""Runs inside the user's own Python process during `paretolab record`, copied into a private
temp folder as sitecustomize.py (found through PYTHONPATH): it patches ONNX Runtime's
InferenceSession.run, OpenVINO's InferRequest.infer (and so a compiled model's call) and the
models torch.load / torch.jit.load / torch.export.load return,
and saves the inputs the watched model receives, one .npz per call, into the temp folder.

It imports nothing of ParetoLab (the user's interpreter may not have it), patches a library
only once that library is imported, never changes what the user's code computes, and swallows
its own failures (noted for the parent) so the user's script runs as it would without it.
"""

import contextlib
import importlib.abc
import importlib.util
import json
import os
import sys

with open(os.environ["PARETOLAB_RECORD"], encoding="utf-8") as _config:
    _CONFIG = json.load(_config)
_FOLDER = _CONFIG["folder"]
_state = {"calls": 0}
_noted = set()
_state_dict_ids = {}  # id -> object: the state dicts torch.load read from the model file (kept alive)


def _note(kind, what):
    """Tell the parent what ran (a model that was not the one watched) or what went wrong, once each."""
    if (kind, what) in _noted:
        return
    _noted.add((kind, what))
    try:
        with open(os.path.join(_FOLDER, "seen.jsonl"), "a", encoding="utf-8") as seen:
            seen.write(json.dumps({"kind": kind, "what": what}) + "\n")
    except OSError:
        pass


def _is_model(path):
    if not isinstance(path, (str, os.PathLike)):
        return False
    try:
        return os.path.samefile(os.fspath(path), _CONFIG["model"])
    except OSError:
        return False


def _numpy(value):
    import numpy as np

    if hasattr(value, "detach"):  # a torch tensor (bf16 has no numpy form: widen it)
        value = value.detach().cpu()
        return (value.float() if str(value.dtype) == "torch.bfloat16" else value).numpy()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # an OrtValue
        return value.numpy()
    if hasattr(value, "get_shape") and hasattr(value, "data"):  # an OpenVINO Tensor
        return np.array(value.data)
    if isinstance(value, (bool, int, float, np.ndarray, np.generic)):
        return np.asarray(value)
    return None


def _save(positional, named):
    """One call's inputs: positional arguments as arg0, arg1...; named ones (ORT's feed) as kw_NAME."""
    try:
        calls = os.path.join(_FOLDER, "calls")
        if _state["calls"] >= _CONFIG["max_calls"] or len(os.listdir(calls)) >= _CONFIG["max_calls"]:
            return
        import numpy as np

        arrays = {f"arg{i}": _numpy(v) for i, v in enumerate(positional)}
        arrays.update({f"kw_{k}": _numpy(v) for k, v in named.items()})
        arrays = {k: v for k, v in arrays.items() if v is not None}
        _state["calls"] += 1
        np.savez(os.path.join(calls, f"{os.getpid()}-{_state['calls']:06d}.npz"), **arrays)
    except Exception as exc:  # noqa: BLE001 - never break the user's script
        _note("error", f"saving inputs failed: {type(exc).__name__}: {exc}")


# -- ONNX Runtime ------------------------------------------------------------------------------


def _session_matches(session):
    known = getattr(session, "_paretolab_watched", None)
    if known is None:
        path = getattr(session, "_model_path", None)
        try:
            names = [i.name for i in session.get_inputs()]
        except Exception:  # noqa: BLE001
            names = []
        known = _is_model(path) or (bool(_CONFIG["names"]) and sorted(names) == sorted(_CONFIG["names"]))
        if not known:
            _note("onnx", f"{path} (inputs {', '.join(names)})" if path else f"a model from bytes (inputs {', '.join(names)})")
        with contextlib.suppress(Exception):
            session._paretolab_watched = known
    return known


def _patch_onnxruntime(ort):
    cls = ort.InferenceSession
    run = cls.run

    def recording_run(self, output_names, input_feed, run_options=None):
        if _session_matches(self):
            _save([], dict(input_feed))
        return run(self, output_names, input_feed, run_options)

    cls.run = recording_run
    with_values = getattr(cls, "run_with_ort_values", None)
    if with_values is not None:
        def recording_run_with_ort_values(self, output_names, input_dict_ort_values, run_options=None):
            if _session_matches(self):
                _save([], dict(input_dict_ort_values))
            return with_values(self, output_names, input_dict_ort_values, run_options)

        cls.run_with_ort_values = recording_run_with_ort_values


# -- OpenVINO ----------------------------------------------------------------------------------


def _ov_names(request):
    return [port.get_any_name() for port in request.model_inputs]


def _ov_feed(request, inputs, names):
    """OpenVINO's many input forms (a dict by name, index or port; a list; one array; none: the
    tensors set before) as {name: value}."""
    if inputs is None:
        return {name: request.get_input_tensor(i) for i, name in enumerate(names)}
    if isinstance(inputs, dict):
        return {names[k] if isinstance(k, int) else k if isinstance(k, str) else k.get_any_name(): v
                for k, v in inputs.items()}
    if isinstance(inputs, (list, tuple)):
        return dict(zip(names, inputs))
    return {names[0]: inputs}


def _ov_record(request, inputs):
    try:
        names = _ov_names(request)
        if sorted(names) == sorted(_CONFIG["names"]):
            _save([], _ov_feed(request, inputs, names))
        else:
            _note("openvino", f"a compiled model with inputs {', '.join(names)}")
    except Exception as exc:  # noqa: BLE001
        _note("error", f"reading OpenVINO inputs failed: {type(exc).__name__}: {exc}")


def _patch_openvino(ov):
    cls = ov.InferRequest
    infer, start_async = cls.infer, cls.start_async

    def recording_infer(self, inputs=None, *args, **kwargs):
        _ov_record(self, inputs)
        return infer(self, inputs, *args, **kwargs)

    def recording_start_async(self, inputs=None, *args, **kwargs):
        _ov_record(self, inputs)
        return start_async(self, inputs, *args, **kwargs)

    cls.infer, cls.start_async = recording_infer, recording_start_async


# -- PyTorch -----------------------------------------------------------------------------------

_recording_classes = {}


def _watch(module):
    """Record every call of `module` (a subclass of its own class: ScriptModules take no hooks)."""
    import torch

    if not isinstance(module, torch.nn.Module) or type(module).__name__.startswith("ParetoLabRecording"):
        return module
    base = type(module)
    if base not in _recording_classes:
        def __call__(self, *args, **kwargs):
            _save(args, kwargs)
            return base.__call__(self, *args, **kwargs)

        _recording_classes[base] = type(f"ParetoLabRecording{base.__name__}", (base,), {"__call__": __call__})
    module.__class__ = _recording_classes[base]
    return module


def _wrap_load(owner, attr, kind, on_result):
    load = getattr(owner, attr, None)
    if load is None:
        return

    def recording_load(f, *args, **kwargs):
        result = load(f, *args, **kwargs)
        try:
            if _is_model(f):
                return on_result(result)
            if isinstance(f, (str, os.PathLike)):
                _note(kind, os.fspath(f))
        except Exception as exc:  # noqa: BLE001
            _note("error", f"watching {kind} failed: {type(exc).__name__}: {exc}")
        return result

    setattr(owner, attr, recording_load)


def _loaded(result):
    """torch.load's result: a whole module is watched; a state dict is remembered, so the module
    it is loaded into (load_state_dict) is watched."""
    if isinstance(result, dict):
        for value in [result, *result.values()]:
            if isinstance(value, dict):
                _state_dict_ids[id(value)] = value
        return result
    return _watch(result)


def _exported(program):
    module = program.module

    def recording_module(*args, **kwargs):
        return _watch(module(*args, **kwargs))

    program.module = recording_module
    return program


def _patch_torch(torch):
    _wrap_load(torch, "load", "torch.load", _loaded)
    _wrap_load(torch.jit, "load", "torch.jit.load", _watch)
    try:
        import torch.export as export

        _wrap_load(export, "load", "torch.export.load", _exported)
        if getattr(torch.export, "load", None) is not export.load:
            torch.export.load = export.load
    except Exception as exc:  # noqa: BLE001
        _note("error", f"torch.export not patched: {exc}")
    load_state_dict = torch.nn.Module.load_state_dict

    def recording_load_state_dict(self, state_dict, *args, **kwargs):
        result = load_state_dict(self, state_dict, *args, **kwargs)
        if id(state_dict) in _state_dict_ids:
            _watch(self)
        return result

    torch.nn.Module.load_state_dict = recording_load_state_dict


_PATCHES = {"onnxruntime": _patch_onnxruntime, "openvino": _patch_openvino, "torch": _patch_torch}


class _PatchOnImport(importlib.abc.MetaPathFinder):
    """Patches a library right after its own import finishes, whenever the script imports it."""

    def __init__(self):
        self.busy = set()

    def find_spec(self, name, path, target=None):
        if name not in _PATCHES or name in self.busy:
            return None
        self.busy.add(name)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            self.busy.discard(name)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            try:
                _PATCHES[name](module)
            except Exception as exc:  # noqa: BLE001
                _note("error", f"{name} not patched: {type(exc).__name__}: {exc}")

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _PatchOnImport())
for _name, _patch in _PATCHES.items():  # already imported (an interpreter that preloads them)
    if _name in sys.modules:
        _patch(sys.modules[_name])

# The user's own sitecustomize, if there is one, still runs: ours only went first.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != _here]
_me = sys.modules.pop("sitecustomize", None)
try:
    import sitecustomize  # noqa: F401
except ImportError:
    pass
finally:  # the import system expects this module under its name once it finishes
    sys.modules["sitecustomize"] = _me
