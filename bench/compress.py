"""ParetoLab's recipes against what a user would build: the one-shot quantizers, and the skilled
peer — Torch-Pruning, plain fine-tuning and nncf.quantize, the very libraries ParetoLab wraps.

Runs on each task of bench/tasks.py (the demo's noisy digits with a ResNet, noisy shapes with a
MobileNet-like CNN, token sequences with a 1-D CNN). The peer gets the same training budget
(--epochs) at each of --sparsities, and the peer that counts is chosen on validation as
ParetoLab's best is: the fastest within 1 point of the FP32 model. Accuracies are over --seeds
seeds (mean and spread); latencies are medians at batch 1 with 95 % intervals, every model of a
task timed in alternating rounds in one run, so the ratio to the peer comes with its interval.
--sweep also runs ParetoLab's own sweep (its default budget) on the task and times its best
within 1 point beside the others.

    python bench/compress.py [--task demo|shapes|text|all] [--seeds 3] [--epochs 6] [--sweep] [--markdown]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.data import ArrayDataset
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.timing import Speedup, Timing, busy_note, time_side_by_side
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import apply_recipe
from tasks import TASKS, Task, export_onnx, fit

BASELINE = "FP32, ONNX Runtime (baseline)"
NNCF = "nncf.quantize defaults, OpenVINO"
PEER = "Skilled peer: Torch-Pruning {}% → fine-tune → nncf.quantize"
SWEEP = "ParetoLab sweep's best within 1 point (default budget)"


@dataclass
class Contender:
    backend: str
    files: list[Path] = field(default_factory=list)  # one per seed (the one-shot tools have one)
    val: list[float] = field(default_factory=list)
    test: list[float] = field(default_factory=list)
    build_s: list[float] = field(default_factory=list)  # wall time to build, per seed
    note: str = ""


def recovery_settings() -> tuple[dict, dict | None]:
    """Distillation settings for recovery on the labels only, and for the searched recovery ("auto",
    None where this ParetoLab has no "loss" setting yet: then labels only is α 0 without mixup)."""
    from dataclasses import fields

    from paretolab.core.compress.distill import DistillSettings

    if "loss" in {f.name for f in fields(DistillSettings)}:
        return {"loss": "labels"}, {"loss": "auto"}
    return {"alpha": 0.0, "mixup": 0.0}, None


def ours(sparsities: list[float]) -> list[tuple[str, float | None, dict | None]]:
    """ParetoLab's recipes at the peer's sparsities: (row, sparsity, distillation settings); sparsity
    None: int8 alone. The old default and the searched recovery at 70 % and 80 % where those are tried."""
    labels, auto = recovery_settings()
    rows: list[tuple[str, float | None, dict | None]] = [("ParetoLab: ONNX Runtime int8, fastest faithful format", None, None)]
    rows += [("ParetoLab: prune 70% → distill α 0.7, mixup (the old default) → OpenVINO int8", 0.7, {"alpha": 0.7})
             ] if 0.7 in sparsities else []
    rows += [(f"ParetoLab: prune {round(100 * s)}% → recover on labels → OpenVINO int8", s, labels) for s in sparsities]
    if auto is not None:
        rows += [(f"ParetoLab: prune {round(100 * s)}% → recover auto (searched) → OpenVINO int8", s, auto)
                 for s in (0.7, 0.8) if s in sparsities]
    return rows


def recipe(sparsity: float | None, distill: dict | None, epochs: int, seed: int) -> Recipe:
    if sparsity is None:
        return Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "ort"}}]})
    return Recipe.from_dict({"steps": [
        {"technique": "prune", "settings": {"method": "structured", "sparsity": sparsity}},
        {"technique": "distill", "settings": {"epochs": epochs, "seed": seed, **(distill or {})}},
        {"technique": "quantize", "settings": {"backend": "openvino"}},
    ]})


def one_shot_ort(fp32: Path, calib: ArrayDataset, work: Path) -> Path:
    from onnxruntime.quantization import quantize_static

    class Reader:
        def __init__(self) -> None:
            self._items = iter([{"input": calib.arrays[0][i : i + 1]} for i in range(128)])

        def get_next(self):
            return next(self._items, None)

    out = work / "ort_quantize_static_defaults.onnx"
    quantize_static(str(fp32), str(out), Reader())
    return out


def nncf_int8(onnx_file: Path, calib: ArrayDataset, out: Path) -> Path:
    import nncf
    import openvino as ov

    model = ov.Core().read_model(str(onnx_file))
    quantized = nncf.quantize(model, nncf.Dataset([calib.arrays[0][i : i + 1] for i in range(300)]))
    ov.save_model(quantized, str(out))
    return out


def skilled_peer(task: Task, sparsity: float, seed: int, epochs: int, work: Path) -> Path:
    """What a skilled user builds in an afternoon with the libraries ParetoLab wraps: prune the
    channels with Torch-Pruning (L1), fine-tune on the labels with Adam, then int8 with
    nncf.quantize for OpenVINO."""
    import torch
    import torch_pruning as tp

    torch.manual_seed(seed)
    model = task.model()
    classifier = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1:]
    pruner = tp.pruner.MetaPruner(model, task.example(), importance=tp.importance.MagnitudeImportance(p=1),
                                  pruning_ratio=sparsity, ignored_layers=classifier)
    pruner.step()
    fit(model, task.train, epochs, lr=1e-3, seed=seed)
    stem = f"peer_{round(100 * sparsity)}_s{seed}"
    return nncf_int8(export_onnx(model, task.example(), work / f"{stem}.onnx"), task.train, work / f"{stem}.xml")


def build(task: Task, args: argparse.Namespace, work: Path) -> dict[str, Contender]:
    fp32 = task.onnx
    data = DataPlan(task.train, task.val, task.test)
    contenders = {
        BASELINE: Contender("ort", [fp32]),
        "FP32, OpenVINO": Contender("openvino", [fp32]),
        "quantize_static defaults, ONNX Runtime": Contender("ort", [one_shot_ort(fp32, task.train, work)]),
        NNCF: Contender("openvino", [nncf_int8(fp32, task.train, work / "nncf.xml")]),
    }
    original = load_model(fp32, arch=task.arch)
    for seed in range(args.seeds):
        for i, (name, sparsity, distill) in enumerate(ours(args.sparsities)):
            if sparsity is None and seed:
                continue  # no training in it: one build is enough
            start = time.time()
            artifact, _ = apply_recipe(original, recipe(sparsity, distill, args.epochs, seed), data,
                                       work / f"paretolab_{i}_s{seed}")
            contender = contenders.setdefault(name, Contender("ort" if sparsity is None else "openvino"))
            contender.files.append(artifact)
            contender.build_s.append(time.time() - start)
            print(f"  {task.name}: {name}, seed {seed}: built in {time.time() - start:.0f} s", file=sys.stderr)
        for sparsity in args.sparsities:
            start = time.time()
            name = PEER.format(round(100 * sparsity))
            contender = contenders.setdefault(name, Contender("openvino"))
            contender.files.append(skilled_peer(task, sparsity, seed, args.epochs, work))
            contender.build_s.append(time.time() - start)
            print(f"  {task.name}: {name}, seed {seed}: built in {time.time() - start:.0f} s", file=sys.stderr)
    return contenders


def sweep_best(task: Task, work: Path, budget_s: float | None, tries: dict[str, str] | None = None) -> Contender:
    """ParetoLab's sweep with its default settings (budget included, unless --sweep-budget; the
    values of --sweep-try as `paretolab sweep --try`), and its fastest variant within 1 point of the
    original on validation."""
    from paretolab.core.pipeline.sweep import SweepSettings, sweep
    from paretolab.core.store.experiment import Experiment

    handle = load_model(task.onnx, arch=task.arch)
    experiment = Experiment(work / f"sweep-{task.name}")
    from paretolab.core.compress.technique_sweep import dimension, parse_values

    overrides = {param: parse_values(*dimension(param), text) for param, text in (tries or {}).items()}
    settings = SweepSettings(overrides=overrides) if budget_s is None else SweepSettings(budget_s=budget_s,
                                                                                        overrides=overrides)
    start = time.time()
    result = sweep(handle, DataPlan(task.train, task.val, task.test), experiment, settings, torch_edits=True)
    spent = time.time() - start
    kept = [v for v in experiment.variants() if not v.cancelled and not v.measured.broken
            and v.selection_score >= v.baseline_selection_score - 0.01]
    print(f"  {task.name}: sweep ({settings.budget_s:.0f} s budget) ran {spent:.0f} s: {result.note()}; "
          f"{len(kept)} within 1 point", file=sys.stderr)
    if not kept:
        return Contender("ort", note="no variant within 1 point")
    best = min(kept, key=lambda v: v.measured.latency_ms)
    return Contender(best.measured.backend, [best.artifact], build_s=[spent],
                     note=f"{best.recipe.summary()}; {len(result.variants)} trials in {spent:.0f} s")


def spread(values: list[float]) -> str:
    if not values:
        return "—"
    mean = 100 * statistics.mean(values)
    return f"{mean:.2f}" if len(values) == 1 else f"{mean:.2f} ± {100 * statistics.stdev(values):.2f}"


def run_task(task: Task, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        contenders = build(task, args, work)
        if args.sweep:
            contenders[SWEEP] = sweep_best(task, work, args.sweep_budget, dict(t.split("=", 1) for t in args.sweep_try))
        for c in contenders.values():
            for f in c.files:
                handle = load_model(f)
                c.val.append(evaluate(handle, task.val, backend=c.backend).top1)
                c.test.append(evaluate(handle, task.test, backend=c.backend).top1)
        names = [n for n, c in contenders.items() if c.files]
        timings = dict(zip(names, time_side_by_side([load_model(contenders[n].files[0]) for n in names],
                                                    backend=[contenders[n].backend for n in names], rounds=args.rounds,
                                                    budget_s=3.0 * len(names))))
    report(task, args, contenders, timings)


def report(task: Task, args: argparse.Namespace, contenders: dict[str, Contender], timings: dict[str, Timing]) -> None:
    base = timings[BASELINE]
    print(f"\n### {task.name}: {task.description}\n\ntrain {len(task.train)}, validation {len(task.val)}, "
          f"test {len(task.test)}; {args.seeds} seeds, {args.epochs} epochs of training for every recipe that trains; "
          f"{args.rounds} alternating timing rounds\n")
    header = ("variant", "val top-1 %", f"test top-1 % ({args.seeds} seeds)", "median ms [95% CI]", "speed-up vs FP32 ORT",
              "build s")
    rows = [(n + (f" ({c.note})" if c.note else ""), spread(c.val), spread(c.test),
             f"{timings[n].median_ms:.3f} [{timings[n].low_ms:.3f}-{timings[n].high_ms:.3f}]" if n in timings else "—",
             Speedup.of(base, timings[n]).text() if n in timings else "—",
             f"{statistics.mean(c.build_s):.0f}" if c.build_s else "—") for n, c in contenders.items()]
    if args.markdown:
        print("| " + " | ".join(header) + " |\n|" + "---|" * len(header))
        print("\n".join("| " + " | ".join(r) + " |" for r in rows))
    else:
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        print("\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in (header, *rows)))
    busy = busy_note(list(timings.values()))
    if busy:
        print(f"\nwarning: {busy}")
    base_val = statistics.mean(contenders[BASELINE].val)

    def within(name: str) -> bool:  # chosen on validation: the test split is only reported
        return name in timings and statistics.mean(contenders[name].val) >= base_val - 0.01

    def best(names: list[str]) -> str | None:
        kept = [n for n in names if within(n)]
        return min(kept, key=lambda n: timings[n].median_ms) if kept else None

    peers = [n for n in contenders if n.startswith("Skilled peer")]
    peer = best(peers)
    if peer is None and peers:  # none within 1 point: the most accurate one stands in, and is named as such
        peer = max(peers, key=lambda n: statistics.mean(contenders[n].val))
        print(f"no peer within 1 point on validation; its most accurate ({peer}) stands in")
    mine = best([n for n in contenders if n.startswith("ParetoLab") and n != SWEEP])
    print(f"\nwithin 1 point of FP32 on validation ({100 * base_val:.2f}%): "
          f"{', '.join(n for n in contenders if within(n)) or 'none'}")
    print(f"peer chosen on validation: {peer or 'none within 1 point'}")
    if mine is None:
        print("no ParetoLab recipe stayed within 1 point of FP32 on validation")
    else:
        print(f"best ParetoLab recipe: {mine}, {Speedup.of(base, timings[mine]).text()} vs FP32 on ONNX Runtime")
        for rival in (NNCF, peer):
            if rival:
                print(f"  against {rival}: {Speedup.of(timings[rival], timings[mine]).text()}")
    if SWEEP in contenders:
        if within(SWEEP) and peer:
            print(f"sweep's best ({contenders[SWEEP].note}): against the peer "
                  f"{Speedup.of(timings[peer], timings[SWEEP]).text()}"
                  + (f"; against the best recipe above {Speedup.of(timings[mine], timings[SWEEP]).text()}" if mine else ""))
        else:
            print(f"sweep: {contenders[SWEEP].note or 'its best is not within 1 point on this split'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=(*TASKS, "all"), default="all", help="which task (default: all)")
    parser.add_argument("--seeds", type=int, default=3, help="training seeds for the recipes that train (default: 3)")
    parser.add_argument("--epochs", type=int, default=6, help="distillation / fine-tuning epochs (default: 6)")
    parser.add_argument("--sparsities", type=lambda s: [float(x) for x in s.split(",")], default=[0.5, 0.6, 0.7, 0.8],
                        help="channel sparsities of the peer and of ParetoLab's recipes; the peer's is chosen among them "
                        "on validation (default: 0.5,0.6,0.7,0.8)")
    parser.add_argument("--rounds", type=int, default=12, help="alternating timing rounds (default: 12)")
    parser.add_argument("--sweep", action="store_true", help="also run ParetoLab's sweep with its default settings")
    parser.add_argument("--sweep-budget", type=float, default=None, help="seconds for the sweep (default: its own)")
    parser.add_argument("--sweep-try", action="append", default=[], metavar="PARAM=V,V",
                        help="as `paretolab sweep --try`, e.g. distill.loss=labels,auto")
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    import torch

    torch.set_num_threads(1)  # training: faster than two threads on the shared machine, the same for every side
    for name in TASKS if args.task == "all" else (args.task,):
        run_task(TASKS[name](), args)


if __name__ == "__main__":
    main()
