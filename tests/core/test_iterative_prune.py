"""Iterative structured pruning on the digits sample (a real CNN with labelled data): k steps land
where one-shot pruning lands, a recovery training runs between the steps, it works without labels,
one step is exactly the pruning ParetoLab always did, and a cancel between steps stops."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from paretolab.core.compress.pruning.iterative import recovery
from paretolab.core.compress.pruning.prune import PruneSettings, _channel_counts, prune_module, summary
from paretolab.core.compress.step import StepContext
from paretolab.core.compress.techniques import PRUNE
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import Cancelled
from paretolab.core.measure.data import ArrayDataset, digits
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.eager import eager_module
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import apply_recipe
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError, from_dict

X = (torch.zeros(1, 1, 8, 8),)
SMALL_TRAIN = 400  # digits samples a recovery epoch trains on: enough to move, fast on a loaded machine


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path("onnx"))


@pytest.fixture(scope="module")
def data():
    train = digits("train")
    return DataPlan(train.subset(np.arange(SMALL_TRAIN), "digits:train[:400]"), digits("val"), digits("test"))


def context(sample, data, tmp_path, progress=None) -> StepContext:
    return StepContext(sample, data, tmp_path, None, progress or Progress(), sample)


def digest(module) -> str:
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("sparsity", [0.5, 0.7])
def test_k_steps_reach_the_one_shot_channel_counts_through_rounded_steps(sample, data, tmp_path, sparsity):
    one_shot = prune_module(eager_module(sample, "t"), X, PruneSettings(sparsity=sparsity))[1]
    seen = []
    train = recovery(context(sample, data, tmp_path), PruneSettings(sparsity=sparsity, steps=3))

    def recover(module, step, progress):
        seen.append(_channel_counts(module))
        return train(module, step, progress)

    module, report = prune_module(eager_module(sample, "t"), X, PruneSettings(sparsity=sparsity, steps=3), data.train,
                                  recover=recover)
    assert report.channels == one_shot.channels and report.params_after == one_shot.params_after
    assert module(*X).shape == (1, 10)
    # each step lands every layer on a multiple of 8 channels, shrinking towards the target
    for layer, (original, final) in report.channels.items():
        counts = [original, *(s[layer] for s in seen), final]
        assert counts == sorted(counts, reverse=True) and all(c % 8 == 0 for c in counts), (layer, counts)
    assert seen[0]["features.5"] == (56 if sparsity == 0.5 else 48)  # 64 channels: a third of the way, not all of it


def test_a_recovery_epoch_on_the_labels_runs_between_steps(sample, data, tmp_path):
    recipe = Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"sparsity": 0.7, "steps": 3}}]})
    messages = []
    _, reports = apply_recipe(sample, recipe, data, tmp_path / "v", progress=Progress(lambda f, m: messages.append((f, m))))
    recoveries = reports[0]["recoveries"]
    assert reports[0]["steps"] == 3 and [r["after_step"] for r in recoveries] == [1, 2]
    assert all(r["on"] == "labels" and r["epochs"] == 1 and r["metric"] == "top1" for r in recoveries)
    assert all(r["score_after"] >= r["score_before"] and r["seconds"] > 0 for r in recoveries)
    assert any(r["score_after"] > r["score_before"] for r in recoveries)  # pruning costs accuracy; an epoch wins some back
    # progress moves through the steps and their recoveries, never backwards
    assert any(m.startswith("pruning step 2/3: recovery: epoch 1/1") for _, m in messages)
    fractions = [f for f, m in messages if m.startswith("pruning step")]
    assert fractions == sorted(fractions) and fractions[0] < fractions[-1]
    assert summary(PruneSettings(sparsity=0.7, steps=3)) == "prune structured 70% in 3 steps"


def test_without_labels_the_recovery_learns_the_original(sample, data, tmp_path):
    unlabelled = ArrayDataset("unlabelled", [data.train.load(np.arange(SMALL_TRAIN))[0]])
    plan = DataPlan(unlabelled, ArrayDataset("unlabelled val", [data.validation.load(np.arange(200))[0]]), data.test)
    train = recovery(context(sample, plan, tmp_path), PruneSettings(sparsity=0.5, steps=2))
    _, report = prune_module(eager_module(sample, "t"), X, PruneSettings(sparsity=0.5, steps=2), plan.train, recover=train)
    [done] = report.recoveries
    assert done["on"] == "teacher" and done["metric"] == "agreement" and 0.0 < done["score_after"] <= 1.0


def test_one_step_is_the_pruning_paretolab_always_did_byte_for_byte(sample):
    """Digests of the sample pruned by the code before `steps` existed (torch-pruning, l1): the
    channels chosen and the weights kept are copies, so they are the same on every CPU."""
    for settings, expected in ((PruneSettings(sparsity=0.5), "bc89b54523bb9f68"), (PruneSettings(sparsity=0.7, steps=1),
                               "4cab736a0402ef7e"), (PruneSettings(sparsity=0.3, scope="global"), "25c4fb65b082d254")):
        module, report = prune_module(eager_module(sample, "t"), X, settings)
        assert digest(module) == expected, settings
        assert "steps" not in report.to_dict() and "recoveries" not in report.to_dict()
    assert summary(PruneSettings(sparsity=0.5, steps=1)) == "prune structured 50%"


def test_cancel_between_steps_stops_the_pruning(sample, data, tmp_path):
    messages = []

    def listen(fraction, message):
        messages.append(message)
        if message.startswith("pruning step 1/3: pruned to"):
            progress.cancel()  # right after the first step, before its recovery trains

    progress = Progress(listen)
    recipe = Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"sparsity": 0.7, "steps": 3}},
                                         {"technique": "distill", "settings": {"epochs": 1}}]})
    with pytest.raises(Cancelled):
        apply_recipe(sample, recipe, data, tmp_path / "v", progress=progress)
    assert not any(m.startswith(("pruning step 2/3", "step 2/2")) for m in messages)
    assert not list(tmp_path.glob("v*"))  # no variant left behind


def test_cancel_during_a_recovery_stops_instead_of_pruning_on(sample, data, tmp_path):
    calls = []
    progress = Progress(lambda f, m: "recovery: epoch 1/1, step 2/" in m and progress.cancel())
    train = recovery(context(sample, data, tmp_path, progress), PruneSettings(sparsity=0.7, steps=3))
    with pytest.raises(Cancelled, match="recovery after pruning step 1"):
        prune_module(eager_module(sample, "t"), X, PruneSettings(sparsity=0.7, steps=3), data.train, progress,
                     recover=lambda *a: calls.append(a[1]) or train(*a))
    assert calls == [1]


@pytest.mark.parametrize("settings, message", [
    ({"steps": 0}, "'steps' must be between 1 and 10, not 0"),
    ({"steps": 11}, "'steps' must be between 1 and 10, not 11"),
    ({"recover_epochs": 0}, "'recover_epochs' must be between 1 and 20"),
    ({"method": "unstructured", "steps": 3}, "'steps' = 3 is for structured pruning"),
])
def test_steps_out_of_bounds_are_one_line_errors(settings, message):
    with pytest.raises(SettingsError, match=message):
        from_dict(PruneSettings, settings, "prune")


def test_steps_is_a_setting_with_its_flag_and_control():
    steps = PRUNE.setting("steps")
    assert (steps.default, steps.minimum, steps.maximum, steps.gui) == (1, 1, 10, True)
    assert PRUNE.setting_flag(steps) == "--prune-steps"
    assert PRUNE.setting_flag(PRUNE.setting("recover_epochs")) == "--prune-recover-epochs"


class TinyAttention(torch.nn.Module):
    """Separate query, key and value layers and a recorded head count: pruned by whole heads."""

    def __init__(self) -> None:
        super().__init__()
        self.num_heads, self.q, self.k, self.v = 2, torch.nn.Linear(8, 8), torch.nn.Linear(8, 8), torch.nn.Linear(8, 8)
        self.out = torch.nn.Linear(8, 3)

    def forward(self, x):
        b, t, _ = x.shape
        q, k, v = (p(x).view(b, t, self.num_heads, -1).transpose(1, 2) for p in (self.q, self.k, self.v))
        y = torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(b, t, -1)
        return self.out(y).mean(1)


def test_attention_heads_in_several_steps_are_a_one_line_error():
    from paretolab.core.errors import ParetoLabError

    torch.manual_seed(0)
    with pytest.raises(ParetoLabError, match=r"iterative pruning \(steps 2\) cannot prune attention heads yet.*use steps 1"):
        prune_module(TinyAttention(), (torch.rand(1, 4, 8),), PruneSettings(sparsity=0.5, steps=2))
    module, report = prune_module(TinyAttention(), (torch.rand(1, 4, 8),), PruneSettings(sparsity=0.5, round_to=1))
    assert module.num_heads == 1 and module(torch.rand(1, 4, 8)).shape == (1, 3)


def test_taylor_importance_takes_fresh_gradients_at_every_step(sample, data, monkeypatch):
    from paretolab.core.compress.pruning import prune

    passes = []
    original = prune._accumulate_gradients
    monkeypatch.setattr(prune, "_accumulate_gradients", lambda *a: passes.append(1) or original(*a))
    one_shot = prune_module(eager_module(sample, "t"), X, PruneSettings(sparsity=0.5, importance="taylor"), data.train)[1]
    passes.clear()
    _, report = prune_module(eager_module(sample, "t"), X, PruneSettings(sparsity=0.5, importance="taylor", steps=3),
                             data.train)  # no recovery given: the steps follow each other untrained
    assert len(passes) == 3 and report.gradients["seconds"] > 0 and report.recoveries == []
    assert report.channels == one_shot.channels  # the layer scope lands each layer on its count whatever the ranking
