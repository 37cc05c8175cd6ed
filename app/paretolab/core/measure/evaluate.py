"""Run a model over a dataset on one runtime: accuracy with labels, fidelity to a reference."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from paretolab.core.measure.data import DataError, Dataset, fit_to_model
from paretolab.core.measure.metrics import (
    AccuracyMeter,
    FidelityMeter,
    OutputFidelity,
    fidelity_dict,
    is_classifier_output,
)
from paretolab.core.measure.output_kinds import (
    RANDOM_NOTE,
    SCORE_THRESHOLD,
    check_output_kinds,
    detection_layout,
    detector_classes,
    guess_kinds,
    is_box_output,
    is_random_data,
    score_threshold,
    worst,
)
from paretolab.core.measure.runtimes import Runner, default_backend, open_runner
from paretolab.core.model.exits import EXIT_OUTPUT, early_exit_info, exit_names
from paretolab.core.model.handle import ModelHandle
from paretolab.core.progress import Progress, silent
from paretolab.core.tensors import fixed_batch


@dataclass
class EvalResult:
    model: str
    backend: str
    device: str
    dataset: str
    samples: int
    top1: float | None = None
    top5: float | None = None
    reference: str | None = None
    fidelity: list[OutputFidelity] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    outputs_are_classes: bool = False  # the first output is [N, classes] scores
    exits: list[dict] = field(default_factory=list)  # an early-exit model: per exit, the share leaving there and its top-1

    @property
    def agreement(self) -> float | None:
        return self.fidelity[0].agreement if self.fidelity else None

    @property
    def cosine(self) -> float | None:
        """The worst output's mean cosine similarity to the reference."""
        return min(f.cosine for f in self.fidelity) if self.fidelity else None

    @property
    def sqnr_db(self) -> float | None:
        """The worst output's SQNR in dB; None when there is no reference or the outputs are identical."""
        worst = min((f.sqnr_db for f in self.fidelity), default=math.inf)
        return None if math.isinf(worst) and worst > 0 else max(worst, -999.0)

    @property
    def real_data(self) -> bool:
        return not is_random_data(self.dataset)

    @property
    def verdict(self) -> str | None:
        """The worst output's verdict (faithful, degraded, broken, unknown); None without a reference."""
        return worst(f.verdict for f in self.fidelity)

    @property
    def verdict_why(self) -> str | None:
        """What the verdict rests on: each output that earned it, by name and kind."""
        verdict = self.verdict
        if verdict is None:
            return None
        if verdict == "unknown" and not self.real_data:
            return RANDOM_NOTE
        return "; ".join(f"{f.name} ({f.kind}): {f.why}" for f in self.fidelity if f.verdict == verdict)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "backend": self.backend,
            "device": self.device,
            "dataset": self.dataset,
            "samples": self.samples,
            "top1": self.top1,
            "top5": self.top5,
            "reference": self.reference,
            "fidelity": [fidelity_dict(f) for f in self.fidelity],
            "verdict": self.verdict,
            "verdict_why": self.verdict_why,
            "notes": list(self.notes),
            "seconds": round(self.seconds, 3),
            **({"exits": self.exits} if self.exits else {}),
        }


@dataclass
class ExitMeter:
    """Where an early-exit model's samples left (its `exit` output), and how many were right there."""

    names: list[str]
    counts: np.ndarray = field(init=False)
    hits: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.counts = np.zeros(len(self.names), np.int64)
        self.hits = np.zeros(len(self.names), np.int64)

    def add(self, exits: np.ndarray, scores: np.ndarray, labels: np.ndarray | None) -> None:
        exits = exits.astype(np.int64).reshape(-1)
        self.counts += np.bincount(exits, minlength=len(self.names))[:len(self.names)]
        if labels is not None and is_classifier_output(scores):
            self.hits += np.bincount(exits, weights=scores.argmax(1) == labels, minlength=len(self.names))[
                :len(self.names)].astype(np.int64)

    def result(self, labelled: bool) -> list[dict]:
        total = max(1, int(self.counts.sum()))
        return [{"exit": name, "samples": int(n), "share": n / total,
                 "top1": (h / n if n else None) if labelled else None}
                for name, n, h in zip(self.names, self.counts.tolist(), self.hits.tolist())]


def _padded(indices: np.ndarray, size: int) -> np.ndarray:
    """Repeat the last sample so a model with a fixed batch size takes a short final batch."""
    return np.concatenate([indices, np.repeat(indices[-1:], size - len(indices))]) if len(indices) < size else indices


def evaluate(
    handle: ModelHandle,
    dataset: Dataset,
    *,
    backend: str | None = None,
    device: str = "cpu",
    batch_size: int = 32,
    reference: ModelHandle | None = None,
    reference_backend: str | None = None,
    threads: int | None = None,
    progress: Progress | None = None,
    output_kinds: Mapping[str, str] | None = None,
) -> EvalResult:
    """Accuracy (top-1, top-5) when the data has labels and the model outputs class scores;
    fidelity to `reference` (run on `reference_backend`'s CPU, default the same backend and device) when given,
    each output judged by its kind (`output_kinds` by name overrides the guess; output_kinds.py)."""
    progress = progress or silent()
    start = time.perf_counter()
    name = handle.path.name
    backend = backend or default_backend(handle)
    dtypes = fit_to_model(dataset, handle.inputs, name)
    fixed = fixed_batch(handle.inputs)
    if reference is not None:
        fit_to_model(dataset, reference.inputs, reference.path.name)
        fixed = fixed or fixed_batch(reference.inputs)
    batch_size = fixed or batch_size

    result = EvalResult(name, backend, device, dataset.name, len(dataset))
    progress.report(0.0, f"opening {name} on {backend}/{device}")
    info = early_exit_info(handle.native) if handle.format == "onnx" else None
    with open_runner(handle, backend, device, threads) as runner:
        exits = ExitMeter(exit_names(info)) if info and EXIT_OUTPUT in runner.output_names else None
        ref_runner: Runner | None = None
        if reference is not None:  # on another runtime, the reference is FP32 on the CPU: the ground truth anywhere
            ref_where = (backend, device) if reference_backend in (None, backend) else (reference_backend, "cpu")
            ref_runner = open_runner(reference, *ref_where, threads)
            result.reference = f"{reference.path.name} on {ref_where[0]}/{ref_where[1]}"
        try:
            listed = _output_names(runner, handle, ref_runner, reference)
            if output_kinds:
                check_output_kinds(output_kinds, [n for n in listed if n != EXIT_OUTPUT], name)
            accuracy, meters, result.outputs_are_classes = _run_batches(runner, ref_runner, dataset, dtypes, batch_size,
                                                                        name, progress, exits, output_kinds,
                                                                        *_detector_facts(reference), listed)
        finally:
            if ref_runner is not None:
                ref_runner.close()

    if accuracy is not None:
        result.top1, result.top5 = accuracy.top1, accuracy.top5
    elif dataset.has_labels:
        result.notes.append("the model's first output is not [N, classes] scores, so accuracy is not defined for it")
    if meters:
        result.fidelity = [m.result() for m in meters]
    if exits is not None:
        result.exits = exits.result(accuracy is not None)
    if not dataset.has_labels:
        result.notes.append(
            "the data has no labels: reporting fidelity to the reference instead of accuracy"
            if reference is not None
            else "the data has no labels and no reference was given: nothing to score (give --reference)"
        )
    result.seconds = time.perf_counter() - start
    progress.report(1.0, f"{name}: {len(dataset)} samples evaluated")
    return result


def _output_names(runner: Runner, handle: ModelHandle, ref_runner: Runner | None,
                  reference: ModelHandle | None) -> list[str]:
    """The outputs' names, which guide the kind guess and which --output-kind names: the original's
    when there is one (a re-exported variant may call its `pooled` output `output`), else the
    runtime's, else (a PyTorch program names none) the model's declared ones."""
    own = list(runner.output_names) or [s.name for s in handle.outputs]
    ref = (list(ref_runner.output_names) or [s.name for s in reference.outputs]) if ref_runner and reference else []
    return ref if ref and (not own or len(ref) == len(own)) else own


def _detector_facts(reference: ModelHandle | None) -> tuple[float, int | None]:
    """A detector's own score threshold and class count, from the original's ONNX metadata when it names them."""
    props = getattr(reference.native, "metadata_props", None) if reference is not None and reference.format == "onnx" else None
    metadata = {p.key.lower(): p.value for p in props or []}
    return score_threshold(metadata), detector_classes(metadata)


def _take(output: np.ndarray, n: int, size: int) -> np.ndarray:
    """The first `n` samples, batch moved first: a time-first [T, b, C] output (CTC) has its batch second."""
    if output.ndim > 1 and output.shape[0] != size and output.shape[1] == size:
        output = np.moveaxis(output, 1, 0)
    return output[:n]


def _run_batches(runner: Runner, ref_runner: Runner | None, dataset: Dataset, dtypes: list, batch_size: int, name: str,
                 progress: Progress, exits: ExitMeter | None = None, output_kinds: Mapping[str, str] | None = None,
                 threshold: float = SCORE_THRESHOLD, classes: int | None = None, listed: list[str] | None = None) -> Any:
    listed = listed if listed is not None else list(runner.output_names)
    accuracy: AccuracyMeter | None = None
    meters: list[FidelityMeter] = []
    classes = True
    done = 0
    for batch in dataset.batches(batch_size):
        n = len(batch.indices)
        arrays = batch.inputs if n == batch_size else dataset.load(_padded(batch.indices, batch_size))
        inputs = [a.astype(t, copy=False) for a, t in zip(arrays, dtypes)]
        outputs = [_take(o, n, batch_size) for o in runner.run(inputs)]
        if exits is not None:  # the exit each sample took: a record, not an output to compare
            exits.add(outputs.pop(runner.output_names.index(EXIT_OUTPUT)), outputs[0], batch.labels)
        if done == 0:  # an embedding is [N, D] too: the first output counts as class scores only if it is one
            own = [n_ for n_ in listed if n_ != EXIT_OUTPUT or exits is None] or ["output_0"]
            classes &= guess_kinds(own[:1], outputs[:1], output_kinds)[0] == "classification"
        classes &= is_classifier_output(outputs[0])
        if batch.labels is not None and is_classifier_output(outputs[0]):
            classes = outputs[0].shape[1]
            if batch.labels.min() < 0 or batch.labels.max() >= classes:
                raise DataError(
                    f"{dataset.name} has labels from {int(batch.labels.min())} to {int(batch.labels.max())}, "
                    f"but {name} outputs {classes} classes (0 to {classes - 1})"
                )
            accuracy = accuracy or AccuracyMeter()
            accuracy.add(outputs[0], batch.labels)
        if ref_runner is not None:
            references = [_take(o, n, batch_size) for o in ref_runner.run(inputs)]
            if exits is not None and EXIT_OUTPUT in ref_runner.output_names:
                references.pop(ref_runner.output_names.index(EXIT_OUTPUT))
            if len(references) != len(outputs):
                raise DataError(f"{name} has {len(outputs)} outputs but the reference has {len(references)}")
            names = [n_ for n_ in listed if n_ != EXIT_OUTPUT or exits is None][:len(outputs)]
            names += [f"output_{i}" for i in range(len(names), len(outputs))]
            if not meters:
                kinds = guess_kinds(names, references, output_kinds)
                real = not is_random_data(dataset.name)
                given = output_kinds or {}
                meters = [FidelityMeter(names[i], kinds[i], real, threshold,
                                        detection_layout(references[i], given.get(names[i]), classes)
                                        if kinds[i] == "detection" else None) for i in range(len(outputs))]
            boxes = next((i for i, (n_, r) in enumerate(zip(names, references)) if is_box_output(n_, r)), -1)
            for meter, out, ref in zip(meters, outputs, references):  # SSD-style scores take their boxes output
                paired = boxes >= 0 and meter.kind == "detection" and ref.ndim == 3 \
                    and references[boxes].shape[1] == ref.shape[1] and meter.name != names[boxes]
                meter.add(out, ref, (outputs[boxes], references[boxes]) if paired else None)
        done += n
        progress.report(done / len(dataset), f"evaluated {done}/{len(dataset)}")
    return accuracy, meters, classes and done > 0
