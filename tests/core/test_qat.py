"""Quantization-aware training after OpenVINO int8 calibration: it runs when asked or when
calibration lost accuracy, its int8 IR is real (FakeQuantize in the file, int8 kernels when
OpenVINO compiles it), the better validation score is kept, and without labels or a PyTorch
module the step says why it only calibrated."""

from __future__ import annotations

import numpy as np
import onnx
import openvino as ov
import pytest

from paretolab.core.compress.quantization import qat
from paretolab.core.compress.quantization.quant_settings import QuantizeSettings
from paretolab.core.compress.quantization.quantize import quantize
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import Cancelled, ParetoLabError
from paretolab.core.measure.data import ArrayDataset, digits
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.eager import eager_module
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import apply_recipe
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path("onnx"))  # the digits CNN, with its PyTorch twin


@pytest.fixture(scope="module")
def data():
    train = digits("train")
    return DataPlan(train.subset(np.arange(192), "digits:train[192]"), digits("val"), digits("test"))


def _recipe(**settings) -> Recipe:
    return Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "openvino", **settings}}]})


def _int8_kernels(xml) -> int:
    """Layers OpenVINO's CPU plugin runs with int8 (or uint8) inputs once the IR is compiled."""
    compiled = ov.Core().compile_model(str(xml), "CPU")
    precisions = [op.get_rt_info()["runtimePrecision"].astype(str) for op in compiled.get_runtime_model().get_ops()
                  if op.get_rt_info()["layerType"].astype(str) in ("Convolution", "FullyConnected")]
    return sum(p in ("i8", "u8") for p in precisions)


def test_qat_always_trains_and_keeps_the_better_int8_model(sample, data, tmp_path):
    artifact, reports = apply_recipe(sample, _recipe(qat="always", qat_epochs=1, qat_lr=1e-4), data, tmp_path / "v")
    step = reports[-1]
    report = step["qat"]
    assert report["ran"] and report["mode"] == "always" and "qat is always" in report["why"]
    assert [h["epoch"] for h in report["history"]] == [0, 1] and report["history"][1]["loss"] > 0
    assert None not in (report["fp32_top1"], report["ptq_top1"], report["qat_top1"])
    better = "qat" if report["qat_top1"] > report["ptq_top1"] else "ptq"
    assert report["chosen"] == better and step["chosen"].endswith("-qat") == (better == "qat")
    assert any(n.startswith(f"quantization-aware training {'kept' if better == 'qat' else 'not kept'}")
               for n in step["notes"])
    kept = evaluate(load_model(artifact), data.validation, backend="openvino").top1
    assert kept == pytest.approx(max(report["qat_top1"], report["ptq_top1"]))  # the file is the one that scored best
    assert qat.fake_quantize_count(artifact) >= 4 and _int8_kernels(artifact) >= 4


def test_trained_model_exports_as_a_real_int8_ir_and_keep_fp32_leaves_a_layer_out(sample, data, tmp_path):
    settings = QuantizeSettings(backend="openvino", qat="always", qat_epochs=1, qat_lr=1e-4, samples=32)
    ptq = quantize(sample, settings, data.train, tmp_path / "ptq.xml", validation=data.validation).artifact
    module = eager_module(sample, "test")
    counts = {}
    for keep in ([], ["classifier.4"]):
        report = qat.QatReport()
        trained = qat.train_fake_quantized(module, settings, data.train, data.validation, keep, report, Progress())
        xml = tmp_path / f"qat{len(keep)}.xml"
        qat.export_ir(trained, ptq, xml, data.validation)
        counts[len(keep)] = qat.fake_quantize_count(xml)
        model = ov.Core().read_model(str(xml))
        assert [p.get_any_name() for p in model.inputs] == ["input"]  # named as the calibrated IR
        assert model.inputs[0].get_partial_shape().is_dynamic  # free batch, as the calibrated IR has it
        assert _int8_kernels(xml) >= 4 - len(keep)
        assert evaluate(sample.like(xml), data.validation, backend="openvino").top1 > 0.9
    assert counts[1] < counts[0]  # the last layer's quantizers are gone


def test_without_labels_the_step_calibrates_only_and_says_why(sample, data, tmp_path):
    unlabelled = ArrayDataset("digits unlabelled", data.train.load(np.arange(len(data.train))))
    plan = DataPlan(unlabelled, ArrayDataset("val unlabelled", data.validation.load(np.arange(64))), data.test)
    artifact, reports = apply_recipe(sample, _recipe(), plan, tmp_path / "v")
    assert not reports[-1]["qat"]["ran"] and reports[-1]["qat"]["chosen"] == "ptq"
    assert "quantization-aware training not run: the data has no labels" in " ".join(reports[-1]["notes"])
    assert qat.fake_quantize_count(artifact) > 0
    with pytest.raises(ParetoLabError, match=r"qat always\) cannot run: the data has no labels"):
        apply_recipe(sample, _recipe(qat="always"), plan, tmp_path / "w")


def test_an_onnx_only_model_is_calibrated_with_a_note(sample, data, tmp_path):
    proto = onnx.load(str(sample.path))
    del proto.metadata_props[:]  # no PyTorch twin named any more
    onnx.save(proto, str(tmp_path / "plain.onnx"))
    _, reports = apply_recipe(load_model(tmp_path / "plain.onnx"), _recipe(), data, tmp_path / "v")
    assert "not run: the model is not an editable PyTorch module" in " ".join(reports[-1]["notes"])


def test_a_sweep_never_hands_qat_a_prefix_from_its_cache(sample, data, tmp_path):
    """The cache keeps the pruned model's ONNX, which QAT cannot train: a recipe that may train
    starts afresh (the same recipe, the same variant, whatever ran before it), one that may not
    reuses the cached prefix."""
    from paretolab.core.pipeline.prefix_cache import PrefixCache

    def recipe(qat: str) -> Recipe:
        return Recipe.from_dict({"steps": [
            {"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}},
            {"technique": "quantize", "settings": {"backend": "openvino", "qat_below": 0.0, "qat": qat}}]})

    cache = PrefixCache(tmp_path / "cache")
    apply_recipe(sample, recipe("off"), data, tmp_path / "a", reuse=cache)
    _, reports = apply_recipe(sample, recipe("off"), data, tmp_path / "b", reuse=cache)
    assert reports[0].get("reused")
    _, reports = apply_recipe(sample, recipe("auto"), data, tmp_path / "c", reuse=cache)
    assert not reports[0].get("reused") and "cache" not in reports[-1]["qat"]["why"]


def test_auto_trains_only_when_calibration_lost_more_than_the_threshold(sample, data, tmp_path):
    _, reports = apply_recipe(sample, _recipe(qat_below=100.0), data, tmp_path / "v")
    report = reports[-1]["qat"]
    assert not report["ran"] and report["history"] == [] and "not more than qat_below 100" in report["why"]
    assert report["ptq_top1"] is not None and report["fp32_top1"] is not None


def test_cancel_during_training_stops_and_leaves_no_variant(sample, data, tmp_path):
    def listen(fraction, message):
        if message.startswith("quantization-aware training: epoch 1/2, step 1/"):
            progress.cancel()

    progress = Progress(listen)
    with pytest.raises(Cancelled):
        apply_recipe(sample, _recipe(qat="always"), data, tmp_path / "v", progress=progress)
    assert not list(tmp_path.glob("v*"))


def test_cancel_during_nncfs_calibration_stops_it(sample, data, tmp_path):
    class CancelInCalibration(Progress):
        checks = 0

        def check(self) -> None:
            if self.message.startswith("inserting fake quantizers"):
                self.checks += 1
                if self.checks == 3:  # NNCF is reading its second sample
                    self.cancel()
            super().check()

    progress = CancelInCalibration()
    with pytest.raises(Cancelled):
        apply_recipe(sample, _recipe(qat="always"), data, tmp_path / "v", progress=progress)
    assert progress.checks == 3 and not list(tmp_path.glob("v*"))


def test_qat_settings_are_checked():
    with pytest.raises(SettingsError, match="'qat' always .* needs backend 'openvino'"):
        QuantizeSettings(backend="ort", qat="always").check()
    for bad in ({"qat_epochs": 0}, {"qat_lr": 0.0}, {"qat_below": -1.0}, {"qat": "sometimes"}):
        with pytest.raises(SettingsError):
            QuantizeSettings(backend="openvino", **bad).check()
    QuantizeSettings(backend="ort").check()  # auto on ONNX Runtime: simply not offered there
