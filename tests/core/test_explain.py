"""Why a variant is (not) faster: expected against measured speed-up, with the reasons, on
variants built to be slow on this CPU."""

from __future__ import annotations

import json

import pytest

from paretolab.cli import main
from paretolab.core.compress.insight.explain import explain
from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path


def _variant(tmp_path, settings: dict):
    original = load_model(sample_model_path())
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": settings}]})
    variant = optimize(original, recipe, DataPlan.from_spec("digits", original), tmp_path, "v")
    return original, variant


# CPUs the explanations are run for, whatever this machine is (its features are substituted)
CPUS = {
    "featureless": set(),
    "vnni-only": {"avx2", "avx512f", "avx512_vnni"},
    "xeon-avx512fp16-amx": {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8",
                            "amx_bf16"},
    "amx-fp16": {"avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_int8", "amx_bf16",
                 "amx_fp16"},
}


@pytest.mark.parametrize("cpu", ["featureless", "xeon-avx512fp16-amx", "amx-fp16"])
@pytest.mark.parametrize("settings, reason", [
    ({"backend": "ort", "precision": "dynamic-int8"}, "dynamic int8 quantizes activations on every call"),
    ({"backend": "ort", "precision": "fp16"}, "FP16 halves the file, not the time"),
    ({"backend": "ort", "precision": "int8", "format": "qdq-s8s8", "keep_fp32": ["features.0"]},
     "1 of 5 convolutions and products stay in FP32 (features.0"),
])
def test_slow_variants_are_explained(tmp_path, cpu_features, settings, reason, cpu):
    original, variant = _variant(tmp_path, settings)
    cpu_features(CPUS[cpu])
    result = explain(original, variant, original.like(variant.artifact), layer_times=False)
    assert result.measured == variant.speedup and result.expected >= 1.0
    assert any(reason in r for r in result.reasons), result.reasons
    if settings["precision"] == "fp16":  # ONNX Runtime computes FP16 in FP32 on any CPU: nothing to expect
        assert result.expected == pytest.approx(1.0) and "ONNX Runtime" in result.basis
        assert not any("pruning" in r for r in result.reasons)


def _fake_variant(steps: list[dict], backend: str, *, macs: tuple[int, int] = (100, 100), device: str = "cpu"):
    """A variant's record with no file behind it: what explain reads to reason about precision and MACs."""
    from paretolab.core.compress.variant import Variant

    recipe = Recipe.from_dict({"steps": steps})
    where = {"backend": backend, "device": device, "latency_ms": 1.0, "size_bytes": 1, "macs": macs[0]}
    return Variant("v", recipe, sample_model_path(), "", {"variant": {**where, "latency_ms": 1.0, "macs": macs[1]},
                                                          "baseline": where, "speedup": 1.0})


def _quant(backend: str, precision: str) -> list[dict]:
    return [{"technique": "quantize", "settings": {"backend": backend, "precision": precision}}]


# (backend, precision, CPU) -> the expected gain over FP32, and a piece of the reason when it cannot pay
PRECISION_ON_CPUS = [
    ("ort", "fp16", "featureless", 1.0, "FP16 halves the file, not the time"),
    ("ort", "fp16", "amx-fp16", 1.0, "FP16 halves the file, not the time"),
    ("openvino", "fp16", "xeon-avx512fp16-amx", 1.0, "FP16 halves the file, not the time"),
    ("openvino", "fp16", "amx-fp16", 1.0, "OpenVINO decompresses an FP16 IR's weights"),
    ("torch", "fp16", "featureless", 1.0, "neither AVX512-FP16 nor AMX-FP16"),
    ("torch", "fp16", "xeon-avx512fp16-amx", 1.0, "no faster than FP32"),
    ("torch", "fp16", "amx-fp16", 2.0, None),
    ("inductor", "fp16", "amx-fp16", 2.0, None),
    ("openvino", "bf16", "featureless", 1.0, "neither AVX512-BF16 nor AMX"),
    ("openvino", "bf16", "xeon-avx512fp16-amx", 2.0, None),
    ("torch", "bf16", "xeon-avx512fp16-amx", 2.0, None),
    ("ort", "int8", "featureless", 1.0, "this CPU has no VNNI"),
    ("ort", "int8", "vnni-only", 2.0, None),
    ("openvino", "int8", "vnni-only", 2.0, None),
    ("ort", "dynamic-int8", "amx-fp16", 1.0, "dynamic int8 quantizes activations"),
]


@pytest.mark.parametrize(("backend", "precision", "cpu", "gain", "reason"), PRECISION_ON_CPUS)
def test_what_a_precision_can_gain_depends_on_the_backend_and_the_cpu(cpu_features, backend, precision, cpu, gain, reason):
    from paretolab.core.compress.insight.explain import quick_reasons

    cpu_features(CPUS[cpu])
    variant = _fake_variant(_quant("torch" if backend == "inductor" else backend, precision), backend)
    original = load_model(sample_model_path())
    result = explain(original, variant, original, layer_times=False)
    assert result.expected == pytest.approx(gain), result.basis
    quick = quick_reasons(variant)
    if reason is None:
        assert not any("halves the file" in r or "emulated" in r or "no VNNI" in r for r in result.reasons + quick)
    else:
        assert any(reason in r for r in result.reasons) and any(reason in r for r in quick), (result.reasons, quick)


@pytest.mark.parametrize(("steps", "named", "not_named"), [
    (_quant("ort", "int8"), "quantization changes the precision", "pruning"),
    ([{"technique": "prune", "settings": {"method": "unstructured", "sparsity": 0.3}}], "unstructured pruning zeroes",
     "quantization"),
    ([{"technique": "graphopt", "settings": {}}], "graph optimization", "pruning"),
])
def test_the_macs_reason_names_the_step_that_left_the_macs(cpu_features, steps, named, not_named):
    from paretolab.core.compress.insight.explain import quick_reasons

    cpu_features(CPUS["vnni-only"])  # int8 can pay here: the MACs are the reason left
    (reason,) = quick_reasons(_fake_variant(steps, "ort"))
    assert reason.startswith("the variant does as many MACs as the original") and named in reason
    assert not_named not in reason
    assert quick_reasons(_fake_variant(steps, "ort", macs=(100, 50))) == []  # fewer MACs: nothing to say


def test_a_faster_int8_form_that_lost_is_named():
    from paretolab.core.compress.insight.explain import _format_choice

    class Fake:
        reports = [{"candidates": [{"name": "qop-u8s8", "median_ms": 0.02, "chosen": False},
                                   {"name": "qdq-s8s8", "median_ms": 0.03, "chosen": True}]}]

    (reason,) = _format_choice(Fake())  # type: ignore[arg-type]
    assert reason.startswith("qop-u8s8 ran faster (0.020 against 0.030 ms) but qdq-s8s8 was kept")


def test_the_command_line_explains_a_written_variant_with_its_layer_times(tmp_path, capsys):
    _variant(tmp_path, {"backend": "ort", "precision": "dynamic-int8"})
    assert main(["explain", str(tmp_path / "v.onnx"), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["variant"] == "v" and doc["basis"].startswith("MACs 1.00x fewer")
    slower = {s["layer"] for s in doc["slower_layers"]}  # ConvInteger is slower than FP32 convolutions here
    assert slower & {"features.0", "features.2", "features.5"}, doc["slower_layers"]
    assert all(s["variant_ms"] > s["original_ms"] for s in doc["slower_layers"])
    assert main(["explain", str(tmp_path / "missing.onnx")]) == 2
    assert "no variant with metrics there" in capsys.readouterr().err


def test_a_measured_precision_choice_is_explained_by_the_precision_that_won(tmp_path, fp32_timed_slow):
    original, variant = _variant(tmp_path, {"backend": "openvino", "precision": "fastest"})
    (report,) = [r for r in variant.reports if r.get("technique") == "quantize"]
    won = report["chosen"].removeprefix("openvino-")
    assert won in ("int8", "bf16")
    result = explain(original, variant, original.like(variant.artifact), layer_times=False)
    assert f"× {won} " in result.basis, result.basis
    chosen = next(c for c in report["candidates"] if c["chosen"])  # timed beside FP32 when chosen: that gain is expected
    measured = report["baseline_ms"] / chosen["median_ms"]
    assert f"× {won} measured {measured:.2f}x against FP32" in result.basis, result.basis


def test_a_pytorch_precision_measured_on_the_gpu_expects_tensor_cores_not_cpu_features():
    from paretolab.core.compress.insight.explain import GPU_HALF_GAIN, quick_reasons
    from paretolab.core.compress.variant import Variant

    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "torch", "precision": "fp16"}}]})
    where = {"backend": "torch", "device": "cuda", "latency_ms": 1.0, "size_bytes": 1, "macs": 100}
    variant = Variant("v", recipe, sample_model_path(), "", {"variant": {**where, "latency_ms": 0.5},
                                                             "baseline": where, "speedup": 2.0})
    original = load_model(sample_model_path())
    result = explain(original, variant, original, layer_times=False)
    assert result.expected == GPU_HALF_GAIN and "fp16 on a GPU's tensor cores" in result.basis
    assert not any("CPU" in r for r in result.reasons + quick_reasons(variant))


@pytest.mark.parametrize(("macs", "small"), [(1_000_000, True), (569_000_000, False)])
def test_only_a_small_model_is_called_small(cpu_features, macs, small):
    """A variant with half the MACs that gained nothing: a 1M-MAC model's fixed costs explain it, a
    569M-MAC model's do not."""
    cpu_features(CPUS["featureless"])
    prune = [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}}]
    variant = _fake_variant(prune, "ort", macs=(macs, macs // 2))
    original = load_model(sample_model_path())
    result = explain(original, variant, original, layer_times=False)
    assert result.expected == pytest.approx(2.0) and result.measured == 1.0
    (reason,) = result.reasons
    assert ("a model this small" in reason) is small, reason
