"""Text as data: one example per line (.txt), JSON lines or CSV/TSV with a text column and
optional labels, tokenized with the model's own tokenizer (a Hugging Face folder's, or the
tokenizer files beside an ONNX export) at the sequence length of the model's input.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from paretolab.core.measure.data import ArrayDataset, DataError
from paretolab.core.model.formats.hf_trust import check_remote_code
from paretolab.core.tensors import TensorSpec

TEXT_SUFFIXES = (".txt", ".jsonl", ".csv", ".tsv")
TEXT_KEYS = ("text", "sentence", "content", "review", "question")
LABEL_KEYS = ("label", "labels", "y", "target")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
MAX_BYTES = 512 * 2**20  # a text file this large is read into memory; above it, the user is told to sample


def is_text(path: Path) -> bool:
    return path.suffix.lower() in TEXT_SUFFIXES


def text_dataset(path: Path, inputs: Sequence[TensorSpec], model_path: Path,
                 label_ids: dict[str, int] | None = None, trust: bool = False) -> ArrayDataset:
    """`path` tokenized for a model with `inputs` (input_ids and its companions), labels when given.
    `trust`: the model was opened with --trust, so a tokenizer's own Python code may run."""
    texts, labels = read_texts(path)
    sequence = _sequence_length(inputs, path)
    tokenizer = _tokenizer(model_path, trust)
    try:
        encoded = tokenizer(texts, padding="max_length", truncation=True, max_length=sequence, return_tensors="np")
    except Exception as exc:  # noqa: BLE001 - the tokenizer's failure, in one line
        raise DataError(f"the tokenizer of {model_path.name} failed on {path.name}: {exc}") from None
    arrays = []
    for spec in inputs:
        if spec.name not in encoded:
            raise DataError(f"the tokenizer of {model_path.name} gives {', '.join(encoded)}, but the model also takes "
                            f"'{spec.name}'; give the data as a .npz with an array per input")
        arrays.append(np.asarray(encoded[spec.name]).astype(spec.dtype))
    ids = _label_ids(labels, label_ids, path) if labels is not None else None
    return ArrayDataset(path.name, arrays, ids, batch_axes=[s.batch_axis for s in inputs])


def read_texts(path: Path) -> tuple[list[str], list[Any] | None]:
    """The examples of a text file, and their labels when every example has one."""
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path.name} is {path.stat().st_size / 2**20:.0f} MiB; ParetoLab reads text data into memory: "
                        f"give a sample of at most {MAX_BYTES // 2**20} MiB")
    suffix = path.suffix.lower()
    try:
        if suffix == ".txt":
            texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
            rows: list[dict] = [{"text": t} for t in texts]
        elif suffix == ".jsonl":
            rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        else:
            with path.open(newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f, delimiter="\t" if suffix == ".tsv" else ","))
    except (UnicodeDecodeError, json.JSONDecodeError, csv.Error) as exc:
        raise DataError(f"{path.name} is not readable as {suffix[1:]} text ({exc}); save it as UTF-8") from None
    if not rows:
        raise DataError(f"{path.name} holds no examples")
    text_key = next((k for k in TEXT_KEYS if isinstance(rows[0], dict) and k in rows[0]), None)
    if text_key is None:
        raise DataError(f"{path.name} has no text column; name it one of {', '.join(TEXT_KEYS)}")
    label_key = next((k for k in LABEL_KEYS if k in rows[0]), None)
    texts = [str(row.get(text_key, "")) for row in rows]
    labels = [row.get(label_key) for row in rows] if label_key else None
    if labels is not None and any(label in (None, "") for label in labels):
        raise DataError(f"{path.name}: some examples have no '{label_key}'; label every example or none")
    return texts, labels


def _label_ids(labels: list[Any], label_ids: dict[str, int] | None, path: Path) -> np.ndarray:
    """Class indices: numbers as they are, names through the model's label2id."""
    try:
        return np.array([int(label) for label in labels], np.int64)
    except (TypeError, ValueError):
        pass
    known = label_ids or {}
    unknown = sorted({str(label) for label in labels if str(label) not in known})
    if unknown:
        names = ", ".join(known) or "none (its config has no label2id)"
        raise DataError(f"{path.name}: label '{unknown[0]}' is not one of the model's classes ({names}); "
                        "use the class names or indices the model was trained with")
    return np.array([known[str(label)] for label in labels], np.int64)


def _sequence_length(inputs: Sequence[TensorSpec], path: Path) -> int:
    ids = next((s for s in inputs if s.name == "input_ids"), inputs[0] if inputs else None)
    if ids is None or len(ids.shape) != 2 or not isinstance(ids.shape[1], int):
        raise DataError(f"text data ({path.name}) needs a model that takes token ids [batch, sequence] with the "
                        "sequence length fixed: give it with --input-shape 1x128")
    return int(ids.shape[1])


def _tokenizer(model_path: Path, trust: bool = False) -> Any:
    folder = model_path if model_path.is_dir() else model_path.parent
    if not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise DataError(f"text data needs the model's tokenizer: put its files ({', '.join(TOKENIZER_FILES)}) in "
                        f"{folder}, next to the model, as save_pretrained writes them")
    check_remote_code(folder, trust)  # before transformers reads the folder: it would ask on stdin
    try:
        import transformers
    except ImportError:
        raise DataError("text data needs the transformers package for the tokenizer: pip install 'paretolab[hf]'") from None
    try:
        return transformers.AutoTokenizer.from_pretrained(folder, local_files_only=True, trust_remote_code=trust)
    except Exception as exc:  # noqa: BLE001
        raise DataError(f"the tokenizer in {folder.name} does not load ({str(exc).splitlines()[0]})") from None
