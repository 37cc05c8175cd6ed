"""torch -> ONNX, with the settings ParetoLab needs.

We use torch's TorchScript-based exporter first: it is fast (tens of ms for small models),
accepts scripted modules, and names nodes after module scopes. When it fails (models only
torch.export can capture), we fall back to the dynamo exporter.

`for_analysis=True` keeps the graph as the user wrote it (BatchNorm not folded into Conv,
parameters under their own names) so LayerGraph nodes map onto module paths; the default
produces the folded graph a runtime should execute, with a dynamic batch axis.
"""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from unittest import mock

import torch

from paretolab.core.errors import ConversionError, first_line
from paretolab.core.model.graph import LayerGraph

log = logging.getLogger(__name__)
OPSET = 17


def export_to_onnx(
    module: torch.nn.Module,
    examples: tuple[torch.Tensor, ...],
    out: Path | io.BytesIO,
    input_names: Sequence[str],
    *,
    output_names: Sequence[str] | None = None,
    for_analysis: bool = False,
    graph: LayerGraph | None = None,
    dynamic_axes: Sequence[Mapping[int, str]] | None = None,
) -> None:
    """Export `module`. A runtime export to a file names its nodes by module path, using
    `graph` (the model's analysis LayerGraph) or one built first: scripted modules can lose
    their scope names in a second export, so the analysis export must come first. The axes
    in `dynamic_axes` stay free, per input by name (default: the first axis, "batch")."""
    input_names = list(input_names) or [f"input_{i}" for i in range(len(examples))]
    given = list(dynamic_axes) if dynamic_axes is not None else [{0: "batch"}] * len(examples)
    axes = [{a: n for a, n in free.items() if a < e.dim()} for free, e in zip(given, examples)]
    if not for_analysis and isinstance(out, Path) and graph is None:
        try:
            graph = analysis_graph(module, examples, input_names)
        except Exception as exc:  # naming is a courtesy; the export itself decides success
            log.info("could not name ONNX nodes by module path (%s)", exc)
    try:
        _export_torchscript(module, examples, out, input_names, output_names, for_analysis, axes)
    except Exception as first:
        log.info("TorchScript-based ONNX export failed (%s); trying the dynamo exporter", first)
        if isinstance(module, torch.jit.ScriptModule):
            raise _failed(first) from first
        try:
            _export_dynamo(module, examples, out, input_names, output_names, axes)
        except Exception as second:
            raise _failed(second) from second
    if graph is not None and isinstance(out, Path):
        name_nodes_by_module(out, graph)


def analysis_graph(module: torch.nn.Module, examples: tuple, input_names: Sequence[str]) -> Any:
    """The LayerGraph of `module` with module paths as layer names (BatchNorm kept)."""
    import onnx

    from paretolab.core.model.graph_onnx import build_onnx_graph

    buffer = io.BytesIO()
    try:
        _export_torchscript(module, examples, buffer, list(input_names), None, True, [])
    except Exception as exc:
        raise _failed(exc) from None
    modules = dict(module.named_modules())
    return build_onnx_graph(
        onnx.load_from_string(buffer.getvalue()),
        module_names={n for n in modules if n},
        leaf_modules={n for n, m in modules.items() if n and not any(True for _ in m.children())},
    )


def name_nodes_by_module(path: Path, graph: Any) -> None:
    """Rename an exported file's nodes to the layer names of `graph`, so a layer keeps one
    name in the model, its ONNX form and its variants."""
    import onnx

    proto = onnx.load(str(path))
    nodes = list(proto.graph.node)
    wanted = _match_layers(graph, nodes)
    taken = {n.name for n in nodes}
    for i, node in enumerate(nodes):
        new = wanted.get(i)
        if new and new != node.name and new not in taken:
            taken.add(new)
            node.name = new
    onnx.save(proto, str(path))


def _match_layers(graph: Any, nodes: Any) -> dict[int, str]:
    """Pair the runtime export's nodes (by index) with the analysis export's layers: by node
    name, and for op types that occur equally often in both (folding removes only BatchNorm
    and its kin), by order."""
    by_source = {layer.source: layer.name for layer in graph}
    layers_by_op: dict[str, list[str]] = {}
    for layer in graph:
        layers_by_op.setdefault(layer.op, []).append(layer.name)
    positions_by_op: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        positions_by_op.setdefault(node.op_type, []).append(i)
    wanted: dict[int, str] = {}
    for op, positions in positions_by_op.items():
        ordered = layers_by_op.get(op, [])
        for k, i in enumerate(positions):
            if nodes[i].name in by_source:
                wanted[i] = by_source[nodes[i].name]
            elif len(ordered) == len(positions):
                wanted[i] = ordered[k]
    return wanted


def _failed(exc: BaseException) -> ConversionError:
    reason = first_line(exc).split("  [Caused by")[0]  # the exporter appends the whole TorchScript graph
    hint = ("; a traced TorchScript file keeps no Python code to export again: open the model's pickled module "
            "(with --trust), its state_dict (with --arch), or an ONNX export of it") if "TorchScript" in reason or \
        "unknown rank" in reason else ""
    return ConversionError(f"the model cannot be exported to ONNX: {reason}{hint}")


def _export_torchscript(module: Any, examples: tuple, out: Any, input_names: Sequence[str], output_names: Sequence[str] | None,
                        for_analysis: bool, axes: Sequence[Mapping[int, str]]) -> None:
    mode = torch.onnx.TrainingMode.PRESERVE if for_analysis else torch.onnx.TrainingMode.EVAL
    dynamic: dict[str, dict[int, str]] | None = None
    if not for_analysis:
        dynamic = {name: dict(free) for name, free in zip(input_names, axes) if free}
        if all(free.get(0) == "batch" for free in axes):  # outputs batch first too (a state output may not)
            dynamic.update({name: {0: "batch"} for name in output_names or []})
    # torch's setup_onnx_logging tests the function `_jit_is_onnx_log_enabled` instead of calling it, so
    # the exporter's log is always on and a failed export prints the whole TorchScript graph to stderr.
    with warnings.catch_warnings(), mock.patch.object(torch._C, "_jit_onnx_log", lambda *args: None):
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            examples,
            out if isinstance(out, io.BytesIO) else str(out),  # type: ignore[arg-type]  # torch accepts file objects
            dynamo=False,
            opset_version=OPSET,
            input_names=input_names,
            output_names=list(output_names) if output_names else None,
            dynamic_axes=dynamic,
            training=mode,
            do_constant_folding=not for_analysis,
        )


def _export_dynamo(module: Any, examples: tuple, out: Path | io.BytesIO, input_names: Sequence[str],
                   output_names: Sequence[str] | None, axes: Sequence[Mapping[int, str]]) -> None:
    dims = {name: torch.export.Dim(name) for free in axes for name in free.values()}
    dynamic = tuple({axis: dims[name] for axis, name in free.items()} or None for free in axes)
    with warnings.catch_warnings(), _quiet():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            module,
            examples,
            dynamo=True,
            input_names=input_names,
            output_names=list(output_names) if output_names else None,
            dynamic_shapes=dynamic,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    if isinstance(out, io.BytesIO):
        out.write(program.model_proto.SerializeToString())
    else:
        program.save(str(out))


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The dynamo exporter prints progress to stdout and logs that torchvision is missing
    (we never need its ops); keep the CLI's output ours."""
    registration = logging.getLogger("torch.onnx._internal.exporter._registration")
    level = registration.level
    registration.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            yield
    finally:
        registration.setLevel(level)
