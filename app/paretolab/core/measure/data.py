"""Datasets: the built-in digits split, image folders, .npz/.npy tensors, random inputs.

A dataset yields batches of model inputs (one array per model input, batch first) and,
when it has them, integer class labels. Images are decoded lazily, batch by batch, so a
folder larger than memory still evaluates.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from paretolab.core.errors import InputShapeError, ParetoLabError
from paretolab.core.tensors import TensorSpec, format_shape, guess_shapes, is_free

if TYPE_CHECKING:  # images.py builds on these datasets
    from paretolab.core.measure.images import ImagePreprocess

_INPUT_KEYS = ("inputs", "input", "x", "data", "images", "features")
_LABEL_KEYS = ("labels", "label", "y", "targets", "target")


class DataError(ParetoLabError):
    """Data that cannot be read, or does not fit the model."""


@dataclass
class Batch:
    inputs: list[np.ndarray]
    labels: np.ndarray | None
    indices: np.ndarray


class Dataset(ABC):
    name: str
    labels: np.ndarray | None

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def load(self, indices: np.ndarray) -> list[np.ndarray]:
        """The inputs of the samples at `indices`, one array per model input as the model takes
        it: batched along the input's batch axis (first for most)."""

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def batches(self, batch_size: int) -> Iterator[Batch]:
        if batch_size < 1:
            raise DataError(f"batch size must be at least 1, not {batch_size}")
        for start in range(0, len(self), batch_size):
            idx = np.arange(start, min(start + batch_size, len(self)))
            yield Batch(self.load(idx), None if self.labels is None else self.labels[idx], idx)

    def subset(self, indices: Sequence[int] | np.ndarray, name: str | None = None) -> Dataset:
        return SubsetDataset(self, np.asarray(indices, dtype=np.int64), name)

    def describe(self) -> str:
        labels = "labelled" if self.has_labels else "unlabelled"
        return f"{self.name}: {len(self)} samples, {labels}"


@dataclass
class ArrayDataset(Dataset):
    """Arrays that hold one sample per row. `batch_axes` says where each input stacks its samples
    (None: the input takes one value per call, the first sample's)."""

    name: str
    arrays: list[np.ndarray]
    labels: np.ndarray | None = None
    batch_axes: Sequence[int | None] | None = None

    def __post_init__(self) -> None:
        sizes = {len(a) for a in self.arrays} | ({len(self.labels)} if self.labels is not None else set())
        if len(sizes) != 1:
            raise DataError(f"{self.name}: inputs and labels have different numbers of samples ({sorted(sizes)})")
        if len(self) == 0:
            raise DataError(f"{self.name} holds no samples")

    def __len__(self) -> int:
        return len(self.arrays[0])

    def load(self, indices: np.ndarray) -> list[np.ndarray]:
        axes = self.batch_axes or [0] * len(self.arrays)
        return [_stack(a[indices], axis) for a, axis in zip(self.arrays, axes)]


def _stack(samples: np.ndarray, axis: int | None) -> np.ndarray:
    if axis is None:
        return np.asarray(samples[0])
    return samples if axis == 0 else np.moveaxis(samples, 0, axis)


@dataclass
class SubsetDataset(Dataset):
    base: Dataset
    indices: np.ndarray
    subset_name: str | None = None

    @property
    def name(self) -> str:  # type: ignore[override]
        return self.subset_name or f"{self.base.name}[{len(self.indices)}]"

    @property
    def labels(self) -> np.ndarray | None:  # type: ignore[override]
        return None if self.base.labels is None else self.base.labels[self.indices]

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, indices: np.ndarray) -> list[np.ndarray]:
        return self.base.load(self.indices[indices])


SPLITS = ("train", "val", "test")


def tensor_file(path: Path, inputs: Sequence[TensorSpec | str] = (), split: str | None = None) -> ArrayDataset:
    """.npy (inputs only) or .npz: one array per model input under the input's name (or, for a
    single input, under `inputs`/`x`), one sample per row; labels under `labels`/`y`; or a split
    file with `train_images`, `val_labels`, .... An input that takes one value per call (a scalar,
    a fixed state) may hold just that value."""
    path = Path(path)
    specs = [TensorSpec(s, (), "float32") if isinstance(s, str) else s for s in inputs]
    if _is_sample_split(path):  # the shipped digits file holds raw 0..16 pixels: scale them as the sample expects
        return digits(split or "test")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        if "allow_pickle" in str(exc):  # an .npy of objects
            raise _object_array_error(path, None) from None
        raise DataError(f"{path} is not a readable NumPy file ({exc})") from None
    if isinstance(loaded, np.ndarray):
        return ArrayDataset(path.name, [_numeric(loaded, path, None)])
    with loaded:
        keys = list(loaded.files)
        arrays = {k: _array(loaded, k, path) for k in keys}
    splits = [name for name in SPLITS if f"{name}_images" in keys]
    if splits:
        chosen = split or ("test" if "test" in splits else splits[0])
        if chosen not in splits:
            raise DataError(f"{path} has the splits {', '.join(splits)}, not '{chosen}'; add :{splits[0]} to choose one")
        labels = arrays[f"{chosen}_labels"].astype(np.int64).reshape(-1) if f"{chosen}_labels" in keys else None
        return ArrayDataset(f"{path.name}:{chosen}", [arrays[f"{chosen}_images"]], labels)
    if split is not None:
        raise DataError(f"{path} has no splits (no {split}_images array); drop ':{split}'")
    label_key = next((k for k in _LABEL_KEYS if k in keys), None)
    labels = arrays[label_key].astype(np.int64).reshape(-1) if label_key else None
    named = [s for s in specs if s.name in arrays]
    if len(specs) > 1 or named:
        missing = [s.name for s in specs if s.name not in arrays]
        if missing:
            raise DataError(f"{path} has no array named '{missing[0]}' for that input of the model; "
                            f"it holds {', '.join(keys)}; save one array per input under the input's name")
        count = len(labels) if labels is not None else max(len(arrays[s.name]) if arrays[s.name].ndim else 1 for s in specs)
        columns = [_per_sample(arrays[s.name], s, count) for s in specs]
        return ArrayDataset(path.name, columns, labels, batch_axes=[s.batch_axis for s in specs])
    key = next((k for k in _INPUT_KEYS if k in keys), None)
    if key is None:
        wanted = specs[0].name if specs else "inputs"
        raise DataError(f"{path} has no input arrays: it holds {', '.join(keys)}; name them {wanted} (or x)")
    return ArrayDataset(path.name, [arrays[key]], labels)


def _array(loaded: np.lib.npyio.NpzFile, key: str, path: Path) -> np.ndarray:
    """One array of an .npz, read without unpickling (an object array is code to numpy's loader)."""
    try:
        array = loaded[key]
    except ValueError as exc:  # "Object arrays cannot be loaded when allow_pickle=False"
        if "allow_pickle" in str(exc) or "object" in str(exc).lower():
            raise _object_array_error(path, key) from None
        raise DataError(f"{path}: array '{key}' is not readable ({exc})") from None
    except (OSError, EOFError, KeyError) as exc:  # a damaged member of the zip
        raise DataError(f"{path}: array '{key}' is not readable ({exc})") from None
    return _numeric(array, path, key)


def _numeric(array: np.ndarray, path: Path, key: str | None) -> np.ndarray:
    if array.dtype.kind not in "biuf":  # strings, objects, dates: nothing a model takes
        raise DataError(f"{path}: {'array ' + repr(key) if key else 'the array'} holds {array.dtype} values, not numbers; "
                        "save numeric arrays (token ids, not strings) with np.savez")
    return array


def _object_array_error(path: Path, key: str | None) -> DataError:
    return DataError(f"{path}: {'array ' + repr(key) if key else 'the array'} holds Python objects (strings, dicts or "
                     "lists), which ParetoLab does not unpickle; save numeric arrays (e.g. token ids) with np.savez")


def _per_sample(array: np.ndarray, spec: TensorSpec, count: int) -> np.ndarray:
    """An input's array with one row per sample: a value given once (for an input that takes one
    value per call) is repeated for every sample."""
    if spec.batch_axis is None and array.ndim == len(spec.shape) and spec.shape:
        return np.repeat(array[None], count, axis=0)
    if spec.batch_axis is None and array.ndim == 0:
        return np.full(count, array)
    return array


def random_inputs(inputs: Sequence[TensorSpec], count: int = 32, seed: int = 0,
                  id_ranges: Mapping[str, int] | None = None, values: Mapping[str, float] | None = None) -> ArrayDataset:
    """Inputs shaped like the model's, for models with no data at all (fidelity only). Integer
    inputs are ids below their embedding table's size where `id_ranges` knows it (token ids
    that all point at row 0 or 1 would exercise almost nothing), else 0 or 1; a recurrent
    state starts at zeros, as it does on a model's first call; an input named in `values`
    holds that value everywhere (a sample rate, a flag)."""
    rng = np.random.default_rng(seed)
    values = {**{s.name: s.value for s in inputs if s.value is not None}, **(values or {})}  # the handle's held inputs
    unknown = sorted(set(values) - {s.name for s in inputs})
    if unknown:
        raise DataError(f"random data sets '{unknown[0]}', which is not an input of the model; "
                        f"its inputs are {', '.join(s.name for s in inputs)}")
    arrays = []
    for spec in inputs:
        free = spec.sample_shape
        dims = tuple(d for d in free if isinstance(d, int) and d > 0)
        if len(dims) != len(free):
            free_inputs = [s for s in inputs if any(is_free(d) for d in s.sample_shape)]
            hints = guess_shapes(free_inputs).split(" ")  # one size per named dimension, from each input's rank
            named = [h if "=" in h else f"{s.name}={h}" for s, h in zip(free_inputs, hints * len(free_inputs))]
            raise InputShapeError(
                f"random inputs need a fixed shape, but input '{spec.name}' is {format_shape(spec.shape)}; "
                f"give one with --input-shape, e.g. {' '.join('--input-shape ' + h for h in named)}",
                suggestion=" ".join(named),
            )
        dtype = np.dtype(spec.dtype)
        _check_fits_in_memory(spec, count, dims, dtype)
        if spec.name in values:
            arrays.append(np.full((count, *dims), values[spec.name], dtype))
        elif is_state(spec):
            arrays.append(np.zeros((count, *dims), dtype))
        elif dtype.kind == "f":
            arrays.append(rng.standard_normal((count, *dims)).astype(dtype))
        elif dtype.kind == "b":
            arrays.append(rng.integers(0, 2, (count, *dims)).astype(dtype))
        else:
            high = (id_ranges or {}).get(spec.name, 2)
            arrays.append(rng.integers(0, high, (count, *dims)).astype(dtype))
    return ArrayDataset(f"random({count})", arrays, batch_axes=[s.batch_axis for s in inputs])


_STATE_NAMES = ("state", "h0", "c0", "cache", "past")


def is_state(spec: TensorSpec) -> bool:
    """A recurrent state or cache: a float input named so, or one whose samples do not stack first."""
    if not spec.dtype.startswith("float") or not spec.shape:
        return False
    return spec.batch_axis != 0 or any(word in spec.name.lower() for word in _STATE_NAMES)


def _check_fits_in_memory(spec: TensorSpec, count: int, dims: Sequence[int], dtype: np.dtype) -> None:
    """Refuse inputs that cannot be made (a declared 1x3x200000x200000 image) before numpy tries."""
    import psutil

    needed = count * int(np.prod(dims, dtype=np.float64)) * max(dtype.itemsize, 8)  # float64 while drawing
    available = psutil.virtual_memory().available
    if needed > available // 2:
        raise InputShapeError(
            f"input '{spec.name}' is {format_shape(spec.shape)}: {count} random samples would take "
            f"{needed / 2**30:.1f} GiB, more than half the {available / 2**30:.1f} GiB free; "
            "give a realistic shape with --input-shape"
        )


def digits(split: str = "test", size: int = 8) -> ArrayDataset:
    """The built-in digits: 8x8 as the digits sample takes them, or 32x32 with noise as the demo does."""
    from paretolab.core.sample import DEMO_SIZE, demo_split, digits_split

    if split not in ("train", "val", "test"):
        raise DataError(f"the digits dataset has splits train, val and test, not '{split}'")
    if size not in (8, DEMO_SIZE):
        raise DataError(f"the built-in digits come at 8x8 or {DEMO_SIZE}x{DEMO_SIZE}, not {size}x{size}; "
                        "give your own data with --data")
    part = digits_split(split) if size == 8 else demo_split(split)
    return ArrayDataset(f"digits:{split}" if size == 8 else f"digits{size}:{split}", [part.images], part.labels)


def digits_size_for(inputs: Sequence[TensorSpec]) -> int:
    """8 or 32: which built-in digits fit a model whose one input is [batch, 1, S, S]."""
    spec = inputs[0] if len(inputs) == 1 else None
    side = spec.shape[-1] if spec is not None and spec.shape else None
    return side if isinstance(side, int) and side in (8, 32) else 8


def fits_digits(inputs: Sequence[TensorSpec]) -> bool:
    """Whether the built-in digits can feed a model: one float input shaped [batch, 1, 8|32, 8|32]."""
    if len(inputs) != 1 or not inputs[0].dtype.startswith("float"):
        return False
    shape = inputs[0].shape
    return len(shape) == 4 and shape[1] == 1 and shape[2] == shape[3] and shape[3] in (8, 32)


def parse_random(spec: str) -> tuple[int, dict[str, float]]:
    """"random[:N][:NAME=VALUE,...]" -> (N, values): how many samples, and inputs held at a value."""
    _, _, rest = spec.partition(":")
    count, values = 32, {}
    for part in filter(None, rest.split(":")):
        if part.isdigit():
            count = int(part)
            continue
        for item in part.split(","):
            name, eq, value = item.partition("=")
            try:
                values[name.strip()] = float(value)
            except ValueError:
                raise DataError(f"'{spec}': '{item}' is not NAME=NUMBER; write e.g. random:64:sr=16000") from None
            if not eq or not name.strip():
                raise DataError(f"'{spec}': '{item}' is not NAME=NUMBER; write e.g. random:64:sr=16000")
    return count, values


def default_data(inputs: Sequence[TensorSpec]) -> tuple[str, str | None]:
    """The data to use when none is given, and a note saying what it cannot tell: the built-in
    digits for models they fit (the samples and their variants), else random inputs."""
    if fits_digits(inputs):
        return "digits", None
    return "random:64", ("no data given: random inputs measure agreement with the original, not accuracy; "
                         "give labelled data (--data) for accuracy")


def open_dataset(spec: str, inputs: Sequence[TensorSpec] = (), preprocess: ImagePreprocess | None = None) -> Dataset:
    """"digits[:split]", "random[:N][:NAME=VALUE,...]", a folder of images, or a .npz/.npy file ("file.npz:val" picks a split)."""
    name, _, arg = spec.partition(":")
    if name == "digits":
        return digits(arg or "test", digits_size_for(inputs))
    if name == "random":
        count, values = parse_random(spec)
        return random_inputs(inputs, count, values=values)
    from paretolab.core.measure.audio import audio_dataset, opens_audio  # audio.py builds on this module

    if opens_audio(spec):  # "audio:DIR:rate=16000", a .wav file or a folder of them
        return audio_dataset(spec, inputs)
    path, split = Path(spec).expanduser(), None
    base, _, suffix = spec.rpartition(":")
    if not path.exists() and suffix in SPLITS and Path(base).expanduser().is_file():  # "data.npz:val"
        path, split = Path(base).expanduser(), suffix
    if not path.exists():
        raise DataError(f"{spec}: no such file or folder; use digits, random, an image or .wav folder, or a .npz/.npy file")
    if path.is_dir():
        from paretolab.core.measure.images import ImagePreprocess, image_folder

        first = next(iter(inputs), None)
        return image_folder(path, preprocess or ImagePreprocess.for_input(first))
    if path.suffix.lower() in (".npz", ".npy"):
        return tensor_file(path, inputs, split)
    raise DataError(f"{path}: unknown data format '{path.suffix}'; use an image folder or a .npz/.npy file")


def _is_sample_split(path: Path) -> bool:
    from paretolab.core.sample import SAMPLE_SPLIT, sample_dir

    shipped = sample_dir() / SAMPLE_SPLIT
    try:
        return path.samefile(shipped) or (path.name == SAMPLE_SPLIT and path.read_bytes() == shipped.read_bytes())
    except OSError:
        return False


def calibration_subset(dataset: Dataset, count: int, seed: int = 0) -> Dataset:
    """`count` samples chosen reproducibly (same seed, same samples), in index order."""
    count = min(count, len(dataset))
    chosen = np.sort(np.random.default_rng(seed).choice(len(dataset), size=count, replace=False))
    return dataset.subset(chosen, f"{dataset.name} calibration[{count}]")


def fit_to_model(dataset: Dataset, inputs: Sequence[TensorSpec], model_name: str) -> list[np.dtype]:
    """Check the data fits the model's inputs; return the dtypes to cast each input to."""
    sample = dataset.load(np.arange(1))
    if len(sample) != len(inputs):
        raise DataError(
            f"{dataset.name} gives {len(sample)} input(s) per sample but {model_name} takes {len(inputs)} "
            f"({', '.join(s.name for s in inputs)})"
        )
    dtypes = []
    for spec, array in zip(inputs, sample):
        axis = spec.batch_axis
        got = array.shape if axis is None or axis >= array.ndim else array.shape[:axis] + array.shape[axis + 1:]
        want = spec.sample_shape
        if len(want) != len(got) or not all(is_free(w) or w == g for w, g in zip(want, got)):
            raise DataError(
                f"{dataset.name} has samples of shape {format_shape(got)}, but input '{spec.name}' of {model_name} "
                f"takes {format_shape(want)} per sample (full shape {format_shape(spec.shape)})"
            )
        target = np.dtype(spec.dtype)
        if (array.dtype.kind == "f") != (target.kind == "f"):
            raise DataError(
                f"{dataset.name} holds {array.dtype} data, but input '{spec.name}' of {model_name} takes {target}"
            )
        dtypes.append(target)
    return dtypes


def parse_held(texts: Sequence[str]) -> dict[str, float]:
    """--hold NAME=VALUE (repeatable, or comma-separated): inputs held at a value in every run."""
    held: dict[str, float] = {}
    for item in (i for text in texts for i in text.split(",") if i.strip()):
        name, eq, value = item.partition("=")
        try:
            held[name.strip()] = float(value)
        except ValueError:
            name = ""
        if not eq or not name.strip():
            raise DataError(f"--hold '{item}' is not NAME=NUMBER; write e.g. --hold sr=16000")
    return held
