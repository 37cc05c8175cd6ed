"""Quantization of the sample on real runtimes: int8 really is int8, and accuracy holds."""

from __future__ import annotations

import onnx
import openvino as ov
import pytest

from paretolab.core.compress.quantization.fastest_faithful import PORTABILITY
from paretolab.core.compress.quantization.quantize import QuantizeSettings, quantize
from paretolab.core.errors import Cancelled
from paretolab.core.measure.data import DataError, digits, random_inputs
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.machine import has_bf16
from paretolab.core.measure.timing import Speedup, time_side_by_side
from paretolab.core.model.handle import load_model
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_info, sample_model_path
from paretolab.core.settings import SettingsError, from_dict

BASELINE = sample_info()["accuracy"]["test"]


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path("onnx"))


def onnx_weight_types(path) -> set[str]:
    return {
        onnx.helper.tensor_dtype_to_np_dtype(t.data_type).name for t in onnx.load(str(path)).graph.initializer if len(t.dims) >= 2
    }


def ir_constant_types(path) -> set[str]:
    model = ov.Core().read_model(str(path))
    return {op.get_output_element_type(0).get_type_name() for op in model.get_ordered_ops()
            if op.get_type_name() == "Constant" and len(op.get_output_shape(0)) >= 2}


def test_ort_auto_int8_times_every_format_and_keeps_the_fastest_faithful(sample, tmp_path):
    outcome = quantize(sample, QuantizeSettings(), digits("train"), tmp_path / "q.onnx", validation=digits("val"))
    assert {c.name for c in outcome.candidates} == {"qop-u8s8", "qdq-u8s8", "qdq-s8s8", "qop-s8s8"}
    chosen = next(c for c in outcome.candidates if c.chosen)
    faithful = [c for c in outcome.candidates if c.agreement >= 0.98]
    fastest = min(faithful, key=lambda c: c.median_ms)
    assert chosen in faithful and chosen.low_ms <= fastest.high_ms  # the fastest, or tied with it within the noise
    if chosen is not fastest:  # a tie goes to the more portable format, and says so
        assert PORTABILITY.index(chosen.name) < PORTABILITY.index(fastest.name)
        assert any("more portable" in n for n in outcome.notes)
    assert outcome.chosen == f"ort-int8-{chosen.name}"
    assert "int8" in onnx_weight_types(outcome.artifact)
    result = evaluate(load_model(outcome.artifact), digits("test"), reference=sample)
    assert result.top1 >= BASELINE - 0.01 and result.agreement >= 0.98


@pytest.mark.parametrize(
    ("settings", "weight_type", "tolerance"),
    [
        (QuantizeSettings(precision="fp16"), "float16", 0.005),
        (QuantizeSettings(precision="dynamic-int8"), "int8", 0.01),
        (QuantizeSettings(format="qdq-s8s8", calibration="entropy", samples=64), "int8", 0.01),
        (QuantizeSettings(format="qop-u8s8", calibration="percentile", per_channel=False), "int8", 0.01),
    ],
)
def test_ort_precisions(sample, tmp_path, settings, weight_type, tolerance):
    outcome = quantize(sample, settings, digits("train"), tmp_path / "q.onnx", validation=digits("val"))
    assert weight_type in onnx_weight_types(outcome.artifact)
    result = evaluate(load_model(outcome.artifact), digits("test"), reference=sample)
    assert result.top1 >= BASELINE - tolerance


@pytest.mark.parametrize(("settings", "constant_type"), [
    (QuantizeSettings(backend="openvino"), "i8"),
    (QuantizeSettings(backend="openvino", precision="fp16"), "f16"),
    (QuantizeSettings(backend="openvino", max_drop=0.01), "i8"),
])
def test_openvino_precisions(sample, tmp_path, settings, constant_type):
    outcome = quantize(sample, settings, digits("train"), tmp_path / "q", validation=digits("val"))
    assert outcome.artifact.suffix == ".xml" and outcome.artifact.with_suffix(".bin").exists()
    assert constant_type in ir_constant_types(outcome.artifact)
    result = evaluate(load_model(outcome.artifact), digits("test"), backend="openvino", reference=sample)
    assert result.top1 >= BASELINE - 0.01


def test_torch_models_quantize_through_their_onnx_form(tmp_path):
    handle = load_model(sample_model_path("torchscript"))
    outcome = quantize(handle, QuantizeSettings(format="qop-u8s8"), digits("train"), tmp_path / "q.onnx")
    assert "int8" in onnx_weight_types(outcome.artifact)


def test_layers_kept_in_fp32_stay_float(sample, tmp_path):
    settings = QuantizeSettings(format="qop-u8s8", keep_fp32=("features.0", "classifier.4"))
    outcome = quantize(sample, settings, digits("train"), tmp_path / "q.onnx")
    ops = {n.name: n.op_type for n in onnx.load(str(outcome.artifact)).graph.node}
    assert ops["features.0"] == "Conv" and ops["classifier.4"] == "Gemm"
    assert sum(op == "QLinearConv" for op in ops.values()) == 2
    with pytest.raises(SettingsError, match="keep_fp32 names no layer 'features.9'"):
        quantize(sample, QuantizeSettings(keep_fp32=("features.9",)), digits("train"), tmp_path / "x.onnx")


def test_settings_are_validated_by_name():
    with pytest.raises(SettingsError, match="step 1: unknown setting 'precison'"):
        from_dict(QuantizeSettings, {"precison": "int8"}, "step 1")
    with pytest.raises(SettingsError, match="setting 'precision' = 'int4' is not a valid choice"):
        from_dict(QuantizeSettings, {"precision": "int4"}, "step 1")
    with pytest.raises(SettingsError, match="'max_drop' .* needs backend 'openvino'"):
        from_dict(QuantizeSettings, {"max_drop": 0.01}, "step 1")
    with pytest.raises(SettingsError, match="'samples' must be at least 1"):
        from_dict(QuantizeSettings, {"samples": 0}, "step 1")
    assert from_dict(QuantizeSettings, {"keep_fp32": ["a"], "backend": "openvino"}, "s").keep_fp32 == ("a",)


def test_calibration_data_that_does_not_fit(sample, tmp_path, model_files):
    with pytest.raises(DataError, match="samples of shape \\[3, 16, 16\\]"):
        quantize(sample, QuantizeSettings(), random_inputs(load_model(model_files["onnx"]).inputs, 8), tmp_path / "q.onnx")
    unlabelled = random_inputs(sample.inputs, 16)
    with pytest.raises(SettingsError, match="needs labelled data"):
        quantize(sample, QuantizeSettings(backend="openvino", max_drop=0.01), unlabelled, tmp_path / "q", validation=unlabelled)
    assert list(tmp_path.iterdir()) == []


def test_cancel_leaves_no_artifact(sample, tmp_path):
    progress = Progress()
    progress.cancel()
    with pytest.raises(Cancelled):
        quantize(sample, QuantizeSettings(), digits("train"), tmp_path / "q.onnx", progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_cancel_while_timing_candidates(sample, tmp_path):
    progress = Progress(lambda fraction, message: message.startswith("timing") and progress.cancel())
    with pytest.raises(Cancelled):
        quantize(sample, QuantizeSettings(), digits("train"), tmp_path / "q.onnx", progress=progress)
    assert list(tmp_path.iterdir()) == []


def test_incomplete_shape_inference_leaves_the_working_folder_clean(sample, tmp_path, monkeypatch):
    """ONNX Runtime saves sym_shape_infer_temp.onnx into the current folder when its symbolic shape
    inference stops short; ParetoLab runs it from a private folder."""
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    monkeypatch.setattr(SymbolicShapeInference, "_infer_impl", lambda self, *a, **k: setattr(self, "run_", False) or False)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    outcome = quantize(
        sample, QuantizeSettings(format="qdq-u8s8"), digits("train"), tmp_path / "q.onnx", validation=digits("val")
    )
    assert outcome.artifact.exists() and "int8" in onnx_weight_types(outcome.artifact)
    assert list(cwd.iterdir()) == []


def test_one_int8_form_that_fails_drops_out_and_the_others_compete(sample, tmp_path, monkeypatch):
    from paretolab.core.compress.quantization import quantize as quantize_module
    from paretolab.core.errors import ParetoLabError

    real = quantize_module._ort_static

    def flaky(src, out, fmt, *args):
        if fmt == "qop-u8s8":  # as ONNX Runtime does on some transformer graphs: INVALID_GRAPH
            raise RuntimeError("[ONNXRuntimeError] : 10 : INVALID_GRAPH : This is an invalid model.\nmore detail")
        return real(src, out, fmt, *args)

    monkeypatch.setattr(quantize_module, "_ort_static", flaky)
    outcome = quantize(sample, QuantizeSettings(), digits("train"), tmp_path / "q.onnx", validation=digits("val"))
    assert {c.name for c in outcome.candidates} == {"qdq-u8s8", "qdq-s8s8", "qop-s8s8"}
    assert any(n.startswith("qop-u8s8 could not be built ([ONNXRuntimeError] : 10 : INVALID_GRAPH") for n in outcome.notes)
    assert outcome.artifact.exists()

    def broken(*args):
        raise ValueError("Expected conv2d_394.w_0 to be an initializer")

    monkeypatch.setattr(quantize_module, "_ort_static", broken)
    with pytest.raises(ParetoLabError, match=r"could not quantize digits_cnn.onnx to int8: .*try OpenVINO int8 or FP16$"):
        quantize(sample, QuantizeSettings(), digits("train"), tmp_path / "none.onnx", validation=digits("val"))
    assert not (tmp_path / "none.onnx").exists()


def test_int8_on_a_model_where_it_pays_is_kept_and_an_independent_timing_confirms_it(tmp_path):
    """On the 109 M-MAC demo ResNet int8 is clearly faster than FP32: no warning, and timing the
    result against FP32 again, apart from the step's own timings, shows the gain. (On the tiny
    digits CNN int8 and FP32 are within run-to-run noise, so only a model where it pays can check this.)"""
    demo = load_model(sample_model_path("demo"))
    outcome = quantize(demo, QuantizeSettings(), digits("train", 32), tmp_path / "q.onnx", validation=digits("val", 32))
    assert not any("not measurably faster" in w for w in outcome.warnings), outcome.warnings
    again = Speedup.of(*time_side_by_side([demo, load_model(outcome.artifact)], rounds=8, budget_s=3.0))
    assert again.low > 1.3, again.text()


@pytest.mark.skipif(not has_bf16(), reason="this CPU has neither AVX512-BF16 nor AMX")
def test_openvino_bf16_compute_is_recorded_in_the_ir_and_applied_when_measured(tmp_path):
    """The weights stay FP32; the IR asks OpenVINO to compute in bf16, and ParetoLab's runner, which
    pins FP32 models to f32, leaves that request alone. Faithful on the demo."""
    from paretolab.core.measure.plan import DataPlan
    from paretolab.core.measure.runtimes import PRECISION_OPTION, open_runner

    demo = load_model(sample_model_path("demo"))
    outcome = quantize(demo, QuantizeSettings(backend="openvino", precision="bf16"), digits("train", 32), tmp_path / "bf16")
    assert outcome.chosen == "openvino-bf16" and ir_constant_types(outcome.artifact) == {"f32"}
    assert ov.Core().read_model(str(outcome.artifact)).get_rt_info(PRECISION_OPTION).astype(str) == "bf16"
    variant = load_model(outcome.artifact)
    with open_runner(variant, "openvino") as bf16, open_runner(demo, "openvino") as fp32:
        assert str(bf16.compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'bfloat16'>"
        assert str(fp32.compiled.get_property("INFERENCE_PRECISION_HINT")) == "<Type: 'float32'>"
    result = evaluate(variant, DataPlan.from_spec(None, demo).test, backend="openvino", reference=demo)
    assert result.agreement >= 0.99 and result.cosine > 0.999


def timed_as(monkeypatch, fp32_ms: float, **candidate_ms: float):
    """Substitute the side-by-side timing in the contest: FP32 and each candidate (by its file's
    stem) take these milliseconds, give or take 1 %, so which wins does not depend on this CPU."""
    from paretolab.core.compress.quantization import fastest_faithful
    from paretolab.core.measure.timing import Timing

    def timed(handles, **kwargs):
        ms = [fp32_ms] + [candidate_ms[h.path.stem] for h in handles[1:]]
        return [Timing.from_seconds([m / 1000 * (1 + 0.01 * (i % 3 - 1)) for i in range(30)]) for m in ms]

    monkeypatch.setattr(fastest_faithful, "time_side_by_side", timed)


def test_openvino_fastest_measures_int8_and_bf16_beside_fp32_and_keeps_the_fastest_faithful(tmp_path, monkeypatch):
    from paretolab.core.compress.quantization import quantize_openvino
    from paretolab.core.measure.plan import DataPlan

    monkeypatch.setattr(quantize_openvino, "has_bf16", lambda: True)
    timed_as(monkeypatch, 10.0, int8=4.0, bf16=6.0)
    demo = load_model(sample_model_path("demo"))
    plan = DataPlan.from_spec(None, demo)
    outcome = quantize(demo, QuantizeSettings(backend="openvino", precision="fastest"), plan.train, tmp_path / "v",
                       validation=plan.validation)
    by_name = {c.name: c for c in outcome.candidates}
    assert set(by_name) == {"int8", "bf16"} and all(c.agreement >= 0.98 for c in by_name.values())
    assert outcome.chosen == "openvino-int8" and by_name["int8"].chosen and not by_name["bf16"].chosen
    assert outcome.artifact.suffix == ".xml" and outcome.artifact.with_suffix(".bin").exists()
    assert ir_constant_types(outcome.artifact) >= {"i8"}


def test_openvino_fastest_keeps_bf16_when_int8_cannot_be_built(sample, tmp_path, monkeypatch):
    import nncf

    from paretolab.core.compress.quantization import quantize_openvino

    def broken(*args, **kwargs):
        raise RuntimeError("NNCF failed on this graph")

    monkeypatch.setattr(nncf, "quantize", broken)
    monkeypatch.setattr(quantize_openvino, "has_bf16", lambda: True)
    timed_as(monkeypatch, 10.0, bf16=5.0)
    outcome = quantize(sample, QuantizeSettings(backend="openvino", precision="fastest"), digits("train"),
                       tmp_path / "v", validation=digits("val"))
    assert outcome.chosen == "openvino-bf16" and [c.name for c in outcome.candidates] == ["bf16"]
    assert any("int8 could not be built (NNCF failed on this graph)" in n for n in outcome.notes), outcome.notes
    assert ov.Core().read_model(str(outcome.artifact)).has_rt_info(["runtime_options", "INFERENCE_PRECISION_HINT"])


def test_openvino_fastest_keeps_fp32_when_no_candidate_is_faster(sample, tmp_path, monkeypatch):
    from paretolab.core.compress.quantization import quantize_openvino

    monkeypatch.setattr(quantize_openvino, "has_bf16", lambda: True)
    timed_as(monkeypatch, 5.0, int8=5.05, bf16=7.0)
    outcome = quantize(sample, QuantizeSettings(backend="openvino", precision="fastest"), digits("train"),
                       tmp_path / "v", validation=digits("val"))
    assert outcome.chosen == "openvino-fp32" and not any(c.chosen for c in outcome.candidates)
    assert any("no int8 or bf16 form was measurably faster than FP32" in n and "kept the FP32 model" in n
               for n in outcome.notes), outcome.notes
    assert not outcome.warnings
    model = ov.Core().read_model(str(outcome.artifact))
    assert not model.has_rt_info(["runtime_options", "INFERENCE_PRECISION_HINT"])
    assert ir_constant_types(outcome.artifact) <= {"f32"} and outcome.artifact.with_suffix(".bin").exists()


def test_openvino_fastest_tries_int8_alone_on_a_cpu_without_bf16(sample, tmp_path, monkeypatch):
    from paretolab.core.compress.quantization import quantize_openvino

    monkeypatch.setattr(quantize_openvino, "has_bf16", lambda: False)
    timed_as(monkeypatch, 10.0, int8=5.0)
    outcome = quantize(sample, QuantizeSettings(backend="openvino", precision="fastest"), digits("train"),
                       tmp_path / "v", validation=digits("val"))
    assert outcome.chosen == "openvino-int8" and [c.name for c in outcome.candidates] == ["int8"]
    assert any("bf16 not tried" in n for n in outcome.notes)
    with pytest.raises(SettingsError, match="precision .fastest. is offered through OpenVINO"):
        from_dict(QuantizeSettings, {"precision": "fastest"}, "quantize")


def test_bf16_is_refused_in_one_line_on_a_cpu_without_it(sample, tmp_path, monkeypatch):
    from paretolab.core.compress.quantization import quantize_openvino
    from paretolab.core.errors import ParetoLabError

    monkeypatch.setattr(quantize_openvino, "has_bf16", lambda: False)
    with pytest.raises(ParetoLabError, match="bf16 compute needs a CPU with AVX512-BF16 or AMX"):
        quantize(sample, QuantizeSettings(backend="openvino", precision="bf16"), digits("train"), tmp_path / "bf16")
    assert not list(tmp_path.iterdir())
    with pytest.raises(SettingsError, match="precision .bf16. is offered through OpenVINO"):
        from_dict(QuantizeSettings, {"precision": "bf16"}, "quantize")


def test_int8_candidates_are_checked_and_timed_where_the_variant_will_run(sample, tmp_path, monkeypatch):
    """On a device the quantizer's runtime has (a GPU through onnxruntime-gpu's TensorRT), the
    candidates are timed there; on one it lacks, on the CPU."""
    from paretolab.core.compress.quantization import fastest_faithful
    from paretolab.core.compress.quantization import quantize as quantize_module
    from paretolab.core.measure.runtimes import BackendInfo, available_backends

    seen = []

    def checked_on(handle, data, *, device="cpu", **kwargs):  # each candidate is checked, then timed, on the device
        seen.append(device)
        raise Cancelled("device recorded")

    monkeypatch.setattr(fastest_faithful, "evaluate", checked_on)
    with pytest.raises(Cancelled):
        quantize(sample, QuantizeSettings(), digits("train"), tmp_path / "a.onnx", device="cuda")  # no onnxruntime-gpu
    here = (*available_backends(), BackendInfo("ort", "tensorrt", "test", "TensorrtExecutionProvider"))
    monkeypatch.setattr(quantize_module, "available_backends", lambda: here)
    with pytest.raises(Cancelled):
        quantize(sample, QuantizeSettings(), digits("train"), tmp_path / "b.onnx", device="tensorrt")
    assert seen == ["cpu", "tensorrt"]
