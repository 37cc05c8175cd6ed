"""Importance, sensitivity, per-layer quantization error, and low-rank factorization."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from paretolab.core.compress.insight.importance import sensitivity_scan, weight_importance
from paretolab.core.compress.pruning.lowrank import LowRankSettings, factorize
from paretolab.core.compress.quantization.quantize import QuantizeSettings, quantize
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import Cancelled
from paretolab.core.measure.data import digits
from paretolab.core.measure.devices import ort_device
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.eager import eager_module
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import apply_recipe
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError, from_dict

WEIGHT_LAYERS = ["features.0", "features.2", "features.5", "classifier.1", "classifier.4"]


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path("onnx"))


def test_magnitude_importance_matches_the_weights(sample):
    result = weight_importance(sample, taylor=False)
    assert [r.layer for r in result] == WEIGHT_LAYERS
    conv = eager_module(sample, "t").features[2].weight.detach().numpy()
    first = result[1]
    assert first.l1 == pytest.approx(float(np.abs(conv).mean()), rel=1e-6)
    assert first.l2 == pytest.approx(float(np.sqrt((conv**2).mean())), rel=1e-6)
    assert len(first.channels_l1) == 32
    assert first.channels_l1[5] == pytest.approx(float(np.abs(conv[5]).mean()), rel=1e-6)
    assert all(r.taylor is None for r in result)


def test_taylor_importance_is_the_same_for_every_form_of_the_model(sample):
    onnx_result = weight_importance(sample, digits("train"))
    torch_result = weight_importance(load_model(sample_model_path("torchscript")), digits("train"))
    assert all(r.taylor is not None and r.taylor > 0 for r in onnx_result)
    for a, b in zip(onnx_result, torch_result):
        assert a.layer == b.layer and a.taylor == pytest.approx(b.taylor, rel=1e-4)
        assert len(a.channels_taylor) == len(a.channels_l1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_taylor_importance_on_cuda_matches_the_cpu(sample):
    on_cpu, on_cuda = (weight_importance(sample, digits("train"), device=d) for d in ("cpu", "cuda"))
    for a, b in zip(on_cpu, on_cuda):
        assert a.taylor == pytest.approx(b.taylor, rel=1e-3)


def test_importance_of_an_onnx_only_model_has_no_taylor(model_files):
    result = weight_importance(load_model(model_files["onnx"]), None)
    assert [r.op for r in result] == ["Conv", "Conv", "Gemm"] and all(r.taylor is None for r in result)


def test_sensitivity_scan_finds_the_fragile_layers_and_is_cached(sample, tmp_path):
    progress_seen = []
    scan = sensitivity_scan(
        sample, digits("val"), levels=(0.5, 0.9), cache=tmp_path, progress=Progress(lambda f, m: progress_seen.append(m))
    )
    assert scan.metric == "top1" and scan.baseline == pytest.approx(evaluate(sample, digits("val")).top1, abs=0.01)
    assert len(scan.rows) == 2 * len(WEIGHT_LAYERS) and progress_seen
    drops = scan.by_layer()
    assert set(drops) == set(WEIGHT_LAYERS)
    assert drops["features.0"] > drops["classifier.1"]  # the 9-weight-per-channel first conv is fragile
    heavier = {r.layer: r.drop for r in scan.rows if r.level == 0.9}
    lighter = {r.layer: r.drop for r in scan.rows if r.level == 0.5}
    assert all(heavier[k] >= lighter[k] - 0.01 for k in heavier)
    assert scan.device == ort_device("auto") and scan.seconds > 0  # CUDA where onnxruntime-gpu sees a GPU
    assert progress_seen[-1] == f"the prune sensitivity of 5 layers took {scan.seconds:.1f} s on {scan.device}"
    again = sensitivity_scan(sample, digits("val"), levels=(0.5, 0.9), cache=tmp_path)
    assert again == scan and len(list(tmp_path.iterdir())) == 1
    weights = sensitivity_scan(sample, digits("val"), kind="quantize", layers=("features.0",))
    assert [r.layer for r in weights.rows] == ["features.0"] and abs(weights.rows[0].drop) < 0.02


def test_sensitivity_scan_cancels(sample):
    progress = Progress(lambda f, m: f > 0.2 and progress.cancel())
    with pytest.raises(Cancelled):
        sensitivity_scan(sample, digits("val"), progress=progress)


def test_keep_sensitive_layers_in_fp32(sample, tmp_path):
    outcome = quantize(sample, QuantizeSettings(format="qop-u8s8", keep_sensitive=2), digits("train"), tmp_path / "q.onnx")
    assert len(outcome.kept_fp32) == 2 and set(outcome.kept_fp32) <= set(WEIGHT_LAYERS)
    ops = {n.name: n.op_type for n in onnx.load(str(outcome.artifact)).graph.node}
    assert all(ops[name] in ("Conv", "Gemm") for name in outcome.kept_fp32)
    assert sum(op in ("QLinearConv", "QGemm") for op in ops.values()) == 3
    with pytest.raises(SettingsError, match="'keep_sensitive' applies to int8"):
        from_dict(QuantizeSettings, {"precision": "fp16", "keep_sensitive": 1}, "q")


def test_low_rank_factorizes_linear_layers_and_stays_close():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).eval()
    with torch.no_grad():  # a weight of rank 8 plus a little noise: what SVD should find
        model[0].weight.copy_(torch.randn(64, 8) @ torch.randn(8, 64) / 8 + 1e-4 * torch.randn(64, 64))
    x = torch.rand(16, 64)
    reference = model(x).detach()
    _, report = factorize(model, LowRankSettings(rank_ratio=1.0, min_features=8))
    assert report.factorized == {} and "would not save parameters" in report.skipped["0"]
    model, report = factorize(model, LowRankSettings(energy=0.9999, min_features=8))
    assert report.factorized["0"] == (64, 8)
    assert isinstance(model[0], torch.nn.Sequential) and model[0][0].out_features == 8
    assert report.params_after < report.params_before
    assert torch.allclose(model(x), reference, atol=1e-3)


def test_low_rank_on_the_sample_through_a_recipe(sample, tmp_path):
    recipe = Recipe.from_dict({"steps": [{"technique": "lowrank", "settings": {"rank_ratio": 0.25}}]})
    artifact, reports = apply_recipe(sample, recipe, DataPlan.from_spec("digits", sample), tmp_path / "lr")
    assert reports[0]["factorized"] == {"classifier.1": [64, 16]}
    variant = load_model(artifact)
    assert {"classifier.1.0", "classifier.1.1"} <= {n.name for n in variant.layer_graph()}
    assert variant.layer_graph().total_params < sample.layer_graph().total_params
    assert evaluate(variant, digits("test")).top1 > 0.95


def test_low_rank_rejects_other_layers_and_conflicting_settings(sample):
    with pytest.raises(SettingsError, match="layer 'features.2' cannot be factorized: only Linear and 1x1 Conv"):
        factorize(eager_module(sample, "t"), LowRankSettings(layers=("features.2",)))
    with pytest.raises(SettingsError, match="one of 'rank_ratio' and 'energy', not both"):
        from_dict(LowRankSettings, {"rank_ratio": 0.5, "energy": 0.9}, "lowrank")


def test_taylor_importance_reaches_layers_whose_batchnorm_the_export_folded():
    from paretolab.core.compress.insight.importance import weight_importance
    from paretolab.core.measure.data import open_dataset
    from paretolab.core.model.handle import load_model
    from paretolab.core.sample import sample_model_path

    demo = load_model(sample_model_path("demo"))  # a ResNet with BatchNorm: the ONNX convs carry folded weights
    layers = weight_importance(demo, open_dataset("digits:train", demo.inputs), samples=32)
    assert [x.layer for x in layers if x.taylor is None] == []
    assert all(len(x.channels_taylor) == len(x.channels_l1) for x in layers)
