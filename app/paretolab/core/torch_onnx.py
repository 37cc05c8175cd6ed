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
from collections.abc import Sequence
from pathlib import Path

import torch

from paretolab.core.errors import ConversionError

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
) -> None:
    input_names = list(input_names) or [f"input_{i}" for i in range(len(examples))]
    try:
        _export_torchscript(module, examples, out, input_names, output_names, for_analysis)
        if not for_analysis and isinstance(out, Path):
            name_nodes_by_module(out, module, examples, input_names)
    except Exception as first:
        log.info("TorchScript-based ONNX export failed (%s); trying the dynamo exporter", first)
        if isinstance(module, torch.jit.ScriptModule):
            raise _failed(first) from first
        try:
            _export_dynamo(module, examples, out, input_names, output_names)
        except Exception as second:
            raise _failed(second) from second


def name_nodes_by_module(path: Path, module: torch.nn.Module, examples: tuple, input_names: Sequence[str]) -> None:
    """Rename an exported file's nodes to the module paths ParetoLab uses for the torch
    model's layers, so a layer keeps one name in the model, its ONNX form and its variants."""
    import onnx

    from paretolab.core.graph_onnx import build_onnx_graph

    buffer = io.BytesIO()
    _export_torchscript(module, examples, buffer, list(input_names), None, for_analysis=True)
    modules = dict(module.named_modules())
    graph = build_onnx_graph(
        onnx.load_from_string(buffer.getvalue()),
        module_names={n for n in modules if n},
        leaf_modules={n for n, m in modules.items() if n and not any(True for _ in m.children())},
    )
    names = {layer.source: layer.name for layer in graph}
    proto = onnx.load(str(path))
    taken = {n.name for n in proto.graph.node}
    for node in proto.graph.node:
        new = names.get(node.name)
        if new and new != node.name and new not in taken:
            taken.add(new)
            node.name = new
    onnx.save(proto, str(path))


def _failed(exc: BaseException) -> ConversionError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ConversionError(f"the model cannot be exported to ONNX: {reason}")


def _export_torchscript(module, examples, out, input_names, output_names, for_analysis: bool) -> None:
    mode = torch.onnx.TrainingMode.PRESERVE if for_analysis else torch.onnx.TrainingMode.EVAL
    dynamic = None if for_analysis else {name: {0: "batch"} for name in [*input_names, *(output_names or [])]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            examples,
            out if isinstance(out, io.BytesIO) else str(out),
            dynamo=False,
            opset_version=OPSET,
            input_names=input_names,
            output_names=list(output_names) if output_names else None,
            dynamic_axes=dynamic,
            training=mode,
            do_constant_folding=not for_analysis,
        )


def _export_dynamo(module, examples, out, input_names, output_names) -> None:
    batch = torch.export.Dim("batch")
    dynamic = tuple({0: batch} for _ in examples)
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
    if isinstance(out, io.BytesIO):
        out.write(program.model_proto.SerializeToString())
    else:
        program.save(str(out))


@contextlib.contextmanager
def _quiet():
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
