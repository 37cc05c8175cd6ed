"""Export a variant for deployment — ONNX, OpenVINO IR, a PyTorch file, or a Triton Inference
Server model folder — then load the exported file again and re-evaluate it, so the numbers a
user ships are the numbers they saw."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from paretolab.core.errors import ConversionError, ParetoLabError
from paretolab.core.files import atomic_write, check_writable
from paretolab.core.measure.data import Dataset
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.runtimes import default_backend
from paretolab.core.model.handle import ModelHandle, load_model
from paretolab.core.model.torch_artifact import TORCH_FORMATS, torch_sibling
from paretolab.core.progress import Progress, silent
from paretolab.core.tensors import TensorSpec

ExportFormat = Literal["onnx", "openvino", "pytorch", "triton"]
EXPORT_FORMATS: tuple[str, ...] = ("onnx", "openvino", "pytorch", "triton")
_TRITON_TYPES = {
    "float32": "TYPE_FP32", "float16": "TYPE_FP16", "float64": "TYPE_FP64", "int64": "TYPE_INT64",
    "int32": "TYPE_INT32", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8", "bool": "TYPE_BOOL",
}


@dataclass
class ExportResult:
    path: Path  # the file (or, for Triton, the model folder) written
    format: str
    top1: float | None  # re-measured on the exported file
    agreement: float | None  # with the variant it was exported from
    expected_top1: float | None

    @property
    def matches(self) -> bool:
        """The exported file scores what the variant scored (to the last sample)."""
        if self.expected_top1 is None or self.top1 is None:
            return self.agreement is None or self.agreement >= 0.999
        return abs(self.top1 - self.expected_top1) < 1e-9


def export_variant(variant: ModelHandle, fmt: ExportFormat, dest: Path, data: Dataset, *, expected_top1: float | None = None,
                   name: str | None = None, progress: Progress | None = None, force: bool = False,
                   protect: tuple[Path, ...] = ()) -> ExportResult:
    """Write `variant` to `dest` in `fmt` and re-evaluate what was written. An existing file there
    is replaced only with `force`; the variant's own files and those in `protect` (the model it
    came from) never are."""
    progress = progress or silent()
    dest = Path(dest)
    check_targets(export_targets(variant, fmt, dest), (*variant.files, *_siblings(variant), *protect), force)
    size = sum(f.stat().st_size for f in (*variant.files, *_siblings(variant)) if f.is_file())
    check_writable(dest if fmt == "triton" else dest.parent, 2 * size + (1 << 20), f"the {fmt} export")
    progress.report(0.1, f"exporting {variant.path.name} as {fmt}")
    if fmt == "onnx":
        if variant.runs_on_openvino_only:
            raise ConversionError(f"{variant.path.name} is OpenVINO IR (int8 for OpenVINO); export it as openvino or triton")
        path = variant.to_onnx(dest.with_suffix(".onnx"))
        backend = "ort"
    elif fmt == "openvino":
        path = variant.to_openvino(dest.with_suffix(".xml"))
        backend = "openvino"
    elif fmt == "pytorch":
        source = _torch_file(variant)
        path = atomic_write(dest.with_suffix(source.suffix), lambda tmp: shutil.copyfile(source, tmp))
        backend = "torch"
    elif fmt == "triton":
        path, backend = _triton_folder(variant, dest, name or dest.name)
    else:
        raise ParetoLabError(f"unknown export format '{fmt}'; choose {', '.join(EXPORT_FORMATS)}")
    progress.report(0.6, "re-loading and re-evaluating the exported file")
    exported = load_model(_model_file(path, fmt))
    own = "torch" if variant.format in TORCH_FORMATS else default_backend(variant)  # where the variant was measured
    result = evaluate(exported, data, backend=backend, reference=variant, reference_backend=own)
    progress.report(1.0, f"exported to {path}")
    return ExportResult(path, fmt, result.top1, result.agreement, expected_top1)


def export_targets(variant: ModelHandle, fmt: str, dest: Path) -> list[Path]:
    """The paths an export to `dest` writes (for Triton, its folder and the files in it)."""
    if fmt == "onnx":
        return [dest.with_suffix(".onnx")]
    if fmt == "openvino":
        return [dest.with_suffix(".xml"), dest.with_suffix(".bin")]
    if fmt == "pytorch":
        return [dest.with_suffix(_torch_file(variant).suffix)]
    if fmt == "triton":
        return [dest / "config.pbtxt", dest / "1" / "model.onnx", dest / "1" / "model.xml", dest / "1" / "model.bin"]
    return []


def check_targets(targets: list[Path], protected: tuple[Path, ...], force: bool) -> None:
    """Refuse, in one line, to write over a file that is there, unless `force`; never over a
    protected one (the variant, the model it came from), whatever `force` says."""
    for target in targets:
        if not target.exists():
            continue
        if any(_same(target, p) for p in protected):
            raise ParetoLabError(f"{target} is the model this variant was made from (or the variant itself); "
                                 "ParetoLab never writes over it: choose another --out")
        if not force:
            raise ParetoLabError(f"{target} exists; pass --force to replace it, or choose another --out")


def _same(a: Path, b: Path) -> bool:
    try:
        return Path(a).samefile(b)
    except OSError:
        return False


def _siblings(variant: ModelHandle) -> list[Path]:
    sibling = torch_sibling(variant.path)
    return [sibling] if sibling else []


def _torch_file(variant: ModelHandle) -> Path:
    """The variant's PyTorch file: itself, or the one saved beside its ONNX file."""
    if variant.format in TORCH_FORMATS:
        return variant.path
    sibling = torch_sibling(variant.path)
    if sibling is None:
        raise ConversionError(f"{variant.path.name} has no PyTorch form: a variant gets one when its recipe ends by "
                              "editing the PyTorch model (prune, low-rank, distill); export it as onnx, openvino or triton")
    return sibling


def _model_file(path: Path, fmt: str) -> Path:
    if fmt != "triton":
        return path
    version = path / "1"
    return next(version.glob("model.onnx"), None) or next(version.glob("model.xml"))


def _triton_folder(variant: ModelHandle, folder: Path, name: str) -> tuple[Path, str]:
    """Triton's layout: NAME/config.pbtxt and NAME/1/model.onnx (or model.xml + model.bin for
    the OpenVINO backend)."""
    folder.mkdir(parents=True, exist_ok=True)
    version = folder / "1"
    version.mkdir(exist_ok=True)
    if variant.runs_on_openvino_only:
        variant.to_openvino(version / "model.xml")
        platform, backend = 'backend: "openvino"', "openvino"
    else:
        variant.to_onnx(version / "model.onnx")
        platform, backend = 'platform: "onnxruntime_onnx"', "ort"
    exported = load_model(_model_file(folder, "triton"))
    config = triton_config(name, platform, exported.inputs, exported.outputs)
    atomic_write(folder / "config.pbtxt", lambda tmp: tmp.write_text(config))
    return folder, backend


def triton_config(name: str, platform: str, inputs: list[TensorSpec], outputs: list[TensorSpec]) -> str:
    """config.pbtxt with a dynamic batch dimension when the model's first axis is dynamic."""
    batched = all(s.shape and not isinstance(s.shape[0], int) for s in inputs)

    def tensor(spec: TensorSpec) -> str:
        dims = spec.shape[1:] if batched else spec.shape
        dims_text = ", ".join(str(d) if isinstance(d, int) else "-1" for d in dims)
        data_type = _TRITON_TYPES.get(spec.dtype, "TYPE_FP32")
        return f'  {{\n    name: {_text_string(spec.name)}\n    data_type: {data_type}\n    dims: [ {dims_text} ]\n  }}'

    lines = [f"name: {_text_string(name)}", platform, f"max_batch_size: {64 if batched else 0}"]
    lines.append("input [\n" + ",\n".join(tensor(s) for s in inputs) + "\n]")
    lines.append("output [\n" + ",\n".join(tensor(s) for s in outputs) + "\n]")
    return "\n".join(lines) + "\n"


def _text_string(text: str) -> str:
    """`text` as a protobuf text-format string literal: a quote, backslash or newline in a tensor's
    name would otherwise end the string early or break the line, and Triton would refuse the file."""
    from google.protobuf import text_encoding

    return '"' + text_encoding.CEscape(text, as_utf8=True) + '"'


def remove_export(path: Path) -> None:
    """Delete what export_variant wrote (a file with its companions, or a Triton folder)."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        for f in (path, path.with_suffix(".bin")):
            f.unlink(missing_ok=True)
