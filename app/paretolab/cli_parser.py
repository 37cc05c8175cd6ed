"""The command line's arguments: one builder per command, and the value types they parse.

Kept apart from the commands (cli.py) so each file reads as one thing: what can be typed here,
what it does there. Every option has a help text (tests/cli check it).
"""

from __future__ import annotations

import argparse

from paretolab import __version__
from paretolab.core.compress.technique_flags import add_step_arguments, step_defaults
from paretolab.core.compress.techniques import sensitivity_kinds
from paretolab.core.measure.runtimes import BACKENDS
from paretolab.core.store.export import EXPORT_FORMATS


def _add_model_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", help="model file: .onnx, .pt/.pth, .pt2 or OpenVINO .xml")
    parser.add_argument(
        "--input-shape",
        action="append",
        default=[],
        metavar="[NAME=]SHAPE",
        help="fix an input's shape, e.g. 1x3x224x224 (repeat with NAME= for several inputs; a named shape fixes "
             "the dimensions it names, such as batch and sequence, for every input that shares them)",
    )
    parser.add_argument(
        "--hold", action="append", default=[], metavar="NAME=VALUE",
        help="hold an input at a value in every run (calibration, evaluation, timing, graphs), e.g. sr=16000 "
             "for a sample rate; an input held but not shaped is a scalar (repeatable)",
    )
    parser.add_argument(
        "--trust", action="store_true", help="allow loading a pickled nn.Module (runs code from the file)"
    )
    parser.add_argument(
        "--arch", metavar="PKG.MODULE:CLASS", help="class to load a bare state_dict into (instantiated with no arguments)"
    )
    parser.add_argument("--code", action="append", default=[], metavar="DIR",
                        help="folder with the Python code a pickled model's classes come from (repeatable)")


def _add_runtime_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--backend", choices=BACKENDS,
                        help="runtime (default: ort; openvino for OpenVINO IR and TFLite models)")
    parser.add_argument(
        "--device", default="cpu", help="cpu, cuda, tensorrt (ort), gpu or auto (openvino); see `paretolab backends`"
    )
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for the runtime (default: the runtime's)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


DATA_DEFAULT = "the built-in digits for models they fit, else random inputs"


def _add_variant_output_arguments(parser: argparse.ArgumentParser, backends: tuple[str, ...]) -> None:
    """Where a variant goes and where it is measured: shared by optimize and run."""
    parser.add_argument("--out", required=True, metavar="DIR", help="folder for the model, its recipe and its metrics")
    parser.add_argument("--name", help="file name of the result (default: the next free v1, v2, ...; an existing "
                        "file is never overwritten)")
    parser.add_argument(
        "--backend", choices=backends, help="where to measure the result (default: the quantization target, else ort)"
    )
    parser.add_argument("--device", default="cpu", help="device to measure the result on (see `paretolab backends`)")
    parser.add_argument("--threads", type=int, metavar="N", help="CPU threads for measuring (default: the runtime's)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paretolab", description="Make neural networks smaller and faster. Without a command, opens the app; "
                                      "`paretolab MODEL` opens it on MODEL (a file or folder)."
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
    _add_explain_command(commands)
    _add_export_command(commands)
    _add_record_command(commands)
    _add_gui_command(commands)
    return parser


def _add_inspect_command(commands: argparse._SubParsersAction) -> None:
    inspect = commands.add_parser("inspect", help="summary and per-layer table of a model")
    _add_model_arguments(inspect)
    inspect.add_argument("--json", action="store_true", help="print the whole layer graph as JSON")
    inspect.add_argument(
        "--sort", choices=("order", "macs", "params"), default="order", help="order of the layer table"
    )
    inspect.add_argument("--modules", action="store_true",
                         help="one row per module (a transformer's attention, MLP...), shape plumbing folded in")


def _add_backends_command(commands: argparse._SubParsersAction) -> None:
    backends = commands.add_parser("backends", help="backends and devices that can run models here")
    backends.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_data_arguments(parser: argparse.ArgumentParser, what: str, more: str = "") -> None:
    parser.add_argument("--data", help=f"{what}: an image folder, .wav files (audio:DIR:rate=16000:hop=N), a text "
                        "file, an .npz by input name (paretolab record makes one from your own script) or random:N "
                        f"(default: {DATA_DEFAULT}{more})")
    parser.add_argument(
        "--preprocess", metavar="RECIPE",
        help="how an image folder's images become tensors, e.g. size=224,resize=256,mean=0.485/0.456/0.406,"
             "std=0.229/0.224/0.225,channels=RGB,layout=NCHW,scale=255 "
             "(default: shaped to the model's input, ImageNet statistics)",
    )
    parser.add_argument(
        "--output-kind", metavar="OUTPUT=KIND", action="append", default=[],
        help="how an output is judged against the original's, overriding the guess from its name and shape: "
             "KIND is classification, detection, sequence (CTC), embedding or regression, or detection-v5 / "
             "detection-v8 for a YOLO [b, N, D] output whose rows hold objectness (v5) or not (v8); e.g. "
             "boxes=detection,emb=embedding",
    )


def _add_evaluate_command(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser("evaluate", help="accuracy and fidelity of a model on a dataset")
    _add_model_arguments(evaluate)
    _add_runtime_arguments(evaluate)
    _add_data_arguments(evaluate, "digits[:train|val|test], random[:N][:NAME=VALUE,...], an image folder, "
                                  "a .npz/.npy file, or text (.txt, .jsonl, .csv: tokenized by the model's tokenizer)")
    evaluate.add_argument("--reference", metavar="MODEL", help="model to compare outputs with (fidelity), e.g. the original")
    evaluate.add_argument(
        "--reference-backend", choices=BACKENDS, help="backend for the reference (default: --backend)"
    )
    evaluate.add_argument("--batch-size", type=int, default=32, help="samples per inference call (default: 32)")


def _add_profile_command(commands: argparse._SubParsersAction) -> None:
    profile = commands.add_parser("profile", help="latency, throughput, memory and per-layer time")
    _add_model_arguments(profile)
    _add_runtime_arguments(profile)
    profile.add_argument("--batch", type=_positive_ints, default=[1, 8], metavar="1,8", help="batch sizes to time (default: 1,8)")
    profile.add_argument("--sequence", type=_positive_ints, metavar="32,128,512",
                         help="instead: MACs and batch-1 latency at each sequence length (models with a free sequence axis)")
    profile.add_argument("--runs", type=int, default=200, help="timed runs per batch size, at most (default: 200)")
    profile.add_argument("--budget", type=float, default=5.0, metavar="SECONDS", help="time limit per batch size (default: 5)")
    profile.add_argument("--no-layers", action="store_true", help="skip the per-layer breakdown")
    profile.add_argument("--over-data", metavar="DATA",
                         help="instead: batch 1 on each test sample of DATA in turn, the average with p50/p90/p99 "
                         "(the latency of a model whose cost depends on its input: early exit)")


def _add_importance_command(commands: argparse._SubParsersAction) -> None:
    importance = commands.add_parser("importance", help="which layers matter: weight importance and a sensitivity scan")
    _add_model_arguments(importance)
    _add_data_arguments(importance, "data for Taylor importance and the scan")
    importance.add_argument(
        "--sensitivity", choices=sensitivity_kinds(), help="also compress one layer at a time and measure the drop"
    )
    importance.add_argument(
        "--levels", type=_ratios, default=(0.3, 0.6, 0.9), metavar="0.3,0.6,0.9", help="pruning levels for the scan"
    )
    importance.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_optimize_command(commands: argparse._SubParsersAction) -> None:
    optimize = commands.add_parser("optimize", help="apply pruning / quantization / graph optimization and measure the result")
    _add_model_arguments(optimize)
    optimize.add_argument("--recipe", metavar="R.json", help="a saved recipe (instead of the step options below)")
    add_step_arguments(optimize)  # --prune, --lowrank, --distill ...: each technique's flags, from the registry
    _add_data_arguments(optimize, "calibration and evaluation data", "; digits: train to calibrate, test to report")
    _add_variant_output_arguments(optimize, BACKENDS)


def _add_run_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="reproduce a saved recipe on a model (same as optimize --recipe)")
    run.add_argument("recipe", help="recipe file (from the GUI's Save recipe, or NAME.recipe.json next to a variant)")
    _add_model_arguments(run)
    _add_data_arguments(run, "calibration and evaluation data")
    _add_variant_output_arguments(run, ("ort", "openvino"))
    run.set_defaults(**step_defaults())


def _add_sweep_command(commands: argparse._SubParsersAction) -> None:
    sweep = commands.add_parser("sweep", help="explore settings for the accuracy-versus-latency Pareto front")
    _add_model_arguments(sweep)
    _add_data_arguments(sweep, "calibration, training and evaluation data, as for optimize")
    sweep.add_argument("--budget", type=_duration, default=600.0, metavar="10m", help="time budget: 90s, 10m, 1h (default 10m)")
    sweep.add_argument("--trials", type=int, help="stop after this many trials (it also stops when every setting is measured)")
    _add_sweep_values(sweep)
    sweep.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="run the trials as Ray tasks: on a Ray instance started here, or on the cluster at ADDRESS "
                       "(auto, HOST:PORT or ray://HOST:10001); needs the ray extra")
    sweep.add_argument("--measure-on", metavar="RESOURCE",
                       help="with --ray: measure variants on the nodes that carry this Ray resource (default: here)")
    sweep.add_argument("--workers", type=int, metavar="N", help="with --ray: trials at once (default: the cluster's CPUs)")
    sweep.add_argument("--out", metavar="DIR", help="experiment folder (default: the model's, in the user data folder)")
    sweep.set_defaults(json=False)


def _add_explain_command(commands: argparse._SubParsersAction) -> None:
    explain = commands.add_parser("explain", help="why a variant is (not) faster: expected against measured speed-up")
    _add_model_arguments(explain)  # MODEL: the variant's file, in its experiment folder beside its metrics
    explain.add_argument("--no-layers", action="store_true", help="skip timing each layer of both models")
    explain.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_export_command(commands: argparse._SubParsersAction) -> None:
    export = commands.add_parser("export", help="write a variant for deployment and re-evaluate the written file")
    _add_model_arguments(export)  # MODEL: the variant's file, in its experiment folder beside its metrics
    export.add_argument("--format", required=True, choices=EXPORT_FORMATS,
                        help="onnx, openvino (IR), pytorch (the variant's torch.export or TorchScript file), "
                        "or a triton model folder")
    export.add_argument("--out", required=True, metavar="PATH", help="file to write (its suffix follows the format), "
                        "or the Triton model folder")
    _add_data_arguments(export, "data to re-evaluate the written file on")
    export.add_argument("--force", action="store_true", help="replace a file already at --out (never the model the "
                        "variant was made from)")
    export.add_argument("--json", action="store_true", help="print the result as JSON")


def _add_report_command(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser("report", help="a self-contained HTML report (plus JSON and CSV) of a model's experiment")
    report.add_argument("target", help="an experiment folder, or a model file (its experiment is used)")
    report.add_argument("--out", required=True, metavar="DIR", help="folder for report.html, report.json, variants.csv")
    report.add_argument("--sensitivity", action="store_true", help="include a per-layer sensitivity scan (digits data)")
    report.set_defaults(json=False)


def _add_record_command(commands: argparse._SubParsersAction) -> None:
    record = commands.add_parser(
        "record", help="run your own script once and save the inputs MODEL receives as an .npz for --data",
        usage="paretolab record MODEL -o inputs.npz [--max N] [--force] -- python your_script.py [ARGS ...]")
    _add_model_arguments(record)
    record.add_argument("-o", "--out", required=True, metavar="FILE.npz", help="the .npz to write, one array per input name")
    record.add_argument("--max", type=int, default=256, metavar="N", help="keep at most N samples (default: 256)")
    record.add_argument("--force", action="store_true", help="replace an existing -o file")
    record.set_defaults(script=[])  # the command after --: split off before parsing (cli.main), so its own options stay its
    record.epilog = "After --: the command that runs your model (ONNX Runtime, OpenVINO or torch), run once in this folder."


def _add_gui_command(commands: argparse._SubParsersAction) -> None:
    gui = commands.add_parser("gui", help="open the app (on MODEL, or on the built-in sample)")
    gui.add_argument("model", nargs="?", help="model file to open")
    gui.add_argument("--self-test", action="store_true",
                     help="open the sample, build one variant, exit 0 if it reached the chart (checks an install)")


def _positive_ints(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of positive whole numbers, e.g. 1,8")
    return values


def _add_sweep_values(sweep: argparse.ArgumentParser) -> None:
    """The values a sweep tries, per trial parameter: --try PARAM=V,V for any, and the flags the
    techniques' descriptions give their dimensions (--exits 0,2)."""
    from paretolab.core.compress.technique_sweep import dimensions

    for _, dim in dimensions():
        if dim.cli_flag:
            sweep.add_argument(dim.cli_flag, dest=f"sweep__{dim.param}", type=_sweep_values(dim.param),
                               metavar=",".join(str(v) for v in (dim.off, 2)) if dim.gate else "V,V", help=dim.help)
    params = ", ".join(dim.param for _, dim in dimensions())
    sweep.add_argument("--try", dest="sweep_try", action="append", type=_sweep_override, metavar="PARAM=V,V",
                       help=f"the values a trial parameter tries instead of its default, e.g. sparsity=0,0.5 (repeatable; "
                       f"parameters: {params})")


def _sweep_values(param: str):  # noqa: ANN202 - argparse's type
    def parse(text: str) -> tuple:
        from paretolab.core.compress.technique_sweep import dimension, parse_values
        from paretolab.core.settings import SettingsError

        try:
            return parse_values(*dimension(param), text)
        except SettingsError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _sweep_override(text: str) -> tuple[str, tuple]:
    param, equals, values = text.partition("=")
    if not equals:
        raise argparse.ArgumentTypeError(f"'{text}' is not PARAM=V,V, e.g. sparsity=0,0.5")
    return param.strip(), _sweep_values(param.strip())(values)


def sweep_overrides(args: argparse.Namespace) -> dict[str, tuple]:
    """The sweep's values per trial parameter, as the flags gave them (none: the descriptions')."""
    given = dict(args.sweep_try or ())
    given.update({key.removeprefix("sweep__"): value for key, value in vars(args).items()
                  if key.startswith("sweep__") and value is not None})
    return given


def _ratios(text: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or any(not 0 < v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"'{text}' is not a list of ratios between 0 and 1, e.g. 0.3,0.6,0.9")
    return values


def _duration(text: str) -> float:
    units = {"s": 1, "m": 60, "h": 3600}
    try:
        return float(text[:-1]) * units[text[-1]] if text[-1] in units else float(text)
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration such as 90s, 10m or 1h") from None
