"""Build a LayerGraph from an OpenVINO model.

Constant ops, and ops computed only from constants (the Convert/Multiply chains of a
compressed weight), are not layers: their root Constants become the consumer's weights.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import openvino as ov

from paretolab.core.errors import first_line
from paretolab.core.model.graph import LayerGraph, LayerNode, Weight, unique_name
from paretolab.core.model.macs import openvino_macs
from paretolab.core.tensors import Shape, TensorSpec, format_shape

_NOT_PARAMS = {"i64", "i32", "boolean", "u64", "u32"}


def _shape(partial: ov.PartialShape) -> Shape | None:
    if partial.rank.is_dynamic:
        return None
    return tuple(d.get_length() if d.is_static else None for d in partial)


def _port_name(port: Any) -> str:
    try:
        return port.get_any_name()
    except RuntimeError:
        return port.get_node().get_friendly_name()


def port_spec(port: Any) -> TensorSpec:
    try:
        dtype = port.get_element_type().to_dtype().name
    except Exception:
        dtype = port.get_element_type().get_type_name()
    return TensorSpec(_port_name(port), _shape(port.get_partial_shape()) or (), dtype)


def build_openvino_graph(
    model: ov.Model, *, input_shapes: Mapping[str, tuple[int, ...]] | None = None, size_bytes: int = 0
) -> LayerGraph:
    model = model.clone()
    notes = _fix_input_shapes(model, input_shapes)
    nodes, edges = _layer_nodes(model)
    return LayerGraph(
        nodes=nodes,
        edges=list(dict.fromkeys(edges)),
        inputs=[port_spec(p) for p in model.inputs],
        outputs=[port_spec(p) for p in model.outputs],
        size_bytes=size_bytes,
        notes=notes,
    )


def _fix_input_shapes(model: ov.Model, input_shapes: Mapping[str, tuple[int, ...]] | None) -> list[str]:
    """Reshape `model` in place to the shapes given; notes on what stays dynamic."""
    notes: list[str] = []
    declared = [port_spec(p) for p in model.inputs]
    if input_shapes:
        try:
            model.reshape(
                {p: ov.PartialShape(list(input_shapes[_port_name(p)])) for p in model.inputs if _port_name(p) in input_shapes}
            )
        except Exception as exc:
            notes.append(f"could not fix input shapes ({first_line(exc)}); shapes stay as declared")
    for spec in declared:
        if (input_shapes is None or spec.name not in input_shapes) and not spec.is_static:
            notes.append(
                f"input '{spec.name}' has dynamic size {format_shape(spec.shape)}: shapes and MACs after it "
                "are unknown; give a concrete shape with --input-shape"
            )
    return notes


def _layer_nodes(model: ov.Model) -> tuple[list[LayerNode], list[tuple[str, str]]]:
    """LayerNodes and edges. Constants, and ops computed only from constants, are not layers:
    their root Constants become the consumer's weights (a shared weight counts once)."""
    constant_roots: dict[int, list[Weight]] = {}
    counted: set[str] = set()
    taken: set[str] = set()
    names: dict[int, str] = {}
    nodes: list[LayerNode] = []
    edges: list[tuple[str, str]] = []
    for op in model.get_ordered_ops():
        kind = op.get_type_name()
        source_keys = [_key(op.input_value(i).get_node()) for i in range(op.get_input_size())]
        if kind == "Constant":
            shape = tuple(op.get_output_shape(0)) if op.get_output_partial_shape(0).is_static else ()
            et = op.get_output_element_type(0).get_type_name()
            constant_roots[_key(op)] = [Weight(op.get_friendly_name(), tuple(int(d) for d in shape), et)]
            continue
        if kind in ("Parameter", "Result"):
            continue
        weights: list[Weight] = []
        for k in source_keys:
            if k in constant_roots:
                weights.extend(w for w in constant_roots[k] if w not in weights)
        if source_keys and all(k in constant_roots for k in source_keys):
            constant_roots[_key(op)] = _decompressed(weights)
            continue
        params = 0
        for w in weights:
            if w.name not in counted and w.dtype not in _NOT_PARAMS:
                counted.add(w.name)
                params += w.numel
        in_shapes = [_shape(op.input_value(i).get_partial_shape()) for i in range(op.get_input_size())]
        out_shapes = [_shape(op.get_output_partial_shape(i)) for i in range(op.get_output_size())]
        transpose_a = bool(op.get_attributes().get("transpose_a", False)) if kind == "MatMul" else False
        name = unique_name(_display_name(op, kind), taken)
        names[_key(op)] = name
        nodes.append(
            LayerNode(
                name=name,
                op=kind,
                input_shapes=[s for s, k in zip(in_shapes, source_keys) if k not in constant_roots],
                output_shapes=out_shapes,
                params=params,
                macs=openvino_macs(kind, in_shapes, out_shapes, transpose_a),
                weights=weights,
                source=op.get_friendly_name(),
                outputs=[n for i in range(op.get_output_size()) for n in sorted(op.output(i).get_names())],
            )
        )
        edges += [(names[k], name) for k in source_keys if k in names]
    return nodes, edges


_LOW_BIT = {"u8", "i8", "u4", "i4", "nf4", "u2", "f8e4m3", "f8e5m2", "f4e2m1"}


def _decompressed(weights: list[Weight]) -> list[Weight]:
    """A compressed weight is decompressed from constants (int8/int4 values, a zero point, scales):
    the values are the weight; the rest is metadata, not parameters."""
    if len(weights) > 1 and any(w.dtype in _LOW_BIT for w in weights):
        return [max(weights, key=lambda w: w.numel)]
    return weights


def _display_name(op: Any, kind: str) -> str:
    """The op's friendly name, unless a frontend numbered it ("0", "Add_17", as the TFLite one
    does) and its output tensor has a real name."""
    friendly = op.get_friendly_name()
    generated = not friendly or friendly.isdigit() or re.fullmatch(rf"{kind}_\d+", friendly)
    tensors = sorted(op.output(0).get_names()) if generated and op.get_output_size() else []
    return tensors[0] if tensors else friendly or kind


def _key(node: Any) -> int:
    """ov hands out a new Python wrapper for each access to an op; its hash is the op's identity."""
    return hash(node)
