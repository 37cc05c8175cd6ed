"""Hugging Face model folders (config.json + model.safetensors or pytorch_model.bin), opened as
eager PyTorch modules with `transformers` (the optional `hf` extra), never touching the hub.

The model is wrapped so that it takes its inputs as positional tensors and returns its main output
as one tensor (logits, else the last hidden state): what the exporters, the runtimes, pruning and
distillation all expect of a torch model. Its inputs come from the model itself: token ids and an
attention mask with free batch and sequence axes for text, pixel values at the configured image
size for vision.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from paretolab.core.errors import ModelLoadError, first_line
from paretolab.core.model.formats.hf_trust import check_remote_code, check_shard_index
from paretolab.core.model.formats.torch_file import TorchSource
from paretolab.core.tensors import TensorSpec

FORMAT = "huggingface"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
TEXT_INPUTS = ("input_ids", "attention_mask")  # the ones every text model takes; token_type_ids default to zeros
OUTPUT_KEYS = ("logits", "last_hidden_state", "pooler_output")


class HuggingFaceModule(torch.nn.Module):
    """A transformers model called with positional tensors, returning one tensor."""

    def __init__(self, model: torch.nn.Module, input_names: list[str], output_key: str) -> None:
        super().__init__()
        self.model = model
        self.input_names = list(input_names)
        self.output_key = output_key

    @property
    def config(self) -> Any:
        return self.model.config

    def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
        return _call(self.model, self.input_names, tensors)[self.output_key]


def _call(model: torch.nn.Module, names: list[str], tensors: Any) -> Any:
    kwargs = dict(zip(names, tensors))
    if "use_cache" in inspect.signature(model.forward).parameters:
        kwargs["use_cache"] = False  # decoders: no key/value cache among the outputs
    return model(**kwargs, return_dict=True)


def is_model_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file()


def load(path: Path, *, trust: bool = False, arch: str | None = None) -> TorchSource:
    folder = path.parent if path.name == "config.json" else path
    weights = [name for name in WEIGHT_FILES if (folder / name).is_file()]
    if not weights:
        raise ModelLoadError(f"{folder.name} has a config.json but no weights ({' or '.join(WEIGHT_FILES[::2])}); "
                             "copy the whole folder that save_pretrained wrote")
    check_remote_code(folder, trust)  # before transformers reads the folder: it would ask on stdin
    check_shard_index(folder)
    transformers = _import_transformers()
    config = _config(transformers, folder, trust)
    model = _model(transformers, config, folder, trust)
    inputs = _inputs(model, config)
    output = _main_output(model, inputs, folder)
    module = HuggingFaceModule(model, [s.name for s in inputs], output.name)
    files = sorted(p for p in folder.iterdir() if p.is_file())
    positions = getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
    return TorchSource(path=folder, native=module, format=FORMAT, inputs=inputs, outputs=[output], file_list=files,
                       max_sequence=positions)


def _import_transformers() -> Any:
    try:
        import transformers
    except ImportError:
        raise ModelLoadError("opening Hugging Face folders needs the transformers package: "
                             "pip install 'paretolab[hf]'") from None
    transformers.logging.set_verbosity_error()
    return transformers


def _config(transformers: Any, folder: Path, trust: bool) -> Any:
    try:
        return transformers.AutoConfig.from_pretrained(folder, local_files_only=True, trust_remote_code=trust)
    except Exception as exc:  # noqa: BLE001 - transformers raises ValueError, OSError, KeyError...
        raise ModelLoadError(f"{folder.name}/config.json is not a configuration transformers knows "
                             f"({first_line(exc)}); check the model type, or upgrade transformers") from None


def _model(transformers: Any, config: Any, folder: Path, trust: bool) -> torch.nn.Module:
    """The class config.json names (the task head it was saved with), else the bare model. Only
    transformers' own model classes are taken from config.json, never any other name it exports."""
    architectures = [a for a in getattr(config, "architectures", None) or [] if isinstance(a, str)]
    cls = next((getattr(transformers, a) for a in architectures if _is_model_class(transformers, a)), None)
    if cls is None:
        cls = transformers.AutoModel
    try:
        with _quiet():
            model = cls.from_pretrained(folder, config=config, local_files_only=True, trust_remote_code=trust)
    except Exception as exc:  # noqa: BLE001 - a library failure becomes one line
        raise ModelLoadError(f"transformers cannot load {folder.name} as {getattr(cls, '__name__', cls)}: "
                             f"{first_line(exc)}") from None
    return model.eval()


def _is_model_class(transformers: Any, name: str) -> bool:
    cls = getattr(transformers, name, None)
    return isinstance(cls, type) and issubclass(cls, transformers.PreTrainedModel)


def _inputs(model: torch.nn.Module, config: Any) -> list[TensorSpec]:
    main = getattr(model, "main_input_name", "input_ids")
    if main == "pixel_values":
        size = getattr(config, "image_size", 224)
        height, width = (size, size) if isinstance(size, int) else tuple(size)
        return [TensorSpec("pixel_values", ("batch", int(getattr(config, "num_channels", 3)), height, width), "float32")]
    if main == "input_ids":
        accepted = inspect.signature(model.forward).parameters
        return [TensorSpec(name, ("batch", "sequence"), "int64") for name in TEXT_INPUTS if name in accepted]
    raise ModelLoadError(f"{type(model).__name__} takes '{main}' (audio or another modality); ParetoLab opens text "
                         "and vision models from Hugging Face folders: export it to ONNX and open that")


def _main_output(model: torch.nn.Module, inputs: list[TensorSpec], folder: Path) -> TensorSpec:
    """The output to expose (logits, else hidden states) and its shape, by a small trial call: the
    output classes differ per head. Its free axes are named as the inputs' are."""
    trial = {"batch": 1, "sequence": 7}  # sizes no hidden or vocabulary size is likely to equal
    examples = [torch.ones([trial[d] if isinstance(d, str) else int(d or 1) for d in s.shape],
                           dtype=getattr(torch, s.dtype)) for s in inputs]  # token 1, every position attended
    try:
        with torch.no_grad():
            outputs = _call(model, [s.name for s in inputs], examples)
    except Exception as exc:  # noqa: BLE001
        raise ModelLoadError(f"{folder.name} does not run on example inputs: {first_line(exc)}") from None
    key = next((k for k in OUTPUT_KEYS if k in outputs and isinstance(outputs[k], torch.Tensor)), None)
    if key is None:
        raise ModelLoadError(f"{folder.name} returns {', '.join(outputs.keys())}, none of them logits or hidden states")
    names = {size: name for name, size in trial.items()}
    shape = tuple(names.get(d, d) if axis < 2 else d for axis, d in enumerate(outputs[key].shape))
    return TensorSpec(key, shape, "float32")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """transformers prints progress bars and load reports to stderr; a desktop app has its own."""
    logging.getLogger("transformers").setLevel(logging.ERROR)
    with contextlib.redirect_stderr(io.StringIO()):
        yield
