"""Headless commands: everything the GUI does, from a terminal.

Mistakes the user can fix (ParetoLabError) print one line and exit with status 2;
anything else is our bug: one line naming the log file (where the traceback goes), exit 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from paretolab.cli_parser import build_parser, sweep_overrides
from paretolab.core.errors import ParetoLabError
from paretolab.core.tensors import parse_input_shapes

if TYPE_CHECKING:
    from paretolab.core.compress.variant import Variant

EXIT_USER_ERROR = 2
EXIT_INTERNAL_ERROR = 1


def _load(args: argparse.Namespace):
    from paretolab.core.files import add_code_path
    from paretolab.core.model.handle import load_model

    for folder in args.code:
        if not args.trust:  # its modules would shadow installed ones on import (a torch.py there runs)
            raise ParetoLabError(f"--code {folder} puts that folder's Python files on the import path, where they "
                                 "run; add --trust if you trust the folder and the model")
        if not Path(folder).is_dir():
            raise ParetoLabError(f"--code {folder}: no such folder; give the folder that holds the model's Python code")
        add_code_path(Path(folder))
    shapes = parse_input_shapes(args.input_shape)
    handle = load_model(args.model, input_shapes=shapes, trust=args.trust, arch=args.arch, held=_held(args))
    for note in handle.notes:
        print(f"note: {note}", file=sys.stderr)
    return handle


def _held(args: argparse.Namespace) -> dict[str, float]:
    """Inputs held at a value: --hold NAME=VALUE, and those a random data spec holds (random:64:sr=16000),
    so every run of the command (graphs, timing, calibration) gets them, not only the data."""
    from paretolab.core.measure.data import parse_held, parse_random

    held: dict[str, float] = {}
    for spec in (getattr(args, "data", None), getattr(args, "over_data", None)):
        if spec and spec.partition(":")[0] == "random":
            held.update(parse_random(spec)[1])
    return held | parse_held(getattr(args, "hold", []))


def _plan(args: argparse.Namespace, handle):  # noqa: ANN202 - a DataPlan, imported late as every command's core is
    """The data plan of --data and --preprocess, judging outputs as --output-kind says."""
    from paretolab.core.measure.output_kinds import parse_output_kinds
    from paretolab.core.measure.plan import DataPlan

    plan = DataPlan.from_spec(args.data, handle, args.preprocess)
    plan.output_kinds = parse_output_kinds(args.output_kind)
    return plan


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
    if args.modules:
        from paretolab.core.model.blocks import module_rows

        graph = module_rows(graph)
    print(render.layer_table(graph, args.sort))
    return 0


def cmd_importance(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from paretolab import render
    from paretolab.core.compress.insight.importance import (
        default_cache,
        head_scores,
        sensitivity_scan,
        weight_importance,
    )
    from paretolab.core.measure.plan import DataPlan

    handle = _load(args)
    plan = DataPlan.from_spec(args.data, handle, args.preprocess)  # gradients from the training split, the scan on held-out data
    data, held_out = plan.train, plan.validation
    progress = _terminal_progress(args)
    layers = weight_importance(handle, data, progress=progress)
    scan = sensitivity_scan(handle, held_out, kind=args.sensitivity, levels=args.levels, cache=default_cache(),
                            progress=progress) if args.sensitivity else None
    heads = head_scores(handle)
    if args.json:
        _print_json({"layers": [asdict(x) for x in layers], "sensitivity": scan.to_dict() if scan else None,
                     "heads": heads})
    else:
        print(render.importance(layers, scan, heads))
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
    from paretolab.core.measure.data import default_data
    from paretolab.core.measure.evaluate import evaluate
    from paretolab.core.measure.output_kinds import parse_output_kinds
    from paretolab.core.measure.plan import DataPlan, dataset_for, preprocess_note
    from paretolab.core.model.handle import load_model

    handle = _load(args)
    reference = (
        load_model(args.reference, input_shapes=parse_input_shapes(args.input_shape) or None, trust=args.trust, arch=args.arch,
                   held=_held(args))
        if args.reference
        else None
    )
    spec, note = (args.data, None) if args.data else default_data(handle.inputs)
    if note:
        print(f"note: {note}", file=sys.stderr)
    dataset = (DataPlan.from_spec(spec, handle).test if spec.startswith("random")
               else dataset_for(spec, handle, args.preprocess))
    if note := preprocess_note(dataset):
        print(f"note: {note}", file=sys.stderr)
    progress = _terminal_progress(args)
    result = evaluate(handle, dataset, backend=args.backend, device=args.device, batch_size=args.batch_size,
                      reference=reference, reference_backend=args.reference_backend, threads=args.threads, progress=progress,
                      output_kinds=parse_output_kinds(args.output_kind))
    if args.json:
        _print_json(result.to_dict())
    else:
        print(render.evaluation(result))
    return 0


def cmd_profile(args: argparse.Namespace) -> int:
    from paretolab import render
    from paretolab.core.measure.profile import profile_model

    handle = _load(args)
    if args.sequence:
        from paretolab.core.measure.scaling import sequence_scaling

        scaling = sequence_scaling(handle, args.sequence, backend=args.backend, device=args.device, threads=args.threads,
                                   runs=args.runs, budget_s=args.budget, progress=_terminal_progress(args))
        print(json.dumps(scaling.to_dict(), indent=1) if args.json else render.scaling(scaling))
        return 0
    if args.over_data:
        from paretolab.core.measure.plan import DataPlan
        from paretolab.core.measure.runtimes import default_backend
        from paretolab.core.measure.timing import time_over_data

        test = DataPlan.from_spec(args.over_data, handle).test
        backend = args.backend or default_backend(handle)
        (timing,), _ = time_over_data([handle], test, backend=backend, device=args.device, threads=args.threads,
                                      progress=_terminal_progress(args))
        print(json.dumps(timing.to_dict(), indent=1) if args.json else render.over_data(handle.path.name, test.name,
                                                                                         f"{backend}/{args.device}", timing))
        return 0
    result = profile_model(handle, backend=args.backend, device=args.device, batch_sizes=args.batch, threads=args.threads,
                           runs=args.runs, budget_s=args.budget, per_layer=not args.no_layers, progress=_terminal_progress(args))
    if args.json:
        _print_json(result.to_dict())
    else:
        print(render.profile(result))
    return 0


def recipe_from_args(args: argparse.Namespace):
    from paretolab.core.compress.technique_flags import check_flags, given_steps, step_flags
    from paretolab.core.compress.techniques import recipe_steps
    from paretolab.core.compress.variant import Recipe
    from paretolab.core.settings import SettingsError

    steps = given_steps(args)
    if args.recipe:
        if steps:
            raise SettingsError(f"give either --recipe or step options ({step_flags()}), not both")
        return Recipe.load(args.recipe)
    check_flags(args)
    if not steps:
        raise SettingsError(f"nothing to do: give --recipe, or at least one of {step_flags()}")
    return Recipe.from_dict({"steps": recipe_steps(**steps)}, "command line")


def cmd_optimize(args: argparse.Namespace) -> int:
    from paretolab import render
    from paretolab.core.pipeline.optimize import optimize

    recipe = recipe_from_args(args)
    handle = _load(args)
    variant = optimize(handle, recipe, _plan(args, handle), Path(args.out), args.name,
                       backend=args.backend, device=args.device, threads=args.threads, progress=_terminal_progress(args))
    if args.json:
        _print_json(variant.to_dict())
    else:
        print(render.variant(variant))
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from paretolab import render
    from paretolab.core.model.eager import torch_edits_unavailable
    from paretolab.core.pipeline.cluster import ClusterSettings, sweep_on
    from paretolab.core.pipeline.optimize import check_space
    from paretolab.core.pipeline.sweep import SweepSettings
    from paretolab.core.settings import SettingsError
    from paretolab.core.store.experiment import Experiment

    if (args.measure_on or args.workers) and not args.ray:
        raise SettingsError("--measure-on and --workers are for sweeps on Ray: add --ray [ADDRESS]")
    cluster = ClusterSettings(None if args.ray == "local" else args.ray, args.measure_on, args.workers) if args.ray else None
    if cluster is not None and cluster.address not in (None, "auto"):
        from paretolab.core.pipeline.ray_connect import address_host_port

        address_host_port(cluster.address)  # a malformed address is one line before the model loads
    handle = _load(args)
    experiment = Experiment(Path(args.out)) if args.out else Experiment.for_model(handle)
    check_space(handle, experiment.folder)  # before the journal and the first trial, in one line
    result = sweep_on(
        cluster,
        handle,
        _plan(args, handle),
        experiment,
        SweepSettings(budget_s=args.budget, trials=args.trials, overrides=sweep_overrides(args)),
        torch_edits=torch_edits_unavailable(handle) is None,
        progress=_terminal_progress(args),
        on_variant=lambda v: print(f"{v.name}: {v.recipe.summary()}", file=sys.stderr),
    )
    print(render.sweep_summary(experiment, result))
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from dataclasses import asdict

    from paretolab.core.compress.insight.explain import explain
    from paretolab.core.model.handle import load_model

    variant = _written_variant(Path(args.model))
    original = load_model(Path(variant.parent), input_shapes=parse_input_shapes(args.input_shape) or None, held=_held(args),
                          trust=args.trust, arch=args.arch)
    result = explain(original, variant, original.like(variant.artifact), layer_times=not args.no_layers)
    if args.json:
        _print_json(asdict(result))
    else:
        print(result.text())
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from paretolab.core.measure.plan import DataPlan
    from paretolab.core.model.handle import load_model
    from paretolab.core.store.export import export_variant

    variant = _written_variant(Path(args.model))
    made = load_model(variant.artifact, input_shapes=parse_input_shapes(args.input_shape) or None, held=_held(args))
    expected = None if variant.cancelled else variant.measured.top1
    result = export_variant(made, args.format, Path(args.out), DataPlan.from_spec(args.data, made, args.preprocess).test,
                            expected_top1=expected, progress=_terminal_progress(args), force=args.force,
                            protect=(Path(variant.parent),))
    doc = {"path": str(result.path), "format": result.format, "top1": result.top1, "agreement": result.agreement,
           "expected_top1": result.expected_top1, "matches": result.matches}
    if args.json:
        _print_json(doc)
    else:
        top1 = f"top-1 {result.top1:.2%}" if result.top1 is not None else "no labels"
        agreement = f", agrees with the variant on {result.agreement:.1%}" if result.agreement is not None else ""
        verdict = "matches the variant's numbers" if result.matches else "DIFFERS from the variant's numbers"
        print(f"wrote {result.path} ({result.format}): {top1}{agreement}; {verdict}")
    return 0 if result.matches else 1


def _written_variant(artifact: Path) -> Variant:
    """The variant `paretolab optimize` wrote as `artifact` (its metrics beside it)."""
    from paretolab.core.store.experiment import Experiment

    found = [v for v in Experiment(artifact.parent).variants() if v.artifact.name == artifact.name]
    if not found:
        raise ParetoLabError(f"{artifact}: no variant with metrics there; give a file that `paretolab optimize` wrote "
                             "(its NAME.metrics.json beside it)")
    return found[0]


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
            from paretolab.core.compress.insight.importance import default_cache, sensitivity_scan
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


def cmd_record(args: argparse.Namespace) -> int:
    from paretolab.core.measure.record import record_inputs

    handle = _load(args)
    made = record_inputs(handle.path, handle.inputs, args.script, Path(args.out), max_samples=args.max, force=args.force)
    for note in made.notes:
        print(f"note: {note}", file=sys.stderr)
    shapes = ", ".join(f"{name} {list(shape)}" for name, shape in made.shapes.items())
    print(f"recorded {made.samples} samples from {made.calls} call(s) into {made.path} ({shapes}); "
          f"use it with --data {made.path}")
    return 0


def cmd_gui(args: argparse.Namespace) -> int:
    from paretolab.gui.qt_check import check_qt_can_start

    check_qt_can_start()  # one line instead of Qt's abort when there is no display or a library is missing
    if getattr(args, "self_test", False):
        from paretolab.gui.self_test import run_self_test

        return run_self_test()
    from paretolab.gui.app import run_app

    return run_app(args.model)


def _path_opens_the_app(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """`paretolab model.onnx` opens the app on the file, as `netron model.onnx` does: a first
    argument that is no command but an existing file or folder becomes `gui PATH` (in place);
    one that looks like a path but is missing is named in the returned one-line problem."""
    if not argv or argv[0].startswith("-"):
        return None
    commands = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    first = argv[0]
    if first in commands:
        return None
    if Path(first).expanduser().exists():
        argv[:1] = ["gui", str(Path(first).expanduser())]
        return None
    if any(c in first for c in "/\\.") or Path(first).suffix:
        return f"{first}: no such file or folder; give a model file or folder to open, or a command (paretolab --help)"
    return None  # a mistyped command: argparse lists the commands


def main(argv: Sequence[str] | None = None) -> int:
    from paretolab.core.files import remove_stale_work_folders
    from paretolab.logs import setup_logging

    log_path = setup_logging()
    for folder in remove_stale_work_folders():  # left by a ParetoLab process that was killed mid-job
        logging.getLogger(__name__).info("removed stale work folder %s", folder)
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    if (problem := _path_opens_the_app(parser, argv)) is not None:
        print(f"paretolab: error: {problem}", file=sys.stderr)
        return EXIT_USER_ERROR
    script: list[str] = []
    if argv[:1] == ["record"] and "--" in argv:  # the user's own command, options and all, is not ours to parse
        argv, script = argv[:argv.index("--")], argv[argv.index("--") + 1:]
    args = parser.parse_args(argv)
    if args.command == "record":
        args.script = script
    if args.command is None:
        args.command, args.model, args.self_test = "gui", None, False
    handlers = {"inspect": cmd_inspect, "backends": cmd_backends, "evaluate": cmd_evaluate, "profile": cmd_profile,
                "importance": cmd_importance, "optimize": cmd_optimize, "run": cmd_optimize, "sweep": cmd_sweep,
                "report": cmd_report, "explain": cmd_explain, "export": cmd_export, "record": cmd_record, "gui": cmd_gui}
    try:
        return handlers[args.command](args)
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
        from paretolab.core.files import disk_error

        if (message := disk_error(exc)) is not None:  # a full or read-only disk the up-front checks did not catch
            logging.getLogger(__name__).info("write failed in %s", args.command, exc_info=exc)
            print(f"paretolab: error: {message}", file=sys.stderr)
            return EXIT_USER_ERROR

        logging.getLogger(__name__).error("unexpected error in %s", args.command, exc_info=exc)
        print(f"paretolab: internal error: {type(exc).__name__}: {first_line(exc)} (details in {log_path or 'the log'}; "
              "please report it)", file=sys.stderr)
        return EXIT_INTERNAL_ERROR
