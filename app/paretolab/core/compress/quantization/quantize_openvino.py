"""Quantization for OpenVINO: NNCF int8 (also accuracy-aware), weight-only int8/int4, FP16, bf16
compute, and "fastest" — int8 against bf16, measured here."""

from __future__ import annotations

import contextlib
import io
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from paretolab.core.compress.quantization import weight_only
from paretolab.core.compress.quantization.fastest_faithful import Contest, QuantizeOutcome, pick_fastest_faithful
from paretolab.core.compress.quantization.quant_settings import Precision, QuantizeSettings
from paretolab.core.errors import Cancelled, ParetoLabError, first_line
from paretolab.core.files import atomic_write
from paretolab.core.measure.data import Dataset, fit_to_model
from paretolab.core.measure.machine import has_bf16
from paretolab.core.measure.runtimes import PRECISION_OPTION
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress, silent
from paretolab.core.settings import SettingsError


def _ov_items(data: Dataset, handle: ModelHandle) -> list:
    dtypes = fit_to_model(data, handle.inputs, handle.path.name)
    items = []
    for batch in data.batches(1):
        arrays = [a.astype(t) for a, t in zip(batch.inputs, dtypes)]
        items.append(arrays[0] if len(arrays) == 1 else arrays)
    return items


def quantize_openvino(handle: ModelHandle, settings: QuantizeSettings, calibration: Dataset, validation: Dataset,
                       excluded: list[str], work: Path, out: Path, threads: int | None,
                       progress: Progress, *, device: str = "cpu",
                       output_kinds: Mapping[str, str] | None = None) -> QuantizeOutcome:
    """`device`: where candidates are timed (an OpenVINO device here); `output_kinds`: how each
    output is judged when candidates compete (the user's --output-kind)."""
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
        return _openvino_fastest(handle, settings, calibration, validation, excluded, work, xml, threads, progress, device,
                                 output_kinds)
    scope = nncf.IgnoredScope(patterns=[re.escape(n) + "(/.*)?$" for n in excluded], validate=False) if excluded else None
    if settings.precision in weight_only.WEIGHT_ONLY:
        progress.report(0.3, f"compressing weights to {weight_only.bits(settings)} bits (NNCF)")
        with quiet():
            compressed = weight_only.compress_openvino(model, settings, scope)
        atomic_write(xml, lambda tmp: ov.save_model(compressed, str(tmp), compress_to_fp16=False))
        return QuantizeOutcome(xml, f"openvino-{settings.precision}")
    progress.report(0.1, f"calibrating on {len(calibration)} samples (NNCF)")
    calibration_data = nncf.Dataset(_ov_items(calibration, handle))
    if settings.max_drop is None and is_transformer(handle.layer_graph()):
        return _openvino_transformer_candidates(handle, model, settings, calibration_data, len(calibration), scope,
                                                validation, work, xml, threads, progress, device, output_kinds)
    with quiet():
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
                      progress: Progress, device: str, output_kinds: Mapping[str, str] | None = None) -> QuantizeOutcome:
    """FP32's rivals on OpenVINO here: int8 (NNCF), and bf16 compute where the CPU has it natively.
    Which wins depends on the model and the CPU (bf16 keeps accuracy for free on AMX; int8 needs
    VNNI), so each is built, checked against FP32, timed beside it, and the fastest faithful kept."""
    bf16 = device == "cpu" and has_bf16()  # a GPU plugin computes FP32 models in f16 already
    rivals: tuple[Precision, ...] = ("int8", "bf16") if bf16 else ("int8",)
    built: dict[str, Path] = {}
    dropped: list[str] = []
    for i, precision in enumerate(rivals):
        progress.report(0.05 + 0.3 * i, f"building the {precision} candidate")
        folder = work / precision
        folder.mkdir()
        try:
            built[precision] = quantize_openvino(handle, replace(settings, precision=precision), calibration, validation,
                                                  excluded, folder, folder / f"{precision}.xml", threads, silent()).artifact
        except (Cancelled, SettingsError):
            raise
        except Exception as exc:  # one precision failing leaves the others to compete
            dropped.append(f"{precision} could not be built ({first_line(exc)})")
    outcome = pick_fastest_faithful(handle, built, "openvino", settings.min_agreement, validation, xml, threads, progress,
                                    dropped, PRECISIONS, device=device, output_kinds=output_kinds,
                                    keep_fp32=lambda path: _write_fp32_ir(handle, path))
    if device == "cpu" and not bf16:
        outcome.notes.append("bf16 not tried: this CPU has neither AVX512-BF16 nor AMX (OpenVINO would emulate it)")
    return outcome


def _write_fp32_ir(handle: ModelHandle, xml: Path) -> None:
    """The original as an FP32 OpenVINO IR (weights as they are, no precision hint): what
    'fastest' keeps when neither int8 nor bf16 ran measurably faster."""
    import openvino as ov

    model = ov.Core().read_model(str(handle.path)) if handle.format == "onnx" else handle.openvino_model()
    atomic_write(xml, lambda tmp: ov.save_model(model, str(tmp), compress_to_fp16=False))


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
def quiet() -> Iterator[None]:
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
                                     threads: int | None, progress: Progress, device: str,
                                     output_kinds: Mapping[str, str] | None = None) -> QuantizeOutcome:
    """NNCF's transformer preset (SmoothQuant, softmax and norms kept in float) is meant for
    trained transformers; on others the default scheme is closer to FP32. Both are built and the
    fastest faithful kept, as for ONNX Runtime's formats."""
    import nncf
    import openvino as ov

    built = {}
    for i, (name, model_type) in enumerate((("default", None), ("transformer", nncf.ModelType.TRANSFORMER))):
        progress.report(0.1 + 0.3 * i, f"calibrating ({name} scheme, NNCF)")
        with quiet():
            quantized = nncf.quantize(model.clone(), calibration, subset_size=samples, ignored_scope=scope,
                                      model_type=model_type)
        built[name] = work / f"openvino-{name}.xml"
        ov.save_model(quantized, str(built[name]), compress_to_fp16=False)
        progress.check()
    return pick_fastest_faithful(handle, built, "openvino", settings.min_agreement, validation, xml, threads, progress, [],
                                 device=device, output_kinds=output_kinds)


def is_transformer(graph: LayerGraph) -> bool:
    """Attention is there: a softmax, and a matrix product of two activations (no weights). NNCF's
    transformer preset then keeps the softmax and layer norms in floating point, as it should."""
    ops = graph.op_counts
    attention = any(n.op in ("MatMul", "Einsum") and not n.weights and len(n.input_shapes) == 2 for n in graph)
    return "Softmax" in ops and attention
