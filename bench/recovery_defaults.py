"""The study behind recovery training's defaults: after structured pruning, which loss wins back
the most in a short budget — fine-tuning on the labels, the old distillation default (α 0.7, T 4,
mixup 0.4), or the searched choice ("auto", which tries the losses and learning rates and keeps
what the validation split prefers)? Each on every task of bench/tasks.py at one sparsity, with
validation and test top-1 of the pruned, recovered model (FP32, ONNX Runtime) and the wall time
of the recovery step on this machine.

    python bench/recovery_defaults.py [--task demo|shapes|text|all] [--sparsity 0.7] [--epochs 6] [--seeds 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import apply_recipe
from tasks import TASKS

RUNS = (("labels only (fine-tune; the default)", {"loss": "labels"}),
        ("distill α 0.7, T 4, mixup 0.4 (the old default)", {"loss": "both", "alpha": 0.7}),
        ("auto: loss and learning rate searched on validation", {"loss": "auto"}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=(*TASKS, "all"), default="all")
    parser.add_argument("--sparsity", type=float, default=0.7)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, default=1)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)  # as bench/compress.py: one thread trains faster on the shared machine
    print("| task | FP32 val / test top-1 % | recovery | val top-1 % | test top-1 % | wall s | chosen |")
    print("|---|---|---|---|---|---|---|")
    for name in TASKS if args.task == "all" else (args.task,):
        task = TASKS[name]()
        handle = load_model(task.onnx, arch=task.arch)
        fp32 = f"{100 * evaluate(handle, task.val).top1:.2f} / {100 * evaluate(handle, task.test).top1:.2f}"
        for label, settings in RUNS:
            val, test, wall, chosen = [], [], [], set()
            for seed in range(args.seeds):
                recipe = Recipe.from_dict({"steps": [
                    {"technique": "prune", "settings": {"method": "structured", "sparsity": args.sparsity}},
                    {"technique": "distill", "settings": {"epochs": args.epochs, "seed": seed, **settings}}]})
                with tempfile.TemporaryDirectory() as tmp:
                    start = time.time()
                    artifact, reports = apply_recipe(handle, recipe, DataPlan(task.train, task.val, task.test),
                                                     Path(tmp) / "v")
                    wall.append(time.time() - start)
                    student = load_model(artifact)
                    val.append(evaluate(student, task.val).top1)
                    test.append(evaluate(student, task.test).top1)
                report = next((r for r in reports if r.get("technique") == "distill"), {})
                chosen.add(str(report.get("chosen") or report.get("why") or "")[:80])
            print(f"| {name} | {fp32} | {label} | {_mean(val)} | {_mean(test)} | {statistics.mean(wall):.0f} | "
                  f"{'; '.join(sorted(chosen))} |", flush=True)


def _mean(values: list[float]) -> str:
    mean = 100 * statistics.mean(values)
    return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}"


if __name__ == "__main__":
    main()
