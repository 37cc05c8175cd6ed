"""OpenVINO IR: an .xml topology with its .bin weights beside it."""

from __future__ import annotations

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
    format: str = "openvino"

    @property
    def files(self) -> list[Path]:
        return [self.path, self.path.with_suffix(".bin")]

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
        raise ConversionError(
            f"{self.path.name} is OpenVINO IR, which cannot be converted back to ONNX; "
            "open the ONNX or PyTorch model it was made from"
        )

    def convert_openvino(self, inputs: list[TensorSpec]) -> Any:
        return self.native.clone()


def load(path: Path, *, trust: bool = False, arch: str | None = None) -> OpenVinoSource:
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
