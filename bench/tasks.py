"""The tasks the compression bench and the recovery-training study run on: three small problems
of different kinds, each with train / validation / test splits that carry labels and a trained
FP32 model (its nn.Module class, its weights and its ONNX export, which names the class and the
weights in its metadata as ParetoLab's own sample does, so pruning and distillation find the
PyTorch twin).

- demo: the shipped demo sample (noisy digits at 32x32, a ResNet); nothing is trained here.
- shapes: eight synthetic shape and texture classes at 32x32 in colour under heavy noise, a
  MobileNet-like CNN (depthwise-separable blocks).
- text: synthetic token sequences whose class is set by ordered token pairs (the same pairs
  reversed are distractors), a 1-D CNN over embeddings; int64 token ids in.

Everything is built in code from fixed seeds, with no download. The two trained models take
well under a minute on two cores and are cached under the temp folder, keyed by a hash of this
file, so a change to a generator or an architecture retrains them.
"""

from __future__ import annotations

import hashlib
import inspect
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from paretolab.core.measure.data import ArrayDataset
from paretolab.core.model.eager import ARCH_KEY, STATE_DICT_KEY
from paretolab.core.sample import (
    DEMO_ARCH,
    DEMO_NOISE,
    DEMO_ONNX,
    DEMO_STATE_DICT,
    demo_split,
    digits_resnet_class,
    digits_split,
    sample_dir,
    upsample,
)

CACHE = Path(tempfile.gettempdir()) / "paretolab-bench-tasks"


@dataclass
class Task:
    name: str
    description: str
    train: ArrayDataset
    val: ArrayDataset
    test: ArrayDataset
    model_class: type  # the nn.Module class; made with no arguments
    state: Path  # its trained weights (state_dict)
    onnx: Path  # its FP32 ONNX export, with the class and weights named in the metadata

    @property
    def arch(self) -> str:
        return f"{self.model_class.__module__}:{self.model_class.__qualname__}"

    def model(self) -> nn.Module:
        """A fresh copy of the trained FP32 model (for the peer, which edits it in place)."""
        model = self.model_class()
        model.load_state_dict(torch.load(self.state, weights_only=True))
        return model.eval()

    def example(self) -> torch.Tensor:
        return torch.from_numpy(self.train.arrays[0][:1])


# -- the demo ------------------------------------------------------------------------------------

def demo_task(copies: int = 4) -> Task:
    """The demo sample as shipped; its test split is the 360 test digits under `copies` fresh noise draws."""
    train, val = demo_split("train"), demo_split("val")
    clean = upsample(digits_split("test").images)
    rng = np.random.default_rng(2026)
    test = np.concatenate([clean + rng.normal(0.0, DEMO_NOISE, clean.shape).astype(np.float32) for _ in range(copies)])
    labels = np.tile(digits_split("test").labels, copies)
    assert DEMO_ARCH.endswith(digits_resnet_class().__qualname__)
    return Task("demo", "noisy digits at 32x32, the shipped ResNet (690 K parameters)",
                ArrayDataset("demo:train", [train.images], train.labels),
                ArrayDataset("demo:val", [val.images], val.labels),
                ArrayDataset(f"demo:test x{copies}", [test], labels),
                digits_resnet_class(), sample_dir() / DEMO_STATE_DICT, sample_dir() / DEMO_ONNX)


# -- shapes: a second image task ------------------------------------------------------------------

SHAPES = ("disk", "ring", "square", "frame", "triangle", "cross", "stripes", "checks")
SHAPES_NOISE = 0.2


def shapes_images(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """[count, 3, size, size] float32 images of a shape or texture patch at a random place, size,
    angle and colour on a random background, with Gaussian noise; and their int64 labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, len(SHAPES), count)
    grid = np.arange(size, dtype=np.float32)
    y, x = np.meshgrid(grid, grid, indexing="ij")
    cx, cy = (rng.uniform(11, size - 11, (2, count, 1, 1))).astype(np.float32)
    r = rng.uniform(7.0, 10.0, (count, 1, 1)).astype(np.float32)
    theta = rng.uniform(0, np.pi, (count, 1, 1)).astype(np.float32)
    dx, dy = x - cx, y - cy
    u, v = dx * np.cos(theta) + dy * np.sin(theta), -dx * np.sin(theta) + dy * np.cos(theta)
    dist = np.hypot(u, v)
    period = rng.uniform(3.0, 5.0, (count, 1, 1)).astype(np.float32)
    masks = {
        "disk": dist < r,
        "ring": np.abs(dist - r) < 1.6,
        "square": np.maximum(np.abs(u), np.abs(v)) < 0.8 * r,
        "frame": np.abs(np.maximum(np.abs(u), np.abs(v)) - 0.8 * r) < 1.3,
        "triangle": (v < 0.5 * r) & (np.abs(u) < (v + r) * 0.6) & (v > -r),
        "cross": ((np.abs(u) < 1.6) | (np.abs(v) < 1.6)) & (np.maximum(np.abs(u), np.abs(v)) < r),
        "stripes": (np.sin(2 * np.pi * u / period) > 0) & (dist < r + 1),
        "checks": (np.sin(2 * np.pi * u / period) * np.sin(2 * np.pi * v / period) > 0) & (dist < r + 1),
    }
    mask = np.zeros((count, size, size), dtype=np.float32)
    for k, name in enumerate(SHAPES):
        chosen = labels == k
        mask[chosen] = masks[name][chosen]
    tint = rng.uniform(0.8, 1.0, (count, 3, 1, 1)).astype(np.float32)
    fg = rng.uniform(0.7, 1.0, (count, 1, 1, 1)).astype(np.float32) * tint
    bg = rng.uniform(0.0, 0.3, (count, 1, 1, 1)).astype(np.float32) * tint
    images = bg + (fg - bg) * mask[:, None]
    images += rng.normal(0.0, SHAPES_NOISE, images.shape).astype(np.float32)
    return images.astype(np.float32), labels.astype(np.int64)


class SepBlock(nn.Module):
    """Depthwise 3x3 then pointwise 1x1, each with batch norm and ReLU (MobileNet v1)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.dw = nn.Sequential(nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False), nn.BatchNorm2d(cin), nn.ReLU())
        self.pw = nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU())

    def forward(self, x: Any) -> Any:
        return self.pw(self.dw(x))


class ShapesMobileNet(nn.Module):
    def __init__(self, widths: tuple[int, ...] = (32, 64, 64, 128, 128), strides: tuple[int, ...] = (2, 1, 2, 1, 1)
                 ) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, 32, 3, 1, 1, bias=False), nn.BatchNorm2d(32), nn.ReLU())
        blocks, cin = [], 32
        for w, s in zip(widths, strides):
            blocks.append(SepBlock(cin, w, s))
            cin = w
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(cin, len(SHAPES))

    def forward(self, x: Any) -> Any:
        return self.fc(self.pool(self.blocks(self.stem(x))).flatten(1))


def shapes_task() -> Task:
    splits = {name: shapes_images(n, seed) for name, n, seed in (("train", 3000, 31), ("val", 600, 32), ("test", 1500, 33))}
    data = {name: ArrayDataset(f"shapes:{name}", [images], labels) for name, (images, labels) in splits.items()}
    state, onnx_file = _trained("shapes", ShapesMobileNet, data["train"], 12, 2e-3, shapes_task, shapes_images,
                                SepBlock, f"{SHAPES}{SHAPES_NOISE}")
    return Task("shapes", f"{len(SHAPES)} noisy shapes and textures at 32x32 in colour, a MobileNet-like CNN",
                data["train"], data["val"], data["test"], ShapesMobileNet, state, onnx_file)


# -- text: token sequences ------------------------------------------------------------------------

VOCAB, LENGTH, TEXT_CLASSES = 256, 64, 6


def text_sequences(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids [count, LENGTH] (int64) and labels: each class owns three ordered token pairs; a
    sequence holds one or two of its class's pairs, often one pair of another class (a tie when
    both hold one: those cannot all be right) and reversed pairs of every class as distractors,
    in random background tokens."""
    motifs = np.random.default_rng(7).choice(np.arange(8, VOCAB), (TEXT_CLASSES, 3, 2), replace=False)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, TEXT_CLASSES, count)
    seqs = rng.integers(8, VOCAB, (count, LENGTH))
    for i, label in enumerate(labels):
        pairs = [motifs[label, rng.integers(3)] for _ in range(1 + (rng.random() < 0.5))]
        if rng.random() < 0.35:
            other = (label + rng.integers(1, TEXT_CLASSES)) % TEXT_CLASSES
            pairs.append(motifs[other, rng.integers(3)])
        pairs += [motifs[rng.integers(TEXT_CLASSES), rng.integers(3)][::-1] for _ in range(rng.integers(1, 4))]
        starts = rng.choice(np.arange(0, LENGTH - 1, 2), len(pairs), replace=False)
        for start, pair in zip(starts, pairs):
            seqs[i, start : start + 2] = pair
    return seqs.astype(np.int64), labels.astype(np.int64)


class TextCNN(nn.Module):
    def __init__(self, dim: int = 48, width: int = 160) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, dim)
        self.conv1 = nn.Sequential(nn.Conv1d(dim, width, 3, padding=1, bias=False), nn.BatchNorm1d(width), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv1d(width, width, 3, padding=1, bias=False), nn.BatchNorm1d(width), nn.ReLU())
        self.pool = nn.AdaptiveMaxPool1d(1)
        self.fc = nn.Linear(width, TEXT_CLASSES)

    def forward(self, ids: Any) -> Any:
        return self.fc(self.pool(self.conv2(self.conv1(self.embed(ids).transpose(1, 2)))).flatten(1))


def text_task() -> Task:
    splits = {name: text_sequences(n, seed) for name, n, seed in (("train", 2400, 41), ("val", 600, 42), ("test", 1500, 43))}
    data = {name: ArrayDataset(f"text:{name}", [ids], labels) for name, (ids, labels) in splits.items()}
    state, onnx_file = _trained("text", TextCNN, data["train"], 12, 2e-3, text_task, text_sequences,
                                f"{VOCAB} {LENGTH} {TEXT_CLASSES}")
    return Task("text", f"{TEXT_CLASSES}-class synthetic token sequences ({LENGTH} tokens), a 1-D CNN over embeddings",
                data["train"], data["val"], data["test"], TextCNN, state, onnx_file)


# -- training and caching -------------------------------------------------------------------------

def fit(model: nn.Module, train: ArrayDataset, epochs: int, lr: float, seed: int = 0) -> nn.Module:
    """Plain supervised training with Adam on the labels (also the peer's fine-tuning)."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)  # faster than two on a shared machine, and the same for every side
    x, y = torch.from_numpy(train.arrays[0]), torch.from_numpy(train.labels)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y)).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


def export_onnx(model: nn.Module, example: torch.Tensor, out: Path, arch: str | None = None, state: str | None = None
                ) -> Path:
    """The model as ONNX (input "input", a dynamic batch); with `arch` and `state` the metadata names
    the PyTorch class and the weights file beside it, as ParetoLab's own files do."""
    import onnx

    torch.onnx.export(model, (example,), str(out), input_names=["input"], output_names=["logits"], dynamo=False,
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    if arch and state:
        proto = onnx.load(str(out))
        for key, value in ((ARCH_KEY, arch), (STATE_DICT_KEY, state)):
            proto.metadata_props.add(key=key, value=value)
        onnx.save(proto, str(out))
    return out


def _code_hash(*code: Any) -> str:
    """The source of what makes a trained model (its data, its class, its training): a change to
    any retrains it, an edit elsewhere in this file does not."""
    return hashlib.sha256("".join(c if isinstance(c, str) else inspect.getsource(c) for c in code).encode()).hexdigest()[:12]


def _trained(name: str, cls: type, train: ArrayDataset, epochs: int, lr: float, *code: Any) -> tuple[Path, Path]:
    folder = CACHE / f"{name}-{_code_hash(cls, fit, export_onnx, *code)}"
    state, onnx_file = folder / "state.pth", folder / "model.onnx"
    if state.exists() and onnx_file.exists():
        return state, onnx_file
    folder.mkdir(parents=True, exist_ok=True)
    start = time.time()
    model = fit(cls(), train, epochs, lr)
    torch.save(model.state_dict(), folder / "state.tmp")
    export_onnx(model, torch.from_numpy(train.arrays[0][:1]), folder / "model.tmp.onnx",
                f"{cls.__module__}:{cls.__qualname__}", state.name)
    (folder / "model.tmp.onnx").replace(onnx_file)
    (folder / "state.tmp").replace(state)
    print(f"  trained the {name} model in {time.time() - start:.0f} s ({folder})", file=sys.stderr)
    return state, onnx_file


TASKS: dict[str, Callable[[], Task]] = {"demo": demo_task, "shapes": shapes_task, "text": text_task}
