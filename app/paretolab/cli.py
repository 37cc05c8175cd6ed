"""Headless commands: everything the GUI does, from a terminal.

Mistakes the user can fix (ParetoLabError) print one line and exit with status 2;
anything else is our bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from paretolab import __version__
from paretolab.core.errors import ParetoLabError
from paretolab.core.tensors import format_shape, parse_input_shapes
from paretolab.core.units import si, size

EXIT_USER_ERROR = 2


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="paretolab", description="Make neural networks smaller and faster. Without a command, opens the app."
    )
    parser.add_argument("--version", action="version", version=f"paretolab {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    inspect = commands.add_parser("inspect", help="summary and per-layer table of a model")
    _add_model_arguments(inspect)
    inspect.add_argument("--json", action="store_true", help="print the whole layer graph as JSON")
    inspect.add_argument(
        "--sort", choices=("order", "macs", "params"), default="order", help="order of the layer table"
    )
    inspect.set_defaults(handler=cmd_inspect)

    gui = commands.add_parser("gui", help="open the app (on MODEL, or on the built-in sample)")
    gui.add_argument("model", nargs="?", help="model file to open")
    gui.set_defaults(handler=cmd_gui)
    return parser


def _load(args: argparse.Namespace):
    from paretolab.core.model import load_model

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
    print(render_summary(handle, graph))
    print()
    print(render_layer_table(graph, args.sort))
    return 0


def render_summary(handle, graph) -> str:
    summary = graph.summary()
    macs = si(summary["macs"]) + ("" if summary["macs_complete"] else " (incomplete)")
    ops = ", ".join(f"{op} {n}" for op, n in list(summary["op_counts"].items())[:8])
    lines = [
        f"model    {handle.path}",
        f"format   {handle.format}   size {size(handle.size_bytes)}",
        *(f"input    {spec}" for spec in handle.inputs),
        *(f"output   {spec}" for spec in (handle.outputs or graph.outputs)),
        f"layers   {summary['layers']}   params {si(summary['params'])} ({summary['params']:,})   MACs {macs}",
        f"ops      {ops}",
        *(f"note     {note}" for note in graph.notes),
    ]
    return "\n".join(lines)


def render_layer_table(graph, sort: str = "order") -> str:
    nodes = list(graph.nodes)
    if sort == "macs":
        nodes.sort(key=lambda n: n.macs or 0, reverse=True)
    elif sort == "params":
        nodes.sort(key=lambda n: n.params, reverse=True)
    total = graph.total_macs or 0
    rows = [("layer", "op", "output shape", "params", "MACs", "% MACs")]
    for n in nodes:
        share = f"{100 * n.macs / total:.1f}" if total and n.macs else ""
        shape = format_shape(n.output_shapes[0]) if n.output_shapes else ""
        rows.append((n.name, n.op, shape, f"{n.params:,}", f"{n.macs:,}" if n.macs is not None else "?", share))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = {3, 4, 5}
    return "\n".join(
        "  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip()
        for row in rows
    )


def cmd_gui(args: argparse.Namespace) -> int:
    from paretolab.gui.app import run_app

    return run_app(args.model)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        return cmd_gui(argparse.Namespace(model=None))
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
