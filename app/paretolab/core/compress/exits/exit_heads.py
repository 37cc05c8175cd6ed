"""Exit heads and their thresholds, learned from the frozen backbone's pooled features.

A head reads a pooled feature vector (average over space, or over the sequence), so the backbone
runs once over the training data and the heads then train in milliseconds per epoch: each by
distillation from the model's final output (T² · KL at temperature T), plus cross-entropy when
the data has labels. The thresholds are then chosen on the validation split: the cheapest set
whose whole-model accuracy (or agreement with the final output, without labels) stays within
the user's budget of the model's own.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from paretolab.core.progress import Progress


@dataclass
class Head:
    """pooled features -> normalise -> Linear (-> ReLU -> Linear): the weights as numpy arrays."""

    mean: np.ndarray
    scale: np.ndarray
    layers: list[tuple[np.ndarray, np.ndarray]]  # (weight [out, in], bias [out]) per Linear

    def logits(self, features: np.ndarray) -> np.ndarray:
        x = (features.astype(np.float32) - self.mean) / self.scale
        for i, (w, b) in enumerate(self.layers):
            x = x @ w.T + b
            if i < len(self.layers) - 1:
                x = np.maximum(x, 0)
        return x

    def folded(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """The layers with the normalisation folded into the first one (what the exported graph runs)."""
        (w, b), rest = self.layers[0], self.layers[1:]
        w1 = (w / self.scale).astype(np.float32)
        return [(w1, (b - w1 @ self.mean).astype(np.float32)), *rest]

    @property
    def macs(self) -> int:
        return int(sum(w.size for w, _ in self.layers))


@dataclass(frozen=True)
class HeadData:
    features: list[np.ndarray]  # per exit: [N, C_i] pooled features
    teacher: np.ndarray  # [N, classes]: the model's final output
    labels: np.ndarray | None


def train_heads(train: HeadData, validation: HeadData, *, hidden: int, epochs: int, lr: float, temperature: float,
                alpha: float, patience: int, seed: int, progress: Progress) -> tuple[list[Head], list[float]]:
    """One head per exit, trained together; each keeps its best epoch by validation score, and
    training stops when none improved for `patience` epochs. Returns the heads and their
    validation scores. Cancelling (between epochs) ends the step: it takes seconds to redo."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    classes = train.teacher.shape[1]
    stats = [(f.mean(0).astype(np.float32), (f.std(0) + 1e-6).astype(np.float32)) for f in train.features]
    nets = [_net(f.shape[1], hidden, classes) for f in train.features]
    optimizer = torch.optim.Adam([p for n in nets for p in n.parameters()], lr=lr)
    xs = [torch.from_numpy((f - m) / s) for f, (m, s) in zip(train.features, stats)]
    vxs = [torch.from_numpy(((f - m) / s).astype(np.float32)) for f, (m, s) in zip(validation.features, stats)]
    soft = F.softmax(torch.from_numpy(train.teacher) / temperature, 1)
    labels = torch.from_numpy(train.labels) if train.labels is not None else None
    weight = alpha if labels is not None else 1.0
    truth = validation.labels if validation.labels is not None else validation.teacher.argmax(1)
    best = [(_accuracy(n, x, truth), copy.deepcopy(n.state_dict())) for n, x in zip(nets, vxs)]
    since = [0] * len(nets)
    rng = np.random.default_rng(seed)
    for epoch in range(1, epochs + 1):
        for n in nets:
            n.train()
        for idx in np.array_split(rng.permutation(len(train.teacher)), max(1, len(train.teacher) // 256)):
            loss = torch.zeros(())
            for n, x in zip(nets, xs):
                logits = n(x[idx])
                kd = F.kl_div(F.log_softmax(logits / temperature, 1), soft[idx], reduction="batchmean") * temperature ** 2
                loss = loss + weight * kd
                if labels is not None and weight < 1.0:
                    loss = loss + (1 - weight) * F.cross_entropy(logits, labels[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        scores = [_accuracy(n, x, truth) for n, x in zip(nets, vxs)]
        for i, (n, score) in enumerate(zip(nets, scores)):
            if score > best[i][0]:
                best[i], since[i] = (score, copy.deepcopy(n.state_dict())), 0
            else:
                since[i] += 1
        progress.report(epoch / epochs * 0.999, f"exit heads, epoch {epoch}/{epochs}: validation "
                        + ", ".join(f"{s:.1%}" for s in scores))
        if min(since) >= patience:
            break
    heads = []
    for n, (_, state), (m, s) in zip(nets, best, stats):
        n.load_state_dict(state)
        linears = [layer for layer in n if isinstance(layer, torch.nn.Linear)]
        heads.append(Head(m, s, [(layer.weight.detach().numpy().copy(), layer.bias.detach().numpy().copy())
                                 for layer in linears]))
    return heads, [score for score, _ in best]


def _net(width: int, hidden: int, classes: int) -> Any:  # a torch module: torch is imported lazily
    import torch

    if hidden <= 0:
        return torch.nn.Sequential(torch.nn.Linear(width, classes))
    return torch.nn.Sequential(torch.nn.Linear(width, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, classes))


def _accuracy(net: Any, x: Any, truth: np.ndarray) -> float:
    import torch

    net.eval()
    with torch.no_grad():
        return float((net(x).numpy().argmax(1) == truth).mean())


def confidence(logits: np.ndarray, rule: str) -> np.ndarray:
    """How sure a head is, 0..1: its top softmax probability, or one minus its normalised entropy."""
    shifted = logits - logits.max(1, keepdims=True)
    p = np.exp(shifted)
    p /= p.sum(1, keepdims=True)
    if rule == "max-softmax":
        return p.max(1)
    entropy = -(p * np.log(np.clip(p, 1e-12, None))).sum(1)
    return 1.0 - entropy / math.log(p.shape[1])


@dataclass(frozen=True)
class Calibration:
    thresholds: list[float]  # per exit; inf: the exit is never taken (and is left out)
    exit_of: np.ndarray  # per validation sample: the exit it leaves by (len(thresholds): the end)
    score: float  # the whole model's validation score with these thresholds
    reference: float  # the model's own
    cost: float  # expected share of the model's MACs per sample


def exit_of(confidences: Sequence[np.ndarray], thresholds: Sequence[float]) -> np.ndarray:
    """The exit each sample takes: the first whose confidence reaches its threshold."""
    n = len(confidences[0]) if confidences else 0
    where = np.full(n, len(thresholds))
    for i in reversed(range(len(thresholds))):
        where[confidences[i] >= thresholds[i]] = i
    return where


def calibrate(confidences: list[np.ndarray], correct: list[np.ndarray], final_correct: np.ndarray, shares: list[float],
              head_costs: list[float], budget: float, steps: int = 40) -> Calibration:
    """Thresholds that make the model cheapest on average while its score stays within `budget`
    of the final output's: coordinate descent over each exit's confidence quantiles, from "no exit"."""
    k = len(confidences)
    hits = np.stack([*correct, final_correct]).astype(float)  # [k + 1, N]
    reference = float(final_correct.mean())

    def evaluate(thresholds: list[float]) -> tuple[float, float, np.ndarray]:
        where = exit_of(confidences, thresholds)
        on = [not math.isinf(t) for t in thresholds]
        heads_before = np.cumsum([c if o else 0.0 for c, o in zip(head_costs, on)])
        cost_at = np.array([s + h for s, h in zip(shares, heads_before)] + [1.0 + (heads_before[-1] if k else 0.0)])
        return float(hits[where, np.arange(len(where))].mean()), float(cost_at[where].mean()), where

    thresholds = [math.inf] * k
    score, cost, where = evaluate(thresholds)
    grids = [np.unique(np.quantile(c, np.linspace(0.0, 1.0, steps + 1))) for c in confidences]
    for _ in range(3):
        changed = False
        for i in range(k):
            for t in [math.inf, *grids[i].tolist()]:
                trial = thresholds[:i] + [t] + thresholds[i + 1:]
                s, c, w = evaluate(trial)
                if reference - s <= budget + 1e-12 and (c < cost - 1e-9 or (abs(c - cost) <= 1e-9 and s > score)):
                    thresholds, score, cost, where, changed = trial, s, c, w, True
        if not changed:
            break
    return Calibration(thresholds, where, score, reference, cost)
