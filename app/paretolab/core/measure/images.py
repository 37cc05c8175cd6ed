"""Folders of images as datasets: how images become tensors (the preprocessing recipe the user
gives or the model's input suggests), and the folder layout that gives labels."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from paretolab.core.measure.data import DataError, Dataset
from paretolab.core.tensors import TensorSpec

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class ImagePreprocess:
    """How images become tensors. Defaults follow the ImageNet convention."""

    size: int = 224  # output height and width (center crop)
    resize: int | None = None  # shorter side before cropping; default size / 0.875
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    channels: str = "RGB"  # "RGB", "BGR" or "L" (grayscale)
    layout: str = "NCHW"  # or "NHWC"
    scale: float = 255.0  # pixel values are divided by this before mean and std (1: keep 0..255)

    def apply(self, path: Path) -> np.ndarray:
        from PIL import Image

        with Image.open(path) as opened:
            img = opened.convert("L" if self.channels == "L" else "RGB")
            short = self.resize or round(self.size / 0.875)
            w, h = img.size
            scale = short / min(w, h)
            img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BILINEAR)
            w, h = img.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            img = img.crop((left, top, left + self.size, top + self.size))
            array = np.asarray(img, dtype=np.float32) / self.scale
        if array.ndim == 2:
            array = array[:, :, None]
        if self.channels == "BGR":
            array = array[:, :, ::-1]
        mean = np.asarray(self.mean[: array.shape[2]] if self.channels != "L" else self.mean[:1], dtype=np.float32)
        std = np.asarray(self.std[: array.shape[2]] if self.channels != "L" else self.std[:1], dtype=np.float32)
        array = (array - mean) / std
        return np.ascontiguousarray(array.transpose(2, 0, 1) if self.layout == "NCHW" else array)

    def text(self) -> str:
        """The recipe as --preprocess takes it: what the user sees and can paste back."""
        def numbers(values: tuple[float, ...]) -> str:
            return "/".join(f"{v:g}" for v in values)

        resize = f",resize={self.resize}" if self.resize else ""
        return (f"size={self.size}{resize},mean={numbers(self.mean)},std={numbers(self.std)},channels={self.channels},"
                f"layout={self.layout},scale={self.scale:g}")

    @classmethod
    def parse(cls, text: str, spec: TensorSpec | None = None) -> ImagePreprocess:
        """"size=224,mean=0.5/0.5/0.5,std=0.5/0.5/0.5,channels=BGR,layout=NHWC,scale=255": keys not
        given keep the defaults shaped to the model's input."""
        overrides: dict[str, Any] = {}
        for item in filter(None, (part.strip() for part in text.split(","))):
            key, _, value = item.partition("=")
            key = key.strip().lower()
            try:
                overrides[key] = _PREPROCESS_KEYS[key](value.strip())
            except KeyError:
                raise DataError(f"preprocessing '{item}': unknown setting '{key}'; use {', '.join(_PREPROCESS_KEYS)}") from None
            except ValueError:
                raise DataError(f"preprocessing '{item}': {_PREPROCESS_HELP[key]}") from None
        return cls.for_input(spec, **overrides)

    @classmethod
    def for_input(cls, spec: TensorSpec | None, **overrides: Any) -> ImagePreprocess:
        """Defaults shaped to the model's input: its spatial size, layout and channel count."""
        settings: dict = {}
        if spec is not None and len(spec.shape) == 4:
            _, a, b, c = spec.shape
            if isinstance(a, int) and a in (1, 3) and isinstance(b, int):
                settings.update(layout="NCHW", size=b, channels="L" if a == 1 else "RGB")
            elif isinstance(c, int) and c in (1, 3) and isinstance(a, int):
                settings.update(layout="NHWC", size=a, channels="L" if c == 1 else "RGB")
        settings.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**settings)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise ValueError(value)
    return number


def _floats(value: str) -> tuple[float, ...]:
    return tuple(float(v) for v in value.split("/"))


def _choice(*options: str) -> Any:
    def parse(value: str) -> str:
        if value.upper() not in options:
            raise ValueError(value)
        return value.upper()
    return parse


_PREPROCESS_KEYS: dict[str, Any] = {"size": _positive, "resize": _positive, "mean": _floats, "std": _floats,
                                    "channels": _choice("RGB", "BGR", "L"), "layout": _choice("NCHW", "NHWC"),
                                    "scale": float}
_PREPROCESS_HELP = {"size": "give the side in pixels, e.g. size=224",
                    "resize": "give the shorter side in pixels, e.g. resize=256",
                    "mean": "give one number per channel, e.g. mean=0.485/0.456/0.406",
                    "std": "give one number per channel, e.g. std=0.229/0.224/0.225",
                    "channels": "use RGB, BGR or L", "layout": "use NCHW or NHWC",
                    "scale": "give the number pixels are divided by, e.g. scale=255 (or 1 for 0..255)"}


@dataclass
class ImageFolderDataset(Dataset):
    root: Path
    files: list[Path]
    labels: np.ndarray | None
    classes: list[str] = field(default_factory=list)
    preprocess: ImagePreprocess = field(default_factory=ImagePreprocess)
    origin: str = ""  # where the recipe came from and where it is remembered, for the note the user reads

    @property
    def name(self) -> str:  # type: ignore[override]
        return str(self.root)

    def __len__(self) -> int:
        return len(self.files)

    def load(self, indices: np.ndarray) -> list[np.ndarray]:
        images = []
        for i in indices:
            try:
                images.append(self.preprocess.apply(self.files[i]))
            except OSError as exc:
                raise DataError(f"{self.files[i]} is not a readable image ({exc}); remove or replace it") from None
        return [np.stack(images)]


def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def image_folder(root: Path, preprocess: ImagePreprocess | None = None) -> ImageFolderDataset:
    """One subfolder per class (labelled), or images directly in `root` (unlabelled)."""
    root = Path(root)
    preprocess = preprocess or ImagePreprocess()
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not class_dirs:
        files = _images_in(root)
        if not files:
            raise DataError(f"{root} has no images; put them in one subfolder per class ({root}/cat/1.jpg, ...)")
        return ImageFolderDataset(root, files, None, [], preprocess)
    files, labels, classes = [], [], []
    for d in class_dirs:
        images = _images_in(d)
        if images:
            classes.append(d.name)
            files += images
            labels += [len(classes) - 1] * len(images)
    if not files:
        raise DataError(f"{root} has class folders but no images in them ({', '.join(d.name for d in class_dirs[:5])})")
    if len(classes) == 1:
        raise DataError(
            f"{root} has only one class folder ('{classes[0]}'); accuracy needs two or more "
            "(or put the images directly in the folder to use them unlabelled)"
        )
    return ImageFolderDataset(root, files, np.asarray(labels, dtype=np.int64), classes, preprocess)


# -- the recipe remembered per model -----------------------------------------------------------

PREPROCESS_MEMORY = "preprocessing.json"


def preprocess_memory() -> Path:
    """Where recipes are remembered: the user's config folder (PARETOLAB_CONFIG_DIR overrides it,
    as the test suite does to keep each test's memory its own), never beside their model."""
    import platformdirs

    folder = os.environ.get("PARETOLAB_CONFIG_DIR") or platformdirs.user_config_dir("paretolab")
    return Path(folder) / PREPROCESS_MEMORY


def model_key(model: Path) -> str:
    """The model's SHA-256 (a folder: its files' names and contents), so a recipe follows the
    model's content, not its path, and a retrained file with new statistics starts afresh."""
    digest = hashlib.sha256()
    files = [model] if model.is_file() else sorted(p for p in model.rglob("*") if p.is_file())
    for file in files:
        if file != model:
            digest.update(str(file.relative_to(model)).encode())
        with file.open("rb") as opened:
            for block in iter(lambda: opened.read(1 << 20), b""):  # noqa: B023 - read before the next file opens
                digest.update(block)
    return digest.hexdigest()


def settle_preprocess(data: ImageFolderDataset, model: Path, given: ImagePreprocess | None,
                      spec: TensorSpec | None = None) -> None:
    """Ask once, remember: a recipe given (--preprocess) is remembered for `model`; with none
    given, the one remembered for it is used, else the one inferred from its input (remembered too)."""
    memory = preprocess_memory()
    saved = _read_memory(memory)
    try:
        key = model_key(model)
    except OSError:  # an unreadable model was read by its loader already; keep the recipe, forget nothing
        data.origin = "not remembered: the model file could not be read"
        return
    entry = saved.get(key)
    if given is None and isinstance(entry, dict) and isinstance(entry.get("recipe"), str):
        try:
            data.preprocess = ImagePreprocess.parse(entry["recipe"], spec)
            data.origin = f"remembered for {model.name} in {memory}"
            return
        except DataError:
            pass  # a recipe edited by hand into nonsense: infer again and remember that
    data.preprocess = given or data.preprocess
    how = "as given" if given else "inferred from the model's input"
    unchanged = saved.get(key) == (entry := {"model": str(model), "recipe": data.preprocess.text()})
    saved[key] = entry
    try:
        if not unchanged:  # the same recipe again: nothing to write
            _write_memory(memory, saved)
        data.origin = f"{how}; remembered for {model.name} in {memory}"
    except OSError as exc:
        data.origin = f"{how}; not remembered ({memory}: {exc.strerror or exc})"


def _read_memory(memory: Path) -> dict[str, Any]:
    try:
        saved = json.loads(memory.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # none yet, or damaged: start afresh (it is our own file)
        return {}
    return saved if isinstance(saved, dict) else {}


def _write_memory(memory: Path, saved: dict[str, Any]) -> None:
    memory.parent.mkdir(parents=True, exist_ok=True)
    handle, temp = tempfile.mkstemp(prefix=".preprocessing-", suffix=".json", dir=memory.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(saved, out, indent=1)
        os.replace(temp, memory)
    except OSError:
        Path(temp).unlink(missing_ok=True)
        raise
