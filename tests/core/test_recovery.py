"""Recovery training searched on validation (issue 27): the loss and learning rate the data
prefers win, weak candidates stop early, the minutes budget and cancel both keep the best so far."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paretolab.core.compress.distill import DEFAULT_LOSS, LOSSES, DistillSettings, distill
from paretolab.core.compress.pruning.prune import PruneSettings, prune_module
from paretolab.core.compress.recovery import candidates
from paretolab.core.compress.techniques import TECHNIQUES
from paretolab.core.errors import Cancelled
from paretolab.core.measure.data import ArrayDataset, digits
from paretolab.core.model.eager import eager_module
from paretolab.core.model.handle import load_model
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError, from_dict, to_dict

X = (torch.rand(1, 1, 8, 8),)


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path("onnx"))


@pytest.fixture(scope="module")
def confused_teacher(sample, tmp_path_factory):
    """The sample with half its classes' scores swapped in pairs: a teacher wrong on about half the digits."""
    from paretolab.core.model.torch_onnx import export_to_onnx

    module = eager_module(sample, "test")
    last = module.classifier[4]
    swap = [1, 0, 3, 2, 5, 4, 6, 7, 8, 9]
    with torch.no_grad():
        last.weight.copy_(last.weight[swap])
        last.bias.copy_(last.bias[swap])
    path = tmp_path_factory.mktemp("teacher") / "confused.onnx"
    export_to_onnx(module.eval(), X, path, ["input"], output_names=["logits"])
    return load_model(path)


def pruned_student(sample):
    return prune_module(eager_module(sample, "test"), X, PruneSettings(sparsity=0.5))[0]


def top1(module, data) -> float:
    with torch.no_grad():
        logits = module(torch.from_numpy(data.load(np.arange(len(data)))[0])).numpy()
    return float((logits.argmax(1) == data.labels).mean())


@pytest.fixture(scope="module")
def searched(sample, confused_teacher):
    student, report = distill(pruned_student(sample), confused_teacher, digits("train"), digits("val"),
                              DistillSettings(loss="auto", epochs=3, minutes=30))
    return student, report


def test_the_search_keeps_what_validation_prefers_and_says_why(searched):
    """With a teacher wrong on half the classes, fine-tuning on the labels must win, and the report says so."""
    student, report = searched
    assert report.searched and not report.out_of_time and not report.cancelled
    assert report.loss == "labels" and report.alpha == 0.0 and report.mixup == 0.0
    finished = [c for c in report.candidates if c["scores"]]
    assert report.best_score == max(c["best_score"] for c in finished) > report.initial_score + 0.3
    teacher_best = max(c["best_score"] for c in finished if c["loss"] == "teacher")
    assert report.best_score > teacher_best + 0.1  # clearly, not by a hair
    assert top1(student, digits("val")) == pytest.approx(report.best_score)  # the winner's best epoch was kept
    assert report.why().startswith(f"labels, lr {report.lr:g} won with top1 {report.best_score:.2%}")
    assert "teacher" in report.why() and report.to_dict()["why"] == report.why()


def test_successive_halving_stops_weak_candidates_early(searched):
    _, report = searched
    assert len(report.candidates) == 9  # three losses at three learning rates
    stopped = [c for c in report.candidates if "behind the others" in c["state"]]
    assert report.pruned == len(stopped) > 0
    assert all(len(c["scores"]) < 3 for c in stopped)
    assert report.epochs_trained == sum(len(c["scores"]) for c in report.candidates) < 9 * 3


def test_a_tiny_budget_stops_the_search_and_keeps_a_student_no_worse_than_the_start(sample):
    student, report = distill(pruned_student(sample), sample, digits("train"), digits("val"),
                              DistillSettings(loss="auto", epochs=50, minutes=0.02))
    assert report.out_of_time and report.best_score >= report.initial_score
    assert any("out of time" in c["state"] for c in report.candidates)
    assert any(c["state"].startswith("not run") for c in report.candidates)
    assert report.epochs_trained < 50
    assert top1(student, digits("val")) == pytest.approx(report.best_score)


def test_without_labels_only_the_teacher_is_searched_and_seeded_runs_agree(sample):
    train = ArrayDataset("unlabelled", [digits("train").load(np.arange(300))[0]])
    val = ArrayDataset("unlabelled val", [digits("val").load(np.arange(200))[0]])
    settings = DistillSettings(loss="auto", epochs=2, minutes=30)
    runs = [distill(pruned_student(sample), sample, train, val, settings)[1] for _ in range(2)]
    report = runs[0]
    assert report.metric == "agreement" and {c["loss"] for c in report.candidates} == {"teacher"}
    assert [c["lr"] for c in report.candidates] == [1e-3, 3e-3, 3e-4]
    for a, b in zip(runs[0].candidates, runs[1].candidates):
        assert a["scores"] == pytest.approx(b["scores"], abs=0.02) and a["state"] == b["state"]
    _, fixed = distill(pruned_student(sample), sample, train, val, DistillSettings(loss="labels", epochs=1))
    assert fixed.loss == "teacher" and fixed.alpha == 1.0  # the report names the loss that could run


def test_cancelling_mid_search_returns_the_best_so_far(sample):
    progress = Progress(lambda fraction, message: message.startswith("teacher, lr 0.001") and progress.cancel())
    student, report = distill(pruned_student(sample), sample, digits("train"), digits("val"),
                              DistillSettings(loss="auto", epochs=2, minutes=30), progress)
    assert report.cancelled and report.loss == "labels" and report.best_epoch >= 1
    first, second = report.candidates[:2]
    assert first["state"] == "finished" and second["state"] == "cancelled at epoch 1" and not second["scores"]
    assert top1(student, digits("val")) == pytest.approx(report.best_score)
    with pytest.raises(Cancelled):
        progress.check()


def test_recipes_keep_their_meaning_and_name_their_loss():
    """An α given alone means the blend it always meant; a recipe stores its loss, so a later default changes nothing."""
    legacy = from_dict(DistillSettings, {"epochs": 3, "alpha": 0.7}, "recipe")
    assert legacy.loss == "both" and legacy.plan(True) == legacy.plan(True).__class__("both", 1e-3, 0.7, 0.4)
    assert legacy.plan(False).loss == "teacher"  # without labels, as before
    assert DistillSettings().loss == DEFAULT_LOSS and to_dict(DistillSettings())["loss"] == DEFAULT_LOSS
    assert DistillSettings(loss="labels").plan(True).alpha == 0.0 and DistillSettings(loss="labels").plan(True).mixup == 0
    assert [p.loss for p in candidates(DistillSettings(loss="auto", lr=0.01), True)] == ["labels", "teacher", "both"]
    entry = TECHNIQUES["distill"]  # the panel, the flags and the settings class agree
    assert entry.setting("loss").choices == LOSSES and entry.setting("loss").default == DEFAULT_LOSS
    assert entry.setting("minutes").default == DistillSettings.minutes
    assert entry.step_settings({"loss": "auto", "minutes": 2.0, "alpha": 0.7, "lr": 1e-3}) == {"loss": "auto", "minutes": 2.0}
    with pytest.raises(SettingsError, match="setting 'loss'"):
        from_dict(DistillSettings, {"loss": "soft"}, "recipe")
    with pytest.raises(SettingsError, match="'minutes' must be positive"):
        DistillSettings(minutes=0).check()
