"""Headless commands: everything the GUI does, from a terminal.

Mistakes the user can fix (ParetoLabError) print one line and exit with status 2;
anything else is our bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from paretolab import __version__
from paretolab.core.compress.techniques import QUANT_TARGETS
from paretolab.core.errors import ParetoLabError
from paretolab.core.tensors import parse_input_shapes

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file: .onnx, .pt/.pth, .pt2 or OpenVINO .xml")
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="[NAME=]SHAPE",
        help="fix an input's shape, e.g. 1x3x224x224 (repeat with NAME= for several inputs)",
    )
    parser.add_argument(
        "--trust", action="store_true", help="allow loading a pickled nn.Module (runs code from the file)"
    )
    parser.add_argument(
        "--arch", metavar="PKG.MODULE:CLASS", help="class to load a bare state_dict into (instantiated with no arguments)"
    )


def _add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=("torch", "ort", "openvino"), default="ort", help="runtime (default: ort)")
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda, tensorrt (ort), gpu or auto (openvino); see `paretolab backends`"
    )
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for the runtime (default: the runtime's)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


DATA_DEFAULT = "the built-in digits for models they fit, else random inputs"


def _add_variant_output_arguments(parser: argparse.ArgumentParser, backends: tuple[str, ...]) -> None:
    """Where a variant goes and where it is measured: shared by optimize and run."""
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the model, its recipe and its metrics")
    parser.add_argument("--name", default="variant", help="file name of the result (default: variant)")
    parser.add_argument(
        "--backend", choices=backends, help="where to measure the result (default: the quantization target, else ort)"
    )
    parser.add_argument("--device", default="cpu", help="device to measure the result on (see `paretolab backends`)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for measuring (default: the runtime's)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paretolab", description="Make neural networks smaller and faster. Without a command, opens the app."
    )
    parser.add_argument("--version", action="version", version=f"paretolab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_inspect_command(commands)
    _add_backends_command(commands)
    _add_evaluate_command(commands)
    _add_profile_command(commands)
    _add_importance_command(commands)
    _add_optimize_command(commands)
    _add_run_command(commands)
    _add_sweep_command(commands)
    _add_report_command(commands)
    _add_gui_command(commands)
    return parser


def _add_inspect_command(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser("inspect", help="summary and per-layer table of a model")
    _add_model_arguments(inspect)
    inspect.add_argument("--json", action="store_true", help="print the whole layer graph as JSON")
    inspect.add_argument(
        "--sort", choices=("order", "macs", "params"), default="order", help="order of the layer table"
    )
    inspect.set_defaults(handler=cmd_inspect)


def _add_backends_command(commands: argparse._SubParsersAction) -> None:
    backends = commands.add_parser("backends", help="backends and devices that can run models here")
    backends.add_argument("--json", action="store_true", help="print the result as JSON")
    backends.set_defaults(handler=cmd_backends)


def _add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="accuracy and fidelity of a model on a dataset")
    _add_model_arguments(evaluate)
    _add_runtime_arguments(evaluate)
    evaluate.add_argument(
        "--data", help="digits[:train|val|test], random[:N], an image folder, or a .npz/.npy file (default: " + DATA_DEFAULT + ")"
    )
    evaluate.add_argument("--reference", metavar="MODEL", help="model to compare outputs with (fidelity), e.g. the original")
    evaluate.add_argument(
        "--reference-backend", choices=("torch", "ort", "openvino"), help="backend for the reference (default: --backend)"
    )
    evaluate.add_argument("--batch-size", type=int, default=32, help="samples per inference call (default: 32)")
    evaluate.set_defaults(handler=cmd_evaluate)


def _add_profile_command(commands: argparse._SubParsersAction) -> None:
    profile = commands.add_parser("profile", help="latency, throughput, memory and per-layer time")
    _add_model_arguments(profile)
    _add_runtime_arguments(profile)
    profile.add_argument("--batch", type=_positive_ints, default=[1, 8], metavar="1,8", help="batch sizes to time (default: 1,8)")
    profile.add_argument("--runs", type=int, default=200, help="timed runs per batch size, at most (default: 200)")
    profile.add_argument("--budget", type=float, default=5.0, metavar="SECONDS", help="time limit per batch size (default: 5)")
    profile.add_argument("--no-layers", action="store_true", help="skip the per-layer breakdown")
    profile.set_defaults(handler=cmd_profile)


def _add_importance_command(commands: argparse._SubParsersAction) -> None:
    importance = commands.add_parser("importance", help="which layers matter: weight importance and a sensitivity scan")
    _add_model_arguments(importance)
    importance.add_argument("--data", help="data for Taylor importance and the scan (default: " + DATA_DEFAULT + ")")
    importance.add_argument(
        "--sensitivity", choices=("prune", "quantize"), help="also compress one layer at a time and measure the drop"
    )
    importance.add_argument(
        "--levels", type=_ratios, default=(0.3, 0.6, 0.9), metavar="0.3,0.6,0.9", help="pruning levels for the scan"
    )
    importance.add_argument("--json", action="store_true", help="print the result as JSON")
    importance.set_defaults(handler=cmd_importance)


def _add_optimize_command(commands: argparse._SubParsersAction) -> None:
    optimize = commands.add_parser("optimize", help="apply pruning / quantization / graph optimization and measure the result")
    _add_model_arguments(optimize)
    optimize.add_argument("--recipe", metavar="R.json", help="a saved recipe (instead of the step options below)")
    optimize.add_argument("--prune", metavar="METHOD:SPARSITY", help="structured:0.5 or unstructured:0.7")
    optimize.add_argument(
        "--distill",
        type=int,
        metavar="EPOCHS",
        help="retrain from the original's outputs (soft targets, plus labels when the data has them) for up to EPOCHS epochs, "
        "after pruning; needs a PyTorch model",
    )
    optimize.add_argument("--temperature", type=float, default=4.0, help="distillation temperature (default: 4)")
    optimize.add_argument(
        "--alpha",
        type=float,
        default=0.7,
        help="distillation: weight of the original's soft targets, the rest goes to the labels (default: 0.7)",
    )
    optimize.add_argument("--graphopt", choices=("basic", "extended"), help="ONNX Runtime offline graph optimization")
    optimize.add_argument(
        "--quantize",
        choices=QUANT_TARGETS,
        help="quantization target (int8 on ONNX Runtime tries every format and keeps the fastest faithful one)",
    )
    optimize.add_argument("--keep-fp32", default="", metavar="LAYER,LAYER", help="layers the quantizer leaves in floating point")
    optimize.add_argument(
        "--data",
        help="calibration and evaluation data (default: " + DATA_DEFAULT + "; digits: train to calibrate, test to report)",
    )
    _add_variant_output_arguments(optimize, ("torch", "ort", "openvino"))
    optimize.set_defaults(handler=cmd_optimize)


def _add_run_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="reproduce a saved recipe on a model (same as optimize --recipe)")
    run.add_argument("recipe", help="recipe file (from the GUI's Save recipe, or NAME.recipe.json next to a variant)")
    _add_model_arguments(run)
    run.add_argument("--data", help="calibration and evaluation data (default: " + DATA_DEFAULT + ")")
    _add_variant_output_arguments(run, ("ort", "openvino"))
    run.set_defaults(handler=cmd_optimize, prune=None, quantize=None, graphopt=None, keep_fp32="", distill=None)


def _add_sweep_command(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser("sweep", help="explore settings for the accuracy-versus-latency Pareto front")
    _add_model_arguments(sweep)
    sweep.add_argument(
        "--data", help="calibration, training and evaluation data, as for optimize (default: " + DATA_DEFAULT + ")"
    )
    sweep.add_argument("--budget", type=_duration, default=600.0, metavar="10m", help="time budget: 90s, 10m, 1h (default 10m)")
    sweep.add_argument("--trials", type=int, help="stop after this many trials (it also stops when every setting is measured)")
    sweep.add_argument("--out", metavar="DIR", help="experiment folder (default: the model's, in the user data folder)")
    sweep.set_defaults(handler=cmd_sweep, json=False)


def _add_report_command(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="a self-contained HTML report (plus JSON and CSV) of a model's experiment")
    report.add_argument("target", help="an experiment folder, or a model file (its experiment is used)")
    report.add_argument("--out", required=True, metavar="DIR", help="folder for report.html, report.json, variants.csv")
    report.add_argument("--sensitivity", action="store_true", help="include a per-layer sensitivity scan (digits data)")
    report.set_defaults(handler=cmd_report, json=False)


def _add_gui_command(commands: argparse._SubParsersAction) -> None:
    gui = commands.add_parser("gui", help="open the app (on MODEL, or on the built-in sample)")
    gui.add_argument("model", nargs="?", help="model file to open")
    gui.set_defaults(handler=cmd_gui)


def _load(args: argparse.Namespace):
    from paretolab.core.model.handle import load_model

    shapes = parse_input_shapes(args.input_shape)
    return load_model(args.model, input_shapes=shapes, trust=args.trust, arch=args.arch)


def cmd_inspect(args: argparse.Namespace) -> int:
    handle = _load(args)
    graph = handle.layer_graph()
    if args.json:
        doc = {"file": str(handle.path), "format": handle.format, "files": [str(f) for f in handle.files]}
        doc.update(graph.to_dict())
        json.dump(doc, sys.stdout, indent=1)
        print()
        return 0
    from paretolab import render

    print(render.model_summary(handle, graph))
    print()
    print(render.layer_table(graph, args.sort))
    return 0


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of positive whole numbers, e.g. 1,8")
    return values


def _ratios(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of ratios between 0 and 1, e.g. 0.3,0.6,0.9")
    return values


def cmd_importance(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from paretolab import render
    from paretolab.core.compress.importance import (
        default_cache,
        sensitivity_scan,
        weight_importance,
    )
    from paretolab.core.measure.plan import DataPlan

    handle = _load(args)
    plan = DataPlan.from_spec(args.data, handle)  # gradients from the training split, the scan on held-out data
    data, held_out = plan.train, plan.validation
    progress = _terminal_progress(args)
    layers = weight_importance(handle, data, progress=progress)
    scan = sensitivity_scan(handle, held_out, kind=args.sensitivity, levels=args.levels, cache=default_cache(),
                            progress=progress) if args.sensitivity else None
    if args.json:
        _print_json({"layers": [asdict(x) for x in layers], "sensitivity": scan.to_dict() if scan else None})
    else:
        print(render.importance(layers, scan))
    return 0


def _print_json(doc: dict) -> None:
    json.dump(doc, sys.stdout, indent=1)
    print()


def cmd_backends(args: argparse.Namespace) -> int:
    from paretolab import render
    from paretolab.core.measure.runtimes import available_backends

    found = available_backends()
    if args.json:
        _print_json({"backends": [b.to_dict() for b in found]})
    else:
        print(render.backends(found))
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from paretolab import render
    from paretolab.core.measure.data import default_data, open_dataset
    from paretolab.core.measure.evaluate import evaluate
    from paretolab.core.model.handle import load_model

    handle = _load(args)
    reference = (
        load_model(args.reference, input_shapes=parse_input_shapes(args.input_shape) or None, trust=args.trust, arch=args.arch)
        if args.reference
        else None
    )
    spec, note = (args.data, None) if args.data else default_data(handle.inputs)
    if note:
        print(f"note: {note}", file=sys.stderr)
    dataset = open_dataset(spec, handle.inputs)
    progress = _terminal_progress(args)
    result = evaluate(handle, dataset, backend=args.backend, device=args.device, batch_size=args.batch_size,
                      reference=reference, reference_backend=args.reference_backend, threads=args.threads, progress=progress)
    if args.json:
        _print_json(result.to_dict())
    else:
        print(render.evaluation(result))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from paretolab import render
    from paretolab.core.measure.profile import profile_model

    handle = _load(args)
    result = profile_model(handle, backend=args.backend, device=args.device, batch_sizes=args.batch, threads=args.threads,
                           runs=args.runs, budget_s=args.budget, per_layer=not args.no_layers, progress=_terminal_progress(args))
    if args.json:
        _print_json(result.to_dict())
    else:
        print(render.profile(result))
    return 0


def recipe_from_args(args: argparse.Namespace):
    from paretolab.core.compress.techniques import quant_target, recipe_steps
    from paretolab.core.compress.variant import Recipe
    from paretolab.core.settings import SettingsError

    if args.recipe:
        if args.prune or args.quantize or args.graphopt or args.distill:
            raise SettingsError("give either --recipe or step options (--prune, --distill, --graphopt, --quantize), not both")
        return Recipe.load(args.recipe)
    prune = None
    if args.prune:
        method, _, ratio = args.prune.partition(":")
        try:
            prune = {"method": method, "sparsity": float(ratio)}
        except ValueError:
            raise SettingsError(f"--prune '{args.prune}' is not METHOD:SPARSITY, e.g. structured:0.5") from None
    distill = {"epochs": args.distill, "temperature": args.temperature, "alpha": args.alpha} if args.distill is not None else None
    keep = [n.strip() for n in args.keep_fp32.split(",") if n.strip()]
    steps = recipe_steps(prune=prune, distill=distill, graphopt={"level": args.graphopt} if args.graphopt else None,
                         quantize=quant_target(args.quantize).settings(keep_fp32=keep) if args.quantize else None)
    if not steps:
        raise SettingsError("nothing to do: give --recipe, or at least one of --prune, --distill, --graphopt, --quantize")
    return Recipe.from_dict({"steps": steps}, "command line")


def cmd_optimize(args: argparse.Namespace) -> int:
    from paretolab import render
    from paretolab.core.measure.plan import DataPlan
    from paretolab.core.pipeline.optimize import optimize

    recipe = recipe_from_args(args)
    handle = _load(args)
    variant = optimize(handle, recipe, DataPlan.from_spec(args.data, handle), Path(args.out), args.name,
                       backend=args.backend, device=args.device, threads=args.threads, progress=_terminal_progress(args))
    if args.json:
        _print_json(variant.to_dict())
    else:
        print(render.variant(variant))
    return 0


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration such as 90s, 10m or 1h") from None


def cmd_sweep(args: argparse.Namespace) -> int:
    from paretolab import render
    from paretolab.core.measure.plan import DataPlan
    from paretolab.core.model.eager import torch_edits_unavailable
    from paretolab.core.pipeline.sweep import SweepSettings, sweep
    from paretolab.core.store.experiment import Experiment

    handle = _load(args)
    experiment = Experiment(Path(args.out)) if args.out else Experiment.for_model(handle)
    result = sweep(
        handle,
        DataPlan.from_spec(args.data, handle),
        experiment,
        SweepSettings(budget_s=args.budget, trials=args.trials),
        torch_edits=torch_edits_unavailable(handle) is None,
        progress=_terminal_progress(args),
        on_variant=lambda v: print(f"{v.name}: {v.recipe.summary()}", file=sys.stderr),
    )
    print(render.sweep_summary(experiment, result))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from paretolab.core.model.handle import load_model
    from paretolab.core.store.experiment import Experiment
    from paretolab.core.store.report import write_report

    target = Path(args.target)
    sensitivity = None
    if target.is_dir():
        experiment, name = Experiment(target), target.name.rsplit("-", 1)[0]
    else:
        handle = load_model(target)
        experiment, name = Experiment.for_model(handle), handle.path.name
        if args.sensitivity:
            from paretolab.core.compress.importance import default_cache, sensitivity_scan
            from paretolab.core.measure.plan import DataPlan

            held_out = DataPlan.from_spec("digits", handle).validation
            sensitivity = sensitivity_scan(handle, held_out, cache=default_cache()).by_layer()
    for path in write_report(experiment.variants(), Path(args.out), name, sensitivity):
        print(path)
    return 0


def _terminal_progress(args: argparse.Namespace):
    """Progress on stderr when it is a terminal (and --json is off), silent otherwise."""
    from paretolab.core.progress import Progress

    if args.json or not sys.stderr.isatty():
        return Progress()

    def show(fraction: float, message: str) -> None:
        print(f"\r{100 * fraction:5.1f}%  {message[:70]:<70}", end="" if fraction < 1 else "\n", file=sys.stderr, flush=True)

    return Progress(show)


def cmd_gui(args: argparse.Namespace) -> int:
    from paretolab.gui.qt_check import check_qt_can_start

    check_qt_can_start()  # one line instead of Qt's abort when there is no display or a library is missing
    from paretolab.gui.app import run_app

    return run_app(args.model)


def main(argv: Sequence[str] | None = None) -> int:
    from paretolab.core.files import remove_stale_work_folders
    from paretolab.logs import setup_logging

    log_path = setup_logging()
    for folder in remove_stale_work_folders():  # left by a ParetoLab process that was killed mid-job
        logging.getLogger(__name__).info("removed stale work folder %s", folder)
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        args.handler, args.model = cmd_gui, None
    try:
        return args.handler(args)
    except ParetoLabError as exc:
        print(f"paretolab: error: {exc}", file=sys.stderr)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print("paretolab: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `paretolab inspect ... | head`: the reader left, which is fine
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - keeps interpreter shutdown quiet
        return 0
    except Exception as exc:  # a bug of ours or a library's: never a traceback on the user's terminal
        from paretolab.core.errors import first_line

        logging.getLogger(__name__).error("unexpected error in %s", args.command, exc_info=exc)
        print(f"paretolab: internal error: {type(exc).__name__}: {first_line(exc)} (details in {log_path or 'the log'}; "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
