"""Quantization-aware training (QAT): when int8 after calibration loses accuracy, fine-tune the
fake-quantized model on the labels and keep whichever int8 model scores better.

Calibration alone (PTQ) fixes each scale from a few hundred samples and leaves the weights as
they were; a pruned, briefly retrained model often sits badly on the int8 grid. NNCF's PyTorch
flow (its documented QAT recipe) inserts the same FakeQuantize operations that OpenVINO runs,
calibrates them, and lets a few epochs at a small learning rate move weights and scales
together; `ov.convert_model` then gives an int8 IR. Both int8 models are scored on the
validation split in OpenVINO itself, so the choice rests on what the variant will run.
"""

from __future__ import annotations

import copy
import math
import re
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from paretolab.core.compress.quantization.quant_settings import QuantizeSettings
from paretolab.core.compress.quantization.quantize_openvino import quiet
from paretolab.core.errors import Cancelled, ParetoLabError, first_line
from paretolab.core.files import atomic_write
from paretolab.core.measure.data import Dataset, calibration_subset
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.model.eager import first_output
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress

if TYPE_CHECKING:
    from paretolab.core.compress.step import StepContext

BATCH = 64


class QatError(ParetoLabError):
    """Quantization-aware training was asked for ("always") and could not run."""


@dataclass
class QatReport:
    mode: str = "auto"
    ran: bool = False
    why: str = ""  # why it ran, or why not: shown to the user beside the scores
    chosen: str = "ptq"  # "ptq" (calibration only) or "qat"
    fp32_top1: float | None = None  # validation top-1 of the model before the step
    ptq_top1: float | None = None  # of the calibrated int8 model, in OpenVINO
    qat_top1: float | None = None  # of the trained int8 model, in OpenVINO
    epochs: int = 0
    lr: float = 0.0
    best_epoch: int = 0  # the epoch kept (0: NNCF's calibration in PyTorch, before any training, scored best)
    history: list[dict] = field(default_factory=list)  # per epoch: loss, fake-quantized validation top-1 in PyTorch
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)

    def note(self) -> str:
        """One line for the step's notes."""
        if not self.ran:
            return f"quantization-aware training not run: {self.why}"
        kept = "kept" if self.chosen == "qat" else "not kept"
        best = (f"epoch {self.best_epoch} of {self.epochs}" if self.best_epoch else
                f"no epoch of {self.epochs} beat NNCF's calibration in PyTorch, which is what was scored")
        return (f"quantization-aware training {kept}: validation top-1 {_pct(self.qat_top1)} ({best}) against "
                f"{_pct(self.ptq_top1)} calibrated (FP32 {_pct(self.fp32_top1)}; {self.why}; {self.seconds:.0f} s)")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


class Share(Progress):
    """A part [start, end) of a parent Progress: a sub-task reports 0..1 and the parent sees its share;
    cancelling the parent cancels the part."""

    def __init__(self, parent: Progress, start: float, end: float) -> None:
        super().__init__()
        self._parent, self._start, self._end = parent, start, end

    def report(self, fraction: float, message: str = "") -> None:
        self.fraction = min(max(fraction, 0.0), 1.0)
        self._parent.report(min(self._start + (self._end - self._start) * self.fraction, 0.999), message)

    def check(self) -> None:
        self._parent.check()

    @property
    def cancelled(self) -> bool:
        return self._parent.cancelled


def wanted(settings: QuantizeSettings) -> bool:
    """Whether this step may train at all (the rest is decided once PTQ is scored): as the step's
    description declares it, which also keeps a sweep's cached prefix away from it."""
    from paretolab.core.compress.techniques import TECHNIQUES

    trains = TECHNIQUES["quantize"].trains_module
    return trains is not None and trains(settings)


def torch_source(ctx: StepContext) -> tuple[Any, str | None]:
    """The editable module before the step exports it (`ctx.file()` drops it), or why there is none."""
    if ctx.module is not None:
        return ctx.module, None
    try:
        return ctx.torch_module("quantization-aware training"), None
    except ParetoLabError as exc:
        return None, f"the model is not an editable PyTorch module ({first_line(exc)})"


def after_ptq(module: Any, no_module: str | None, fp32: ModelHandle, ptq: Path, settings: QuantizeSettings,
              train: Dataset, validation: Dataset, kept_fp32: list[str], work: Path, threads: int | None,
              progress: Progress) -> QatReport:
    """Score the calibrated int8 model `ptq` (an IR) on `validation`, train when it lost more than
    `settings.qat_below` points (or always), and replace `ptq` with the trained IR when that scores better.
    "always" turns every reason not to train into a one-line error; "auto" reports it and keeps PTQ."""
    report = QatReport(mode=settings.qat, epochs=settings.qat_epochs, lr=settings.qat_lr)
    why_not = no_module or _no_labels(train, validation)
    if why_not is not None:
        return _skip(report, why_not, settings)
    progress.report(0.0, "scoring FP32 and calibrated int8 on the validation split")
    report.fp32_top1 = evaluate(fp32, validation, threads=threads).top1
    if report.fp32_top1 is None:
        return _skip(report, "the model's first output is not class scores, so top-1 cannot judge it", settings)
    report.ptq_top1 = evaluate(fp32.like(ptq), validation, backend="openvino", threads=threads).top1
    if report.ptq_top1 is None:
        return _skip(report, "the calibrated int8 model gives no class scores to judge", settings)
    drop = 100 * (report.fp32_top1 - report.ptq_top1)
    if settings.qat == "auto" and drop <= settings.qat_below:
        report.why = f"calibrated int8 lost {drop:.2f} points, not more than qat_below {settings.qat_below:g}"
        return report
    report.ran = True
    report.why = f"calibrated int8 lost {drop:.2f} points" + (
        f", more than qat_below {settings.qat_below:g}" if settings.qat == "auto" else " and qat is always")
    started = time.perf_counter()
    work.mkdir(parents=True, exist_ok=True)
    trained_xml = work / "qat.xml"
    try:
        trained = train_fake_quantized(module, settings, train, validation, kept_fp32, report, Share(progress, 0.05, 0.9))
        progress.report(0.92, "exporting the trained int8 model to OpenVINO")
        export_ir(trained, ptq, trained_xml, validation)
        progress.report(0.95, "scoring the trained int8 model on the validation split")
        report.qat_top1 = evaluate(fp32.like(trained_xml), validation, backend="openvino", threads=threads).top1
    except (Cancelled, ParetoLabError):
        raise
    except Exception as exc:  # NNCF, torch or OpenVINO failing deep inside on an unusual model
        report.ran, report.why = False, f"it failed ({first_line(exc)})"
        return _skip(report, report.why, settings)
    finally:
        report.seconds = time.perf_counter() - started
    if report.qat_top1 is not None and report.qat_top1 > report.ptq_top1:
        report.chosen = "qat"
        atomic_write(ptq, lambda tmp: _copy_ir(trained_xml, tmp))
    return report


def _skip(report: QatReport, why: str, settings: QuantizeSettings) -> QatReport:
    if settings.qat == "always":
        raise QatError(f"quantization-aware training (qat always) cannot run: {why}; set qat to auto or off")
    report.why = why
    return report


def _no_labels(train: Dataset, validation: Dataset) -> str | None:
    if not train.has_labels or not validation.has_labels:
        return "the data has no labels to train on and judge by (give a labelled dataset)"
    return None


def _copy_ir(src: Path, dst: Path) -> None:
    import shutil

    shutil.copyfile(src, dst)
    shutil.copyfile(src.with_suffix(".bin"), dst.with_suffix(".bin"))


def _tensors(arrays: list[np.ndarray]) -> list:
    import torch

    return [torch.from_numpy(np.ascontiguousarray(a.astype(np.float32) if a.dtype.kind == "f" else a)) for a in arrays]


def ignored_scope(kept_fp32: list[str]) -> Any:
    """Layers left in floating point, by module path, as NNCF's PyTorch graph names them
    ("layers.0.conv1" -> "layers/0/conv1/conv2d/0")."""
    import nncf

    if not kept_fp32:
        return None
    return nncf.IgnoredScope(patterns=[re.escape(n.replace(".", "/")) + "/.*" for n in kept_fp32], validate=False)


def train_fake_quantized(module: Any, settings: QuantizeSettings, train: Dataset, validation: Dataset,
                         kept_fp32: list[str], report: QatReport, progress: Progress) -> Any:
    """A copy of `module` with NNCF's fake quantizers, calibrated on the training split and fine-tuned on
    its labels; the epoch that scores best on validation (fake-quantized, in PyTorch) is returned."""
    import nncf
    import torch
    import torch.nn.functional as F

    torch.manual_seed(settings.seed)
    calibration = calibration_subset(train, settings.samples, settings.seed)
    items = [tuple(_tensors(calibration.load(np.array([i])))) for i in range(len(calibration))]
    progress.report(0.0, f"inserting fake quantizers, calibrating on {len(items)} samples (NNCF)")
    with quiet(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = nncf.quantize(copy.deepcopy(module).cpu().eval(), nncf.Dataset(_Checked(items, progress), lambda item: item),
                              subset_size=len(items), ignored_scope=ignored_scope(kept_fp32))
    best_score, best_state = _top1(model, validation), copy.deepcopy(model.state_dict())
    report.history.append({"epoch": 0, "loss": None, "top1": best_score})
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.qat_lr)
    rng = np.random.default_rng(settings.seed)
    steps = math.ceil(len(train) / BATCH)
    labels = train.labels
    assert labels is not None
    for epoch in range(1, settings.qat_epochs + 1):
        model.train()
        order, losses = rng.permutation(len(train)), []
        for step in range(steps):
            idx = np.sort(order[step * BATCH:(step + 1) * BATCH])
            logits = first_output(model(*_tensors(train.load(idx))))
            loss = F.cross_entropy(logits, torch.from_numpy(labels[idx]).long())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            progress.report(((epoch - 1) * steps + step + 1) / (settings.qat_epochs * steps),
                            f"quantization-aware training: epoch {epoch}/{settings.qat_epochs}, step {step + 1}/{steps}, "
                            f"loss {losses[-1]:.4f}")
        score = _top1(model, validation)
        report.history.append({"epoch": epoch, "loss": float(np.mean(losses)), "top1": score})
        if score > best_score:
            best_score, best_state, report.best_epoch = score, copy.deepcopy(model.state_dict()), epoch
    model.load_state_dict(best_state)
    return model.eval()


class _Checked:
    """Calibration samples that check for a cancel as NNCF reads each one: its statistics pass is one call."""

    def __init__(self, items: list, progress: Progress) -> None:
        self._items, self._progress = items, progress

    def __iter__(self) -> Any:
        for item in self._items:
            self._progress.check()
            yield item

    def __len__(self) -> int:
        return len(self._items)


def _top1(model: Any, data: Dataset) -> float:
    import torch

    model.eval()
    hits = 0
    with torch.no_grad():
        for batch in data.batches(256):
            logits = first_output(model(*_tensors(batch.inputs))).numpy()
            hits += int((logits.argmax(1) == batch.labels).sum())
    return hits / len(data)


def export_ir(model: Any, like: Path, out: Path, data: Dataset) -> None:
    """The fake-quantized module as an OpenVINO IR (its FakeQuantize operations are what OpenVINO
    runs in int8), with the inputs, outputs and free axes of the calibrated IR at `like`."""
    import openvino as ov
    import torch

    reference = ov.Core().read_model(str(like))
    example = tuple(_tensors(data.load(np.arange(1))))
    with quiet(), warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        converted = ov.convert_model(model, example_input=example)
    for mine, theirs in [*zip(converted.inputs, reference.inputs), *zip(converted.outputs, reference.outputs)]:
        mine.get_tensor().set_names(set(theirs.get_names()))
    converted.reshape({port: ref.get_partial_shape() for port, ref in zip(converted.inputs, reference.inputs)})
    ov.save_model(converted, str(out), compress_to_fp16=False)


def fake_quantize_count(xml: Path) -> int:
    """How many FakeQuantize operations an IR holds: OpenVINO runs the layers they wrap in int8."""
    import openvino as ov

    return sum(op.get_type_name() == "FakeQuantize" for op in ov.Core().read_model(str(xml)).get_ops())
