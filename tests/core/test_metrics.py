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


def _yolo(rng, batch=8, classes=3, cells=64, scores=None):
    boxes = rng.uniform(0, 320, (batch, 4, cells)).astype(np.float32)  # pixels
    scores = rng.uniform(0, 1, (batch, classes, cells)).astype(np.float32) if scores is None else scores
    return np.concatenate([boxes, scores], 1)


def test_a_detector_with_zeroed_scores_keeps_its_cosine_but_is_broken():
    rng = np.random.default_rng(0)
    ref = _yolo(rng)
    dead = ref.copy()
    dead[:, 4:] = 0
    meter = FidelityMeter("output0", real_data=False)  # even on random inputs: a collapse needs no real data
    meter.add(dead, ref)
    r = meter.result()
    assert r.kind == "detection" and r.cosine > 0.99  # what one cosine said
    assert r.verdict == "broken" and r.why == "class scores collapsed: all zero"

    on_real = FidelityMeter("output0")
    on_real.add(ref, ref)
    assert on_real.result().verdict == "faithful" and on_real.result().details["recall"] == 1.0
    swapped = ref.copy()
    swapped[:, 4:] = ref[:, [5, 6, 4]]  # the same boxes, other classes
    wrong = FidelityMeter("output0")
    wrong.add(swapped, ref)
    assert wrong.result().verdict == "broken" and wrong.result().details["recall"] < 0.5


def test_random_inputs_are_never_judged_faithful_but_real_data_floors_apply():
    ref = np.random.default_rng(0).standard_normal((64, 10)).astype(np.float32)
    on_random = FidelityMeter("logits", real_data=False)
    on_random.add(ref, ref)
    assert on_random.result().verdict == "unknown" and on_random.result().why == "unknown (random inputs)"
    shuffled = FidelityMeter("logits")
    shuffled.add(np.roll(ref, 1, axis=1), ref)
    assert shuffled.result().verdict == "broken" and "below the floor" in shuffled.result().why


def test_sequences_compare_decoded_strings_and_embeddings_their_neighbours():
    rng = np.random.default_rng(1)
    ref = np.log(rng.dirichlet(np.ones(6) * 0.2, (16, 20))).astype(np.float32)  # [b, T, C] log-probabilities
    meter = FidelityMeter("log_probs")
    noisy = ref.copy()
    noisy[:8] = ref[:8, :, ::-1]  # half the strings read differently
    meter.add(noisy, ref)
    r = meter.result()
    assert r.kind == "sequence" and r.details["exact_match"] == pytest.approx(0.5)
    assert r.verdict == "degraded" and r.why == "exact-match strings 50%"
    assert r.details["edit_distance"] > 0

    emb = rng.standard_normal((32, 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    constant = FidelityMeter("embedding")
    constant.add(np.repeat(emb[:1], 32, 0), emb)
    c = constant.result()
    assert c.kind == "embedding" and c.agreement is None and c.verdict == "broken"
    assert c.why == "collapsed: the same for every input"
