"""ModelHandle: one loaded model, whatever its format, and its conversions.

A handle never writes to the user's file: conversions go to new files written atomically.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from paretolab.core.errors import InputShapeError, ModelLoadError
from paretolab.core.files import atomic_write, work_prefix
from paretolab.core.model.formats import load_source
from paretolab.core.model.formats.source import OPENVINO_FORMATS, ModelSource
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.text_shapes import text_default
from paretolab.core.progress import Progress, silent
from paretolab.core.tensors import TensorSpec, apply_input_shapes, with_batch_axes


@dataclass
class ModelHandle:
    source: ModelSource
    inputs: list[TensorSpec]
    _graph: LayerGraph | None = field(default=None, repr=False)
    _converted: dict[str, Any] = field(default_factory=dict, repr=False)
    # what the user should know about how the model was opened (a text model at a default length)
    notes: list[str] = field(default_factory=list)
    # inputs fixed by a default rather than by the user: a shape the user gives replaces them
    defaulted: frozenset[str] = frozenset()
    # opened with --trust: code that comes with the model (a tokenizer's auto_map beside it) may run
    trusted: bool = False

    def __post_init__(self) -> None:
        self.inputs = with_batch_axes(self.inputs, self.source.inputs)

    @property
    def held(self) -> dict[str, float]:
        """Inputs held at a value in every run (a sample rate): calibration, evaluation, timing, graphs."""
        return {s.name: s.value for s in self.inputs if s.value is not None}

    def with_held(self, values: Mapping[str, float]) -> ModelHandle:
        """A handle whose inputs named in `values` take that value in every run made from it."""
        if not values:
            return self
        names = [s.name for s in self.inputs]
        unknown = [n for n in values if n not in names]
        if unknown:
            raise InputShapeError(f"--hold {unknown[0]}: {self.path.name} has no input named '{unknown[0]}'; "
                                  f"its inputs are {', '.join(names) or 'not recorded (give --input-shape NAME=...)'}")
        inputs = [replace(s, value=float(values[s.name])) if s.name in values else s for s in self.inputs]
        return ModelHandle(self.source, inputs, notes=list(self.notes), defaulted=self.defaulted, trusted=self.trusted)

    @property
    def path(self) -> Path:
        return self.source.path

    @property
    def format(self) -> str:
        return self.source.format

    @property
    def runs_on_openvino_only(self) -> bool:
        """Its native model is an ov.Model (IR, TFLite): no ONNX or PyTorch form to work on."""
        return self.format in OPENVINO_FORMATS

    @property
    def files(self) -> list[Path]:
        return list(self.source.files)

    @property
    def size_bytes(self) -> int:
        return sum(f.stat().st_size for f in self.files)

    @property
    def outputs(self) -> list[TensorSpec]:
        return self.source.outputs

    @property
    def native(self) -> Any:
        """The loaded object (onnx.ModelProto, torch.nn.Module, ExportedProgram or ov.Model)."""
        return self.source.native

    def fixed_shapes(self) -> dict[str | None, tuple[int, ...]]:
        """The shapes of the inputs that are fixed: what a file made from this model (a variant,
        an export) is opened with, so the user's --input-shape reaches every step."""
        return {s.name: tuple(d for d in s.shape if isinstance(d, int)) for s in self.inputs if s.is_static and s.shape}

    def like(self, path: Path) -> ModelHandle:
        """Open `path`, a file made from this model (same inputs), with this model's fixed shapes."""
        made = load_model(path)
        shapes = {name: shape for name, shape in self.fixed_shapes().items() if any(s.name == name for s in made.inputs)}
        dynamic = [s for s in made.inputs if (not s.is_static or s.name in made.defaulted) and s.name in shapes]
        made = made.with_input_shapes(shapes) if dynamic else made
        return made.with_held({n: v for n, v in self.held.items() if any(s.name == n for s in made.inputs)})

    def with_input_shapes(self, shapes: Mapping[str | None, Sequence[int]],
                          held: Mapping[str, float] | None = None) -> ModelHandle:
        """A handle whose dynamic (or unrecorded) input dims are fixed to `shapes`."""
        declared = {s.name: s.shape for s in self.source.inputs}
        inputs = [replace(s, shape=declared[s.name]) if s.name in self.defaulted and s.name in declared else s
                  for s in self.inputs]  # a default length gives way to the user's
        held = {**{s.name: s.value for s in inputs if s.value is not None}, **(held or {})}
        fixed = _fix_inputs(self.source, inputs, shapes, self.path.name, held)
        return ModelHandle(self.source, [replace(s, value=held[s.name]) if s.name in held else s for s in fixed],
                           trusted=self.trusted)

    def layer_graph(self, progress: Progress | None = None) -> LayerGraph:
        """The LayerGraph, built once per handle."""
        progress = progress or silent()
        if self._graph is None:
            progress.report(0.0, f"building the layer graph of {self.path.name}")
            try:
                self._graph = self.source.build_graph(self.inputs)
            except ModelLoadError as exc:  # found deep inside the graph: say which file
                raise ModelLoadError(str(exc) if self.path.name in str(exc) else f"{self.path.name} {exc}") from None
            progress.report(1.0, f"{len(self._graph)} layers")
        return self._graph

    def onnx_file(self) -> Path:
        """An ONNX file of this model for runtimes: the user's own file when it is ONNX,
        else a conversion made once into a private temp folder removed with the handle."""
        if self.format == "onnx":
            return self.path
        if "onnx" not in self._converted:
            self._converted["onnx"] = self.to_onnx(self._scratch() / f"{self.path.stem}.onnx")
        return self._converted["onnx"]

    def converted(self, key: str, make: Callable[[Path], Any]) -> Any:
        """A conversion of this model, made once by make(folder) into the private temp folder
        removed with the handle, and kept under `key`."""
        if key not in self._converted:
            self._converted[key] = make(self._scratch())
        return self._converted[key]

    def openvino_model(self) -> Any:
        """An ov.Model of this model (read or converted once)."""
        if "openvino" not in self._converted:
            self._converted["openvino"] = self.source.convert_openvino(self.inputs)
        return self._converted["openvino"]

    def _scratch(self) -> Path:
        if "scratch" not in self._converted:
            folder = Path(tempfile.mkdtemp(prefix=work_prefix("model")))
            weakref.finalize(self, shutil.rmtree, folder, ignore_errors=True)
            self._converted["scratch"] = folder
        return self._converted["scratch"]

    def to_onnx(self, out: Path) -> Path:
        """Write an ONNX form of the model to `out` (atomically) and return it."""
        return atomic_write(Path(out), lambda tmp: self.source.export_onnx(tmp, self.inputs))

    def to_openvino(self, out: Path) -> Path:
        """Write an OpenVINO IR (.xml + .bin) form of the model and return the .xml path."""
        import openvino as ov

        model = self.source.convert_openvino(self.inputs)
        return atomic_write(
            Path(out).with_suffix(".xml"), lambda tmp: ov.save_model(model, str(tmp), compress_to_fp16=False)
        )


def _fix_inputs(source: ModelSource, inputs: list[TensorSpec], shapes: Mapping[str | None, Sequence[int]],
                where: str, held: Mapping[str, float]) -> list[TensorSpec]:
    if inputs:
        return apply_input_shapes(inputs, shapes, where)
    # The format does not record inputs (TorchScript, pickles): the shapes given define them; an input
    # held at a value and not shaped is a scalar (`--hold sr=16000` needs no `sr=scalar`).
    shapes = {**{name: () for name in held}, **shapes}
    inputs_for = getattr(source, "inputs_for", None)
    if inputs_for is not None:
        return inputs_for(shapes, held)
    if None in shapes and len(shapes) > 1:
        raise InputShapeError("give every input a name when there are several: --input-shape NAME=1x3x224x224")
    return [
        TensorSpec(name or "input", tuple(int(d) for d in shape), "float32") for name, shape in shapes.items()
    ]


def load_model(
    path: str | os.PathLike,
    *,
    input_shapes: Mapping[str | None, Sequence[int]] | None = None,
    trust: bool = False,
    arch: str | None = None,
    held: Mapping[str, float] | None = None,
) -> ModelHandle:
    """Open a model file of any supported format.

    `trust` allows pickled nn.Modules (which run code while loading); `arch`
    ("package.module:Class") turns a bare state_dict into a model; `held` holds inputs at a value
    in every run (a sample rate), and an input held but not shaped is taken as a scalar.
    """
    path = Path(path).expanduser()
    source = load_source(path, trust=trust, arch=arch)
    handle = ModelHandle(source, list(source.inputs), trusted=trust)
    if input_shapes:
        handle = handle.with_input_shapes(input_shapes, held)
    elif (default := text_default(source)) is not None:
        shapes, note = default
        handle = handle.with_input_shapes(shapes)
        handle.notes.append(note)
        handle.defaulted = frozenset(name for name in shapes if name is not None)
    return handle.with_held(held or {})
