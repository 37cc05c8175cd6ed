"""Tensor descriptions shared by every format: names, shapes with dynamic dims, dtypes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from paretolab.core.errors import InputShapeError
from paretolab.core.units import size as size_text

# A dimension is a fixed size, a symbolic name ("batch"), or None (unknown).
Dim = int | str | None
Shape = tuple[Dim, ...]


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: Shape
    dtype: str  # numpy dtype name: "float32", "int64", ...
    # Which axis samples stack along: 0 for most inputs, 1 for a recurrent state laid out
    # [layers, batch, hidden], None for inputs that hold one value per call (a scalar, a fixed state).
    batch_axis: int | None = 0
    # A value the input is held at in every run (a sample rate, a flag): random data is meaningless there.
    value: float | None = None

    @property
    def sample_shape(self) -> Shape:
        """The shape of one sample: the input's shape without its batch axis."""
        axis = self.batch_axis
        return self.shape if axis is None or axis >= len(self.shape) else self.shape[:axis] + self.shape[axis + 1:]

    @property
    def is_static(self) -> bool:
        return all(isinstance(d, int) for d in self.shape)

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape) if not isinstance(d, int))

    def to_dict(self) -> dict:
        return {"name": self.name, "shape": list(self.shape), "dtype": self.dtype}

    def __str__(self) -> str:
        return f"{self.name} {format_shape(self.shape)} {self.dtype}"


def format_shape(shape: Sequence[Dim] | None) -> str:
    if shape is None:
        return "?"
    return "[" + ", ".join(_format_dim(d) for d in shape) + "]"


def _format_dim(dim: Dim) -> str:
    """Free dimensions read as "?" unless they carry a real name ("batch", "seq"); the names
    that shape inference makes up (unk__0) and -1/0 from other exporters are free too."""
    if dim is None or (isinstance(dim, int) and dim <= 0) or (isinstance(dim, str) and (dim.startswith("unk__") or not dim)):
        return "?"
    return str(dim)


_SHAPE = re.compile(r"^\d+(x\d+)*$")


def parse_input_shapes(texts: Sequence[str]) -> dict[str | None, tuple[int, ...]]:
    """Parse CLI-style shapes: "1x3x224x224" (the only input) or "name=1x3x224x224".

    Returns {input name or None: shape}; None stands for "the model's single input".
    """
    shapes: dict[str | None, tuple[int, ...]] = {}
    for text in texts:
        name, _, dims = text.rpartition("=")
        dims = dims.strip().lower().replace(",", "x")
        if dims == "scalar":  # an input that takes a single number (a sample rate, a step)
            shapes[name.strip() or None] = ()
            continue
        if not _SHAPE.match(dims) or any(int(d) == 0 for d in dims.split("x")):
            raise InputShapeError(
                f"input shape '{text}' is not valid; write positive sizes joined by 'x', "
                "e.g. 1x3x224x224, or name=1x3x224x224 for one input of several"
            )
        shapes[name.strip() or None] = tuple(int(d) for d in dims.split("x"))
    return shapes


def apply_input_shapes(
    inputs: Sequence[TensorSpec], shapes: Mapping[str | None, Sequence[int]], where: str
) -> list[TensorSpec]:
    """Fix the given inputs' shapes, checking names and ranks against the model's inputs."""
    if not shapes:
        return list(inputs)
    by_name = {spec.name: spec for spec in inputs}
    resolved: dict[str, tuple[int, ...]] = {}
    for name, shape in _name_unnamed(inputs, shapes, where).items():
        if name not in by_name:
            raise InputShapeError(
                f"{where} has no input named '{name}'; its inputs are: {', '.join(by_name)}"
            )
        spec = by_name[name]
        shape = tuple(int(d) for d in shape)
        if spec.shape and len(spec.shape) != len(shape):
            raise InputShapeError(
                f"input '{name}' of {where} has {len(spec.shape)} dimensions "
                f"{format_shape(spec.shape)}, but the shape given has {len(shape)} "
                f"{format_shape(shape)}"
            )
        for axis, (want, got) in enumerate(zip(spec.shape, shape)):
            if not is_free(want) and want != got:
                raise InputShapeError(
                    f"input '{name}' of {where} has a fixed size {want} on axis {axis} "
                    f"{format_shape(spec.shape)}; the shape given {format_shape(shape)} differs"
                )
        check_fits_in_memory(name, shape, spec.dtype)  # the user's shape, before anything is made at it
        resolved[name] = shape
    bound = _bound_dims(inputs, resolved)
    for spec in inputs:  # a named shape fixes its named dims (batch, sequence) for every input sharing them
        if spec.name not in resolved and bound and any(d in bound for d in spec.shape if _is_named(d)):
            resolved[spec.name] = tuple(bound.get(d, d) if _is_named(d) else d  # type: ignore[arg-type,misc]
                                        for d in spec.shape)
    return [replace(s, shape=resolved[s.name]) if s.name in resolved else s for s in inputs]


def tensor_bytes(shape: Sequence[int], dtype: str) -> int:
    """Bytes a dense tensor of `shape` and `dtype` takes (Python ints: no overflow at 20000^4)."""
    import numpy as np

    count = 1
    for dim in shape:
        count *= max(int(dim), 0)
    return count * np.dtype(dtype).itemsize


def check_fits_in_memory(name: str, shape: Sequence[int], dtype: str, what: str = "input") -> None:
    """Refuse, in one line, a tensor larger than the memory available, before anything allocates it
    (a declared 1x3x20000x20000 image, a batch of them, a shape in a file's metadata): numpy or torch
    would otherwise take the machine to swap or be killed, long after the cause is out of sight."""
    import psutil

    needed = tensor_bytes(shape, dtype)
    available = psutil.virtual_memory().available
    if needed > available:
        raise InputShapeError(f"{what} '{name}' {format_shape(tuple(shape))} {dtype} needs {size_text(needed)} "
                              f"({needed:,} bytes), but only {size_text(available)} of memory is available; "
                              "give a smaller shape with --input-shape (or a smaller batch)")


def _is_named(dim: Dim) -> bool:
    """A free dimension with a real name ("batch", "sequence"), which every input carrying it shares."""
    return isinstance(dim, str) and bool(dim) and not dim.startswith("unk__")


def _bound_dims(inputs: Sequence[TensorSpec], resolved: Mapping[str, tuple[int, ...]]) -> dict[Dim, int]:
    """The sizes the given shapes fix for the model's named dimensions."""
    bound: dict[Dim, int] = {}
    for spec in inputs:
        for dim, size in zip(spec.shape, resolved.get(spec.name, ())):
            if _is_named(dim):
                bound.setdefault(dim, size)
    return bound


def _name_unnamed(inputs: Sequence[TensorSpec], shapes: Mapping[str | None, Sequence[int]],
                  where: str) -> dict[str, Sequence[int]]:
    """A shape given without a name fixes the only input, or every input it fits (a text model's
    input_ids and attention_mask both take 1x128) that is not named itself."""
    named: dict[str, Sequence[int]] = {name: shape for name, shape in shapes.items() if name is not None}
    if None not in shapes:
        return named
    shape = shapes[None]
    if len(inputs) == 1:
        return {inputs[0].name: shape, **named}
    fits = [s.name for s in inputs if s.name not in named and len(s.shape) == len(shape)
            and all(is_free(want) or want == got for want, got in zip(s.shape, shape))]
    if not fits:
        names = ", ".join(s.name for s in inputs)
        raise InputShapeError(f"{where} has {len(inputs)} inputs ({names}); name the one to shape, "
                              "e.g. --input-shape NAME=1x3x224x224")
    return {**dict.fromkeys(fits, shape), **named}


def free_axes(inputs: Sequence[TensorSpec], declared: Sequence[TensorSpec]) -> list[dict[int, str]]:
    """For each input, the axes an export keeps free: its batch axis, and every axis the model
    declared free by name (a transformer's sequence), under that name."""
    names = {spec.name: spec for spec in declared}
    axes = []
    for spec in inputs:
        free = {axis: str(dim) for axis, dim in enumerate(names[spec.name].shape if spec.name in names else ())
                if isinstance(dim, str) and axis < len(spec.shape)}
        if spec.batch_axis is not None:
            free[spec.batch_axis] = "batch"
        axes.append(free)
    return axes


def is_free(dim: Dim) -> bool:
    """Whether a dimension is left open: a name, unknown, or -1/0 as other exporters write it."""
    return not isinstance(dim, int) or dim <= 0


def with_batch_axes(inputs: Sequence[TensorSpec], declared: Sequence[TensorSpec] = ()) -> list[TensorSpec]:
    """The inputs with their batch axes, read from the shapes the file declares (`declared`, before
    the user fixed them; else the inputs' own). The first input batches along axis 0; the others
    along the axis that carries the same name ("batch" in a state [layers, batch, hidden]) or the
    same size, else their one free axis; scalars and inputs with none of these take one value per call."""
    shapes = {s.name: s.shape for s in inputs} | {s.name: s.shape for s in declared}
    first = next((s.name for s in inputs if shapes[s.name]), None)
    batch = shapes[first][0] if first is not None else None
    return [replace(s, batch_axis=_batch_axis(shapes[s.name], batch, s.name == first)) for s in inputs]


def _batch_axis(shape: Shape, batch: Dim, is_first: bool) -> int | None:
    if not shape:
        return None
    if is_first or shape[0] == batch or (is_free(shape[0]) and not isinstance(batch, str)):
        return 0
    if batch is not None and (isinstance(batch, str) or batch > 0) and batch in shape:
        return shape.index(batch)
    free = [axis for axis, dim in enumerate(shape) if is_free(dim)]
    return free[0] if len(free) == 1 and not isinstance(batch, str) else None


def fixed_batch(inputs: Sequence[TensorSpec]) -> int | None:
    """The batch size the inputs fix, if they do (a file exported at batch 1, or fixed by the user)."""
    sizes = [s.shape[s.batch_axis] for s in inputs if s.batch_axis is not None and s.batch_axis < len(s.shape)]
    return sizes[0] if sizes and not is_free(sizes[0]) else None  # type: ignore[return-value]


def concrete_shapes(inputs: Sequence[TensorSpec]) -> tuple[dict[str, tuple[int, ...]], list[str]]:
    """Concrete shapes for analysis: a free batch axis becomes 1.

    Returns (shapes of the inputs that could be made concrete, names of those that could not).
    """
    shapes: dict[str, tuple[int, ...]] = {}
    unresolved: list[str] = []
    for spec in inputs:
        dims = list(spec.shape)
        axis = spec.batch_axis
        if axis is not None and axis < len(dims) and is_free(dims[axis]):
            dims[axis] = 1
        if not any(is_free(d) for d in dims):
            shapes[spec.name] = tuple(dims)  # type: ignore[arg-type]
        else:
            unresolved.append(spec.name)
    return shapes, unresolved


def needs_shape(inputs: Sequence[TensorSpec]) -> bool:
    """Whether some input has a free dimension besides its batch axis (which is taken as 1)."""
    return any(is_free(d) for s in inputs for d in s.sample_shape)


def guess_shapes(inputs: Sequence[TensorSpec], sequence: int = 128) -> str:
    """Shapes to offer for inputs with free dimensions, in --input-shape form ("x=1x3x224x224
    ids=1x128"): batch 1, image sides 224, sequence lengths `sequence`, anything else 1."""
    texts = []
    named: dict[Dim, int] = {}  # a dimension named alike gets one size in every input: never mixed lengths
    for spec in inputs:
        dims = []
        for axis, d in enumerate(spec.shape):
            if not is_free(d):
                dims.append(int(d))  # type: ignore[arg-type]
                continue
            if _is_named(d) and d in named:
                dims.append(named[d])
                continue
            if axis == spec.batch_axis:
                size = 1
            elif len(spec.shape) == 4 and axis >= 2:
                size = 224
            elif len(spec.shape) in (2, 3) and axis == 1:
                size = sequence
            else:
                size = 1
            if _is_named(d):
                named[d] = size
            dims.append(size)
        texts.append("x".join(map(str, dims)) if dims else "scalar")
    if len(set(texts)) == 1:  # one unnamed shape fixes every input it fits (input_ids and attention_mask)
        return texts[0]
    return " ".join(f"{spec.name}={text}" for spec, text in zip(inputs, texts))
