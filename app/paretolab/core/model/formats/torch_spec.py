"""The paretolab.json a PyTorch file made by ParetoLab carries (its inputs and outputs as the
original names them), read as what it is: text from a file anyone can edit. Every field is checked
before a TensorSpec is made of it, so a wrong type or a shape that is not a list of sizes is one
line naming the file and the field, never an internal error deep in shape handling."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from paretolab.core.errors import ModelLoadError
from paretolab.core.tensors import Dim, TensorSpec


def read_spec(text: str, path: Path, spec_file: str) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """(inputs, outputs) recorded in `text`, the archive's `spec_file`; empty lists when there is none."""
    if not text:
        return [], []
    where = f"{path.name}: {spec_file}"
    try:
        doc = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ModelLoadError(f"{where} is not valid JSON ({str(exc)[:80]}); re-save the file with ParetoLab, "
                             "or remove the entry") from None
    if not isinstance(doc, dict):
        raise ModelLoadError(f"{where} is a JSON {type(doc).__name__}, not an object with 'inputs' and 'outputs'")
    return _tensors(doc, "inputs", where), _tensors(doc, "outputs", where)


def _tensors(doc: dict, key: str, where: str) -> list[TensorSpec]:
    entries = doc.get(key, [])
    if not isinstance(entries, list):
        raise ModelLoadError(f"{where}: '{key}' is a {_kind(entries)}, not a list of tensors")
    return [_tensor(entry, f"{where}: {key}[{i}]") for i, entry in enumerate(entries)]


def _tensor(entry: Any, where: str) -> TensorSpec:
    if not isinstance(entry, dict):
        raise ModelLoadError(f"{where} is a {_kind(entry)}, not an object with 'name', 'shape' and 'dtype'")
    name, shape, dtype = entry.get("name"), entry.get("shape"), entry.get("dtype", "float32")
    if not isinstance(name, str) or not name:
        raise ModelLoadError(f"{where}.name is a {_kind(name)}, not a tensor name")
    if not isinstance(shape, list):
        raise ModelLoadError(f"{where}.shape ('{name}') is a {_kind(shape)}, not a list of sizes")
    dims: list[Dim] = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, bool) or not (isinstance(dim, int | str) or dim is None) or (isinstance(dim, int) and dim < -1):
            raise ModelLoadError(f"{where}.shape[{axis}] ('{name}') is {json.dumps(dim)[:40]}; a size is a whole "
                                 "number, a name for a free axis, or null")
        dims.append(dim)
    if not isinstance(dtype, str) or not _is_dtype(dtype):
        raise ModelLoadError(f"{where}.dtype ('{name}') is {json.dumps(dtype)[:40]}, not a numeric type "
                             "(float32, int64, ...)")
    return TensorSpec(name, tuple(dims), dtype)


def _is_dtype(name: str) -> bool:
    try:
        return np.dtype(name).kind in "biuf" and np.dtype(name).name == name
    except TypeError:
        return False


def _kind(value: Any) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")
