"""A small TFLite classifier written in code (no TensorFlow here): the flatbuffer is built with
the `tflite` package's generated schema, and numpy gives the reference outputs.

image [batch, 8, 8, 1] (NHWC, batch free) -> CONV_2D 3x3, 4 filters, SAME, fused ReLU
-> RESHAPE [-1, 256] -> FULLY_CONNECTED 10 -> logits [batch, 10]
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


def write(path: Path, seed: int = 0) -> dict[str, np.ndarray]:
    """Write the model to `path` and return its weights (for `reference`)."""
    w = weights(seed)
    path.write_bytes(_build(w))
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

    tflite.ModelStartOperatorCodesVector(b, len(codes))
    for c in reversed(codes):
        b.PrependUOffsetTRelative(c)
    codes_vec = b.EndVector()
    tflite.ModelStartSubgraphsVector(b, 1)
    b.PrependUOffsetTRelative(subgraph)
    subgraphs_vec = b.EndVector()
    tflite.ModelStartBuffersVector(b, len(buffers))
    for buf in reversed(buffers):
        b.PrependUOffsetTRelative(buf)
    buffers_vec = b.EndVector()
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
    tflite.SubGraphStartTensorsVector(b, len(tensors))
    for t in reversed(tensors):
        b.PrependUOffsetTRelative(t)
    tensors_vec = b.EndVector()
    inputs_vec = _int_vector(b, tflite.SubGraphStartInputsVector, inputs)
    outputs_vec = _int_vector(b, tflite.SubGraphStartOutputsVector, outputs)
    tflite.SubGraphStartOperatorsVector(b, len(operators))
    for o in reversed(operators):
        b.PrependUOffsetTRelative(o)
    operators_vec = b.EndVector()
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
