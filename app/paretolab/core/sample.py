"""The built-in sample: a small CNN trained on scikit-learn's 8x8 digits, and its data split.

Shipped in resources/sample (built by scripts/build_sample.py) so a new user sees a real
model with real accuracy, with no download.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

SAMPLE_ONNX = "digits_cnn.onnx"
SAMPLE_TORCHSCRIPT = "digits_cnn.pt"
SAMPLE_SPLIT = "digits_split.npz"
SAMPLE_INFO = "digits_cnn.json"


def sample_dir() -> Path:
    return Path(str(resources.files("paretolab.resources") / "sample"))


def sample_model_path(kind: str = "onnx") -> Path:
    """Path of the sample model: kind is "onnx" or "torchscript"."""
    return sample_dir() / {"onnx": SAMPLE_ONNX, "torchscript": SAMPLE_TORCHSCRIPT}[kind]


def sample_info() -> dict:
    """What the build script measured: accuracies per split, input spec, class names."""
    return json.loads((sample_dir() / SAMPLE_INFO).read_text())


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # float32 [N, 1, 8, 8], pixel intensity scaled to 0..1
    labels: np.ndarray  # int64 [N]


def digits_split(name: str) -> Split:
    """One of the fixed "train", "val", "test" splits the sample was trained and scored on."""
    with np.load(sample_dir() / SAMPLE_SPLIT) as data:
        return Split(data[f"{name}_images"].astype(np.float32) / 16.0, data[f"{name}_labels"].astype(np.int64))
