"""The built-in sample: a small CNN trained on scikit-learn's 8x8 digits, and its data split.

Shipped in resources/sample (built by scripts/build_sample.py) so a new user sees a real
model with real accuracy, with no download.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

SAMPLE_ONNX = "digits_cnn.onnx"
SAMPLE_TORCHSCRIPT = "digits_cnn.pt"
SAMPLE_SPLIT = "digits_split.npz"
SAMPLE_INFO = "digits_cnn.json"
SAMPLE_STATE_DICT = "digits_cnn_state.pth"
SAMPLE_ARCH = "paretolab.core.sample:DigitsCNN"


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


@functools.cache
def digits_cnn_class():
    """The sample's architecture (torch is imported only when a torch technique needs it)."""
    from torch import nn

    class DigitsCNN(nn.Module):
        """Two conv blocks and a classifier: small enough to train in seconds, big enough to prune."""

        def __init__(self) -> None:
            super().__init__()
            self.features = nn.Sequential(
                nn.Conv2d(1, 16, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(16, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
                nn.Conv2d(32, 64, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),
            )
            self.classifier = nn.Sequential(
                nn.Flatten(), nn.Linear(64 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10)
            )

        def forward(self, x):
            return self.classifier(self.features(x))

    DigitsCNN.__module__, DigitsCNN.__qualname__ = __name__, "DigitsCNN"  # picklable by name
    return DigitsCNN


def __getattr__(name: str):
    if name == "DigitsCNN":  # importable as paretolab.core.sample:DigitsCNN without importing torch eagerly
        return digits_cnn_class()
    raise AttributeError(name)


def digits_split(name: str) -> Split:
    """One of the fixed "train", "val", "test" splits the sample was trained and scored on."""
    with np.load(sample_dir() / SAMPLE_SPLIT) as data:
        return Split(data[f"{name}_images"].astype(np.float32) / 16.0, data[f"{name}_labels"].astype(np.int64))
