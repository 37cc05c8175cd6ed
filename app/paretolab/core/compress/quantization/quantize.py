"""Quantization for ONNX Runtime and OpenVINO (quantize_openvino.py) — measured, not assumed.

The same "int8" can be 3x faster or 4x slower than FP32 depending on its format and the
backend (QOperator U8S8 vs S8S8 vs QDQ on ONNX Runtime; see design.md). With format "auto",
every candidate is built, timed on the target backend and checked for fidelity against
the FP32 model, and the fastest faithful one is kept. A result slower than FP32 is never
returned without a warning that says so.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from paretolab.core.compress.quantization import weight_only
from paretolab.core.compress.quantization.fastest_faithful import QuantizeOutcome, pick_fastest_faithful
from paretolab.core.compress.quantization.quant_settings import ORT_FORMATS, QuantizeSettings
from paretolab.core.compress.quantization.quantize_openvino import quantize_openvino, quiet
from paretolab.core.errors import Cancelled, ParetoLabError, first_line
from paretolab.core.files import atomic_write, inside, work_prefix
from paretolab.core.measure.data import Dataset, calibration_subset, fit_to_model
from paretolab.core.measure.runtimes import available_backends
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.handle import ModelHandle
from paretolab.core.model.normalize import normalized_onnx
from paretolab.core.owned import library_temp
from paretolab.core.progress import Progress, silent
from paretolab.core.settings import SettingsError
from paretolab.core.tensors import fixed_batch

if TYPE_CHECKING:
    from paretolab.core.compress.step import StepContext


def quantize(
    handle: ModelHandle,
    settings: QuantizeSettings,
    data: Dataset,
    out: Path,
    *,
    validation: Dataset | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    device: str = "cpu",
    output_kinds: Mapping[str, str] | None = None,
) -> QuantizeOutcome:
    """Quantize `handle` into `out` (.onnx for ONNX Runtime, .xml for OpenVINO). Candidates are
    timed on `device` (where the variant will run) when the quantizer's runtime has it here, else on the CPU,
    and judged on `validation` with each output by its kind (`output_kinds`: the user's --output-kind)."""
    progress = progress or silent()
    if (settings.backend, device) not in {(b.backend, b.device) for b in available_backends()}:
        device = "cpu"
    fit_to_model(data, handle.inputs, handle.path.name)
    calibration = calibration_subset(data, settings.samples, settings.seed)
    validation = validation or calibration_subset(data, min(200, len(data)), settings.seed + 1)
    with tempfile.TemporaryDirectory(prefix=work_prefix("quant")) as tmp:
        work = Path(tmp)
        keep = list(settings.keep_fp32)
        if settings.keep_sensitive:
            progress.report(0.02, f"measuring each layer's int8 error to keep the {settings.keep_sensitive} worst in FP32")
            keep += [n for n in _sensitive_layers(handle, settings, calibration, work) if n not in keep]
        excluded = _excluded_nodes(handle, tuple(keep))
        if settings.backend == "ort":
            outcome = _quantize_ort(handle, settings, calibration, validation, excluded, work, out, threads, progress,
                                    device=device, output_kinds=output_kinds)
        else:
            outcome = quantize_openvino(handle, settings, calibration, validation, excluded, work, out, threads, progress,
                                        device=device, output_kinds=output_kinds)
        outcome.kept_fp32 = keep
    progress.report(1.0, f"quantized: {outcome.chosen}")
    return outcome


def _runtime_graph(handle: ModelHandle) -> LayerGraph:
    """The LayerGraph of the file the quantizer actually reads (for torch models, their
    ONNX export, whose node and tensor names are what exclusions must use)."""
    if handle.format == "onnx" or handle.runs_on_openvino_only:
        return handle.layer_graph()
    return handle.like(handle.onnx_file()).layer_graph()


def _excluded_nodes(handle: ModelHandle, layers: tuple[str, ...]) -> list[str]:
    """The runtime node names of the layers the user keeps in FP32."""
    if not layers:
        return []
    graph = _runtime_graph(handle)
    missing = [name for name in layers if name not in graph]
    if missing:
        examples = ", ".join(n.name for n in graph.nodes if n.weights)[:200]
        raise SettingsError(f"keep_fp32 names no layer '{missing[0]}' in {handle.path.name}; layers with weights: {examples}")
    return [graph.node(name).source for name in layers]


def _sensitive_layers(handle: ModelHandle, settings: QuantizeSettings, calibration: Dataset, work: Path) -> list[str]:
    """Quantize everything once (QDQ keeps every FP32 tensor name), compare activations with
    FP32 layer by layer, and name the layers that lose the most SQNR themselves."""
    from paretolab.core.compress.insight.importance import most_sensitive_layers, quantization_error

    probe, src = work / "probe.onnx", normalized_onnx(handle.onnx_file(), work)
    _ort_static(src, probe, "qdq-s8s8", settings, handle, calibration, [])
    sqnr = quantization_error(src, probe, calibration, [s.name for s in handle.inputs])
    return most_sensitive_layers(_runtime_graph(handle), sqnr, settings.keep_sensitive)


def int8_layer_error(handle: ModelHandle, data: Dataset, samples: int = 64) -> dict[str, float]:
    """Per layer, the SQNR (dB) of its output when the whole model runs in int8 (QDQ, per
    channel) against FP32: where quantization hurts. Lower is worse."""
    from paretolab.core.compress.insight.importance import layer_output_sqnr, quantization_error

    calibration = calibration_subset(data, samples)
    with tempfile.TemporaryDirectory(prefix=work_prefix("qerr")) as tmp:
        probe, src = Path(tmp) / "probe.onnx", normalized_onnx(handle.onnx_file(), Path(tmp))
        _ort_static(src, probe, "qdq-s8s8", QuantizeSettings(samples=samples), handle, calibration, [])
        sqnr = quantization_error(src, probe, calibration, [s.name for s in handle.inputs])
    return layer_output_sqnr(_runtime_graph(handle), sqnr)


# -- ONNX Runtime ----------------------------------------------------------------------------


class _Reader:
    """ONNX Runtime's CalibrationDataReader protocol over a Dataset."""

    def __init__(self, data: Dataset, names: list[str], dtypes: list[np.dtype], batch: int) -> None:
        self._batches = ({n: a.astype(t) for n, a, t in zip(names, b.inputs, dtypes)} for b in data.batches(batch))

    def get_next(self) -> dict | None:
        return next(self._batches, None)


def _batch_size(handle: ModelHandle) -> int:
    return fixed_batch(handle.inputs) or 16


def _ort_static(
    src: Path, out: Path, fmt: str, settings: QuantizeSettings, handle: ModelHandle, data: Dataset, excluded: list[str]
) -> None:
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    kind, types = fmt.split("-")
    dtypes = fit_to_model(data, handle.inputs, handle.path.name)
    reader = _Reader(data, [s.name for s in handle.inputs], dtypes, _batch_size(handle))
    method = {
        "minmax": CalibrationMethod.MinMax,
        "entropy": CalibrationMethod.Entropy,
        "percentile": CalibrationMethod.Percentile,
    }
    with quiet(), library_temp():  # its ort.quant.* folders in ours: a killed run leaves none behind
        quantize_static(
            str(src),
            str(out),
            reader,
            quant_format=QuantFormat.QOperator if kind == "qop" else QuantFormat.QDQ,
            activation_type=QuantType.QUInt8 if types == "u8s8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=settings.per_channel,
            calibrate_method=method[settings.calibration],
            nodes_to_exclude=excluded,
        )


def _preprocessed(src: Path, work: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (shape inference, fusions) when it works."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    src = src.resolve()
    pre = (work / "pre.onnx").resolve()
    try:
        with quiet(), inside(work), library_temp():  # absolute paths: shape inference may write into the working folder
            quant_pre_process(str(src), str(pre))
        return pre
    except Exception as exc:  # pre-processing is an optimisation; quantize the model as it is
        logging.getLogger(__name__).info("quant_pre_process failed (%s); using the model as is", exc)
        return src


def _quantize_ort(handle: ModelHandle, settings: QuantizeSettings, calibration: Dataset, validation: Dataset,
                  excluded: list[str], work: Path, out: Path, threads: int | None, progress: Progress, *,
                  device: str = "cpu", output_kinds: Mapping[str, str] | None = None) -> QuantizeOutcome:
    src = normalized_onnx(handle.onnx_file(), work)  # weights as initializers, as ONNX Runtime's quantizers expect
    if settings.precision == "fp16":
        progress.report(0.2, "converting weights and activations to FP16")
        atomic_write(out, lambda tmp: _ort_fp16(src, tmp, excluded))
        return QuantizeOutcome(out, "ort-fp16")
    if settings.precision == "dynamic-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        progress.report(0.2, "quantizing weights (dynamic int8)")
        with quiet(), library_temp():
            atomic_write(out, lambda tmp: quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8,
                                                           per_channel=settings.per_channel, nodes_to_exclude=excluded))
        return QuantizeOutcome(out, "ort-dynamic-int8")
    if settings.precision in weight_only.WEIGHT_ONLY:
        progress.report(0.2, f"quantizing weights to {weight_only.bits(settings)} bits (MatMulNBits)")
        with quiet(), library_temp():
            converted = weight_only.compress_ort(src, out, settings, excluded)
        if not converted:
            out.unlink(missing_ok=True)
            raise ParetoLabError(f"{handle.path.name} has no MatMul with constant weights for ONNX Runtime's weight-only "
                                 "quantization (MatMulNBits); use int8 or OpenVINO weight-only int8/int4")
        return QuantizeOutcome(out, f"ort-{settings.precision}")

    pre = _preprocessed(src, work)
    formats: tuple[str, ...] = ORT_FORMATS if settings.format == "auto" else (settings.format,)
    built: dict[str, Path] = {}
    dropped: list[str] = []
    opset = _opset(pre)
    if settings.per_channel and opset < 13:  # QuantizeLinear/DequantizeLinear take an axis from opset 13
        if settings.format != "auto" and settings.format.startswith("qdq"):
            raise SettingsError(f"format '{settings.format}' with per-channel scales needs ONNX opset 13 or later and "
                                f"{handle.path.name} is opset {opset}: use a qop format, set per_channel to false, or "
                                "export the model at opset 13+")
        dropped += [f"{fmt} not built: per-channel QDQ needs opset 13, the model is opset {opset}"
                    for fmt in formats if fmt.startswith("qdq")]
        formats = tuple(fmt for fmt in formats if not fmt.startswith("qdq"))
    for i, fmt in enumerate(formats):
        progress.report(0.05 + 0.6 * i / len(formats), f"calibrating and quantizing ({fmt})")
        try:
            _ort_static(pre, work / f"{fmt}.onnx", fmt, settings, handle, calibration, excluded)
            built[fmt] = work / f"{fmt}.onnx"
        except (Cancelled, ParetoLabError):
            raise
        except Exception as exc:  # ONNX Runtime's quantizer fails on some graphs for one format, not all
            dropped.append(f"{fmt} could not be built ({first_line(exc)})")
    if not built:
        raise ParetoLabError(f"ONNX Runtime could not quantize {handle.path.name} to int8: {'; '.join(dropped)}; "
                             "try OpenVINO int8 or FP16")
    if len(built) == 1 and not dropped:
        fmt, path = next(iter(built.items()))
        atomic_write(out, lambda tmp: shutil.copyfile(path, tmp))
        return QuantizeOutcome(out, f"ort-int8-{fmt}")
    return pick_fastest_faithful(handle, built, "ort", settings.min_agreement, validation, out, threads, progress, dropped,
                                 device=device, output_kinds=output_kinds)


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def _ort_fp16(src: Path, out: Path, excluded: list[str]) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True, node_block_list=excluded or None)
    _sort_topologically(model.graph)  # the converter appends its input Casts at the end
    onnx.save(model, str(out))


def _sort_topologically(graph: Any) -> None:
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        ready = [n for n in pending if all(i in available for i in n.input)]
        if not ready:
            raise ValueError("the FP16 graph has a cycle or a dangling input")
        for node in ready:
            ordered.append(node)
            available.update(node.output)
        pending = [n for n in pending if all(n is not r for r in ready)]
    del graph.node[:]
    graph.node.extend(ordered)


def summary(settings: QuantizeSettings) -> str:
    chosen_format = f" {settings.format}" if settings.precision == "int8" and settings.backend == "ort" else ""
    return f"quantize {settings.backend} {settings.precision}{chosen_format}"


def output(settings: QuantizeSettings) -> Literal["torch", "onnx", "openvino"]:
    """What the step leaves: a PyTorch precision edits the module; the others write their runtime's file."""
    return "torch" if settings.backend == "torch" else "openvino" if settings.backend == "openvino" else "onnx"


def apply(ctx: StepContext, index: int, settings: QuantizeSettings) -> None:
    if settings.backend == "torch":
        from paretolab.core.compress.quantization import torch_precision

        torch_precision.apply(ctx, index, settings)
        return
    from paretolab.core.compress.quantization import qat

    training = qat.wanted(settings)
    module, no_module = qat.torch_source(ctx) if training else (None, None)  # before file(), which drops the module
    handle = ctx.file(index)
    progress = qat.Share(ctx.progress, 0.0, 0.3) if training else ctx.progress
    outcome = quantize(handle, settings, ctx.data.train, ctx.out(index), validation=ctx.data.validation,
                       threads=ctx.threads, progress=progress, device=ctx.device, output_kinds=ctx.data.output_kinds)
    fields: dict = {}
    if training:
        trained = qat.after_ptq(module, no_module, handle, outcome.artifact, settings, ctx.data.train,
                                ctx.data.validation, outcome.kept_fp32, ctx.work / f"step{index}-qat", ctx.threads,
                                qat.Share(ctx.progress, 0.3, 1.0))
        outcome.notes.append(trained.note())
        outcome.chosen += "-qat" if trained.chosen == "qat" else ""
        fields["qat"] = trained.to_dict()
    ctx.set_file(outcome.artifact)
    ctx.report(index, {"technique": "quantize", "chosen": outcome.chosen, "baseline_ms": outcome.baseline_ms,
                       "candidates": [vars(c) for c in outcome.candidates], "warnings": outcome.warnings,
                       "notes": outcome.notes, **fields})
