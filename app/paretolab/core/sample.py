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
from typing import Any

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
    """Path of a built-in model: "onnx" or "torchscript" (the digits CNN), or "demo" (the 32x32 ResNet)."""
    return sample_dir() / {"onnx": SAMPLE_ONNX, "torchscript": SAMPLE_TORCHSCRIPT, "demo": DEMO_ONNX}[kind]


def sample_info_of(kind: str) -> dict:
    return json.loads((sample_dir() / (DEMO_INFO if kind == "demo" else SAMPLE_INFO)).read_text())


def sample_info() -> dict:
    """What the build script measured: accuracies per split, input spec, class names."""
    return json.loads((sample_dir() / SAMPLE_INFO).read_text())


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # float32 [N, 1, 8, 8], pixel intensity scaled to 0..1
    labels: np.ndarray  # int64 [N]


@functools.cache
def digits_cnn_class() -> type:
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

        def forward(self, x: Any) -> Any:
            return self.classifier(self.features(x))

    DigitsCNN.__module__, DigitsCNN.__qualname__ = __name__, "DigitsCNN"  # picklable by name
    return DigitsCNN


def __getattr__(name: str) -> type:
    if name == "DigitsCNN":  # importable as paretolab.core.sample:DigitsCNN without importing torch eagerly
        return digits_cnn_class()
    if name == "DigitsResNet":
        return digits_resnet_class()
    raise AttributeError(name)


def digits_split(name: str) -> Split:
    """One of the fixed "train", "val", "test" splits the sample was trained and scored on."""
    with np.load(sample_dir() / SAMPLE_SPLIT) as data:
        return Split(data[f"{name}_images"].astype(np.float32) / 16.0, data[f"{name}_labels"].astype(np.int64))


# The demo sample: the same digits at 32x32 with noise, so that compression visibly costs accuracy.
DEMO_ONNX = "digits32_resnet.onnx"
DEMO_STATE_DICT = "digits32_resnet_state.pth"
DEMO_INFO = "digits32_resnet.json"
DEMO_ARCH = "paretolab.core.sample:DigitsResNet"
DEMO_SIZE = 32
DEMO_NOISE = 0.6  # std of the Gaussian noise on 0..1 pixels: what makes the task hard enough to move
_SPLIT_SEEDS = {"train": 11, "val": 12, "test": 13}


def upsample(images: np.ndarray, size: int = DEMO_SIZE) -> np.ndarray:
    """[N, 1, 8, 8] -> [N, 1, size, size]: nearest neighbour, then a [1, 2, 1] blur per axis, in numpy
    (no resampling library: the same numbers on every machine)."""
    factor = size // images.shape[-1]
    big = images.repeat(factor, axis=-1).repeat(factor, axis=-2)
    for axis in (-1, -2):
        padded = np.concatenate([big.take([0], axis=axis), big, big.take([-1], axis=axis)], axis=axis)
        n = big.shape[axis]
        big = (padded.take(range(0, n), axis=axis) + 2 * padded.take(range(1, n + 1), axis=axis)
               + padded.take(range(2, n + 2), axis=axis)) / 4
    return big.astype(np.float32)


def demo_split(name: str) -> Split:
    """The digits split at 32x32 with fixed Gaussian noise (a seed per split), as the demo sample sees it."""
    base = digits_split(name)
    rng = np.random.default_rng(_SPLIT_SEEDS[name])
    images = upsample(base.images)
    images += rng.normal(0.0, DEMO_NOISE, images.shape).astype(np.float32)
    return Split(images, base.labels)


@functools.cache
def digits_resnet_class() -> type:
    """The demo's architecture: a small ResNet (three stages of one basic block) that runs in about
    a millisecond, so pruning and quantization show on the chart."""
    from torch import nn

    class BasicBlock(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.shortcut = nn.Sequential()
            if stride != 1 or cin != cout:
                self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

        def forward(self, x: Any) -> Any:
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))

    class DigitsResNet(nn.Module):
        def __init__(self, widths: tuple[int, ...] = (48, 96, 192), strides: tuple[int, ...] = (1, 2, 2)) -> None:
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, widths[0], 3, 1, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
            blocks, cin = [], widths[0]
            for i, w in enumerate(widths):
                blocks.append(BasicBlock(cin, w, strides[i]))
                cin = w
            self.layers = nn.Sequential(*blocks)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, 10)

        def forward(self, x: Any) -> Any:
            return self.fc(self.pool(self.layers(self.stem(x))).flatten(1))

    for cls in (BasicBlock, DigitsResNet):
        cls.__module__ = __name__
    DigitsResNet.__qualname__, BasicBlock.__qualname__ = "DigitsResNet", "DigitsResNetBlock"
    return DigitsResNet
