"""One Runner interface over PyTorch, ONNX Runtime and OpenVINO, on CPU and GPU.

Runners take and return NumPy arrays, one per model input/output in the model's order.
`bind()` puts inputs in place ahead of time so that timing loops measure the runtime's
own call and nothing of ours.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import shutil
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from paretolab.core.errors import ParetoLabError
from paretolab.core.model.eager import output_tensors
from paretolab.core.model.handle import ModelHandle

BACKENDS = ("torch", "inductor", "ort", "openvino")
BACKEND_TITLES = {"torch": "PyTorch", "inductor": "PyTorch with torch.compile", "ort": "ONNX Runtime", "openvino": "OpenVINO"}
TORCH_BACKENDS = ("torch", "inductor")  # the backends that run PyTorch files


class BackendError(ParetoLabError):
    """A backend or device that is missing here, or a model a backend cannot run."""


@dataclass(frozen=True)
class BackendInfo:
    backend: str
    device: str
    version: str
    detail: str = ""

    def to_dict(self) -> dict:
        return {"backend": self.backend, "device": self.device, "version": self.version, "detail": self.detail}


def _cuda_devices() -> list[str]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


@functools.cache
def available_backends() -> tuple[BackendInfo, ...]:
    """Every backend/device pair that can run a model on this machine."""
    import onnxruntime as ort
    import openvino as ov
    import torch

    found = [BackendInfo("torch", "cpu", torch.__version__, f"{torch.get_num_threads()} threads")]
    if _can_compile_cpp():  # Inductor compiles C++ for the CPU
        found.append(BackendInfo("inductor", "cpu", torch.__version__, "torch.compile, C++ kernels"))
    gpus = _cuda_devices()
    if gpus:
        found.append(BackendInfo("torch", "cuda", torch.__version__, ", ".join(gpus)))
        if importlib.util.find_spec("triton") is not None:  # and Triton for the GPU
            found.append(BackendInfo("inductor", "cuda", torch.__version__, "torch.compile, Triton kernels"))
    providers = ort.get_available_providers()
    found.append(BackendInfo("ort", "cpu", ort.__version__, "CPUExecutionProvider"))
    if gpus and "CUDAExecutionProvider" in providers:
        found.append(BackendInfo("ort", "cuda", ort.__version__, "CUDAExecutionProvider"))
    if gpus and "TensorrtExecutionProvider" in providers:
        found.append(BackendInfo("ort", "tensorrt", ort.__version__, "TensorrtExecutionProvider"))
    core = ov.Core()
    devices = core.available_devices
    for dev in devices:
        name = core.get_property(dev, "FULL_DEVICE_NAME")
        found.append(BackendInfo("openvino", dev.lower(), ov.__version__, name))
    if len(devices) > 1:
        found.append(BackendInfo("openvino", "auto", ov.__version__, "AUTO: " + ", ".join(devices)))
    return tuple(found)


def _can_compile_cpp() -> bool:
    """torch.compile's CPU kernels need a C++ compiler and Python's headers."""
    import sysconfig

    return bool(shutil.which("g++") or shutil.which("c++")) and (Path(sysconfig.get_paths()["include"]) / "Python.h").exists()


def check_available(backend: str, device: str) -> None:
    pairs = available_backends()
    if backend not in BACKENDS:
        raise BackendError(f"unknown backend '{backend}'; choose one of: {', '.join(BACKENDS)}")
    devices = [b.device for b in pairs if b.backend == backend]
    if device not in devices:
        raise BackendError(
            f"{BACKEND_TITLES[backend]} has no device '{device}' on this machine; available: {', '.join(devices)} "
            "(see `paretolab backends`)"
        )


class Runner(ABC):
    backend: str
    device: str
    input_names: list[str]
    output_names: list[str]
    _model_name: str

    @abstractmethod
    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]: ...

    runtime: str

    def bind(self, inputs: Sequence[np.ndarray]) -> Callable[[], Any]:
        """A no-argument call that runs the model on `inputs` (for timing loops), tried once here:
        inputs the model cannot take are a BackendError now, not an exception inside the loop."""
        call = self._bind(inputs)
        try:
            call()
        except Exception as exc:
            shapes = ", ".join(f"{name} {list(np.shape(a))}" for name, a in zip(self.input_names, inputs))
            raise BackendError(f"{self.runtime} cannot run {self._model_name} on {shapes}: {_first_line(exc)}") from None
        return call

    @abstractmethod
    def _bind(self, inputs: Sequence[np.ndarray]) -> Callable[[], Any]: ...

    def close(self) -> None:  # noqa: B027 - a no-op by default; runners holding resources override it
        """Release the runtime's resources; the runner is unusable afterwards."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_NOISE = ("Exception from src/", "Check '", "FrontEnd API failed", "Summary:", "Model wasn't fully converted")


def _contiguous(array: np.ndarray) -> np.ndarray:
    """A C-contiguous array of the same shape (np.ascontiguousarray turns a scalar into shape (1,))."""
    return np.require(array, requirements="C")


def _first_line(exc: BaseException) -> str:
    """The line of a runtime's error that says what is wrong (OpenVINO leads with source locations)."""
    lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip(" -")]
    useful = [line for line in lines if not line.startswith(_NOISE)]
    return (useful or lines or [type(exc).__name__])[0]


ORT_PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
                 "tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"]}


class OrtRunner(Runner):
    runtime = "ONNX Runtime"
    backend = "ort"

    def __init__(self, handle: ModelHandle, device: str, threads: int | None, profile_prefix: str | None = None) -> None:
        import onnxruntime as ort

        self.device = device
        path = handle.onnx_file()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        if threads:
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
        if profile_prefix:
            options.enable_profiling = True
            options.profile_file_prefix = profile_prefix
        try:
            self.session = ort.InferenceSession(str(path), options, providers=ORT_PROVIDERS[device])
        except Exception as exc:
            raise BackendError(f"ONNX Runtime cannot load {handle.path.name}: {_first_line(exc)}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]
        self._model_name = handle.path.name

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        try:
            return self.session.run(self.output_names, dict(zip(self.input_names, inputs)))
        except Exception as exc:
            raise BackendError(f"ONNX Runtime failed running {self._model_name}: {_first_line(exc)}") from None

    def _bind(self, inputs: Sequence[np.ndarray]) -> Callable[[], Any]:
        feed = dict(zip(self.input_names, inputs))
        return functools.partial(self.session.run, None, feed)

    def end_profiling(self) -> str:
        return self.session.end_profiling()

    def close(self) -> None:
        self.session = None


PRECISION_OPTION = ["runtime_options", "INFERENCE_PRECISION_HINT"]  # where an IR asks OpenVINO for a compute precision


class OpenVinoRunner(Runner):
    backend = "openvino"
    runtime = "OpenVINO"

    def __init__(self, handle: ModelHandle, device: str, threads: int | None, *, perf_counters: bool = False,
                 hint: str = "LATENCY", as_deployed: bool = False) -> None:
        """`as_deployed`: no precision hint, so OpenVINO picks its default (bf16 on AMX/AVX512-BF16 CPUs),
        as a user who loads the FP32 model gets."""
        import openvino as ov

        self.device = device
        core = ov.Core()
        config: dict[str, Any] = {"PERFORMANCE_HINT": hint}
        if device == "cpu" and threads:
            config["INFERENCE_NUM_THREADS"] = threads
        if perf_counters:
            config["PERF_COUNT"] = True
        try:
            model = core.read_model(str(handle.path)) if handle.format == "onnx" else handle.openvino_model()
            if device == "cpu" and not as_deployed and not model.has_rt_info(PRECISION_OPTION):
                # This CPU plugin defaults to bf16 where the CPU supports it; FP32 models are measured as FP32
                # (a bf16 variant records its precision in the IR: OpenVINO applies it when compiling).
                config["INFERENCE_PRECISION_HINT"] = "f32"
            self.compiled = core.compile_model(model, device.upper(), config)
        except ParetoLabError:
            raise
        except Exception as exc:
            raise BackendError(f"OpenVINO cannot compile {handle.path.name} for {device}: {_first_line(exc)}") from None
        self.request = self.compiled.create_infer_request()
        from paretolab.core.model.graph_openvino import port_spec

        self.input_names = [port_spec(p).name for p in self.compiled.inputs]
        self.output_names = [port_spec(p).name for p in self.compiled.outputs]
        self._model_name = handle.path.name

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        try:
            results = self.request.infer(list(inputs))
        except Exception as exc:
            raise BackendError(f"OpenVINO failed running {self._model_name}: {_first_line(exc)}") from None
        return [np.array(results[port]) for port in self.compiled.outputs]

    def _bind(self, inputs: Sequence[np.ndarray]) -> Callable[[], Any]:
        import openvino as ov

        for i, array in enumerate(inputs):
            try:
                self.request.set_input_tensor(i, ov.Tensor(_contiguous(array)))
            except Exception as exc:  # a shape the compiled model cannot take
                raise BackendError(f"OpenVINO cannot take input {i} of {self._model_name} shaped {array.shape}: "
                                   f"{_first_line(exc)}") from None
        return self.request.infer

    def close(self) -> None:
        self.request = None
        self.compiled = None


class TorchRunner(Runner):
    backend = "torch"
    runtime = "PyTorch"

    def __init__(self, handle: ModelHandle, device: str, threads: int | None) -> None:
        import torch

        self.device = device
        self._torch = torch
        if threads:
            torch.set_num_threads(threads)
        try:
            self.module = self._load(handle, device)
        except ParetoLabError:
            raise
        except Exception as exc:  # moving to a device, out of memory there, an unreadable program
            raise BackendError(f"{self.runtime} cannot load {handle.path.name} on {device}: {_first_line(exc)}") from None
        self.input_names = [s.name for s in handle.inputs] or ["input"]
        self.output_names = [s.name for s in handle.outputs]
        self._model_name = handle.path.name

    def _load(self, handle: ModelHandle, device: str) -> Any:
        return _torch_module(handle, device)

    def _tensors(self, inputs: Sequence[np.ndarray]) -> list:
        return [self._torch.from_numpy(_contiguous(a)).to(self.device) for a in inputs]

    def run(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        with self._torch.inference_mode():
            try:
                out = self.module(*self._tensors(inputs))
            except Exception as exc:
                raise BackendError(f"PyTorch failed running {self._model_name}: {_first_line(exc)}") from None
        return [t.detach().cpu().numpy() for t in output_tensors(out)]

    def _bind(self, inputs: Sequence[np.ndarray]) -> Callable[[], Any]:
        tensors = self._tensors(inputs)
        torch = self._torch
        sync = torch.cuda.synchronize if self.device == "cuda" else None

        def call() -> Any:
            with torch.inference_mode():
                out = self.module(*tensors)
            if sync:
                sync()
            return out

        return call


class InductorRunner(TorchRunner):
    """PyTorch with torch.compile: the model's graph compiled to fused kernels (C++ on the CPU,
    Triton on a GPU) — how a PyTorch deployment that cares about speed runs it. Compiling takes
    seconds, so each model is compiled once per process and device, on its first call."""

    backend = "inductor"
    runtime = "PyTorch (torch.compile)"

    def _load(self, handle: ModelHandle, device: str) -> Any:
        key = (str(handle.path.resolve()), handle.path.stat().st_mtime_ns, device)
        if key not in _COMPILED:
            if len(_COMPILED) >= _COMPILED_KEPT:  # a long session measures many variants: keep the latest
                _COMPILED.pop(next(iter(_COMPILED)))
            module = _torch_module(handle, device)
            if isinstance(module, self._torch.jit.ScriptModule):
                raise BackendError(f"torch.compile cannot compile TorchScript ({handle.path.name}); measure it on torch, "
                                   "or open the model as a torch.export program or a Python module")
            _COMPILED[key] = self._torch.compile(module, dynamic=True)
        return _COMPILED[key]


_COMPILED: dict[tuple[str, int, str], Any] = {}
_COMPILED_KEPT = 8


def _torch_module(handle: ModelHandle, device: str) -> Any:
    """The model as a module on `device`: a PyTorch file's own, or for an ONNX file made from a
    PyTorch model (the samples), that model. An exported program moves with its constants."""
    import torch

    from paretolab.core.model.eager import TechniqueUnavailable, eager_module

    native = handle.native
    if device != "cpu" and isinstance(native, torch.export.ExportedProgram):
        from torch.export.passes import move_to_device_pass

        return move_to_device_pass(native, device).module()
    module = getattr(handle.source, "module", None)
    if module is None and handle.format == "onnx":
        with contextlib.suppress(TechniqueUnavailable):
            module = eager_module(handle, "running on PyTorch")
    if module is None:
        raise BackendError(f"the torch backend needs a PyTorch model, and {handle.path.name} is {handle.format}; "
                           "use --backend ort or openvino")
    return module.to(device) if device != "cpu" else module


_LOAD_PROBE = "import sys, onnxruntime as ort; ort.InferenceSession(sys.argv[1], providers=['CPUExecutionProvider'])"


def check_ort_loads(path: Path) -> None:
    """Load a file ParetoLab wrote into ONNX Runtime in a child process first: on some graphs
    (an FP16 transformer with weights from Constant nodes) its layout optimizer crashes the
    process, and a crash in the app would lose the user's work. Errors it raises normally are
    left to the caller; only a crash is reported here."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _LOAD_PROBE, str(path)], capture_output=True, timeout=900)
    if done.returncode < 0:
        raise BackendError(
            f"ONNX Runtime crashes loading {path.name} (signal {-done.returncode}, a bug in the runtime's graph optimizer "
            "on this model): this form cannot run on ONNX Runtime here; try the OpenVINO form of the technique"
        )


def openvino_default_precision(device: str = "cpu") -> str:
    """The compute precision OpenVINO picks on `device` when a model asks for none ("bf16", "f32", ...)."""
    import openvino as ov

    try:
        value = ov.Core().get_property(device.upper(), "INFERENCE_PRECISION_HINT")
        return value.to_string() if hasattr(value, "to_string") else str(value)
    except Exception:  # an old plugin without the property: its default is its own, say so
        return "its default precision"


def default_backend(handle: ModelHandle) -> str:
    """ONNX Runtime, except for models only OpenVINO can run (IR, TFLite)."""
    return "openvino" if handle.runs_on_openvino_only else "ort"


def open_runner(handle: ModelHandle, backend: str | None = None, device: str = "cpu", threads: int | None = None) -> Runner:
    """A runner for `handle` on `backend` (default: `default_backend`)/`device`; raises BackendError
    naming what is available."""
    backend = backend or default_backend(handle)
    check_available(backend, device)
    if backend == "ort":
        return OrtRunner(handle, device, threads)
    if backend == "openvino":
        return OpenVinoRunner(handle, device, threads)
    if backend == "inductor":
        return InductorRunner(handle, device, threads)
    return TorchRunner(handle, device, threads)
