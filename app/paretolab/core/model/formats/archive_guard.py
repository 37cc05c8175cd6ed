"""Checks on a PyTorch zip archive before torch reads it: what in it would run code, write a
file, or take more memory than there is.

torch.export.load unpickles with weights_only=False (weights and constants marked use_pickle,
opaque constants, a sample_inputs file the weights-only loader refuses), passes every symbolic
expression through sympy.sympify (which is eval) and exec()s the program's guards when its
module is made; a node's target may name any callable reachable from `torch`. TorchScript is
code: a module's __setstate__ runs while loading and can map a file with torch.from_file and
write into it. None of that is allowed without trust; a zip whose entries declare more bytes
than the memory available is refused before anything is read from it.
"""

from __future__ import annotations

import ast
import io
import json
import re
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from paretolab.core.errors import ModelLoadError, ParetoLabError, UntrustedModelError, first_line

TRUST_HINT = "open it only if you trust its source (CLI: --trust)"

# TorchScript calls that read or write files, or load more code, while the archive loads or runs:
# a deny-list (the language has few of them), matched as calls in the archive's code/*.py.
_IO_CALL = re.compile(
    r"(?<![\w])(?:torch\.|ops\.\w+\.|torch\.ops\.\w+\.)?"
    r"(from_file|save|load|open|_load_for_mobile|_save_for_mobile|_pickle_load_obj|_pickle_save|"
    r"_load_from_bytes|_save_to_buffer|fopen|system|popen)\s*\(")
_CUSTOM_CLASS = re.compile(r"__torch__\.torch\.classes\.|torch\.classes\.")

# sympy.sympify / exec in torch.export: expressions may call only these (sympy and torch's own
# symbolic functions, the tensor methods guards use); names and attributes with "__" never.
_SAFE_CALLS = frozenset({
    "Symbol", "Integer", "Rational", "Float", "Max", "Min", "Mod", "Abs", "floor", "ceiling", "sqrt",
    "Eq", "Ne", "Lt", "Le", "Gt", "Ge", "And", "Or", "Not", "Piecewise", "ITE", "Pow", "Mul", "Add",
    "FloorDiv", "ModularIndexing", "Where", "PythonMod", "CleanDiv", "CeilToInt", "FloorToInt",
    "CeilDiv", "LShift", "RShift", "PowByNatural", "FloatPow", "FloatTrueDiv", "IntTrueDiv",
    "IsNonOverlappingAndDenseIndicator", "TruncToFloat", "TruncToInt", "RoundToInt", "RoundDecimal",
    "ToFloat", "Identity", "BitwiseFn_bitwise_and", "BitwiseFn_bitwise_or", "size", "stride",
    "storage_offset", "dim", "numel", "isnan", "isinf", "trunc", "sym_max", "sym_min", "sym_float", "sym_int",
})
_SAFE_NODES = (ast.Expression, ast.BoolOp, ast.BinOp, ast.UnaryOp, ast.Compare, ast.Call, ast.Name, ast.Load,
               ast.Constant, ast.keyword, ast.Attribute, ast.Subscript, ast.Tuple, ast.operator, ast.unaryop,
               ast.cmpop, ast.boolop)
# graph node targets torch.export resolves to a callable: ops, symbolic helpers, operator, math
_SAFE_TARGET = re.compile(r"^(torch\.ops\.[\w.]+|torch\._?sym_\w+|_operator\.\w+|math\.\w+|#[\w.]+:[\w.]+)$")
_SAFE_OPERATOR = frozenset({"getitem", "add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos",
                            "eq", "ne", "lt", "le", "gt", "ge", "and_", "or_", "xor", "not_", "invert", "abs",
                            "lshift", "rshift", "iadd", "isub", "imul"})


def check_zip_memory(path: Path, archive: zipfile.ZipFile) -> None:
    """Refuse a zip whose entries declare more uncompressed bytes than the memory available (a zip
    bomb: 6 MB on disk, tens of GB once read), from its directory, before any entry is read."""
    import psutil

    declared = sum(max(info.file_size, 0) for info in archive.infolist())
    on_disk = sum(max(info.compress_size, 0) for info in archive.infolist())
    available = psutil.virtual_memory().available
    if declared > available:
        raise ModelLoadError(
            f"{path.name} holds {_gib(on_disk)} compressed that unpack to {_gib(declared)} ({declared:,} bytes), "
            f"more than the {_gib(available)} of memory available; refusing to read it (a damaged file or a zip bomb)")


def open_zip(path: Path) -> zipfile.ZipFile | None:
    """The file as a zip, or None when it is not one (a legacy pickle)."""
    try:
        return zipfile.ZipFile(path)
    except Exception:  # noqa: BLE001 - not a readable zip: the loader's own checks report it
        return None


def guard_zip(path: Path) -> None:
    """The memory check every PyTorch zip (TorchScript, torch.export, torch.save) gets first."""
    archive = open_zip(path)
    if archive is not None:
        with archive:
            check_zip_memory(path, archive)


def guard_exported(path: Path, trust: bool) -> None:
    """Refuse a torch.export archive that would run code or take more memory than there is."""
    archive = open_zip(path)
    if archive is None:
        return  # torch.export.load reports an unreadable file itself
    with archive:
        check_zip_memory(path, archive)
        if not trust:
            reason = _damaged(path, _exported_code, archive)
            if reason is not None:
                raise UntrustedModelError(f"{path.name} is a torch.export archive that {reason}, which runs code "
                                          f"stored in the file while it loads; {TRUST_HINT}")


def guard_torchscript(path: Path, trust: bool) -> None:
    """Refuse a TorchScript archive whose code reads or writes files, before torch.jit.load runs it."""
    archive = open_zip(path)
    if archive is None:
        return
    with archive:
        check_zip_memory(path, archive)
        if trust:
            return
        found = _damaged(path, _torchscript_io, archive)
        if found is not None:
            name, what = found
            raise UntrustedModelError(
                f"{path.name} is TorchScript whose code calls '{what}' ({name.split('/code/', 1)[1]}): "
                f"TorchScript runs while it loads, and this can read or write files; {TRUST_HINT}")


def _torchscript_io(archive: zipfile.ZipFile) -> tuple[str, str] | None:
    for name in archive.namelist():
        if "/code/" not in name or not name.endswith(".py"):
            continue
        found = _IO_CALL.search(text := archive.read(name).decode("utf-8", "replace")) or _CUSTOM_CLASS.search(text)
        if found:
            return name, found.group(0).rstrip("( ")
    return None


def _damaged(path: Path, check: Callable[[zipfile.ZipFile], Any], archive: zipfile.ZipFile) -> Any:
    """`check(archive)`, with an entry that cannot be read (bad CRC, truncated data) as our one line."""
    try:
        return check(archive)
    except ParetoLabError:
        raise
    except Exception as exc:  # noqa: BLE001 - zipfile and zlib raise many kinds for damaged bytes
        raise ModelLoadError(f"{path.name} is damaged ({first_line(exc)}); copy the file again or re-save it") from None


def _exported_code(archive: zipfile.ZipFile) -> str | None:
    """Why loading the exported program would run code from the file, or None if it would not."""
    names = archive.namelist()
    roots = {n.split("/", 1)[0] for n in names if "/" in n}
    if "version" in names or any(n.endswith(("serialized_state_dict.pt", "serialized_exported_program.json"))
                                 for n in names):
        return "uses torch 2.7's pickled format"
    for root in roots:
        prefix = f"{root}/"
        if any(n.startswith(prefix + "data/aotinductor/") for n in names):
            return "holds AOTInductor compiled code (a shared library)"
        for name in names:
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix):]
            if rest.startswith("data/weights/") and rest.endswith("_weights_config.json"):
                reason = _pickled_payloads(archive, name, "weight")
            elif rest.startswith("data/constants/") and rest.endswith("_constants_config.json"):
                reason = _pickled_payloads(archive, name, "constant")
            elif rest.startswith(("data/sample_inputs/", "data/weights/", "data/constants/")) and rest.endswith(".pt"):
                reason = _not_weights_only(archive, name)
            elif rest.startswith("models/") and rest.endswith(".json"):
                reason = _program_code(archive, name)
            else:
                continue
            if reason is not None:
                return reason
    return None


def _pickled_payloads(archive: zipfile.ZipFile, name: str, kind: str) -> str | None:
    config = _json(archive, name)
    entries = config.get("config", {}) if isinstance(config, dict) else None
    if not isinstance(entries, dict):
        return f"has a malformed {kind} table ({name.rsplit('/', 1)[-1]})"
    for fqn, meta in entries.items():
        if not isinstance(meta, dict):
            return f"has a malformed {kind} table entry '{fqn}'"
        path_name = str(meta.get("path_name", ""))
        if meta.get("use_pickle") or (kind == "constant" and not path_name.startswith("tensor_")):
            return f"stores the {kind} '{fqn}' as a pickled Python object ({path_name})"
    return None


def _not_weights_only(archive: zipfile.ZipFile, name: str) -> str | None:
    """torch falls back to an unrestricted unpickler when the weights-only one refuses a file."""
    import torch

    data = archive.read(name)
    if not data:
        return None
    try:
        torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception:  # noqa: BLE001 - anything the weights-only unpickler refuses is code or damage
        return f"stores {name.split('/', 1)[-1]} as a pickle that holds more than tensors"
    return None


def _program_code(archive: zipfile.ZipFile, name: str) -> str | None:
    doc = _json(archive, name)
    if not isinstance(doc, dict):
        return f"has a malformed program ({name.split('/', 1)[-1]})"
    for guard in doc.get("guards_code") or []:
        if not isinstance(guard, str) or not safe_expression(guard):
            return f"has a guard that is not a plain shape check ({str(guard)[:60]!r})"
    for key, value in _walk(doc):
        if key == "expr_str" and (not isinstance(value, str) or not safe_expression(value)):
            return f"has a symbolic size that is not a plain expression ({str(value)[:60]!r})"
        if key == "as_string" and isinstance(value, str) and re.search(r"['\"\\\n]", value):
            return f"has a string argument with quotes or escapes ({value[:60]!r})"
        if key == "target" and isinstance(value, str) and not _safe_target(value):
            return f"calls '{value[:80]}', which is not a torch operator"
    return None


def _safe_target(target: str) -> bool:
    if not _SAFE_TARGET.match(target):
        return False
    if target.startswith("_operator."):
        return target.split(".", 1)[1] in _SAFE_OPERATOR
    if target.startswith("torch.ops."):
        return not _IO_CALL.search(target.rsplit(".", 2)[-2] + "(") if target.count(".") >= 3 else True
    return "__" not in target


def safe_expression(text: str) -> bool:
    """True when `text` is a plain arithmetic/comparison expression over sizes: only calls to known
    symbolic functions and tensor size methods, no dunder names or attributes, no huge powers;
    what sympy.sympify and torch's guard exec may then evaluate without running foreign code."""
    if len(text) > 10_000:
        return False
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    for node in ast.walk(tree):
        if not isinstance(node, _SAFE_NODES):
            return False
        if isinstance(node, ast.Name) and "__" in node.id:
            return False
        if isinstance(node, ast.Attribute) and (node.attr.startswith("_") or node.attr not in _SAFE_CALLS):
            return False
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if name not in _SAFE_CALLS:
                return False
        if isinstance(node, ast.Constant) and not _small_constant(node.value):
            return False
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Pow, ast.LShift)) and not (
                isinstance(node.right, ast.Name) or (isinstance(node.right, ast.Constant)
                                                     and isinstance(node.right.value, int) and abs(node.right.value) <= 64)):
            return False
    return True


def _small_constant(value: Any) -> bool:
    if isinstance(value, bool) or value is None:
        return True
    if isinstance(value, int):
        return abs(value) < 2**64
    if isinstance(value, float):
        return True
    return isinstance(value, str) and len(value) <= 64 and re.fullmatch(r"[\w.\-]*", value) is not None


def _walk(value: Any, key: str | None = None) -> Iterator[tuple[str | None, Any]]:
    stack: list[tuple[str | None, Any]] = [(key, value)]
    while stack:
        key, value = stack.pop()
        yield key, value
        if isinstance(value, dict):
            stack.extend(value.items())
        elif isinstance(value, list):
            stack.extend((key, v) for v in value)


def _json(archive: zipfile.ZipFile, name: str) -> Any:
    try:
        return json.loads(archive.read(name))
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


def _gib(size: int) -> str:
    return f"{size / 2**30:.1f} GiB" if size >= 2**28 else f"{size / 2**20:.1f} MiB"
