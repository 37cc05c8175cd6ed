"""PyTorch as a deployment target: variants of an edited module are saved as PyTorch files,
measured on torch (CPU here, CUDA where there is one) and, for precisions, timed where they
will run. Every number is reproduced from the written file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from paretolab.core.compress.quantization.torch_precision import native_precisions
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.runtimes import BackendError, available_backends, open_runner
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError
from paretolab.core.store.experiment import Experiment

PRUNE = {"technique": "prune", "settings": {"sparsity": 0.25}}
HAS_CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def demo():
    return load_model(sample_model_path("demo"))


@pytest.fixture(scope="module")
def plan(demo):
    return DataPlan.from_spec(None, demo)


def recipe(*steps: dict) -> Recipe:
    return Recipe.from_dict({"steps": list(steps)})


def test_a_pruned_variant_measured_on_torch_is_a_pytorch_file_that_reproduces_its_numbers(demo, plan, tmp_path):
    variant = optimize(demo, recipe(PRUNE), plan, tmp_path, "v", backend="torch")
    assert variant.artifact == tmp_path / "v.pt2"
    assert (variant.measured.backend, variant.baseline.backend) == ("torch", "torch")
    assert variant.measured.macs < 0.8 * variant.baseline.macs
    assert any("the original ran as a torch.export program" in n for n in variant.metrics["notes"])
    made = load_model(variant.artifact)
    assert made.format == "torch.export" and [(s.name, s.shape) for s in made.inputs] == [("input", ("batch", 1, 32, 32))]
    again = evaluate(made, plan.test, backend="torch")
    assert again.top1 == variant.measured.top1
    with open_runner(made, "torch") as runner:  # the batch axis stays free
        (scores,) = runner.run([np.random.default_rng(0).random((3, 1, 32, 32), dtype=np.float32)])
    assert scores.shape == (3, 10)


def test_a_variant_measured_elsewhere_keeps_a_pytorch_file_beside_it_that_moves_with_it(demo, plan, tmp_path):
    variant = optimize(demo, recipe(PRUNE), plan, tmp_path, "v")
    assert variant.artifact.suffix == ".onnx" and (tmp_path / "v.pt2").exists()
    x = np.random.default_rng(1).random((2, 1, 32, 32), dtype=np.float32)
    with open_runner(load_model(tmp_path / "v.pt2"), "torch") as torch_file, open_runner(load_model(variant.artifact)) as onnx:
        np.testing.assert_allclose(torch_file.run([x])[0], onnx.run([x])[0], rtol=1e-3, atol=1e-3)
    experiment = Experiment(tmp_path)
    renamed = experiment.rename(variant, "w")
    assert (tmp_path / "w.pt2").exists() and not (tmp_path / "v.pt2").exists()
    experiment.delete(renamed)
    assert not list(tmp_path.glob("w.*"))


@pytest.mark.skipif("bf16" not in native_precisions("cpu"), reason="this CPU has neither AVX512-BF16 nor AMX")
def test_torch_fastest_times_bf16_beside_fp32_on_the_cpu_and_bakes_the_winner_into_the_file(demo, plan, tmp_path,
                                                                                            fp32_timed_slow):
    fastest = {"technique": "quantize", "settings": {"backend": "torch", "precision": "fastest"}}
    variant = optimize(demo, recipe(PRUNE, fastest), plan, tmp_path, "v")  # the default backend: the quantizer's
    (report,) = [r for r in variant.reports if r.get("technique") == "quantize"]
    assert report["device"] == "cpu" and [c["name"] for c in report["candidates"]] == list(native_precisions("cpu"))
    assert report["chosen"] in ("torch-bf16", "torch-fp16") and report["candidates"][0]["agreement"] >= 0.98
    assert variant.measured.backend == "torch" and variant.artifact.suffix == ".pt2"
    made = load_model(variant.artifact)
    baked = {"torch-bf16": torch.bfloat16, "torch-fp16": torch.float16}[report["chosen"]]
    assert {p.dtype for p in made.native.state_dict.values() if p.dim() > 1} == {baked}
    assert evaluate(made, plan.test, backend="torch").top1 == variant.measured.top1


def test_precisions_a_device_would_emulate_are_refused_in_one_line(demo, plan, tmp_path, monkeypatch):
    from paretolab.core.compress.quantization import torch_precision

    monkeypatch.setattr(torch_precision, "native_precisions", lambda device: ())
    fp16 = {"technique": "quantize", "settings": {"backend": "torch", "precision": "fp16"}}
    with pytest.raises(ParetoLabError, match="PyTorch on cpu here would emulate fp16, slower than FP32"):
        optimize(demo, recipe(fp16), plan, tmp_path, "v")
    fastest = {"technique": "quantize", "settings": {"backend": "torch", "precision": "fastest"}}
    with pytest.raises(ParetoLabError, match="computes neither BF16 nor FP16 natively"):
        optimize(demo, recipe(fastest), plan, tmp_path, "v")
    assert not list(tmp_path.glob("v*"))


def test_a_pytorch_precision_comes_last_and_only_pytorch_recipes_run_on_torch(demo, plan, tmp_path):
    bf16 = {"technique": "quantize", "settings": {"backend": "torch", "precision": "bf16"}}
    with pytest.raises(SettingsError, match="nothing can follow step 1 .* the PyTorch precision is how the variant runs"):
        recipe(bf16, PRUNE)
    with pytest.raises(SettingsError, match="PyTorch precisions are fp16, bf16 and fastest, not 'int8'"):
        recipe({"technique": "quantize", "settings": {"backend": "torch", "precision": "int8"}})
    ort_int8 = {"technique": "quantize", "settings": {"backend": "ort"}}
    with pytest.raises(SettingsError, match="this one ends with quantize ort int8 auto; measure it on ort or openvino"):
        optimize(demo, recipe(PRUNE, ort_int8), plan, tmp_path, "v", backend="torch")


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
def test_on_cuda_a_distilled_variant_is_trained_and_measured_on_the_gpu(demo, plan, tmp_path):
    """Issue 11's "done when": distill on CUDA, measure on torch/cuda; the metrics name the device."""
    distill = {"technique": "distill", "settings": {"epochs": 1, "device": "auto"}}
    variant = optimize(demo, recipe(PRUNE, distill), plan, tmp_path, "v", backend="torch", device="cuda")
    (report,) = [r for r in variant.reports if r.get("technique") == "distill"]
    assert report["device"].startswith("cuda")
    assert (variant.measured.device, variant.baseline.device) == ("cuda", "cuda")
    assert variant.measured.top1 > 0.5


@pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")
def test_on_cuda_fp16_and_bf16_compete_and_the_winner_runs_on_the_gpu(demo, plan, tmp_path):
    fastest = {"technique": "quantize", "settings": {"backend": "torch", "precision": "fastest"}}
    variant = optimize(demo, recipe(PRUNE, fastest), plan, tmp_path, "v", device="cuda")
    (report,) = [r for r in variant.reports if r.get("technique") == "quantize"]
    assert report["device"] == "cuda" and {c["name"] for c in report["candidates"]} == set(native_precisions("cuda"))
    assert report["chosen"] in ("torch-fp16", "torch-bf16") and variant.measured.device == "cuda"


@pytest.mark.skipif(("inductor", "cpu") not in {(b.backend, b.device) for b in available_backends()},
                    reason="no C++ compiler for torch.compile here")
def test_torch_compile_measures_a_pytorch_variant_as_compiled_kernels(tmp_path):
    sample = load_model(sample_model_path("onnx"))
    plan = DataPlan.from_spec("digits", sample)
    variant = optimize(sample, recipe(PRUNE), plan, tmp_path, "v", backend="inductor")
    assert variant.artifact.suffix == ".pt2" and variant.measured.backend == variant.baseline.backend == "inductor"
    eager = evaluate(load_model(variant.artifact), plan.test, backend="torch", reference=load_model(variant.artifact),
                     reference_backend="inductor")
    assert eager.agreement >= 0.99 and abs(eager.top1 - variant.measured.top1) < 0.01
    with pytest.raises(BackendError, match="torch.compile cannot compile TorchScript"):
        open_runner(load_model(sample_model_path("torchscript")), "inductor")


def test_a_sweeps_student_cache_never_leaves_a_pytorch_variant_without_its_module(demo, plan, tmp_path):
    from paretolab.core.pipeline.optimize import apply_recipe
    from paretolab.core.pipeline.prefix_cache import PrefixCache

    cache = PrefixCache(tmp_path / "students")
    first, _ = apply_recipe(demo, recipe(PRUNE), plan, tmp_path / "a", reuse=cache)  # stores the pruned student
    assert first.suffix == ".onnx" and (tmp_path / "a.pt2").exists()
    again, reports = apply_recipe(demo, recipe(PRUNE), plan, tmp_path / "b", reuse=cache, torch_artifact=True)
    assert again == tmp_path / "b.pt2" and not any(r.get("reused") for r in reports)  # trained afresh: the cache is ONNX
