"""Accuracy and fidelity on hand-made outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from paretolab.core.measure.metrics import AccuracyMeter, FidelityMeter, fidelity_dict


def test_top1_and_top5_accuracy():
    scores = np.zeros((4, 10), np.float32)
    scores[0, 3] = 1  # right
    scores[1, 2] = 1  # wrong, label 7 not in top-5? all zeros tie: give 7 a clearly low score
    scores[1, 7] = -1
    scores[2, [1, 2, 3, 4, 5]] = [5, 4, 3, 2, 1]  # label 5: in top-5, not top-1
    scores[3, 9] = 2  # right
    meter = AccuracyMeter()
    meter.add(scores[:2], np.array([3, 7]))
    meter.add(scores[2:], np.array([5, 9]))
    assert meter.top1 == 0.5
    assert meter.top5 == 0.75


def test_top5_is_undefined_for_few_classes():
    meter = AccuracyMeter()
    meter.add(np.eye(3, dtype=np.float32), np.array([0, 1, 2]))
    assert meter.top1 == 1.0 and meter.top5 is None


def test_fidelity_of_identical_and_perturbed_outputs():
    ref = np.random.default_rng(0).standard_normal((100, 10)).astype(np.float32)
    same = FidelityMeter("logits")
    same.add(ref, ref)
    r = same.result()
    assert r.agreement == 1.0 and r.cosine == pytest.approx(1.0) and r.max_abs_error == 0 and math.isinf(r.sqnr_db)
    assert fidelity_dict(r)["sqnr_db"] is None and fidelity_dict(r)["identical"]

    noise = np.full_like(ref, 0.01)
    close = FidelityMeter("logits")
    close.add(ref + noise, ref)
    r = close.result()
    expected_sqnr = 10 * math.log10(float((ref.astype(np.float64) ** 2).sum()) / (ref.size * 0.01**2))
    assert r.sqnr_db == pytest.approx(expected_sqnr, rel=1e-3)
    assert r.mean_abs_error == pytest.approx(0.01, rel=1e-3) and r.max_abs_error == pytest.approx(0.01, rel=1e-3)

    flipped = FidelityMeter("logits")
    flipped.add(-ref, ref)
    assert flipped.result().cosine == pytest.approx(-1.0) and flipped.result().agreement < 0.2


def test_non_classifier_outputs_have_no_agreement():
    emb = np.ones((4, 3, 5), np.float32)
    meter = FidelityMeter("features")
    meter.add(emb * 1.1, emb)
    assert meter.result().agreement is None and meter.result().cosine == pytest.approx(1.0)
