"""The length a text model opens at when the user gives none.

A text model (every input integer token ids or masks over [batch, sequence]) runs at any length,
so asking for a shape before showing anything is a needless first hurdle: it opens at batch 1 and
the tokenizer's own length when that is a sensible one, else 128 tokens, and says so.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from paretolab.core.tensors import TensorSpec, is_free

DEFAULT_TOKENS = 128
LONGEST_DEFAULT = 512  # longer sequences make every timing slow; the user can still ask for them


def is_text_model(inputs: list[TensorSpec]) -> bool:
    """Every input is [batch, sequence] integers, the sequence named alike (input_ids, attention_mask, ...)."""
    if not inputs:
        return False
    names = {s.shape[1] if len(s.shape) == 2 else None for s in inputs}
    return all(len(s.shape) == 2 and s.dtype.startswith(("int", "uint")) and is_free(s.shape[1])
               for s in inputs) and len(names) == 1 and isinstance(next(iter(names)), str)  # a batch may be fixed


def text_default(source: Any) -> tuple[dict[str | None, tuple[int, ...]], str] | None:
    """The shapes a text model opens at, and the note that says so; None for other models."""
    inputs = list(source.inputs)
    if not is_text_model(inputs):
        return None
    path = Path(source.path)
    folder = path if path.is_dir() else path.parent
    tokens, why = _tokenizer_length(folder)
    longest = getattr(source, "max_sequence", None) or _position_rows(source.native)
    if tokens is None:
        tokens, why = DEFAULT_TOKENS, "the tokenizer gives no length up to 512"
    if isinstance(longest, int) and 0 < longest < tokens:
        tokens, why = longest, "the longest its position table takes"
    names = ", ".join(s.name for s in inputs)
    batch = 1 if is_free(inputs[0].shape[0]) else inputs[0].shape[0]
    note = (f"{names} opened at batch {batch} and {tokens} tokens ({why}); "
            f"give another length with --input-shape 1xN")
    return {s.name: (1 if is_free(s.shape[0]) else int(s.shape[0]), tokens) for s in inputs}, note


def _tokenizer_length(folder: Path) -> tuple[int | None, str]:
    """model_max_length from tokenizer_config.json beside the model, when it is a real length
    (transformers writes 1e30 for "no limit")."""
    try:
        config = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None, ""
    length = config.get("model_max_length") if isinstance(config, dict) else None
    if isinstance(length, int) and 0 < length <= LONGEST_DEFAULT:
        return length, "the tokenizer's model_max_length"
    return None, ""


def _position_rows(native: Any) -> int | None:
    """The rows of an ONNX model's position table (an initializer named for positions, [positions,
    width]): a longer default would index past it. None when the file has none by that name."""
    initializers = getattr(getattr(native, "graph", None), "initializer", ())
    rows = [int(t.dims[0]) for t in initializers if "position" in t.name.lower() and len(t.dims) == 2 and t.dims[0] > 1]
    return min(rows) if rows else None
