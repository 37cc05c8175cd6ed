"""The interface every format's loader fulfils."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from paretolab.core.model.graph import LayerGraph
from paretolab.core.tensors import TensorSpec

Shapes = Mapping[str, tuple[int, ...]]

OPENVINO_FORMATS = ("openvino", "tflite", "tensorflow")  # formats whose native model is an ov.Model


class ModelSource(Protocol):
    format: str  # "onnx", "torchscript", "torch.export", "torch-pickle", "torch-state-dict", or OPENVINO_FORMATS
    path: Path
    files: list[Path]  # every file the model occupies on disk (external data, .bin, ...)
    inputs: list[TensorSpec]  # may be empty when the format does not record them (TorchScript)
    outputs: list[TensorSpec]
    native: Any  # the loaded object: onnx.ModelProto, torch.nn.Module, ExportedProgram, ov.Model

    def build_graph(self, inputs: list[TensorSpec]) -> LayerGraph: ...

    def export_onnx(self, out: Path, inputs: list[TensorSpec]) -> None: ...

    def convert_openvino(self, inputs: list[TensorSpec]) -> Any: ...
