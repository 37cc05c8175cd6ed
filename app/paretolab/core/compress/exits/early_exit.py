"""Early exit: small heads after chosen layers answer the easy inputs before the end of the model.

Works on the model as an ONNX file, so any classifier qualifies — a PyTorch module after
pruning, an export from another framework, an int8 model in QDQ form. The backbone stays
frozen: each head learns the model's own final output (and the labels, when there are any)
from pooled features, and its confidence threshold is calibrated on the validation split so
that the whole model's accuracy stays within the user's budget. The result is one ONNX file
whose `If` nodes skip the rest of the network for the samples that left (exit_graph.py); it is
checked against the heads and the original model on the validation split before it is kept.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import onnx

from paretolab.core.compress.exits.exit_graph import Pooling, early_exit_model, probe_model
from paretolab.core.compress.exits.exit_heads import Calibration, Head, HeadData, calibrate, confidence, exit_of, train_heads
from paretolab.core.compress.techniques import EARLY_EXIT
from paretolab.core.errors import ParetoLabError
from paretolab.core.files import atomic_write
from paretolab.core.measure.data import Dataset
from paretolab.core.measure.output_kinds import declared_kind
from paretolab.core.model.blocks import node_scope
from paretolab.core.model.cuts import Cut, cut_after, find_cuts, suggest_cuts
from paretolab.core.model.exits import EXIT_OUTPUT
from paretolab.core.model.handle import ModelHandle
from paretolab.core.model.normalize import normalized_onnx
from paretolab.core.progress import Progress
from paretolab.core.settings import SettingsError
from paretolab.core.tensors import format_shape

if TYPE_CHECKING:
    from paretolab.core.compress.step import StepContext


@dataclass(frozen=True)
class EarlyExitSettings:
    exits: int = 2  # how many exits to place automatically (spread over the model's MACs)
    at: tuple[str, ...] = ()  # layers to put exits after instead (names as the layer graph shows them)
    budget: float = 0.5  # the largest accuracy drop allowed, in points (agreement without labels)
    confidence: Literal["max-softmax", "entropy"] = "max-softmax"
    hidden: int = 128  # width of each head's hidden layer; 0: a single linear layer
    epochs: int = 200
    lr: float = 3e-3
    patience: int = 40
    temperature: float = 4.0
    alpha: float = 0.7  # weight of the distillation term; 1 - alpha goes to the labels
    flow: Literal["subset", "if"] = "subset"  # see exit_graph.py; "subset" keeps ONNX Runtime's layout optimizations
    seed: int = 0

    def check(self) -> None:
        if not self.at:
            EARLY_EXIT.setting("exits").check(self.exits)
        if not 0.0 <= self.budget <= 100.0:
            raise SettingsError(f"setting 'budget' is in accuracy points, 0 to 100, not {self.budget}")
        if self.confidence not in ("max-softmax", "entropy"):
            raise SettingsError(f"setting 'confidence' must be max-softmax or entropy, not {self.confidence}")
        if self.flow not in ("subset", "if"):
            raise SettingsError(f"setting 'flow' must be subset or if, not {self.flow}")
        if self.epochs < 1 or self.patience < 1 or self.hidden < 0 or not self.lr > 0:
            raise SettingsError("settings 'epochs' and 'patience' must be at least 1, 'hidden' 0 or more, 'lr' positive")


def summary(settings: EarlyExitSettings) -> str:
    where = f"after {', '.join(settings.at)}" if settings.at else f"{settings.exits} exit{'s' * (settings.exits != 1)}"
    return f"early exit {where} (≤{settings.budget:g} pt)"


def apply(ctx: StepContext, index: int, settings: EarlyExitSettings) -> None:
    refuse_non_classifier(ctx.original, ctx.data.output_kinds)
    handle = ctx.file(index)
    model = onnx.load(str(normalized_onnx(handle.onnx_file(), ctx.work)))
    _check_classifier(model, handle.path.name)
    chosen, poolings, total = _places(handle, model, settings, ctx.data.train)
    progress = ctx.progress
    progress.report(0.02, f"exits after {', '.join(c.name for c in chosen)}: running the model over the data once")
    probe = probe_model(model, chosen, poolings)
    train, validation = _features(probe, ctx.data.train, len(chosen)), _features(probe, ctx.data.validation, len(chosen))
    heads, scores = train_heads(
        train, validation, hidden=settings.hidden, epochs=settings.epochs, lr=settings.lr,
        temperature=settings.temperature, alpha=settings.alpha, patience=settings.patience, seed=settings.seed,
        progress=Progress(lambda f, m: progress.report(0.1 + 0.7 * f, m)))
    said = [h.logits(f) for h, f in zip(heads, validation.features)]  # each head's answers on the validation split
    result = _calibrate(chosen, heads, said, validation, settings, total)
    kept = [i for i, t in enumerate(result.thresholds) if not math.isinf(t)]
    report = _report(chosen, said, scores, result, validation, ctx.data.validation.name)
    if not kept:
        report["notes"] = [f"no exit pays off within {settings.budget:g} point(s) of accuracy: the model is kept as it was; "
                           "raise the budget or place exits later"]
        ctx.report(index, report)
        return
    parts = ([chosen[i] for i in kept], [poolings[i] for i in kept], [heads[i] for i in kept])
    report["flow"] = settings.flow
    if settings.flow == "subset" and not _takes_an_empty_batch(model, *parts, settings.confidence, ctx.data.validation):
        report["flow"] = "if"
        report["notes"] = ["the layers after an exit cannot run on an empty batch (a Reshape with -1, as attention "
                           "has): the exits skip them with If branches instead"]
    heads_macs = np.cumsum([h.macs for h in parts[2]]).tolist()
    costs = [round(c.macs_share * total) + h for c, h in zip(parts[0], heads_macs)] + [total + heads_macs[-1]]
    stitched = early_exit_model(model, *parts, [result.thresholds[i] for i in kept], settings.confidence, report["flow"],
                                costs)
    out = atomic_write(ctx.out(index), lambda tmp: onnx.save(stitched, str(tmp)))
    progress.report(0.9, "checking the early-exit model against the heads and the model on the validation split")
    report["verified"] = _verify(out, ctx.data.validation, validation.teacher, [said[i] for i in kept],
                                 [result.thresholds[i] for i in kept], settings.confidence)
    ctx.set_file(out)
    ctx.report(index, report)


def _places(handle: ModelHandle, model: onnx.ModelProto, settings: EarlyExitSettings,
            data: Dataset) -> tuple[list[Cut], list[Pooling], int]:
    """Where the exits go (the layers named, or spread over the MACs), how each pools its tensor,
    and the model's total MACs."""
    graph = handle.layer_graph()
    macs = {layer.source: layer.macs or 0 for layer in graph}
    name = handle.path.name
    found = find_cuts(model, macs, {layer.source: node_scope(layer) for layer in graph if layer.scope})
    cuts, first = _gatherable(model, found, data)
    chosen = [cut_after(cuts, layer, name) for layer in settings.at] if settings.at else suggest_cuts(cuts, settings.exits)
    if not chosen:
        raise ParetoLabError(f"{name} has no place for an exit: no layer is followed by its output alone "
                             "(skip connections or inputs reused span the whole model)")
    chosen = sorted(set(chosen), key=lambda c: c.position)
    conv_before = [any(n.op_type == "Conv" for n in model.graph.node[:c.position + 1]) for c in chosen]
    poolings = [Pooling.of(first[c.tensor], channels_first) for c, channels_first in zip(chosen, conv_before)]
    return chosen, poolings, sum(macs.values()) or len(model.graph.node)


def _gatherable(model: onnx.ModelProto, cuts: list[Cut], data: Dataset) -> tuple[list[Cut], dict[str, np.ndarray]]:
    """The cuts whose carried tensors the later layers can take for a subset of the batch: each has
    the batch first (it is gathered like the cut tensor) or is the same for any batch (it is
    left as it is), seen by running the model on one sample and on two. Their `carried` keeps
    the tensors to gather. Also returns every cut tensor for the first sample."""
    names = list(dict.fromkeys(n for c in cuts for n in (c.tensor, *c.carried)))
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(n) for n in names)
    two = min(2, len(data))
    ones, twos = (dict(zip(names, _run(probe, data.load(np.arange(k)))[len(model.graph.output):])) for k in (1, two))
    kept = []
    def batch_first(n: str) -> bool:
        return bool(ones[n].ndim) and ones[n].shape[0] == 1 and twos[n].shape[0] == two

    for cut in (c for c in cuts if batch_first(c.tensor)):
        batch = [n for n in cut.carried if batch_first(n)]
        shared = [n for n in cut.carried if n not in batch and ones[n].shape == twos[n].shape and
                  np.array_equal(ones[n], twos[n])]
        if len(batch) + len(shared) == len(cut.carried):
            kept.append(replace(cut, carried=tuple(batch)))
    return kept, ones


def refuse_non_classifier(handle: ModelHandle, kinds: dict[str, str] | None = None) -> None:
    """Before any work, in one line: exits answer with class scores, so a detector, a CTC
    recognizer, an embedder or a regressor cannot take them."""
    outputs = handle.outputs
    if not outputs:
        return  # not declared: the ONNX file's output is checked once it is read
    if len(outputs) != 1:
        raise ParetoLabError(f"early exit needs a model with one output (class scores); {handle.path.name} has "
                             f"{len(outputs)} ({', '.join(o.name for o in outputs)})")
    spec = outputs[0]
    kind = declared_kind(spec.name, spec.shape, kinds)
    if kind == "classification":
        return
    what = (f"is {format_shape(spec.shape)}, not [batch, classes] class scores" if kind == "regression"
            else f"is judged {'an' if kind[0] in 'aeiou' else 'a'} {kind} output")
    raise ParetoLabError(f"early exit needs a classifier; {handle.path.name}'s output '{spec.name}' {what} "
                         f"(give --output-kind {spec.name}=classification if it holds class scores)")


def _check_classifier(model: onnx.ModelProto, name: str) -> None:
    outputs = model.graph.output
    if len(outputs) != 1:
        raise ParetoLabError(f"early exit needs a model with one output (class scores); {name} has {len(outputs)}")
    tensor = outputs[0].type.tensor_type
    if tensor.elem_type != onnx.TensorProto.FLOAT or (tensor.HasField("shape") and len(tensor.shape.dim) != 2):
        raise ParetoLabError(f"early exit needs class scores ([batch, classes] float32) as the output; "
                             f"{name}'s output '{outputs[0].name}' is not")


def _takes_an_empty_batch(model: onnx.ModelProto, cuts: list[Cut], poolings: list[Pooling], heads: list[Head], rule: str,
                          data: Dataset) -> bool:
    """Whether the layers after the first exit run on zero samples, as the "subset" flow needs when
    every sample left: stitched with every sample leaving there, and run on one."""
    leave_all = early_exit_model(model, cuts, poolings, heads, [-1.0] * len(cuts), rule, "subset")
    try:
        _run(leave_all, data.load(np.arange(1)), quiet=True)
    except Exception:  # noqa: BLE001 - ONNX Runtime's own error: the answer is no
        return False
    return True


def _session(model: onnx.ModelProto | Path, quiet: bool = False) -> Any:
    """An ONNX Runtime CPU session; `quiet`: its failure is expected and handled, so it prints nothing."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4 if quiet else 3
    data = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _run(model: onnx.ModelProto, arrays: list[np.ndarray], quiet: bool = False) -> list[np.ndarray]:
    session = _session(model, quiet)
    return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})


def _features(probe: onnx.ModelProto, data: Dataset, exits: int) -> HeadData:
    """Each exit's pooled features and the final output, for every sample (ONNX Runtime, batches of 64)."""
    session = _session(probe)
    inputs = session.get_inputs()
    parts: list[list[np.ndarray]] = [[] for _ in range(exits + 1)]
    for batch in data.batches(64):
        outputs = session.run(None, {i.name: a for i, a in zip(inputs, batch.inputs)})
        parts[0].append(outputs[0].astype(np.float32))
        for k in range(exits):
            parts[k + 1].append(outputs[-exits + k].astype(np.float32))
    joined = [np.concatenate(p) for p in parts]
    return HeadData(joined[1:], joined[0], data.labels)


def _calibrate(cuts: list[Cut], heads: list[Head], logits: list[np.ndarray], validation: HeadData,
               settings: EarlyExitSettings, total: int) -> Calibration:
    truth = validation.labels if validation.labels is not None else validation.teacher.argmax(1)
    return calibrate([confidence(x, settings.confidence) for x in logits], [x.argmax(1) == truth for x in logits],
                     validation.teacher.argmax(1) == truth, [c.macs_share for c in cuts],
                     [h.macs / total for h in heads], settings.budget / 100.0)


def _report(cuts: list[Cut], logits: list[np.ndarray], scores: list[float], result: Calibration, validation: HeadData,
            split: str) -> dict:
    truth = validation.labels if validation.labels is not None else validation.teacher.argmax(1)
    exits = []
    for i, (cut, said) in enumerate(zip(cuts, logits)):
        leaving = result.exit_of == i
        right = (said.argmax(1) == truth)[leaving]
        exits.append({"after": cut.name, "layer": cut.node, "macs_share": round(cut.macs_share, 4), "head_score": scores[i],
                      "threshold": None if math.isinf(result.thresholds[i]) else result.thresholds[i],
                      "share": float(leaving.mean()), "score": float(right.mean()) if right.size else None})
    ending = result.exit_of == len(cuts)
    return {"technique": "early_exit", "split": split, "metric": "top1" if validation.labels is not None else "agreement",
            "exits": exits, "end_share": float(ending.mean()), "score": result.score, "reference": result.reference,
            "expected_macs_ratio": result.cost}


# How far a sample's confidence may sit from its threshold and still go either way: the written
# model computes confidences in float32 in its own graph (ONNX Runtime's kernels, another batch
# size), its parts in numpy; they differ by ~1e-7. A wrong threshold or graph moves samples far
# from any threshold and is still caught.
ON_THRESHOLD = 1e-4


def _verify(path: Path, data: Dataset, final: np.ndarray, per_head: list[np.ndarray], thresholds: list[float],
            rule: str) -> dict:
    """The written model against its parts on `data`: the kept heads' answers (numpy, on the pooled
    features), the model's own output `final` for samples that go to the end. Every sample must
    leave where its parts say, unless its confidence sits on the threshold that decides (within
    float rounding), and give the output of the exit it took."""
    exported = _session(path)
    names = [o.name for o in exported.get_outputs()]
    got_logits, got_exits = [], []
    for batch in data.batches(64):
        outputs = dict(zip(names, exported.run(None, {i.name: a for i, a in zip(exported.get_inputs(), batch.inputs)})))
        got_logits.append(outputs[names[0]])
        got_exits.append(outputs[EXIT_OUTPUT])
    logits, exits = np.concatenate(got_logits), np.concatenate(got_exits).astype(np.int64)
    confidences = [confidence(x, rule) for x in per_head]
    expected_exits = exit_of(confidences, thresholds)
    same_exit = exits == expected_exits
    # where the two disagree, the earlier of the two exits decided: its confidence against its threshold
    deciding = np.minimum(exits, expected_exits)
    margin = np.full(len(exits), np.inf)
    for i, (conf, threshold) in enumerate(zip(confidences, thresholds)):
        at = deciding == i
        margin[at] = np.abs(conf[at] - threshold)
    on_threshold = ~same_exit & (margin <= ON_THRESHOLD)
    wrong_exit = ~same_exit & ~on_threshold
    taken = final.copy()  # each sample's output at the exit the written model took
    for i, x in enumerate(per_head):
        taken[exits == i] = x[exits == i]
    known = (exits >= 0) & (exits <= len(per_head))
    worst = float(np.abs(logits[known] - taken[known]).max()) if known.any() else 0.0
    if wrong_exit.any() or not known.all() or worst > 1e-3 * max(1.0, float(np.abs(taken).max())):
        raise ParetoLabError(f"the early-exit model does not match its parts on {data.name} "
                             f"({int(wrong_exit.sum() + (~known).sum())} of {len(exits)} samples left by another exit "
                             f"than their confidence says, largest output difference {worst:.3g}); please report this")
    return {"samples": len(exits), "same_exit": float(same_exit.mean()), "on_threshold": int(on_threshold.sum()),
            "max_abs_diff": worst}
