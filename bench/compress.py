"""ParetoLab's best recipe against the one-shot tools a user would try first.

A CIFAR-style ResNet-18 (3x3 stem, 32x32 inputs) is trained here on the digits images
upsampled to 32x32 (cached after the first run). Then, on this CPU, in one run:
  - FP32 on ONNX Runtime (the baseline),
  - onnxruntime.quantization.quantize_static with its defaults,
  - nncf.quantize with its defaults, on OpenVINO,
  - ParetoLab recipes (structured pruning -> distillation -> int8 for OpenVINO).
Latencies are medians at batch 1, measured in alternating rounds so machine noise hits
every model alike. Targets: the best ParetoLab variant within 1 point of the baseline's
accuracy is >= 5x faster than the baseline and >= 1.3x faster than the best one-shot tool
at equal or better accuracy.

    python bench/compress.py [--epochs 8] [--rounds 3] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import platformdirs
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import CifarResNet18  # noqa: E402
from paretolab.core.compress.variant import Recipe  # noqa: E402
from paretolab.core.measure.data import ArrayDataset, digits, random_inputs  # noqa: E402
from paretolab.core.measure.evaluate import evaluate  # noqa: E402
from paretolab.core.measure.plan import DataPlan  # noqa: E402
from paretolab.core.measure.profile import time_calls  # noqa: E402
from paretolab.core.measure.runtimes import open_runner  # noqa: E402
from paretolab.core.model.handle import load_model  # noqa: E402
from paretolab.core.pipeline.optimize import apply_recipe  # noqa: E402

CACHE = Path(platformdirs.user_cache_dir("paretolab")) / "bench"
SIZE = 32


def upsampled(split: str) -> ArrayDataset:
    part = digits(split)
    images = torch.from_numpy(part.load(np.arange(len(part)))[0])
    big = torch.nn.functional.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    return ArrayDataset(f"digits32:{split}", [big.repeat(1, 3, 1, 1).numpy().astype(np.float32)], part.labels)


def trained_model(epochs: int) -> Path:
    """Train once, cache the weights; later runs reuse them."""
    path = CACHE / f"cifar_resnet18_digits_e{epochs}.pth"
    if path.exists():
        return path
    torch.manual_seed(0)
    model = CifarResNet18()
    train = upsampled("train")
    x, y = torch.from_numpy(train.arrays[0]), torch.from_numpy(train.labels)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 0.1, total_steps=epochs * ((len(y) + 63) // 64))
    for epoch in range(epochs):
        model.train()
        start = time.time()
        for batch in torch.randperm(len(y)).split(64):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
            schedule.step()
        print(f"  training epoch {epoch + 1}/{epochs} ({time.time() - start:.0f} s)", file=sys.stderr)
    CACHE.mkdir(parents=True, exist_ok=True)
    torch.save(model.eval().state_dict(), path)
    return path


class Reader:
    def __init__(self, data: ArrayDataset, name: str, count: int = 128) -> None:
        self._items = iter([{name: data.arrays[0][i : i + 1]} for i in range(count)])

    def get_next(self):
        return next(self._items, None)


def one_shot_ort(fp32: Path, calib: ArrayDataset, work: Path) -> Path:
    from onnxruntime.quantization import quantize_static

    out = work / "ort_quantize_static_defaults.onnx"
    quantize_static(str(fp32), str(out), Reader(calib, "input"))
    return out


def one_shot_nncf(fp32: Path, calib: ArrayDataset, work: Path) -> Path:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(fp32))
    quantized = nncf.quantize(model, nncf.Dataset([calib.arrays[0][i : i + 1] for i in range(300)]))
    out = work / "nncf_quantize_defaults.xml"
    ov.save_model(quantized, str(out))
    return out


def latency_rounds(models: dict[str, tuple[Path, str]], rounds: int) -> dict[str, float]:
    """Median batch-1 latency per model, alternating models round by round."""
    times: dict[str, list[float]] = {k: [] for k in models}
    handles = {k: load_model(p) for k, (p, _) in models.items()}
    for _ in range(rounds):
        for name, (_, backend) in models.items():
            handle = handles[name]
            inputs = random_inputs(
                handle.inputs
                if handle.inputs[0].is_static
                else [handle.inputs[0].__class__(handle.inputs[0].name, (1, 3, SIZE, SIZE), "float32")],
                1,
            ).load(np.arange(1))
            with open_runner(handle, backend) as runner:
                times[name].append(statistics.median(time_calls(runner.bind(inputs), warmup=10, runs=100, budget_s=3.0)) * 1000)
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--distill-epochs", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    weights = trained_model(args.epochs)
    train, val, test = upsampled("train"), upsampled("val"), upsampled("test")
    baseline = load_model(weights, arch="models:CifarResNet18", input_shapes={None: (1, 3, SIZE, SIZE)})
    plan = DataPlan(train, val, test)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fp32 = baseline.to_onnx(work / "fp32.onnx")
        models = {
            "FP32, ONNX Runtime (baseline)": (fp32, "ort"),
            "quantize_static defaults, ONNX Runtime": (one_shot_ort(fp32, train, work), "ort"),
            "nncf.quantize defaults, OpenVINO": (one_shot_nncf(fp32, train, work), "openvino"),
        }
        recipes = {
            f"ParetoLab: prune {s:.0%} → distill → OpenVINO int8": Recipe.from_dict({"steps": [
                {"technique": "prune", "settings": {"method": "structured", "sparsity": s}},
                {"technique": "distill", "settings": {"epochs": args.distill_epochs, "lr": 1e-3}},
                {"technique": "quantize", "settings": {"backend": "openvino"}},
            ]})
            for s in (0.5, 0.7)
        }
        recipes["ParetoLab: ONNX Runtime int8, fastest faithful format"] = Recipe.from_dict(
            {"steps": [{"technique": "quantize", "settings": {"backend": "ort"}}]})
        for name, recipe in recipes.items():
            start = time.time()
            artifact, _ = apply_recipe(
                load_model(fp32) if "ONNX Runtime int8" in name else baseline,
                recipe,
                plan,
                work / name.split(":")[1].strip().replace(" ", "_").replace("→", "").replace("%", ""),
            )
            backend = recipe.steps[-1].settings.backend
            models[name] = (artifact, backend)
            print(f"  {name}: built in {time.time() - start:.0f} s", file=sys.stderr)

        accuracy = {name: evaluate(load_model(p), test, backend=b).top1 for name, (p, b) in models.items()}
        latency = latency_rounds(models, args.rounds)

    base_name = "FP32, ONNX Runtime (baseline)"
    base_ms, base_acc = latency[base_name], accuracy[base_name]
    one_shot = [n for n in models if "defaults" in n]
    rows = [(n, f"{100 * accuracy[n]:.2f}", f"{latency[n]:.3f}", f"{base_ms / latency[n]:.2f}x") for n in models]
    header = ("variant", "test top-1 %", "median ms (batch 1)", "speed-up vs FP32")
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        print("\n".join("| " + " | ".join(r) + " |" for r in rows))
    else:
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(4)]
        print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in (header, *rows)))

    ours = [n for n in models if n.startswith("ParetoLab") and accuracy[n] >= base_acc - 0.01]
    if not ours:
        print("\nno ParetoLab variant stayed within 1 point of the baseline")
        return
    best = min(ours, key=lambda n: latency[n])
    rivals = [n for n in one_shot if accuracy[n] <= accuracy[best] + 1e-9] or one_shot
    rival = min(rivals, key=lambda n: latency[n])
    print(f"\nbest ParetoLab variant within 1 point: {best}")
    print(f"  {base_ms / latency[best]:.2f}x faster than FP32 ONNX Runtime (target >= 5x)")
    print(f"  {latency[rival] / latency[best]:.2f}x faster than the best one-shot tool at equal or lower accuracy, "
          f"{rival} (target >= 1.3x)")


if __name__ == "__main__":
    main()
