"""Weight-only quantization: int8 or int4 weights, activations left in floating point.

This is what pays on transformers, whose cost at small batch is reading weights: NNCF's
compress_weights for OpenVINO (int4 in groups along the input axis, with a share of layers
kept at int8), ONNX Runtime's MatMulNBits for ONNX (int4 or int8 blocks). No calibration data
is needed, so no candidates are built: there is one result, measured like every variant.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from paretolab.core.files import atomic_write

if TYPE_CHECKING:
    from paretolab.core.compress.quantization.quant_settings import QuantizeSettings

WEIGHT_ONLY = ("int8-weights", "int4-weights")


def bits(settings: QuantizeSettings) -> int:
    return 4 if settings.precision == "int4-weights" else 8


def compress_openvino(model: Any, settings: QuantizeSettings, scope: Any) -> Any:
    """The ov.Model with its MatMul/Gemm/embedding weights compressed by NNCF. Group sizes that do
    not divide a layer's input width are adjusted for that layer, not refused."""
    import nncf
    from nncf.quantization.advanced_parameters import AdvancedCompressionParameters, GroupSizeFallbackMode

    if bits(settings) == 8:
        mode, group, ratio = nncf.CompressWeightsMode.INT8_ASYM, None, None
    else:
        mode = nncf.CompressWeightsMode.INT4_SYM
        group, ratio = settings.group_size, settings.ratio
    return nncf.compress_weights(
        model, mode=mode, group_size=group, ratio=ratio,
        ignored_scope=scope,
        advanced_parameters=AdvancedCompressionParameters(group_size_fallback_mode=GroupSizeFallbackMode.ADJUST),
    )


def compress_ort(src: Path, out: Path, settings: QuantizeSettings, excluded: list[str]) -> int:
    """Write `src` with its MatMul weights as MatMulNBits blocks to `out`; the number of MatMuls
    converted (0 means the model has none with constant weights: nothing to gain)."""
    import onnx
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    block = settings.group_size if settings.group_size > 0 else 128
    quantizer = MatMulNBitsQuantizer(onnx.load(str(src)), bits=bits(settings), block_size=block, is_symmetric=True,
                                     nodes_to_exclude=excluded)
    quantizer.process()
    converted = sum(n.op_type == "MatMulNBits" for n in quantizer.model.model.graph.node)
    atomic_write(out, lambda tmp: quantizer.model.save_model_to_file(str(tmp), use_external_data_format=False))
    return converted
