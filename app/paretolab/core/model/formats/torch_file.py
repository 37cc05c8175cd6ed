"""PyTorch files: TorchScript, torch.export programs, pickled modules and state_dicts.

A pickled nn.Module runs arbitrary code while it loads, so it is refused unless the user
says they trust the file. Everything else is read with torch's safe loaders.
"""

from __future__ import annotations

import inspect
import logging
import tempfile
import warnings
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from paretolab.core.errors import (
    ConversionError,
    InputShapeError,
    ModelLoadError,
    first_line,
)
from paretolab.core.files import work_prefix
from paretolab.core.model.formats.archive_guard import guard_exported, guard_torchscript, guard_zip
from paretolab.core.model.formats.torch_spec import read_spec
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.torch_onnx import analysis_graph, export_to_onnx
from paretolab.core.tensors import TensorSpec, check_fits_in_memory, concrete_shapes, free_axes, guess_shapes

# TorchScript files made by ParetoLab carry their input specs in this extra file.
SPEC_FILE = "paretolab.json"

log = logging.getLogger(__name__)


@dataclass
class TorchSource:
    path: Path
    native: Any  # torch.nn.Module (eager or scripted) or torch.export.ExportedProgram
    format: str
    inputs: list[TensorSpec] = field(default_factory=list)
    outputs: list[TensorSpec] = field(default_factory=list)
    file_list: list[Path] | None = None  # when the model is a folder (Hugging Face): the files in it
    max_sequence: int | None = None  # the longest sequence a transformer takes (its position table)
    _graphs: dict = field(default_factory=dict, repr=False)

    @property
    def files(self) -> list[Path]:
        return self.file_list or [self.path]

    @property
    def module(self) -> torch.nn.Module:
        if isinstance(self.native, torch.export.ExportedProgram):
            return self.native.module()
        return self.native

    def example_inputs(self, inputs: list[TensorSpec]) -> tuple[torch.Tensor, ...]:
        shapes, unresolved = concrete_shapes(inputs)
        if not inputs or unresolved:
            raise self.shape_required(inputs)
        gen = torch.Generator().manual_seed(0)
        tensors = []
        for spec in inputs:
            dtype = getattr(torch, spec.dtype)
            shape = shapes[spec.name]
            check_fits_in_memory(spec.name, shape, spec.dtype)
            if spec.value is not None:  # held at a value (a sample rate): random would be meaningless
                tensors.append(torch.full(shape, spec.value, dtype=dtype))
            elif dtype.is_floating_point:
                tensors.append(torch.rand(shape, generator=gen, dtype=dtype))
            else:
                tensors.append(torch.zeros(shape, dtype=dtype))
        return tuple(tensors)

    def arguments(self) -> list[str]:
        """The names of the forward's required arguments, in order (what a call must pass)."""
        try:
            schema = getattr(self.module.forward, "schema", None)  # TorchScript
            if schema is not None:
                return [a.name for a in schema.arguments[1:] if not a.has_default_value()]
            signature = inspect.signature(self.module.forward)
        except (TypeError, ValueError, RuntimeError):
            return []
        kinds = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return [p.name for p in signature.parameters.values() if p.kind in kinds and p.default is inspect.Parameter.empty]

    def inputs_for(self, shapes: Mapping[str | None, Sequence[int]],
                   held: Mapping[str, float] | None = None) -> list[TensorSpec]:
        """The inputs of a model whose file does not record them, from the shapes the user gave:
        named and ordered as its forward's arguments, each with the dtype the model accepts
        (token ids are integers; found by trying, as nothing else says so), tried at the values
        `held` holds them at (a sample rate, which a random number would not pass)."""
        return [replace(s, value=None) for s in self._inputs_for(shapes, held or {})]

    def _inputs_for(self, shapes: Mapping[str | None, Sequence[int]], held: Mapping[str, float]) -> list[TensorSpec]:
        names = self.arguments()
        rest = [n for n in names if n not in shapes]
        if None in shapes and len(shapes) > 1 and len(rest) == 1:  # "1x512" and sr held: the shape is the other input's
            shapes = {(rest[0] if name is None else name): shape for name, shape in shapes.items()}
        if None in shapes and len(shapes) > 1:
            raise InputShapeError(f"give every input a name when there are several: {self._argument_hint(names)}")
        if None in shapes and len(names) > 1:
            raise InputShapeError(f"{self.path.name} takes {len(names)} inputs ({', '.join(names)}); give each a shape "
                                  f"by name, e.g. {self._argument_hint(names)} (NAME=scalar for a single number; "
                                  "--hold NAME=VALUE for one that must take a value, such as a sample rate)")
        if len(names) <= 1 and len(shapes) == 1:  # one input: the user's name for it is as good as the forward's
            (name, shape), = shapes.items()
            name = name or (names[0] if names else "input")
            return self._typed([TensorSpec(name, tuple(int(d) for d in shape), "float32", value=held.get(name))])
        given = {(name if name is not None else (names[0] if names else "input")): tuple(shape)
                 for name, shape in shapes.items()}
        unknown = [n for n in given if names and n not in names]
        if unknown:
            raise InputShapeError(f"{self.path.name} has no input named '{unknown[0]}'; its forward takes {', '.join(names)}")
        missing = [n for n in names if n not in given]
        if missing:
            raise InputShapeError(f"{self.path.name} also takes {', '.join(missing)}; give "
                                  f"{'each' if len(missing) > 1 else 'it'} a shape, e.g. {self._argument_hint(missing)} "
                                  "(NAME=scalar for a single number; --hold NAME=VALUE for one that must take a value)")
        order = names or list(given)
        return self._typed([TensorSpec(n, tuple(int(d) for d in given[n]), "float32", value=held.get(n)) for n in order])

    def _argument_hint(self, names: list[str]) -> str:
        """--input-shape options for the forward's arguments: the first layer's shape for the first
        (only when it is the first argument), a scalar for a rate or a step, else a sequence."""
        hints = []
        for name in names:
            if name.lower() in _SCALAR_NAMES:
                hints.append(f"--hold {name}=VALUE")
                continue
            first = name == next(iter(self.arguments()), None)
            shape = _first_layer_hint(self.module).split(" ")[0] if first else "1x64"
            hints.append(f"--input-shape {name}={shape}")
        return " ".join(hints)

    def _typed(self, inputs: list[TensorSpec]) -> list[TensorSpec]:
        """Float inputs, or integer ones where the model only runs with integers (token ids); a scalar
        held at a whole number (a sample rate) is tried as an integer first, as exporters type it."""
        inputs = [replace(s, dtype="int64") if not s.shape and s.value is not None and float(s.value).is_integer() else s
                  for s in inputs]
        one_integer = [[replace(s, dtype="int64") if j == i else s for j, s in enumerate(inputs)] for i in range(len(inputs))]
        tries = [inputs, *one_integer, [replace(s, dtype="int64") for s in inputs]]
        for specs in tries:
            try:
                with torch.no_grad():
                    self.module(*self.example_inputs(specs))
                return specs
            except Exception:  # noqa: BLE001 - the model's own error is reported later, with the first choice
                continue
        return inputs

    def shape_required(self, inputs: list[TensorSpec]) -> InputShapeError:
        sequence = min(128, self.max_sequence or 128)
        hint = guess_shapes(inputs, sequence) if self.inputs else _first_layer_hint(self.module)
        missing = ", ".join(str(s) for s in inputs if not s.is_static) or "its inputs"
        return InputShapeError(
            f"{self.path.name} does not record the shape of {missing}; "
            f"give one with --input-shape, e.g. {hint}",
            suggestion=hint,
        )

    def checked_example_inputs(self, module: torch.nn.Module, inputs: list[TensorSpec]) -> tuple[torch.Tensor, ...]:
        """Example inputs the model accepts; a clear error naming the shapes if it does not."""
        examples = self.example_inputs(inputs)
        try:
            with torch.no_grad():
                module(*examples)
        except Exception as exc:
            given = ", ".join(str(s) for s in inputs)
            loose = [s.name for s in inputs if not s.shape and s.value is None]  # a scalar left to chance
            hint = f"; if {loose[0]} must take a value (a sample rate, a flag), hold it: --hold {loose[0]}=VALUE" if loose else ""
            raise InputShapeError(f"{self.path.name} does not accept {given}: {_root_cause(exc)}{hint}") from None
        return examples

    def build_graph(self, inputs: list[TensorSpec]) -> LayerGraph:
        """Built once per input shapes: later exports take their layer names from it."""
        key = tuple((s.name, s.shape, s.dtype) for s in inputs)
        if key not in self._graphs:
            module = self.module
            graph = analysis_graph(module, self.checked_example_inputs(module, inputs), [s.name for s in inputs])
            graph.size_bytes = sum(f.stat().st_size for f in self.files)
            _count_torch_params(graph, module)
            # The exporter numbers outputs ("22"); use the recorded names, or plain ones.
            named = [s.name for s in self.outputs] or [
                "output" if len(graph.outputs) == 1 else f"output_{i}" for i in range(len(graph.outputs))
            ]
            graph.outputs = [replace(spec, name=name) for spec, name in zip(graph.outputs, named)]
            self._graphs[key] = graph
        return self._graphs[key]

    def export_onnx(self, out: Path, inputs: list[TensorSpec]) -> None:
        graph = self.build_graph(inputs)
        module = self.module
        names = [s.name for s in self.outputs] or None
        examples = self.checked_example_inputs(module, inputs)
        export_to_onnx(module, examples, out, [s.name for s in inputs], output_names=names, graph=graph,
                       dynamic_axes=free_axes(inputs, self.inputs))

    def convert_openvino(self, inputs: list[TensorSpec]) -> Any:
        import openvino as ov

        try:
            if isinstance(self.native, torch.export.ExportedProgram):
                return ov.convert_model(self.native)
            # the batch axis stays free, as ONNX exports keep it: profiling at batch 8 must not need a new shape
            shapes = [ov.PartialShape([-1 if axis == s.batch_axis or not isinstance(d, int) else d
                                       for axis, d in enumerate(s.shape)]) for s in inputs]
            return ov.convert_model(self.native, example_input=self.example_inputs(inputs), input=shapes)
        except InputShapeError:
            raise
        except Exception as exc:
            log.info("OpenVINO could not convert %s directly (%s); converting its ONNX export", self.path.name, exc)
            direct = exc
        try:  # OpenVINO's tracing frontend fails on some modules (attention fast paths) that export to ONNX fine
            with tempfile.TemporaryDirectory(prefix=work_prefix("ovconvert")) as folder:
                onnx_path = Path(folder) / f"{self.path.stem}.onnx"
                self.export_onnx(onnx_path, inputs)
                return ov.convert_model(str(onnx_path))
        except Exception:  # noqa: BLE001 - the direct conversion's error is the one worth showing
            raise ConversionError(f"OpenVINO cannot convert {self.path.name}: {first_line(direct)}") from direct


def _root_cause(exc: BaseException) -> str:
    """The last "...Error: ..." line: TorchScript wraps the real error in an interpreter trace."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line:
            return line.split("Error:", 1)[1].strip()
    return lines[-1] if lines else type(exc).__name__


def _count_torch_params(graph: LayerGraph, module: torch.nn.Module) -> None:
    """Count parameters as torch does: buffers (BatchNorm statistics) are not parameters,
    and a layer owns its module's own parameters even when the exporter merged equal ones."""
    own = {name: sum(p.numel() for p in m.parameters(recurse=False)) for name, m in module.named_modules()}
    param_names = {name for name, _ in module.named_parameters()}
    for node in graph:
        if node.name in own:
            node.params = own[node.name]
        else:
            node.params = sum(w.numel for w in node.weights if w.name in param_names and w.name.rpartition(".")[0] not in graph)


def _first_layer_hint(module: torch.nn.Module) -> str:
    for _, layer in module.named_modules():
        channels = getattr(layer, "in_channels", None)
        if isinstance(channels, int):
            dims = {1: "x64", 2: "x224x224", 3: "x16x112x112"}.get(_conv_rank(layer), "x224x224")
            return f"1x{channels}{dims} (the first layer takes {channels} channels)"
        features = getattr(layer, "in_features", None)
        if isinstance(features, int):
            return f"1x{features} (the first layer takes {features} features)"
        steps = getattr(layer, "input_size", None)  # a recurrent layer: [batch, time, features]
        if isinstance(steps, int):
            return f"1x16x{steps} (the first layer takes {steps} features per step)"
    return "1x3x224x224"


def _conv_rank(layer: torch.nn.Module) -> int:
    """1 for Conv1d (a signal), 2 for Conv2d...; TorchScript keeps kernel_size as a list."""
    kernel = getattr(layer, "kernel_size", (0, 0))
    return len(kernel) if isinstance(kernel, (tuple, list)) else 2


# forward arguments that take one number per call, which a random value would not exercise
_SCALAR_NAMES = ("sr", "sample_rate", "sampling_rate", "rate", "fs", "step", "timestep", "t")


def _spec_from_value(name: str, value: Any) -> TensorSpec:
    shape = tuple(str(d) if isinstance(d, torch.SymInt) else int(d) for d in value.shape)
    return TensorSpec(name, shape, str(value.dtype).removeprefix("torch."))


def _load_exported(path: Path) -> TorchSource:
    export_log = logging.getLogger("torch.export")
    level = export_log.level
    export_log.setLevel(logging.CRITICAL)  # torch logs the failure itself; ours is the one line the user sees
    extra = {SPEC_FILE: ""}
    try:
        program = torch.export.load(str(path), extra_files=extra)
    except Exception as exc:
        raise ModelLoadError(
            f"{path.name} is not a readable torch.export program (corrupt, truncated or from an "
            f"incompatible torch: {first_line(exc)}); "
            "re-export it with torch.export.save"
        ) from None
    finally:
        export_log.setLevel(level)
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    inputs = [
        _spec_from_value(name, placeholders[name].meta["val"])
        for name in program.graph_signature.user_inputs
        if name in placeholders and hasattr(placeholders[name].meta.get("val"), "shape")
    ]
    recorded, _ = read_spec(extra[SPEC_FILE], path, SPEC_FILE)  # a ParetoLab variant: its inputs as the original names them
    if len(recorded) == len(inputs):
        inputs = recorded
    return TorchSource(path=path, native=program, format="torch.export", inputs=inputs)


def _is_exported_program(path: Path) -> bool:
    """A torch.export archive (.pt2 by convention) whatever its name: it records its archive format."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/archive_format") for n in archive.namelist())
    except Exception:  # noqa: BLE001 - not a readable zip: not an exported program
        return False


def _is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())
    except Exception:  # a damaged archive (bad central directory, undecodable names): not TorchScript
        return False


def _check_archive(path: Path) -> None:
    """torch.jit.load trusts the archive's bytes: some damaged ones abort the whole process (found
    by the fuzz test). A zip carries a CRC-32 per member, so check every member first."""
    try:
        with zipfile.ZipFile(path) as archive:
            damaged = archive.testzip()
    except Exception as exc:  # noqa: BLE001 - any failure to read the archive means it is damaged
        raise ModelLoadError(f"{path.name} is not a readable TorchScript file ({first_line(exc)}); "
                             "re-save it with torch.jit.save") from None
    if damaged is not None:
        raise ModelLoadError(f"{path.name} is damaged: the checksum of '{damaged}' inside it does not match; "
                             "copy the file again or re-save it with torch.jit.save")


def _load_torchscript(path: Path) -> TorchSource:
    _check_archive(path)
    extra = {SPEC_FILE: ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # deprecated in torch, still what users have
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as exc:
        raise ModelLoadError(
            f"{path.name} is not a readable TorchScript file ({first_line(exc)}); "
            "re-save it with torch.jit.save"
        ) from None
    module.eval()
    inputs, outputs = read_spec(extra[SPEC_FILE], path, SPEC_FILE)
    return TorchSource(path=path, native=module, format="torchscript", inputs=inputs, outputs=outputs)


def load(path: Path, *, trust: bool = False, arch: str | None = None) -> TorchSource:
    # by content, not by name: a .pt2 renamed model.bin is still unpickled by torch.export.load
    if path.suffix.lower() == ".pt2" or _is_exported_program(path):
        guard_exported(path, trust)
        return _load_exported(path)
    if _is_torchscript(path):
        guard_torchscript(path, trust)
        return _load_torchscript(path)
    guard_zip(path)  # torch.save's zip: its declared sizes, before the unpickler reads them
    from paretolab.core.model.formats.torch_pickle import load_pickle

    return load_pickle(path, trust, arch)
