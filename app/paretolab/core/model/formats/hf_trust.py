"""What a Hugging Face folder would make transformers run or read beyond its own files, found
before transformers sees the folder.

An `auto_map` in config.json or tokenizer_config.json names Python files that transformers
imports; left to decide, transformers asks "run the custom code? [y/N]" on stdin, so a `y` piped
into the CLI runs it. ParetoLab refuses such a folder up front unless the user passed --trust, and
always hands transformers `trust_remote_code` explicitly so the question is never asked. A shard
index (model.safetensors.index.json) whose weight_map names files outside the folder is refused
whatever --trust says: no model needs that.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from paretolab.core.errors import ModelLoadError, UntrustedModelError

CODE_CONFIGS = ("config.json", "tokenizer_config.json")
SHARD_INDEXES = ("model.safetensors.index.json", "pytorch_model.bin.index.json")


def remote_code(folder: Path) -> tuple[str, str] | None:
    """(file, entry) for the first auto_map entry, which names code to import, e.g.
    ("config.json", "AutoConfig: model.MyConfig"); None when the folder runs no code of its own."""
    for name in CODE_CONFIGS:
        config = _read_json(folder / name)
        if not isinstance(config, dict):
            continue
        auto_map = config.get("auto_map")
        if auto_map:
            if isinstance(auto_map, dict):
                key, value = next(iter(auto_map.items()))
                if isinstance(value, list):  # a tokenizer's [slow, fast] classes
                    value = next((v for v in value if v), value)
                return name, f"{key}: {value}"
            return name, str(auto_map)[:80]
    return None


def check_remote_code(folder: Path, trust: bool) -> None:
    """Refuse, in one line, a folder whose configuration names Python files to import, unless `trust`."""
    found = remote_code(folder)
    if found is not None and not trust:
        name, entry = found
        raise UntrustedModelError(f"{folder}/{name} has an auto_map ({entry}) that would import Python code from the "
                                  "folder; ParetoLab does not run it: pass --trust if you trust this folder's code")


def check_shard_index(folder: Path) -> None:
    """Refuse a shard index that names a weight file outside the folder (an absolute path, `..`, or a
    link that leads out), so transformers never reads a file the user did not hand over. A Hugging
    Face cache snapshot's links into its own blobs/ folder are how that cache is laid out, and pass."""
    root = folder.resolve()
    allowed = [root]
    if folder.parent.name == "snapshots":
        allowed.append((folder.parent.parent / "blobs").resolve())
    for index in SHARD_INDEXES:
        path = folder / index
        if not path.is_file():
            continue
        data = _read_json(path)
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict):
            raise ModelLoadError(f"{path} has no weight_map object; copy the index that save_pretrained wrote")
        for tensor, file in weight_map.items():
            if not isinstance(file, str) or not file:
                raise ModelLoadError(f"{path}: weight_map['{tensor}'] is not a file name; copy the index that "
                                     "save_pretrained wrote")
            outside = (PurePosixPath(file).is_absolute() or PureWindowsPath(file).is_absolute()
                       or ".." in PurePosixPath(file.replace("\\", "/")).parts)
            if not outside:
                target = (folder / file).resolve()
                outside = not any(target == a or a in target.parents for a in allowed)
            if outside:
                raise ModelLoadError(f"{path}: weight_map['{tensor}'] points outside the folder ({file}); "
                                     "ParetoLab reads weights only from the model's own folder")


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        raise ModelLoadError(f"{path} is not readable JSON ({str(exc)[:80]}); copy the file that save_pretrained wrote") from None
