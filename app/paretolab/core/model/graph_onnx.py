"""Build a LayerGraph from an ONNX model (after shape inference).

Constants (initializers, Constant nodes, and nodes computed only from constants, such as a
weight's DequantizeLinear) are not layers: they become the weights of the layer that
consumes them. For models exported from torch, `module_names` lets layers take their
PyTorch module paths as names, so settings address the same layer in every format.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping

import onnx
from onnx import helper

from paretolab.core.errors import ModelLoadError
from paretolab.core.model.graph import LayerGraph, LayerNode, Weight, unique_name
from paretolab.core.model.macs import onnx_macs
from paretolab.core.model.shapes_onnx import infer_shapes
from paretolab.core.tensors import Shape, TensorSpec, concrete_shapes, format_shape

log = logging.getLogger(__name__)

# Integer tensors of these types hold shapes and indices, not learned weights.
_NOT_PARAMS = {onnx.TensorProto.INT64, onnx.TensorProto.BOOL, onnx.TensorProto.STRING}


def onnx_dtype(elem_type: int) -> str:
    try:
        return helper.tensor_dtype_to_np_dtype(elem_type).name
    except (KeyError, TypeError, ValueError):
        pass
    try:
        return onnx.TensorProto.DataType.Name(elem_type).lower()
    except ValueError:  # not a type this onnx knows: a damaged file, or one from a much newer ONNX
        raise ModelLoadError(f"declares tensor element type {elem_type}, which ONNX does not define; "
                             "the file is damaged or from a newer ONNX: re-export it") from None


def _value_shape(value: onnx.ValueInfoProto) -> Shape | None:
    t = value.type.tensor_type
    if not t.HasField("shape"):
        return None
    # -1 or 0 as a size is how some exporters write a free dimension: it is one, not a size
    return tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else (d.dim_param or None) for d in t.shape.dim)


def value_spec(value: onnx.ValueInfoProto) -> TensorSpec:
    return TensorSpec(value.name, _value_shape(value) or (), onnx_dtype(value.type.tensor_type.elem_type))


def graph_inputs(model: onnx.ModelProto) -> list[TensorSpec]:
    """Real inputs: graph inputs that are not also initializers (old exporters list both)."""
    inits = {i.name for i in model.graph.initializer}
    return [value_spec(v) for v in model.graph.input if v.name not in inits]


def graph_outputs(model: onnx.ModelProto) -> list[TensorSpec]:
    return [value_spec(v) for v in model.graph.output]


def with_fixed_inputs(model: onnx.ModelProto, shapes: Mapping[str, tuple[int, ...]]) -> onnx.ModelProto:
    """A copy of `model` whose named inputs have the given static shapes."""
    fixed = onnx.ModelProto()
    fixed.CopyFrom(model)
    changed = False
    for value in fixed.graph.input:
        if value.name in shapes:
            dims = value.type.tensor_type.shape.dim
            for dim, size in zip(dims, shapes[value.name]):
                changed = changed or not (dim.HasField("dim_value") and dim.dim_value == size)
                dim.Clear()
                dim.dim_value = size
    if changed:  # shapes a tool stored for the free sizes (a quantizer's, a converter's) would win over inference
        del fixed.graph.value_info[:]
        for value in fixed.graph.output:
            for dim in value.type.tensor_type.shape.dim:
                if not dim.HasField("dim_value") or dim.dim_value <= 0:  # -1: free, as other frameworks write it
                    dim.Clear()
    return fixed


class _Constants:
    """Which tensors are constant, and which stored tensors (roots) each one comes from."""

    def __init__(self, graph: onnx.GraphProto) -> None:
        self.roots: dict[str, list[Weight]] = {}
        self._elem_types: dict[str, int] = {}
        for init in graph.initializer:
            self.roots[init.name] = [Weight(init.name, tuple(init.dims), onnx_dtype(init.data_type))]
            self._elem_types[init.name] = init.data_type
        self._quant_params = _quantization_parameters(graph)

    def is_const(self, name: str) -> bool:
        return name in self.roots

    def add_constant_node(self, node: onnx.NodeProto) -> None:
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        for out in node.output:
            if value is not None:
                self.roots[out] = [Weight(out, tuple(value.dims), onnx_dtype(value.data_type))]
                self._elem_types[out] = value.data_type
            else:  # value_float(s)/value_int(s): scalars and small lists, never weights
                self.roots[out] = []

    def add_folded(self, node: onnx.NodeProto) -> None:
        roots: list[Weight] = []
        for name in node.input:
            if name:
                roots.extend(w for w in self.roots[name] if w not in roots)
        for out in node.output:
            self.roots[out] = roots

    def counts_as_param(self, weight: Weight) -> bool:
        return self._elem_types.get(weight.name) not in _NOT_PARAMS and weight.name not in self._quant_params


# Inputs that hold scales and zero points, by operator: an int8 model has the same parameters as
# its FP32 original, not those plus its quantization metadata.
_QUANT_INPUTS = {
    "QuantizeLinear": (1, 2), "DequantizeLinear": (1, 2), "QLinearConv": (1, 2, 4, 5, 6, 7),
    "QLinearMatMul": (1, 2, 4, 5, 6, 7), "QGemm": (1, 2, 4, 5, 7, 8), "QLinearAdd": (1, 2, 4, 5, 6, 7),
    "QLinearMul": (1, 2, 4, 5, 6, 7), "MatMulInteger": (2, 3), "ConvInteger": (2, 3),
    "MatMulNBits": (2, 3),
}


def _quantization_parameters(graph: onnx.GraphProto) -> set[str]:
    names: set[str] = set()
    for node in graph.node:
        positions = _QUANT_INPUTS.get(node.op_type)
        if positions is None and node.op_type.startswith("QLinear"):  # pools, activations, concat: all but data
            positions = tuple(range(1, len(node.input)))
        names.update(node.input[i] for i in positions or () if i < len(node.input) and node.input[i])
    return names


def _shape_table(model: onnx.ModelProto) -> dict[str, Shape | None]:
    g = model.graph
    shapes: dict[str, Shape | None] = {}
    for value in (*g.input, *g.value_info, *g.output):
        shapes[value.name] = _value_shape(value)
    for init in g.initializer:
        shapes[init.name] = tuple(init.dims)
    return shapes


def _torch_scope(onnx_name: str, module_names: set[str]) -> str | None:
    """The module path encoded in a torch exporter's node name ("/blocks/blocks.0/conv/Conv").

    TorchScript scopes are relative ("/blocks/0/conv"), eager ones sometimes already
    qualified ("blocks.0"); both rebuild to "blocks.0.conv". Only real module paths count.
    """
    segments = onnx_name.strip("/").split("/")[:-1]
    path = ""
    for seg in segments:
        path = seg if (not path or seg.startswith(path + ".")) else f"{path}.{seg}"
    return path if path in module_names else None


def build_onnx_graph(
    model: onnx.ModelProto,
    *,
    input_shapes: Mapping[str, tuple[int, ...]] | None = None,
    module_names: set[str] | None = None,
    leaf_modules: set[str] | None = None,
    size_bytes: int = 0,
    input_values: Mapping[str, float] | None = None,
) -> LayerGraph:
    """LayerGraph of `model`; dynamic batch axes are taken as 1 for shapes and MACs; `input_values`:
    inputs held at a value (a sample rate) when shapes are measured by running the model."""
    declared = graph_inputs(model)
    fixed, unresolved = concrete_shapes(declared)
    fixed.update(input_shapes or {})
    unresolved = [n for n in unresolved if n not in fixed]
    inferred = infer_shapes(with_fixed_inputs(model, fixed), input_values)
    shapes = _shape_table(inferred)
    consts = _Constants(inferred.graph)
    layers = _layers(inferred.graph, consts)
    nodes, edges = _layer_nodes(layers, _layer_names(layers, module_names, leaf_modules), shapes, consts)
    graph = LayerGraph(
        nodes=nodes,
        edges=list(dict.fromkeys(edges)),
        inputs=graph_inputs(inferred) if not unresolved else declared,
        outputs=graph_outputs(inferred),
        size_bytes=size_bytes,
    )
    for name in unresolved:
        spec = next(s for s in declared if s.name == name)
        graph.notes.append(
            f"input '{name}' has dynamic size {format_shape(spec.shape)}: shapes and MACs after it "
            "are unknown; give a concrete shape with --input-shape"
        )
    return graph


_Layer = tuple[onnx.NodeProto, list[Weight], list[str]]  # a node, its weights, its non-empty inputs


def _unpacked(node: onnx.NodeProto, weight: Weight) -> Weight:
    """MatMulNBits packs its [K, N] weight into bytes: count the weights, not the bytes."""
    if weight.name != node.input[1]:
        return weight
    attrs = {a.name: a.i for a in node.attribute}
    return Weight(weight.name, (attrs.get("N", 0), attrs.get("K", 0)), weight.dtype)


def _layers(graph: onnx.GraphProto, consts: _Constants) -> list[_Layer]:
    """The nodes that are layers, with their weights; constants and what is computed only from
    constants (a weight's DequantizeLinear) go into `consts` instead."""
    layers: list[_Layer] = []
    for node in graph.node:
        if node.op_type == "Constant":
            consts.add_constant_node(node)
            continue
        real_inputs = [i for i in node.input if i]
        if real_inputs and all(consts.is_const(i) for i in real_inputs):
            consts.add_folded(node)
            continue
        weights: list[Weight] = []
        for name in real_inputs:
            if consts.is_const(name):
                weights.extend(w for w in consts.roots[name] if w not in weights)
        if node.op_type == "MatMulNBits":
            weights = [_unpacked(node, w) for w in weights]
        layers.append((node, weights, real_inputs))
    return layers


def _layer_nodes(
    layers: list[_Layer], names: list[str], shapes: Mapping[str, Shape | None], consts: _Constants
) -> tuple[list[LayerNode], list[tuple[str, str]]]:
    """LayerNodes (a weight shared by several layers counts once) and the edges between them."""
    counted: set[str] = set()
    producer: dict[str, str] = {}
    nodes: list[LayerNode] = []
    edges: list[tuple[str, str]] = []
    for (node, weights, real_inputs), name in zip(layers, names):
        params = 0
        for w in weights:
            if w.name not in counted and consts.counts_as_param(w):
                counted.add(w.name)
                params += w.numel
        in_shapes = [shapes.get(i) for i in real_inputs]
        out_shapes = [shapes.get(o) for o in node.output if o]
        nodes.append(LayerNode(
            name=name,
            op=node.op_type,
            input_shapes=[s for i, s in zip(real_inputs, in_shapes) if not consts.is_const(i)],
            output_shapes=out_shapes,
            params=params,
            macs=onnx_macs(node, in_shapes, out_shapes),
            weights=weights,
            source=node.name,
            outputs=[o for o in node.output if o],
            scope=_recorded_scope(node),
        ))
        for i in real_inputs:
            src = producer.get(i)
            if src is not None:
                edges.append((src, name))
        for o in node.output:
            producer[o] = name
    return nodes, edges


def _recorded_scope(node: onnx.NodeProto) -> str:
    """The module path torch's dynamo exporter keeps in a node's metadata (its node names are
    "node_MatMul_8"): the scopes list ends with the op's own name."""
    for prop in node.metadata_props:
        if prop.key == "pkg.torch.onnx.name_scopes":
            try:
                scopes = ast.literal_eval(prop.value)
            except (ValueError, SyntaxError):
                return ""
            return str(scopes[-2]) if isinstance(scopes, list) and len(scopes) >= 2 else ""
    return ""


def _layer_names(
    layers: list[_Layer],
    module_names: set[str] | None,
    leaf_modules: set[str] | None,
) -> list[str]:
    taken: set[str] = set()
    if not module_names:
        return [
            unique_name(node.name or f"{node.op_type}_{i}", taken) for i, (node, _, _) in enumerate(layers)
        ]
    leaves = leaf_modules or set()
    names = []
    for node, weights, _ in layers:
        scope = _torch_scope(node.name, module_names)
        owner = _owner(scope, weights, module_names, leaves, taken)
        local = node.name.rsplit("/", 1)[-1] or node.op_type
        # A container module's own ops (a residual Add) are "block/Add", never "block".
        if owner and owner not in taken and (owner != scope or owner in leaves):
            wanted = owner
        elif owner:
            wanted = f"{owner}/{local}"
        else:
            wanted = node.name.strip("/") or node.op_type
        names.append(unique_name(wanted, taken))
    return names


def _owner(scope: str | None, weights: list[Weight], module_names: set[str], leaves: set[str], taken: set[str]) -> str | None:
    """The module a node belongs to: its scope when that is a leaf module, else the module
    owning its weights (exporters may share identical initializers between modules, so
    prefer an owner inside the scope and not yet named)."""
    if scope in leaves:
        return scope
    owners = [w.name.rpartition(".")[0] for w in weights]
    owners = [o for o in dict.fromkeys(owners) if o in module_names]
    if scope:
        owners = [o for o in owners if o.startswith(scope + ".")]
    fresh = [o for o in owners if o not in taken]
    return fresh[0] if fresh else owners[0] if owners else scope
