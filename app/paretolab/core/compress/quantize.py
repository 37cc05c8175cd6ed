"""Quantization for ONNX Runtime and OpenVINO — measured, not assumed.

The same "int8" can be 3x faster or 4x slower than FP32 depending on its format and the
backend (QOperator U8S8 vs S8S8 vs QDQ on ONNX Runtime; see design.md). With format "auto",
every candidate is built, timed on the target backend and checked for fidelity against
the FP32 model, and the fastest faithful one is kept. A result slower than FP32 is never
returned without a warning that says so.
"""

from __future__ import annotations

import contextlib
import io
import logging
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from paretolab.core.compress import weight_only
from paretolab.core.compress.fastest_faithful import Contest, QuantizeOutcome, pick_fastest_faithful
from paretolab.core.errors import Cancelled, ParetoLabError, first_line
from paretolab.core.files import atomic_write, inside, work_prefix
from paretolab.core.measure.data import Dataset, calibration_subset, fit_to_model
from paretolab.core.measure.machine import has_bf16
from paretolab.core.measure.runtimes import PRECISION_OPTION
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.handle import ModelHandle
from paretolab.core.model.normalize import normalized_onnx
from paretolab.core.progress import Progress, silent
from paretolab.core.settings import SettingsError
from paretolab.core.tensors import fixed_batch

if TYPE_CHECKING:
    from paretolab.core.compress.step import StepContext

ORT_FORMATS = ("qop-u8s8", "qdq-u8s8", "qdq-s8s8", "qop-s8s8")
Precision = Literal["int8", "fp16", "bf16", "fastest", "dynamic-int8", "int8-weights", "int4-weights"]


@dataclass(frozen=True)
class QuantizeSettings:
    backend: Literal["ort", "openvino", "torch"] = "ort"
    # "fastest": every precision the runtime computes faster than FP32 here, measured; the fastest faithful kept
    precision: Precision = "int8"
    format: Literal["auto", "qop-u8s8", "qdq-u8s8", "qdq-s8s8", "qop-s8s8"] = "auto"  # ONNX Runtime int8 only
    calibration: Literal["minmax", "entropy", "percentile"] = "minmax"  # ONNX Runtime int8 only
    samples: int = 128  # calibration samples
    per_channel: bool = True
    keep_fp32: tuple[str, ...] = ()  # layer names left in floating point
    keep_sensitive: int = 0  # also leave the N layers with the worst int8 error (measured as SQNR) in FP32
    max_drop: float | None = None  # OpenVINO int8: accuracy-aware mode, largest top-1 drop allowed (0.01 = 1 point)
    min_agreement: float = 0.98  # "auto": a candidate must agree with FP32 on this share of top-1 predictions
    group_size: int = 128  # weight-only int4: weights share a scale in groups this long along the input (-1: per channel)
    ratio: float = 1.0  # OpenVINO weight-only int4: share of layers in int4, the rest int8
    seed: int = 0

    def check(self) -> None:
        if self.samples < 1:
            raise SettingsError(f"setting 'samples' must be at least 1, not {self.samples}")
        if self.precision == "dynamic-int8" and self.backend != "ort":
            raise SettingsError("dynamic int8 is an ONNX Runtime technique; use backend 'ort'")
        if self.backend == "torch" and self.precision not in ("fp16", "bf16", "fastest"):
            raise SettingsError(f"PyTorch precisions are fp16, bf16 and fastest, not '{self.precision}'; for "
                                f"{self.precision} use backend 'ort' or 'openvino'")
        if self.precision in ("bf16", "fastest") and self.backend == "ort":
            raise SettingsError(f"precision '{self.precision}' is offered through OpenVINO and PyTorch; use backend "
                                "'openvino' or 'torch'")
        if self.max_drop is not None and not (self.backend == "openvino" and self.precision == "int8"):
            raise SettingsError("setting 'max_drop' (accuracy-aware quantization) needs backend 'openvino' and precision 'int8'")
        if self.max_drop is not None and not 0 < self.max_drop < 1:
            raise SettingsError(f"setting 'max_drop' must be between 0 and 1 (0.01 = 1 point), not {self.max_drop}")
        if self.keep_sensitive < 0:
            raise SettingsError(f"setting 'keep_sensitive' must be 0 or more, not {self.keep_sensitive}")
        if self.keep_sensitive and self.precision != "int8":
            raise SettingsError("setting 'keep_sensitive' applies to int8 quantization")
        if not 0 <= self.min_agreement <= 1:
            raise SettingsError(f"setting 'min_agreement' must be between 0 and 1, not {self.min_agreement}")
        self._check_weight_only()

    def _check_weight_only(self) -> None:
        if self.group_size != -1 and (self.group_size < 16 or self.group_size & (self.group_size - 1)):
            raise SettingsError(f"setting 'group_size' must be a power of two from 16 up, or -1 for one scale per "
                                f"channel, not {self.group_size}")
        if not 0 < self.ratio <= 1:
            raise SettingsError(f"setting 'ratio' must be above 0 and at most 1, not {self.ratio}")
        if self.ratio < 1 and not (self.precision == "int4-weights" and self.backend == "openvino"):
            raise SettingsError("setting 'ratio' (a share of layers in int4, the rest int8) applies to OpenVINO "
                                "weight-only int4")


def quantize(
    handle: ModelHandle,
    settings: QuantizeSettings,
    data: Dataset,
    out: Path,
    *,
    validation: Dataset | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
) -> QuantizeOutcome:
    """Quantize `handle` into `out` (.onnx for ONNX Runtime, .xml for OpenVINO)."""
    progress = progress or silent()
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
            outcome = _quantize_ort(handle, settings, calibration, validation, excluded, work, out, threads, progress)
        else:
            outcome = _quantize_openvino(handle, settings, calibration, validation, excluded, work, out, threads, progress)
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
    from paretolab.core.compress.importance import most_sensitive_layers, quantization_error

    probe, src = work / "probe.onnx", normalized_onnx(handle.onnx_file(), work)
    _ort_static(src, probe, "qdq-s8s8", settings, handle, calibration, [])
    sqnr = quantization_error(src, probe, calibration, [s.name for s in handle.inputs])
    return most_sensitive_layers(_runtime_graph(handle), sqnr, settings.keep_sensitive)


def int8_layer_error(handle: ModelHandle, data: Dataset, samples: int = 64) -> dict[str, float]:
    """Per layer, the SQNR (dB) of its output when the whole model runs in int8 (QDQ, per
    channel) against FP32: where quantization hurts. Lower is worse."""
    from paretolab.core.compress.importance import layer_output_sqnr, quantization_error

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
    with _quiet():
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
        with _quiet(), inside(work):  # absolute paths: its shape inference may write into the working folder
            quant_pre_process(str(src), str(pre))
        return pre
    except Exception as exc:  # pre-processing is an optimisation; quantize the model as it is
        logging.getLogger(__name__).info("quant_pre_process failed (%s); using the model as is", exc)
        return src


def _quantize_ort(handle: ModelHandle, settings: QuantizeSettings, calibration: Dataset, validation: Dataset,
                  excluded: list[str], work: Path, out: Path, threads: int | None, progress: Progress) -> QuantizeOutcome:
    src = normalized_onnx(handle.onnx_file(), work)  # weights as initializers, as ONNX Runtime's quantizers expect
    if settings.precision == "fp16":
        progress.report(0.2, "converting weights and activations to FP16")
        atomic_write(out, lambda tmp: _ort_fp16(src, tmp, excluded))
        return QuantizeOutcome(out, "ort-fp16")
    if settings.precision == "dynamic-int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic

        progress.report(0.2, "quantizing weights (dynamic int8)")
        with _quiet():
            atomic_write(out, lambda tmp: quantize_dynamic(str(src), str(tmp), weight_type=QuantType.QInt8,
                                                           per_channel=settings.per_channel, nodes_to_exclude=excluded))
        return QuantizeOutcome(out, "ort-dynamic-int8")
    if settings.precision in weight_only.WEIGHT_ONLY:
        progress.report(0.2, f"quantizing weights to {weight_only.bits(settings)} bits (MatMulNBits)")
        with _quiet():
            converted = weight_only.compress_ort(src, out, settings, excluded)
        if not converted:
            out.unlink(missing_ok=True)
            raise ParetoLabError(f"{handle.path.name} has no MatMul with constant weights for ONNX Runtime's weight-only "
                                 "quantization (MatMulNBits); use int8 or OpenVINO weight-only int8/int4")
        return QuantizeOutcome(out, f"ort-{settings.precision}")

    pre = _preprocessed(src, work)
    formats = ORT_FORMATS if settings.format == "auto" else (settings.format,)
    built: dict[str, Path] = {}
    dropped: list[str] = []
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
    return pick_fastest_faithful(handle, built, "ort", settings.min_agreement, validation, out, threads, progress, dropped)


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


# -- OpenVINO --------------------------------------------------------------------------------


def _ov_items(data: Dataset, handle: ModelHandle) -> list:
    dtypes = fit_to_model(data, handle.inputs, handle.path.name)
    items = []
    for batch in data.batches(1):
        arrays = [a.astype(t) for a, t in zip(batch.inputs, dtypes)]
        items.append(arrays[0] if len(arrays) == 1 else arrays)
    return items


def _quantize_openvino(handle: ModelHandle, settings: QuantizeSettings, calibration: Dataset, validation: Dataset,
                       excluded: list[str], work: Path, out: Path, threads: int | None,
                       progress: Progress) -> QuantizeOutcome:
    import nncf
    import openvino as ov

    # Torch models go through their ONNX form, whose node names are the layer names.
    model = handle.native.clone() if handle.runs_on_openvino_only else ov.Core().read_model(str(handle.onnx_file()))
    xml = out.with_suffix(".xml")
    if settings.precision == "fp16":
        progress.report(0.3, "compressing weights to FP16")
        atomic_write(xml, lambda tmp: ov.save_model(model, str(tmp), compress_to_fp16=True))
        return QuantizeOutcome(xml, "openvino-fp16")
    if settings.precision == "bf16":
        if not has_bf16():
            raise ParetoLabError("bf16 compute needs a CPU with AVX512-BF16 or AMX, and this one has neither: OpenVINO "
                                 "would emulate it, slower than FP32; use int8 here, or build the variant on the target")
        progress.report(0.3, "asking OpenVINO to compute in bf16 (recorded in the IR; the weights stay FP32)")
        model.set_rt_info("bf16", PRECISION_OPTION)
        atomic_write(xml, lambda tmp: ov.save_model(model, str(tmp), compress_to_fp16=False))
        return QuantizeOutcome(xml, "openvino-bf16")
    if settings.precision == "fastest":
        return _openvino_fastest(handle, settings, calibration, validation, excluded, work, xml, threads, progress)
    scope = nncf.IgnoredScope(patterns=[re.escape(n) + "(/.*)?$" for n in excluded], validate=False) if excluded else None
    if settings.precision in weight_only.WEIGHT_ONLY:
        progress.report(0.3, f"compressing weights to {weight_only.bits(settings)} bits (NNCF)")
        with _quiet():
            compressed = weight_only.compress_openvino(model, settings, scope)
        atomic_write(xml, lambda tmp: ov.save_model(compressed, str(tmp), compress_to_fp16=False))
        return QuantizeOutcome(xml, f"openvino-{settings.precision}")
    progress.report(0.1, f"calibrating on {len(calibration)} samples (NNCF)")
    calibration_data = nncf.Dataset(_ov_items(calibration, handle))
    if settings.max_drop is None and is_transformer(handle.layer_graph()):
        return _openvino_transformer_candidates(handle, model, settings, calibration_data, len(calibration), scope,
                                                validation, work, xml, threads, progress)
    with _quiet():
        if settings.max_drop is None:
            quantized = nncf.quantize(model, calibration_data, subset_size=len(calibration), ignored_scope=scope)
        else:
            quantized = _accuracy_aware(nncf, model, calibration_data, validation, handle, settings, scope)
    progress.check()
    atomic_write(xml, lambda tmp: ov.save_model(quantized, str(tmp), compress_to_fp16=False))
    chosen = "openvino-int8" + ("-accuracy-aware" if settings.max_drop is not None else "")
    return QuantizeOutcome(xml, chosen)


PRECISIONS = Contest("precision", "", ("bf16", "int8"), "the more faithful precision")


def _openvino_fastest(handle: ModelHandle, settings: QuantizeSettings, calibration: Dataset, validation: Dataset,
                      excluded: list[str], work: Path, xml: Path, threads: int | None,
                      progress: Progress) -> QuantizeOutcome:
    """FP32's rivals on OpenVINO here: int8 (NNCF), and bf16 compute where the CPU has it natively.
    Which wins depends on the model and the CPU (bf16 keeps accuracy for free on AMX; int8 needs
    VNNI), so each is built, checked against FP32, timed beside it, and the fastest faithful kept."""
    rivals: tuple[Precision, ...] = ("int8", "bf16") if has_bf16() else ("int8",)
    built: dict[str, Path] = {}
    dropped: list[str] = []
    for i, precision in enumerate(rivals):
        progress.report(0.05 + 0.3 * i, f"building the {precision} candidate")
        folder = work / precision
        folder.mkdir()
        try:
            built[precision] = _quantize_openvino(handle, replace(settings, precision=precision), calibration, validation,
                                                  excluded, folder, folder / f"{precision}.xml", threads, silent()).artifact
        except (Cancelled, SettingsError):
            raise
        except Exception as exc:  # one precision failing leaves the others to compete
            dropped.append(f"{precision} could not be built ({first_line(exc)})")
    outcome = pick_fastest_faithful(handle, built, "openvino", settings.min_agreement, validation, xml, threads, progress,
                                    dropped, PRECISIONS)
    if not has_bf16():
        outcome.notes.append("bf16 not tried: this CPU has neither AVX512-BF16 nor AMX (OpenVINO would emulate it)")
    return outcome


def _accuracy_aware(nncf: Any, model: Any, calibration_data: Any, validation: Dataset, handle: ModelHandle,
                    settings: QuantizeSettings, scope: Any) -> Any:
    if not validation.has_labels:
        raise SettingsError("accuracy-aware quantization (max_drop) needs labelled data; give a dataset with labels")
    items = _ov_items(validation, handle)
    labels = validation.labels
    if labels is None:
        raise SettingsError("accuracy-aware quantization ('max_drop') needs labelled data; give a dataset with labels")

    def top1(compiled: Any, data_items: Any) -> float:
        output = compiled.outputs[0]
        hits = [int(np.argmax(compiled(item)[output]) == label) for item, label in zip(data_items, labels)]
        return float(np.mean(hits))

    return nncf.quantize_with_accuracy_control(
        model, calibration_data, nncf.Dataset(items), validation_fn=top1, max_drop=settings.max_drop,
        subset_size=min(len(items), 300), ignored_scope=scope,
    )


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """ORT and NNCF print progress bars and info to stdout/stderr; keep the terminal ours."""
    nncf_log = logging.getLogger("nncf")
    level = nncf_log.level
    nncf_log.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        nncf_log.setLevel(level)


def _openvino_transformer_candidates(handle: ModelHandle, model: Any, settings: QuantizeSettings, calibration: Any,
                                     samples: int, scope: Any, validation: Dataset, work: Path, xml: Path,
                                     threads: int | None, progress: Progress) -> QuantizeOutcome:
    """NNCF's transformer preset (SmoothQuant, softmax and norms kept in float) is meant for
    trained transformers; on others the default scheme is closer to FP32. Both are built and the
    fastest faithful kept, as for ONNX Runtime's formats."""
    import nncf
    import openvino as ov

    built = {}
    for i, (name, model_type) in enumerate((("default", None), ("transformer", nncf.ModelType.TRANSFORMER))):
        progress.report(0.1 + 0.3 * i, f"calibrating ({name} scheme, NNCF)")
        with _quiet():
            quantized = nncf.quantize(model.clone(), calibration, subset_size=samples, ignored_scope=scope,
                                      model_type=model_type)
        built[name] = work / f"openvino-{name}.xml"
        ov.save_model(quantized, str(built[name]), compress_to_fp16=False)
        progress.check()
    return pick_fastest_faithful(handle, built, "openvino", settings.min_agreement, validation, xml, threads, progress, [])


def is_transformer(graph: LayerGraph) -> bool:
    """Attention is there: a softmax, and a matrix product of two activations (no weights). NNCF's
    transformer preset then keeps the softmax and layer norms in floating point, as it should."""
    ops = graph.op_counts
    attention = any(n.op in ("MatMul", "Einsum") and not n.weights and len(n.input_shapes) == 2 for n in graph)
    return "Softmax" in ops and attention


def summary(settings: QuantizeSettings) -> str:
    chosen_format = f" {settings.format}" if settings.precision == "int8" and settings.backend == "ort" else ""
    return f"quantize {settings.backend} {settings.precision}{chosen_format}"


def output(settings: QuantizeSettings) -> Literal["torch", "onnx", "openvino"]:
    """What the step leaves: a PyTorch precision edits the module; the others write their runtime's file."""
    return "torch" if settings.backend == "torch" else "openvino" if settings.backend == "openvino" else "onnx"


def apply(ctx: StepContext, index: int, settings: QuantizeSettings) -> None:
    if settings.backend == "torch":
        from paretolab.core.compress import torch_precision

        torch_precision.apply(ctx, index, settings)
        return
    outcome = quantize(ctx.file(index), settings, ctx.data.train, ctx.out(index), validation=ctx.data.validation,
                       threads=ctx.threads, progress=ctx.progress)
    ctx.set_file(outcome.artifact)
    ctx.report(index, {"technique": "quantize", "chosen": outcome.chosen, "baseline_ms": outcome.baseline_ms,
                       "candidates": [vars(c) for c in outcome.candidates], "warnings": outcome.warnings,
                       "notes": outcome.notes})
