"""Multiply-accumulate counts of the layers that dominate compute.

Only convolutions and matrix products are counted; element-wise and pooling ops are
cheap next to them and counted as 0, as every MACs/FLOPs tool does. A count is None when
a shape it needs is unknown (a dynamic dimension nobody fixed).
"""

from __future__ import annotations

from collections.abc import Sequence

import onnx

from paretolab.core.model.graph import prod
from paretolab.core.tensors import Shape

# op -> (index of the data input, index of the weight input)
# Quantized and fused forms count as their float op: MACs describe the model, not its precision.
_CONV_LIKE = {"Conv": (0, 1), "ConvInteger": (0, 1), "QLinearConv": (0, 3), "FusedConv": (0, 1)}
_MATMUL_LIKE = {"MatMul": (0, 1), "MatMulInteger": (0, 1), "QLinearMatMul": (0, 3), "Gemm": (0, 1), "QGemm": (0, 3),
                "FusedGemm": (0, 1), "FusedMatMul": (0, 1), "DynamicQuantizeMatMul": (0, 1), "MatMulIntegerToFloat": (0, 1),
                "MatMulNBits": (0, 1)}
_GEMM_LIKE = ("Gemm", "QGemm", "FusedGemm")
# ONNX Runtime's dynamic int8 LSTM keeps the weights' size (transposed to [directions, input, 4 * hidden])
_RECURRENT = ("LSTM", "GRU", "RNN", "DynamicQuantizeLSTM")
# OpenVINO op -> (index of X, of W, of R); a sequence's X is [batch, steps, input], a cell's [batch, input]
_OPENVINO_RECURRENT = {"LSTMSequence": (0, 4, 5), "GRUSequence": (0, 3, 4), "RNNSequence": (0, 3, 4),
                       "LSTMCell": (0, 3, 4), "GRUCell": (0, 2, 3), "RNNCell": (0, 2, 3)}


def _static(shape: Shape | None) -> tuple[int, ...] | None:
    if shape is None or not all(isinstance(d, int) for d in shape):
        return None
    return tuple(shape)  # type: ignore[arg-type]


def _at(shapes: Sequence[Shape | None], i: int) -> tuple[int, ...] | None:
    return _static(shapes[i]) if i < len(shapes) else None


def conv_macs(out_shape: tuple[int, ...], weight_shape: tuple[int, ...]) -> int:
    """Each output element needs (in_channels / groups) * kernel_area MACs."""
    return prod(out_shape) * prod(weight_shape[1:])


def matmul_macs(out_shape: tuple[int, ...], inner: int) -> int:
    return prod(out_shape) * inner


def onnx_macs(node: onnx.NodeProto, in_shapes: Sequence[Shape | None], out_shapes: Sequence[Shape | None]) -> int | None:
    op = node.op_type
    out = _at(out_shapes, 0)
    if op in _CONV_LIKE:
        _, wi = _CONV_LIKE[op]
        w = _at(in_shapes, wi)
        return conv_macs(out, w) if out and w else None
    if op == "ConvTranspose":
        x, w = _at(in_shapes, 0), _at(in_shapes, 1)
        return prod(x) * prod(w[1:]) if x and w else None
    if op in _MATMUL_LIKE:
        xi, wi = _MATMUL_LIKE[op]
        x, w = _at(in_shapes, xi), _at(in_shapes, wi)
        attrs = {a.name: a.i for a in node.attribute}
        if op in _GEMM_LIKE:  # [M, K] x [K, N]; the output's shape is unknown past a contrib op (QGemm)
            if not x or not w or len(x) != 2 or len(w) != 2:
                return None
            (m, k), n = (x[::-1] if attrs.get("transA") else x), (w[0] if attrs.get("transB") else w[1])
            return m * k * n
        if out and x:
            return matmul_macs(out, x[-1])
        if x and w and len(w) == 2 and op != "MatMulNBits":  # a contrib op's output shape is unknown: A's rows x N
            return prod(x) * w[1]
        return None
    if op in _RECURRENT:  # every step multiplies the input by W and the state by R, for all gates and directions
        x, w, r = _at(in_shapes, 0), _at(in_shapes, 1), _at(in_shapes, 2)
        return x[0] * x[1] * (prod(w) + prod(r)) if x and w and r and len(x) == 3 else None
    return 0


def openvino_macs(
    op: str, in_shapes: Sequence[Shape | None], out_shapes: Sequence[Shape | None], transpose_a: bool = False
) -> int | None:
    out = _at(out_shapes, 0)
    if op == "Convolution":
        w = _at(in_shapes, 1)
        return conv_macs(out, w) if out and w else None
    if op == "GroupConvolution":  # weights [groups, out/groups, in/groups, k...]
        w = _at(in_shapes, 1)
        return prod(out) * prod(w[2:]) if out and w else None
    if op == "ConvolutionBackpropData":  # weights [in, out, k...]
        x, w = _at(in_shapes, 0), _at(in_shapes, 1)
        return prod(x) * prod(w[1:]) if x and w else None
    if op in _OPENVINO_RECURRENT:  # every step multiplies the input by W and the state by R, for all gates
        xi, wi, ri = _OPENVINO_RECURRENT[op]
        x, w, r = _at(in_shapes, xi), _at(in_shapes, wi), _at(in_shapes, ri)
        return prod(x[:-1]) * (prod(w) + prod(r)) if x and w and r else None
    if op == "MatMul":
        x = _at(in_shapes, 0)
        if not out or not x:
            return None
        inner = x[-2] if (transpose_a and len(x) > 1) else x[-1]
        return matmul_macs(out, inner)
    return 0
