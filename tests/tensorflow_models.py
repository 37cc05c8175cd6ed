"""A small classifier as TensorFlow would save it, written without TensorFlow (not installable
here): as a TFLite flatbuffer (built with the `tflite` package's generated schema) and as a
frozen GraphDef (protobuf messages declared from the few fields of tensorflow/core/framework/*.proto
that a frozen graph uses). numpy gives the reference outputs.

image [batch, 8, 8, 1] (NHWC, batch free) -> 3x3 conv, 4 filters, SAME, ReLU
-> reshape [-1, 256] -> fully connected 10 -> logits [batch, 10]
"""

from __future__ import annotations

from pathlib import Path

import flatbuffers
import numpy as np
import tflite

OPS = (tflite.BuiltinOperator.CONV_2D, tflite.BuiltinOperator.RESHAPE, tflite.BuiltinOperator.FULLY_CONNECTED)


def weights(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv_w": rng.normal(0, 0.4, (4, 3, 3, 1)).astype(np.float32),  # O, H, W, I
        "conv_b": rng.normal(0, 0.1, 4).astype(np.float32),
        "fc_w": rng.normal(0, 0.1, (10, 256)).astype(np.float32),  # out, in
        "fc_b": rng.normal(0, 0.1, 10).astype(np.float32),
    }


def reference(image: np.ndarray, w: dict[str, np.ndarray]) -> np.ndarray:
    """What the TFLite graph computes, in numpy (NHWC)."""
    padded = np.pad(image, ((0, 0), (1, 1), (1, 1), (0, 0)))
    conv = np.zeros(image.shape[:3] + (4,), np.float32)
    for dy in range(3):
        for dx in range(3):
            patch = padded[:, dy:dy + 8, dx:dx + 8, :]  # [n, 8, 8, 1]
            conv += patch @ w["conv_w"][:, dy, dx, :].T
    features = np.maximum(conv + w["conv_b"], 0).reshape(len(image), 256)
    return features @ w["fc_w"].T + w["fc_b"]


def write_tflite(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the model to `path` as TFLite and return its weights (for `reference`)."""
    w = weights(seed)
    path.write_bytes(_build(w))
    return w


def write_frozen_graph(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the model to `path` as a frozen TensorFlow GraphDef (.pb) and return its weights."""
    w = weights(seed)
    path.write_bytes(_graph_def(w).SerializeToString())
    return w


def _build(w: dict[str, np.ndarray]) -> bytes:
    b = flatbuffers.Builder(4096)
    # buffer 0 is the empty sentinel; tensors without data point at it
    blobs = [b"", w["conv_w"].tobytes(), w["conv_b"].tobytes(), np.array([-1, 256], np.int32).tobytes(),
             w["fc_w"].tobytes(), w["fc_b"].tobytes()]
    buffers = [_buffer(b, blob) for blob in blobs]
    F32, I32 = tflite.TensorType.FLOAT32, tflite.TensorType.INT32
    specs = [  # name, shape, type, buffer
        ("image", [1, 8, 8, 1], F32, 0),
        ("conv/weights", [4, 3, 3, 1], F32, 1),
        ("conv/bias", [4], F32, 2),
        ("conv/relu", [1, 8, 8, 4], F32, 0),
        ("flatten/shape", [2], I32, 3),
        ("flatten", [1, 256], F32, 0),
        ("fc/weights", [10, 256], F32, 4),
        ("fc/bias", [10], F32, 5),
        ("logits", [1, 10], F32, 0),
    ]
    tensors = [_tensor(b, name, shape, kind, buf) for name, shape, kind, buf in specs]
    operators = [
        _operator(b, 0, [0, 1, 2], [3], tflite.BuiltinOptions.Conv2DOptions, _conv_options),
        _operator(b, 1, [3, 4], [5], tflite.BuiltinOptions.ReshapeOptions, _reshape_options),
        _operator(b, 2, [5, 6, 7], [8], tflite.BuiltinOptions.FullyConnectedOptions, _fc_options),
    ]
    subgraph = _subgraph(b, tensors, operators, inputs=[0], outputs=[8])
    codes = [_opcode(b, op) for op in OPS]
    description = b.CreateString("ParetoLab test model")

    codes_vec = _offset_vector(b, tflite.ModelStartOperatorCodesVector, codes)
    subgraphs_vec = _offset_vector(b, tflite.ModelStartSubgraphsVector, [subgraph])
    buffers_vec = _offset_vector(b, tflite.ModelStartBuffersVector, buffers)
    tflite.ModelStart(b)
    tflite.ModelAddVersion(b, 3)
    tflite.ModelAddOperatorCodes(b, codes_vec)
    tflite.ModelAddSubgraphs(b, subgraphs_vec)
    tflite.ModelAddDescription(b, description)
    tflite.ModelAddBuffers(b, buffers_vec)
    b.Finish(tflite.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def _int_vector(b: flatbuffers.Builder, start, values: list[int]) -> int:
    start(b, len(values))
    for v in reversed(values):
        b.PrependInt32(v)
    return b.EndVector()


def _offset_vector(b: flatbuffers.Builder, start, offsets: list[int]) -> int:
    """A vector of tables already built (flatbuffers are written back to front)."""
    start(b, len(offsets))
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _buffer(b: flatbuffers.Builder, blob: bytes) -> int:
    data = None
    if blob:
        b.StartVector(1, len(blob), 16)  # weights aligned as TFLite's own writer does
        b.head = b.head - len(blob)
        b.Bytes[b.head:b.head + len(blob)] = blob
        data = b.EndVector()
    tflite.BufferStart(b)
    if data is not None:
        tflite.BufferAddData(b, data)
    return tflite.BufferEnd(b)


def _tensor(b: flatbuffers.Builder, name: str, shape: list[int], kind: int, buffer: int) -> int:
    name_off = b.CreateString(name)
    shape_vec = _int_vector(b, tflite.TensorStartShapeVector, shape)
    signature = None
    if buffer == 0 and len(shape) > 1:  # activations: the batch axis is free
        signature = _int_vector(b, tflite.TensorStartShapeSignatureVector, [-1] + shape[1:])
    tflite.TensorStart(b)
    tflite.TensorAddShape(b, shape_vec)
    if signature is not None:
        tflite.TensorAddShapeSignature(b, signature)
    tflite.TensorAddType(b, kind)
    tflite.TensorAddBuffer(b, buffer)
    tflite.TensorAddName(b, name_off)
    return tflite.TensorEnd(b)


def _conv_options(b: flatbuffers.Builder) -> int:
    tflite.Conv2DOptionsStart(b)
    tflite.Conv2DOptionsAddPadding(b, tflite.Padding.SAME)
    tflite.Conv2DOptionsAddStrideW(b, 1)
    tflite.Conv2DOptionsAddStrideH(b, 1)
    tflite.Conv2DOptionsAddDilationWFactor(b, 1)
    tflite.Conv2DOptionsAddDilationHFactor(b, 1)
    tflite.Conv2DOptionsAddFusedActivationFunction(b, tflite.ActivationFunctionType.RELU)
    return tflite.Conv2DOptionsEnd(b)


def _reshape_options(b: flatbuffers.Builder) -> int:
    new_shape = _int_vector(b, tflite.ReshapeOptionsStartNewShapeVector, [-1, 256])
    tflite.ReshapeOptionsStart(b)
    tflite.ReshapeOptionsAddNewShape(b, new_shape)
    return tflite.ReshapeOptionsEnd(b)


def _fc_options(b: flatbuffers.Builder) -> int:
    tflite.FullyConnectedOptionsStart(b)
    tflite.FullyConnectedOptionsAddFusedActivationFunction(b, tflite.ActivationFunctionType.NONE)
    return tflite.FullyConnectedOptionsEnd(b)


def _operator(b: flatbuffers.Builder, opcode: int, inputs: list[int], outputs: list[int], options_type: int, options) -> int:
    options_off = options(b)
    inputs_vec = _int_vector(b, tflite.OperatorStartInputsVector, inputs)
    outputs_vec = _int_vector(b, tflite.OperatorStartOutputsVector, outputs)
    tflite.OperatorStart(b)
    tflite.OperatorAddOpcodeIndex(b, opcode)
    tflite.OperatorAddInputs(b, inputs_vec)
    tflite.OperatorAddOutputs(b, outputs_vec)
    tflite.OperatorAddBuiltinOptionsType(b, options_type)
    tflite.OperatorAddBuiltinOptions(b, options_off)
    return tflite.OperatorEnd(b)


def _subgraph(b: flatbuffers.Builder, tensors: list[int], operators: list[int], inputs: list[int], outputs: list[int]) -> int:
    tensors_vec = _offset_vector(b, tflite.SubGraphStartTensorsVector, tensors)
    inputs_vec = _int_vector(b, tflite.SubGraphStartInputsVector, inputs)
    outputs_vec = _int_vector(b, tflite.SubGraphStartOutputsVector, outputs)
    operators_vec = _offset_vector(b, tflite.SubGraphStartOperatorsVector, operators)
    name = b.CreateString("main")
    tflite.SubGraphStart(b)
    tflite.SubGraphAddTensors(b, tensors_vec)
    tflite.SubGraphAddInputs(b, inputs_vec)
    tflite.SubGraphAddOutputs(b, outputs_vec)
    tflite.SubGraphAddOperators(b, operators_vec)
    tflite.SubGraphAddName(b, name)
    return tflite.SubGraphEnd(b)


def _opcode(b: flatbuffers.Builder, op: int) -> int:
    tflite.OperatorCodeStart(b)
    tflite.OperatorCodeAddDeprecatedBuiltinCode(b, min(op, 127))
    tflite.OperatorCodeAddBuiltinCode(b, op)
    tflite.OperatorCodeAddVersion(b, 1)
    return tflite.OperatorCodeEnd(b)


# --- frozen GraphDef --------------------------------------------------------------------------

_DT_FLOAT, _DT_INT32 = 1, 3


def _graph_def(w: dict[str, np.ndarray]):
    graph = _graph_def_class()()
    graph.versions.producer = 1994
    image = _node(graph, "image", "Placeholder", [], dtype=_DT_FLOAT)
    for size in (-1, 8, 8, 1):  # -1: the batch is free
        image.attr["shape"].shape.dim.add(size=size)
    _const(graph, "conv/weights", w["conv_w"].transpose(1, 2, 3, 0))  # HWIO
    conv = _node(graph, "conv/Conv2D", "Conv2D", ["image", "conv/weights"], T=_DT_FLOAT)
    conv.attr["strides"].list.i.extend([1, 1, 1, 1])
    conv.attr["padding"].s = b"SAME"
    conv.attr["data_format"].s = b"NHWC"
    _const(graph, "conv/bias", w["conv_b"])
    _node(graph, "conv/BiasAdd", "BiasAdd", ["conv/Conv2D", "conv/bias"], T=_DT_FLOAT)
    _node(graph, "conv/Relu", "Relu", ["conv/BiasAdd"], T=_DT_FLOAT)
    _const(graph, "flatten/shape", np.array([-1, 256], np.int32))
    _node(graph, "flatten/Reshape", "Reshape", ["conv/Relu", "flatten/shape"], T=_DT_FLOAT, Tshape=_DT_INT32)
    _const(graph, "fc/weights", w["fc_w"].T.copy())
    matmul = _node(graph, "fc/MatMul", "MatMul", ["flatten/Reshape", "fc/weights"], T=_DT_FLOAT)
    matmul.attr["transpose_a"].b = False
    matmul.attr["transpose_b"].b = False
    _const(graph, "fc/bias", w["fc_b"])
    _node(graph, "logits", "BiasAdd", ["fc/MatMul", "fc/bias"], T=_DT_FLOAT)
    return graph


def _node(graph, name: str, op: str, inputs: list[str], **types: int):
    node = graph.node.add(name=name, op=op)
    node.input.extend(inputs)
    for key, value in types.items():
        node.attr[key].type = value
    return node


def _const(graph, name: str, value: np.ndarray) -> None:
    node = _node(graph, name, "Const", [], dtype=_DT_FLOAT if value.dtype == np.float32 else _DT_INT32)
    tensor = node.attr["value"].tensor
    tensor.dtype = node.attr["dtype"].type
    for size in value.shape:
        tensor.tensor_shape.dim.add(size=size)
    tensor.tensor_content = np.ascontiguousarray(value).tobytes()


def _graph_def_class():
    """GraphDef and the messages it holds, with TensorFlow's field numbers (tensorflow/core/framework/
    graph.proto, node_def.proto, attr_value.proto, tensor.proto, tensor_shape.proto, versions.proto)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    F = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="paretolab_test_graph.proto", package="tensorflow", syntax="proto3")

    def message(name: str, fields: list[tuple], parent=None):
        msg = (parent.nested_type if parent is not None else file.message_type).add(name=name)
        for number, field_name, kind, *rest in fields:
            label = F.LABEL_REPEATED if rest and rest[0] == "repeated" else F.LABEL_OPTIONAL
            field = msg.field.add(name=field_name, number=number, type=kind, label=label)
            type_name = rest[-1] if rest and rest[-1] != "repeated" else None
            if type_name:
                field.type_name = type_name
        return msg

    shape = message("TensorShapeProto", [(2, "dim", F.TYPE_MESSAGE, "repeated", ".tensorflow.TensorShapeProto.Dim"),
                                         (3, "unknown_rank", F.TYPE_BOOL)])
    message("Dim", [(1, "size", F.TYPE_INT64), (2, "name", F.TYPE_STRING)], parent=shape)
    message("TensorProto", [(1, "dtype", F.TYPE_INT32), (2, "tensor_shape", F.TYPE_MESSAGE, ".tensorflow.TensorShapeProto"),
                            (3, "version_number", F.TYPE_INT32), (4, "tensor_content", F.TYPE_BYTES)])
    attr = message("AttrValue", [(1, "list", F.TYPE_MESSAGE, ".tensorflow.AttrValue.ListValue"), (2, "s", F.TYPE_BYTES),
                                 (3, "i", F.TYPE_INT64), (4, "f", F.TYPE_FLOAT), (5, "b", F.TYPE_BOOL),
                                 (6, "type", F.TYPE_INT32), (7, "shape", F.TYPE_MESSAGE, ".tensorflow.TensorShapeProto"),
                                 (8, "tensor", F.TYPE_MESSAGE, ".tensorflow.TensorProto")])
    attr.oneof_decl.add(name="value")
    for field in attr.field:
        field.oneof_index = 0
    message("ListValue", [(3, "i", F.TYPE_INT64, "repeated")], parent=attr)
    node = message("NodeDef", [(1, "name", F.TYPE_STRING), (2, "op", F.TYPE_STRING), (3, "input", F.TYPE_STRING, "repeated"),
                               (4, "device", F.TYPE_STRING),
                               (5, "attr", F.TYPE_MESSAGE, "repeated", ".tensorflow.NodeDef.AttrEntry")])
    entry = message("AttrEntry", [(1, "key", F.TYPE_STRING), (2, "value", F.TYPE_MESSAGE, ".tensorflow.AttrValue")], parent=node)
    entry.options.map_entry = True
    message("VersionDef", [(1, "producer", F.TYPE_INT32), (2, "min_consumer", F.TYPE_INT32)])
    message("GraphDef", [(1, "node", F.TYPE_MESSAGE, "repeated", ".tensorflow.NodeDef"),
                         (4, "versions", F.TYPE_MESSAGE, ".tensorflow.VersionDef")])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("tensorflow.GraphDef"))
