"""One loader per model format, chosen by extension, or by content when the extension says
nothing (a TorchScript archive saved as model.bin, an ONNX file without its suffix).

Each loader returns a ModelSource; ModelHandle (core/model/handle.py) wraps it. Loaders import
their runtime (torch, openvino) lazily, so inspecting an ONNX file never pays for torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from paretolab.core.errors import ModelLoadError
from paretolab.core.model.formats.source import ModelSource

SUPPORTED = (
    ".onnx, .pt/.pth (TorchScript, pickled nn.Module, or state_dict with --arch), .jit/.torchscript/.ptl, "
    ".pt2 (torch.export), .xml + .bin (OpenVINO IR), .tflite, .pb (frozen TensorFlow graph), these by content, "
    "and Hugging Face folders (or their config.json)"
)

_LOADERS = {
    ".onnx": "onnx_file",
    ".pt": "torch_file",
    ".pth": "torch_file",
    ".ckpt": "torch_file",
    ".pt2": "torch_file",
    ".jit": "torch_file",  # TorchScript archives go by these names too; the loader reads the content
    ".torchscript": "torch_file",
    ".ptl": "torch_file",
    ".xml": "openvino_file",
    ".tflite": "openvino_file",
    ".pb": "openvino_file",
}


MODEL_SUFFIXES = tuple(_LOADERS)
FILE_DIALOG_FILTER = (  # what the open dialog offers; a Hugging Face folder opens by its config.json
    f"Models ({' '.join('*' + s for s in MODEL_SUFFIXES)} config.json);;All files (*)"
)


def check_readable(path: Path) -> None:
    """The checks every format shares: the file exists, is a file, and is not empty."""
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file; check the path")
    if path.is_dir() and (path / "saved_model.pb").exists():
        raise saved_model_refusal(path)
    if path.is_dir() and (path / "config.json").is_file():  # a Hugging Face model folder
        return
    if path.is_dir():
        raise ModelLoadError(f"{path} is a folder; open the model file inside it (.onnx, .pt, .pt2 or .xml), "
                             "or a Hugging Face folder (with config.json)")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except PermissionError:
        raise ModelLoadError(f"{path}: permission denied; make the file readable") from None
    if size == 0:
        raise ModelLoadError(f"{path} is empty (0 bytes); the save or copy that made it did not finish")
    check_fits_in_memory(path, size)


def saved_model_refusal(folder: Path) -> ModelLoadError:
    """OpenVINO reads SavedModels, but ParetoLab has no way to test that here (no TensorFlow to write
    one), so it points at the converter instead of promising."""
    return ModelLoadError(f"{folder} is a TensorFlow SavedModel; convert it with `ovc {folder}` (installed with "
                          "OpenVINO) and open the .xml it writes, or export it to TFLite or ONNX")


def check_fits_in_memory(path: Path, size: int) -> None:
    """Loading takes about twice the file's size (file bytes and the runtime's copy)."""
    import psutil

    available = psutil.virtual_memory().available
    if 2 * size > available:
        raise ModelLoadError(
            f"{path.name} is {size / 2**30:.1f} GiB and loading it needs about {2 * size / 2**30:.1f} GiB, "
            f"but only {available / 2**30:.1f} GiB of memory is free; close other programs or use a bigger machine"
        )


def load_source(path: Path, *, trust: bool = False, arch: str | None = None) -> ModelSource:
    check_readable(path)
    suffix = path.suffix.lower()
    if suffix == ".bin" and path.with_suffix(".xml").exists():
        raise ModelLoadError(f"{path} is the weights half of an OpenVINO IR; open {path.with_suffix('.xml').name} instead")
    if path.is_dir() or path.name == "config.json":
        loader: str | None = "hf_folder"
    else:
        loader = _LOADERS.get(suffix) or sniff_format(path)
    if loader is None and suffix in (".h5", ".keras"):
        raise ModelLoadError(f"{path.name} is a Keras model; export it to TFLite (tf.lite.TFLiteConverter) or ONNX "
                             "(tf2onnx) and open that")
    if loader is None:
        raise ModelLoadError(f"{path.name}: unknown model format '{suffix or path.name}'; ParetoLab opens {SUPPORTED}")
    module = importlib.import_module(f"paretolab.core.model.formats.{loader}")
    return module.load(path, trust=trust, arch=arch)


def sniff_format(path: Path) -> str | None:
    """The loader for a file by its first bytes: torch's zip archives (TorchScript, torch.export,
    torch.save) and legacy pickles, OpenVINO's XML, TFLite flatbuffers, and ONNX (a protobuf that
    parses as a model)."""
    with path.open("rb") as f:
        head = f.read(512)
    if head.startswith(b"PK\x03\x04") or head[:1] == b"\x80":
        return "torch_file"
    if head.lstrip().startswith(b"<?xml") and b"<net " in head:
        return "openvino_file"
    if head[4:8] == b"TFL3":  # TFLite's flatbuffer identifier; OpenVINO's frontend reads it
        return "openvino_file"
    return "onnx_file" if _parses_as_onnx(path) else None


def _parses_as_onnx(path: Path) -> bool:
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - anything that is not an ONNX protobuf
        return False
    return model.ir_version > 0 and len(model.graph.node) > 0
