"""Models OpenVINO reads: its own IR (an .xml topology with its .bin weights beside it) and, through
its frontends, TensorFlow Lite flatbuffers and frozen TensorFlow graphs. All load as an ov.Model, so
everything that works on IR (analysis, profiling on OpenVINO, OpenVINO int8/FP16, IR export) works
on them too; what needs ONNX or PyTorch says how to convert."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov

from paretolab.core.errors import ConversionError, ModelLoadError, first_line
from paretolab.core.model.formats import saved_model_refusal
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.graph_openvino import build_openvino_graph, port_spec
from paretolab.core.tensors import TensorSpec, concrete_shapes

FRONTENDS = {  # format: what it is, and the converter to ONNX to suggest
    "tflite": ("TensorFlow Lite", "tflite2onnx or tf2onnx"),
    "tensorflow": ("a frozen TensorFlow graph", "tf2onnx"),
}


@dataclass
class OpenVinoSource:
    path: Path
    native: ov.Model
    format: str = "openvino"  # or a FRONTENDS key

    @property
    def files(self) -> list[Path]:
        return [self.path, self.path.with_suffix(".bin")] if self.format == "openvino" else [self.path]

    @property
    def inputs(self) -> list[TensorSpec]:
        return [port_spec(p) for p in self.native.inputs]

    @property
    def outputs(self) -> list[TensorSpec]:
        return [port_spec(p) for p in self.native.outputs]

    def build_graph(self, inputs: list[TensorSpec]) -> LayerGraph:
        shapes, _ = concrete_shapes(inputs)
        size = sum(f.stat().st_size for f in self.files)
        return build_openvino_graph(self.native, input_shapes=shapes, size_bytes=size)

    def export_onnx(self, out: Path, inputs: list[TensorSpec]) -> None:
        if self.format in FRONTENDS:
            kind, converter = FRONTENDS[self.format]
            raise ConversionError(
                f"{self.path.name} is {kind}, which ParetoLab runs through OpenVINO only; for ONNX Runtime and the "
                f"techniques that edit ONNX or PyTorch models, convert it first ({converter}) and open the .onnx file"
            )
        raise ConversionError(
            f"{self.path.name} is OpenVINO IR, which cannot be converted back to ONNX; "
            "open the ONNX or PyTorch model it was made from"
        )

    def convert_openvino(self, inputs: list[TensorSpec]) -> Any:
        return self.native.clone()


def load(path: Path, *, trust: bool = False, arch: str | None = None) -> OpenVinoSource:
    if path.suffix.lower() == ".tflite" or _is_tflite(path):
        return _load_frontend(path, "tflite")
    if path.suffix.lower() == ".pb":
        return _load_frontend(path, "tensorflow")
    weights = path.with_suffix(".bin")
    if not weights.exists():
        raise ModelLoadError(f"{path.name} needs its weights file {weights.name} next to it; copy both files together")
    try:  # XML must be UTF-8; OpenVINO reads damaged names as they are and fails later on every one of them
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelLoadError(f"{path.name} is not a valid OpenVINO IR (not UTF-8 text at byte {exc.start}); "
                             "it is damaged: re-save it with openvino.save_model") from None
    try:
        model = ov.Core().read_model(str(path), str(weights))
    except Exception as exc:
        reason = first_line(exc)
        raise ModelLoadError(f"{path.name} is not a valid OpenVINO IR ({reason}); re-save it with openvino.save_model") from None
    return OpenVinoSource(path=path, native=model)


def _is_tflite(path: Path) -> bool:
    """A TFLite flatbuffer carries the file identifier "TFL3" after its root offset."""
    with path.open("rb") as f:
        return f.read(8)[4:8] == b"TFL3"


def _load_frontend(path: Path, fmt: str) -> OpenVinoSource:
    kind, converter = FRONTENDS[fmt]
    if fmt == "tensorflow" and path.name == "saved_model.pb":
        raise saved_model_refusal(path.parent)
    try:
        model = _read(path, fmt)
    except Exception as exc:
        raise ModelLoadError(f"OpenVINO cannot read {path.name} as {kind} ({first_line(exc)}); "
                             f"check the file, or convert it to ONNX ({converter}) and open that") from None
    return OpenVinoSource(path=path, native=model, format=fmt)


def _read(path: Path, fmt: str) -> ov.Model:
    """OpenVINO picks its frontend by extension: files under other names go through a private copy."""
    suffix = {"tflite": ".tflite", "tensorflow": ".pb"}[fmt]
    if path.suffix.lower() == suffix:
        return ov.Core().read_model(str(path))
    with tempfile.TemporaryDirectory(prefix="paretolab-") as folder:
        copy = Path(folder) / f"model{suffix}"
        shutil.copyfile(path, copy)
        return ov.Core().read_model(str(copy))
