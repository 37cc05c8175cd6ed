"""Rebuild the built-in samples (resources/sample) deterministically.

The demo sample (a small ResNet on the digits at 32x32 with noise, ~1 ms per image) is built
first, from the same split; then the digits sample: trains a small CNN on scikit-learn's
bundled 8x8 digits (no download) with fixed seeds on a single thread, then writes the model as
ONNX and TorchScript, the data split, and a JSON of what was measured. Running it twice on one
machine gives byte-identical weights; another CPU may pick other float kernels, so its weights
differ slightly (tests/test_sample.py).

    python scripts/build_sample.py [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "app"))
from paretolab.core.sample import (  # noqa: E402
    DEMO_ARCH,
    DEMO_INFO,
    DEMO_NOISE,
    DEMO_ONNX,
    DEMO_STATE_DICT,
    SAMPLE_ARCH,
    SAMPLE_STATE_DICT,
    DigitsCNN,
    DigitsResNet,
    demo_split,
    upsample,
)

SEED = 0
EPOCHS = 40
INPUT = {"name": "input", "shape": ["batch", 1, 8, 8], "dtype": "float32"}
OUTPUT = {"name": "logits", "shape": ["batch", 10], "dtype": "float32"}


def make_split() -> dict[str, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = digits.images.astype(np.uint8)[:, None]  # 0..16, [N, 1, 8, 8]
    labels = digits.target.astype(np.int64)
    idx = np.arange(len(labels))
    train, rest = train_test_split(idx, test_size=0.4, random_state=SEED, stratify=labels)
    val, test = train_test_split(rest, test_size=0.5, random_state=SEED, stratify=labels[rest])
    split = {}
    for name, part in (("train", train), ("val", val), ("test", test)):
        split[f"{name}_images"] = images[part]
        split[f"{name}_labels"] = labels[part]
        split[f"{name}_index"] = part
    return split


def accuracy(model: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    with torch.no_grad():
        logits = model(torch.from_numpy(images.astype(np.float32) / 16.0))
    return float((logits.argmax(1).numpy() == labels).mean())


def train(split: dict[str, np.ndarray]) -> nn.Module:
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    model = DigitsCNN()
    x = torch.from_numpy(split["train_images"].astype(np.float32) / 16.0)
    y = torch.from_numpy(split["train_labels"])
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    order = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.randperm(len(y), generator=order).split(64):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
    return model.eval()


DEMO_EPOCHS = 20
DEMO_INPUT = {"name": "input", "shape": ["batch", 1, 32, 32], "dtype": "float32"}


def train_demo(split: dict[str, np.ndarray], epochs: int) -> nn.Module:
    """The demo ResNet on 32x32 digits, with random shifts and fresh noise each batch."""
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    model = DigitsResNet()
    clean = torch.from_numpy(upsample(split["train_images"].astype(np.float32) / 16.0))
    y = torch.from_numpy(split["train_labels"])
    steps = epochs * ((len(y) + 63) // 64)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 3e-3, total_steps=steps)
    order = torch.Generator().manual_seed(SEED)
    for _ in range(epochs):
        model.train()
        for batch in torch.randperm(len(y), generator=order).split(64):
            dx, dy = torch.randint(-3, 4, (2,), generator=order).tolist()
            x = torch.roll(clean[batch], (dy, dx), (2, 3))
            x = x + DEMO_NOISE * torch.randn(x.shape, generator=order)
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y[batch]).backward()
            optimizer.step()
            schedule.step()
    return model.eval()


def build_demo(out: Path, split: dict[str, np.ndarray], epochs: int) -> dict:
    model = train_demo(split, epochs)
    torch.save(model.state_dict(), out / DEMO_STATE_DICT)
    from paretolab.core.model.torch_onnx import export_to_onnx

    example = torch.from_numpy(demo_split("test").images[:1])
    export_to_onnx(model, (example,), out / DEMO_ONNX, ["input"], output_names=["logits"])
    _record_eager_module(out / DEMO_ONNX, DEMO_ARCH, DEMO_STATE_DICT)

    def scored(name: str) -> float:
        part = demo_split(name)
        with torch.no_grad():
            return round(float((model(torch.from_numpy(part.images)).argmax(1).numpy() == part.labels).mean()), 4)

    info = {
        "name": "digits32_resnet",
        "description": "Small ResNet on the digits upsampled to 32x32 with Gaussian noise: "
        "a demo whose compression visibly costs accuracy.",
        "inputs": [DEMO_INPUT],
        "outputs": [OUTPUT],
        "classes": [str(i) for i in range(10)],
        "preprocessing": f"pixel intensity / 16, upsampled to 32x32, "
        f"plus Gaussian noise (std {DEMO_NOISE}, fixed seed per split)",
        "split_sizes": {k: int(len(split[f"{k}_labels"])) for k in ("train", "val", "test")},
        "accuracy": {k: scored(k) for k in ("train", "val", "test")},
        "seed": SEED,
        "epochs": epochs,
        "torch": torch.__version__,
    }
    (out / DEMO_INFO).write_text(json.dumps(info, indent=2) + "\n")
    return info


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "resources" / "sample")
    parser.add_argument("--only", choices=("digits", "demo"), help="build one of the two samples (default: both)")
    parser.add_argument(
        "--demo-epochs", type=int, default=DEMO_EPOCHS, help=f"training epochs of the demo (default {DEMO_EPOCHS})"
    )
    args = parser.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    split = make_split()
    if args.only != "digits":
        print(json.dumps(build_demo(out, split, args.demo_epochs)["accuracy"]))
    if args.only == "demo":
        return
    model = train(split)
    np.savez_compressed(out / "digits_split.npz", **split)

    example = torch.from_numpy(split["test_images"][:1].astype(np.float32) / 16.0)
    spec = json.dumps({"inputs": [INPUT], "outputs": [OUTPUT]})
    torch.jit.save(torch.jit.trace(model, example), str(out / "digits_cnn.pt"), _extra_files={"paretolab.json": spec})

    from paretolab.core.model.torch_onnx import export_to_onnx

    torch.save(model.state_dict(), out / SAMPLE_STATE_DICT)
    export_to_onnx(model, (example,), out / "digits_cnn.onnx", ["input"], output_names=["logits"])
    _record_eager_module(out / "digits_cnn.onnx", SAMPLE_ARCH, SAMPLE_STATE_DICT)

    info = {
        "name": "digits_cnn",
        "description": "Small CNN trained on scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes).",
        "inputs": [INPUT],
        "outputs": [OUTPUT],
        "classes": [str(i) for i in range(10)],
        "preprocessing": "pixel intensity (0..16) divided by 16",
        "split_sizes": {k: int(len(split[f"{k}_labels"])) for k in ("train", "val", "test")},
        "accuracy": {k: round(accuracy(model, split[f"{k}_images"], split[f"{k}_labels"]), 4) for k in ("train", "val", "test")},
        "seed": SEED,
        "epochs": EPOCHS,
        "torch": torch.__version__,
    }
    (out / "digits_cnn.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info["accuracy"]))


def _record_eager_module(path: Path, arch: str, state_dict: str) -> None:
    """Say where the eager module lives, so techniques that need torch (structured pruning,
    distillation) can use it; only classes inside paretolab are ever imported this way."""
    import onnx

    proto = onnx.load(str(path))
    onnx.helper.set_model_props(proto, {"paretolab.arch": arch, "paretolab.state_dict": state_dict})
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


if __name__ == "__main__":
    main()
