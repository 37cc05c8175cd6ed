"""Honest speed-ups: models timed side by side in alternating rounds, against the original on
the same backend, device and threads, with an interval, ties called ties, busy machines named."""

from __future__ import annotations

import os

import pytest

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.timing import Speedup, Timing, busy_note, time_side_by_side
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path


@pytest.fixture(scope="module")
def small():
    return load_model(sample_model_path())


@pytest.fixture(scope="module")
def demo():
    return load_model(sample_model_path("demo"))


def test_side_by_side_timing_orders_models_and_bounds_each_median(small, demo):
    tiny, big = time_side_by_side([small, demo], rounds=6, budget_s=2.0)
    assert big.low_ms > tiny.high_ms  # a 109 M-MAC ResNet against a 0.6 M-MAC CNN: no overlap
    for t in (tiny, big):
        assert t.low_ms <= t.median_ms <= t.high_ms and t.runs >= 18
    faster = Speedup.of(big, tiny)
    assert faster.low <= faster.value <= faster.high and faster.low > 1.0 and not faster.tie


def test_a_difference_inside_the_noise_is_a_tie_and_uneven_runs_are_called_busy():
    steady = Timing.from_seconds([0.001 + i * 1e-6 for i in range(100)])
    assert Speedup.of(steady, steady).tie
    same_but_noisy = Timing.from_seconds([0.001, 0.002] * 50)
    assert same_but_noisy.spread > 0.25
    assert "busy" in busy_note([steady, same_but_noisy])
    assert busy_note([steady]) is None or "load average" in busy_note([steady])


def test_a_variant_is_compared_with_the_original_on_its_own_backend(small, tmp_path):
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "openvino", "precision": "fp16"}}]})
    variant = optimize(small, recipe, DataPlan.from_spec("digits", small), tmp_path, "ov", threads=2)
    base, mine = variant.baseline, variant.measured
    assert (base.backend, base.device, base.threads) == (mine.backend, mine.device, mine.threads) == ("openvino", "cpu", 2)
    assert variant.speedup == pytest.approx(base.latency_ms / mine.latency_ms)
    low, high = variant.speedup_range
    assert low <= variant.speedup <= high
    assert variant.speedup_text().endswith("vs the original on openvino/cpu, 2 threads")
    validation = variant.metrics["validation"]
    assert validation["dataset"].endswith("val") and validation["variant"]["top1"] is not None
    assert mine.dataset.endswith("test")


def test_a_runtime_error_while_timing_is_one_line_naming_the_model(small, monkeypatch):
    from paretolab.core.measure import timing
    from paretolab.core.measure.runtimes import BackendError

    class Failing:
        def bind(self, inputs):
            def call():
                raise RuntimeError("[ONNXRuntimeError] : 2 : INVALID_ARGUMENT : Got invalid dimensions for input: state\nmore")
            return call

        def close(self):
            pass

    monkeypatch.setattr(timing, "open_runner", lambda *args: Failing())
    with pytest.raises(BackendError, match=r"^digits_cnn.onnx failed on its inputs while timing: .*invalid dimensions") as exc:
        time_side_by_side([small], rounds=2, budget_s=0.1)
    assert "\n" not in str(exc.value)


def test_a_busy_machine_is_recorded_with_the_speed_up(small, tmp_path, monkeypatch):
    from paretolab.core.pipeline import scorecard

    monkeypatch.setattr(scorecard, "busy_note", lambda timings, others_cpus=None: "the machine was loaded while timing")
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "openvino", "precision": "fp16"}}]})
    variant = optimize(small, recipe, DataPlan.from_spec("digits", small), tmp_path, "ov", threads=2)
    assert variant.metrics["timing"]["busy"] == "the machine was loaded while timing"
    assert "the machine was loaded while timing" in variant.metrics["notes"]


def test_other_processes_holding_the_cpus_make_even_runs_busy(monkeypatch):
    steady = Timing.from_seconds([0.001 + i * 1e-6 for i in range(100)])
    cpus = os.cpu_count() or 1
    assert "other processes kept" in busy_note([steady], others_cpus=float(cpus))  # a hog slows every run alike
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert busy_note([steady], others_cpus=0.0) is None
