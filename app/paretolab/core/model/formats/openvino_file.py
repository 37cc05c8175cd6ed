"""Models OpenVINO reads: its own IR (an .xml topology with its .bin weights beside it) and, through
its frontends, TensorFlow Lite flatbuffers. Both load as an ov.Model, so everything that works on
IR (analysis, profiling on OpenVINO, OpenVINO int8/FP16, IR export) works on them too."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openvino as ov

from paretolab.core.errors import ConversionError, ModelLoadError, first_line
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.graph_openvino import build_openvino_graph, port_spec
from paretolab.core.tensors import TensorSpec, concrete_shapes


@dataclass
class OpenVinoSource:
    path: Path
    native: ov.Model
    format: str = "openvino"  # or "tflite": see OPENVINO_FORMATS

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
        if self.format == "tflite":
            raise ConversionError(
                f"{self.path.name} is TensorFlow Lite, which ParetoLab runs through OpenVINO only; for ONNX Runtime "
                "and the techniques that edit ONNX or PyTorch models, convert it first (tflite2onnx or tf2onnx) "
                "and open the .onnx file"
            )
        raise ConversionError(
            f"{self.path.name} is OpenVINO IR, which cannot be converted back to ONNX; "
            "open the ONNX or PyTorch model it was made from"
        )

    def convert_openvino(self, inputs: list[TensorSpec]) -> Any:
        return self.native.clone()


def load(path: Path, *, trust: bool = False, arch: str | None = None) -> OpenVinoSource:
    if path.suffix.lower() == ".tflite" or _is_tflite(path):
        return load_tflite(path)
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


def load_tflite(path: Path) -> OpenVinoSource:
    if not _is_tflite(path):
        raise ModelLoadError(f"{path.name} is not a TensorFlow Lite model (no TFL3 identifier); "
                                 "check that the file is a .tflite flatbuffer")
    try:
        model = _read_tflite(path)
    except Exception as exc:
        raise ModelLoadError(f"OpenVINO cannot read {path.name} as TensorFlow Lite ({first_line(exc)}); "
                             "convert it to ONNX (tflite2onnx) and open that") from None
    return OpenVinoSource(path=path, native=model, format="tflite")


def _read_tflite(path: Path) -> ov.Model:
    """OpenVINO's TFLite frontend reads only files named *.tflite: others go through a private copy."""
    if path.suffix.lower() == ".tflite":
        return ov.Core().read_model(str(path))
    with tempfile.TemporaryDirectory(prefix="paretolab-tflite-") as folder:
        copy = Path(folder) / "model.tflite"
        shutil.copyfile(path, copy)
        return ov.Core().read_model(str(copy))
