"""PyTorch as the deployment target: the demo ResNet and a pruned, distilled variant of it, in
FP32 and in every lower precision the device computes natively, each saved as the .pt2 file
ParetoLab writes and timed side by side on torch/DEVICE in one run (batch 1 and batch 32).

Speed-ups are against the original in the same form (its own .pt2), so they measure the
technique, not the file format. Agreement is with the original's top-1 on the demo's test split.

    python bench/torch_target.py [--device cpu|cuda] [--backend torch|inductor] [--epochs 3] [--rounds 10] [--markdown]
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from paretolab.core.compress.quantization.torch_precision import Cast, native_precisions
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.data import ArrayDataset, random_inputs
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.timing import Speedup, busy_note, time_side_by_side
from paretolab.core.model.eager import eager_module
from paretolab.core.model.handle import ModelHandle, load_model
from paretolab.core.model.torch_artifact import save_torch_artifact
from paretolab.core.pipeline.optimize import apply_recipe
from paretolab.core.sample import sample_model_path


def saved(module: torch.nn.Module, demo: ModelHandle, stem: Path) -> ModelHandle:
    example = tuple(torch.from_numpy(a) for a in random_inputs(demo.inputs, count=1).load(np.arange(1)))
    return demo.like(save_torch_artifact(module, example, demo.inputs, [{0: "batch"}], stem))


def contenders(demo: ModelHandle, plan: DataPlan, device: str, epochs: int, work: Path) -> dict[str, ModelHandle]:
    original = eager_module(demo, "benchmark")
    recipe = Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"sparsity": 0.5}},
                                         {"technique": "distill", "settings": {"epochs": epochs}}]})
    pruned_file, _ = apply_recipe(demo, recipe, plan, work / "pruned", torch_artifact=True)
    pruned = load_model(pruned_file).source.module
    found = {"FP32 (original)": saved(original, demo, work / "fp32")}
    for precision in native_precisions(device):
        found[f"{precision.upper()}"] = saved(Cast(copy.deepcopy(original), precision), demo, work / precision)
    found["pruned 50% + distilled, FP32"] = demo.like(pruned_file)
    for precision in native_precisions(device):
        found[f"pruned 50% + distilled, {precision.upper()}"] = saved(Cast(copy.deepcopy(pruned), precision), demo,
                                                                      work / f"pruned-{precision}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=("cpu", "cuda"))
    parser.add_argument("--backend", default="torch", choices=("torch", "inductor"),
                        help="eager PyTorch, or torch.compile's Inductor (default: torch)")
    parser.add_argument("--epochs", type=int, default=3, help="distillation epochs for the pruned variant (default: 3)")
    parser.add_argument("--rounds", type=int, default=10, help="alternating timing rounds (default: 10)")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    demo = load_model(sample_model_path("demo"))
    plan = DataPlan.from_spec(None, demo)
    test: ArrayDataset = plan.test
    with tempfile.TemporaryDirectory(prefix="paretolab-bench-torch-") as tmp:
        found = contenders(demo, plan, args.device, args.epochs, Path(tmp))
        reference = found["FP32 (original)"]
        accuracy = {name: evaluate(h, test, backend=args.backend, device=args.device, reference=reference,
                                   reference_backend="torch") for name, h in found.items()}
        timings = {}
        for batch in (1, 32):
            timings[batch] = time_side_by_side(list(found.values()), backend=args.backend, device=args.device,
                                               rounds=args.rounds, batch=batch)
    rows = []
    for i, name in enumerate(found):
        result = accuracy[name]
        cells = [name, f"{result.top1:.2%}", f"{result.agreement:.1%}"]
        for batch in (1, 32):
            base, mine = timings[batch][0], timings[batch][i]
            cells += [f"{mine.median_ms:.3f}", Speedup.of(base, mine).text()]
        rows.append(cells)
    head = ["variant", "top-1", "agrees", "ms (b1)", "speed-up (b1)", "ms (b32)", "speed-up (b32)"]
    device_name = torch.cuda.get_device_name() if args.device == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"torch {torch.__version__}, {args.backend} on {args.device} ({device_name}); native lower precisions: "
          f"{', '.join(native_precisions(args.device)) or 'none'}")
    if args.markdown:
        print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
        for cells in rows:
            print("| " + " | ".join(cells) + " |")
    else:
        for cells in [head, *rows]:
            print("  ".join(c.ljust(16) for c in cells))
    for batch, found_t in timings.items():
        note = busy_note(found_t)
        if note:
            print(f"batch {batch}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
