"""ONNX files, including models whose weights live in external data files."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
from google.protobuf.message import DecodeError

from paretolab.core.errors import ConversionError, ModelLoadError, first_line
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.graph_onnx import build_onnx_graph, graph_inputs, graph_outputs
from paretolab.core.tensors import TensorSpec, concrete_shapes

# ONNX Runtime runs opsets 7 and up; newer than the installed onnx package cannot be checked.
MIN_OPSET = 7
MAX_OPSET = onnx.defs.onnx_opset_version()


@dataclass
class OnnxSource:
    path: Path
    native: onnx.ModelProto  # loaded without external data: weights stay on disk
    files: list[Path] = field(default_factory=list)
    format: str = "onnx"
    arch: str | None = None  # --arch: the class the user names for the PyTorch twin in its metadata

    @property
    def inputs(self) -> list[TensorSpec]:
        return graph_inputs(self.native)

    @property
    def outputs(self) -> list[TensorSpec]:
        return graph_outputs(self.native)

    def build_graph(self, inputs: list[TensorSpec]) -> LayerGraph:
        shapes, _ = concrete_shapes(inputs)
        return build_onnx_graph(self.native, input_shapes=shapes, size_bytes=sum(f.stat().st_size for f in self.files),
                                input_values={s.name: s.value for s in inputs if s.value is not None})

    def export_onnx(self, out: Path, inputs: list[TensorSpec]) -> None:
        if len(self.files) == 1:
            shutil.copyfile(self.path, out)
            return
        model = onnx.load(str(self.path), load_external_data=True)
        onnx.save_model(model, str(out), save_as_external_data=True, location=out.name + ".data")

    def convert_openvino(self, inputs: list[TensorSpec]) -> Any:
        import openvino as ov

        try:
            return ov.convert_model(str(self.path))
        except Exception as exc:
            raise ConversionError(f"OpenVINO cannot convert {self.path.name}: {first_line(exc)}") from exc


def _external_files(model: onnx.ModelProto, path: Path) -> list[Path]:
    files: list[Path] = []
    for tensor in model.graph.initializer:
        if tensor.data_location != onnx.TensorProto.EXTERNAL:
            continue
        location = next((e.value for e in tensor.external_data if e.key == "location"), None)
        if location is None:
            continue
        f = (path.parent / location).resolve()
        if not f.is_relative_to(path.parent.resolve()):  # "../../etc/passwd" in a downloaded model
            raise ModelLoadError(
                f"{path.name} points its weights at '{location}', outside its own folder; "
                "ParetoLab only reads external data that lies beside the model"
            )
        if not f.exists():
            raise ModelLoadError(
                f"{path.name} keeps its weights in '{location}', which is missing; "
                f"put that file next to {path.name}"
            )
        if f not in files:
            files.append(f)
    return files


def _check_opset(model: onnx.ModelProto, path: Path) -> None:
    for imp in model.opset_import:
        if imp.domain in ("", "ai.onnx"):
            if imp.version > MAX_OPSET:
                raise ModelLoadError(
                    f"{path.name} uses ONNX opset {imp.version}, newer than the {MAX_OPSET} this ParetoLab "
                    f"supports; re-export it with opset {MAX_OPSET} or lower"
                )
            if imp.version < MIN_OPSET:
                raise ModelLoadError(
                    f"{path.name} uses ONNX opset {imp.version}, older than ONNX Runtime runs (7+); "
                    "convert it with onnx.version_converter or re-export it"
                )
            return
    raise ModelLoadError(f"{path.name} declares no standard ONNX opset; it is not a usable ONNX model")


def load(path: Path, *, trust: bool = False, arch: str | None = None) -> OnnxSource:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(
            f"{path.name} is not a readable ONNX file (corrupt or truncated: {first_line(exc)}); "
            "re-export or re-download it"
        ) from None
    if not model.HasField("graph") or len(model.graph.node) == 0:
        raise ModelLoadError(f"{path.name} holds no ONNX graph (corrupt, truncated, or not an ONNX file); re-export it")
    _check_opset(model, path)
    files = [path, *_external_files(model, path)]
    try:
        onnx.checker.check_model(str(path))
    except (onnx.checker.ValidationError, onnx.onnx_cpp2py_export.shape_inference.InferenceError, UnicodeDecodeError) as exc:
        # a damaged name (not UTF-8) surfaces from the checker's C++ side as UnicodeDecodeError
        raise ModelLoadError(f"{path.name} is not a valid ONNX model: {first_line(exc)}") from None
    source = OnnxSource(path=path, native=model, files=files, arch=arch)
    try:
        source.inputs, source.outputs  # noqa: B018 - read now, so a damaged declaration fails at open
    except ModelLoadError as exc:
        raise ModelLoadError(f"{path.name} {exc}") from None
    return source
