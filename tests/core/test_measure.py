"""Evaluation and profiling of real models on the real runtimes."""

from __future__ import annotations

import itertools
import json
import shutil
import threading
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from paretolab.core.errors import Cancelled
from paretolab.core.measure.data import DataError, digits, open_dataset, random_inputs, tensor_file
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.profile import profile_model
from paretolab.core.measure.runtimes import BackendError, available_backends, open_runner
from paretolab.core.model.handle import load_model
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_info, sample_model_path

HAS_CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA device on this machine")


@pytest.fixture(scope="module")
def sample_onnx():
    return load_model(sample_model_path("onnx"))


@pytest.fixture(scope="module")
def sample_torch():
    return load_model(sample_model_path("torchscript"))


def test_cpu_backends_are_always_listed():
    pairs = {(b.backend, b.device) for b in available_backends()}
    assert {("torch", "cpu"), ("ort", "cpu"), ("openvino", "cpu")} <= pairs


@pytest.fixture(scope="module")
def outputs_per_backend(sample_onnx, sample_torch):
    """The sample's test-set logits and accuracy on every CPU backend."""
    results = {}
    for backend in ("torch", "ort", "openvino"):
        handle = sample_torch if backend == "torch" else sample_onnx
        result = evaluate(handle, digits("test"), backend=backend, reference=sample_torch, reference_backend="torch")
        with open_runner(handle, backend) as runner:
            logits = runner.run(digits("test").load(np.arange(360)))[0]
        results[backend] = (result, logits)
    return results


def test_same_accuracy_on_every_backend(outputs_per_backend):
    accuracies = {b: r.top1 for b, (r, _) in outputs_per_backend.items()}
    assert max(accuracies.values()) - min(accuracies.values()) <= 0.005, accuracies
    assert accuracies["ort"] == pytest.approx(sample_info()["accuracy"]["test"], abs=1e-4)
    for result, _ in outputs_per_backend.values():
        assert result.samples == 360 and result.top5 is not None and result.top5 >= result.top1


def test_backends_agree_with_each_other(outputs_per_backend):
    for (a, (_, la)), (b, (_, lb)) in itertools.combinations(outputs_per_backend.items(), 2):
        agreement = float((la.argmax(1) == lb.argmax(1)).mean())
        assert agreement >= 0.999, (a, b, agreement)
    for backend, (result, _) in outputs_per_backend.items():
        assert result.agreement >= 0.999 and result.fidelity[0].cosine > 0.9999, backend


def test_unlabelled_data_falls_back_to_fidelity(sample_onnx, sample_torch, tmp_path):
    np.save(tmp_path / "x.npy", digits("val").load(np.arange(50))[0])
    data = open_dataset(str(tmp_path / "x.npy"), sample_onnx.inputs)
    result = evaluate(sample_onnx, data, reference=sample_torch, reference_backend="torch")
    assert result.top1 is None and result.agreement == 1.0
    assert any("fidelity to the reference instead of accuracy" in n for n in result.notes)
    alone = evaluate(sample_onnx, data)
    assert alone.fidelity == [] and any("give --reference" in n for n in alone.notes)


class TwoHeads(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = torch.nn.Linear(6, 4)
        self.cls = torch.nn.Linear(4, 3)

    def forward(self, x):
        features = torch.relu(self.body(x))
        return self.cls(features), features.reshape(-1, 2, 2)  # an embedding, not class scores


def test_multi_output_models_get_fidelity_per_output(tmp_path):
    torch.manual_seed(0)
    model = TwoHeads().eval()
    path = tmp_path / "two.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (torch.rand(1, 6),),
            str(path),
            dynamo=False,
            input_names=["x"],
            output_names=["scores", "features"],
            dynamic_axes={"x": {0: "n"}, "scores": {0: "n"}, "features": {0: "n"}},
        )
    np.savez(tmp_path / "d.npz", x=np.random.default_rng(0).random((20, 6), dtype=np.float32), y=np.arange(20) % 3)
    handle = load_model(path)
    result = evaluate(
        handle, tensor_file(tmp_path / "d.npz", ["x"]), backend="openvino", reference=handle, reference_backend="ort"
    )
    assert [f.name for f in result.fidelity] == ["scores", "features"]
    assert result.fidelity[0].agreement == 1.0 and result.fidelity[1].agreement is None
    assert result.top1 is not None and result.top5 is None


def test_fixed_batch_models_get_padded_batches(tmp_path, sample_torch):
    path = tmp_path / "fixed4.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(sample_torch.native, (torch.rand(4, 1, 8, 8),), str(path), dynamo=False,
                          input_names=["input"], output_names=["logits"])
    handle = load_model(path)
    assert handle.inputs[0].shape == (4, 1, 8, 8)
    val = digits("val")  # 359 samples: the last batch is short
    result = evaluate(handle, val, batch_size=32, reference=sample_torch, reference_backend="torch")
    assert result.samples == 359 and result.agreement == 1.0


def test_labels_out_of_range(sample_onnx, tmp_path):
    np.savez(tmp_path / "bad.npz", x=digits("val").load(np.arange(8))[0], y=np.arange(8) + 5)
    with pytest.raises(DataError, match="labels from 5 to 12, but digits_cnn.onnx outputs 10 classes"):
        evaluate(sample_onnx, tensor_file(tmp_path / "bad.npz", ["input"]))


def test_missing_backend_or_device_lists_what_is_available(sample_onnx, tmp_path):
    with pytest.raises(BackendError, match="unknown backend 'tvm'; choose one of: torch, inductor, ort, openvino"):
        open_runner(sample_onnx, "tvm")
    if not HAS_CUDA:
        with pytest.raises(BackendError, match="ONNX Runtime has no device 'cuda' on this machine; available: cpu"):
            open_runner(sample_onnx, "ort", "cuda")
    foreign = tmp_path / "digits_cnn.onnx"  # without the PyTorch weights the sample's ONNX file points to
    shutil.copyfile(sample_onnx.path, foreign)
    with pytest.raises(BackendError, match="torch backend needs a PyTorch model, and digits_cnn.onnx is onnx"):
        open_runner(load_model(foreign), "torch")


def test_an_onnx_file_made_from_a_pytorch_model_runs_on_torch_as_that_model(sample_onnx):
    """The sample's ONNX file names the PyTorch model it was exported from: on torch, that model runs."""
    x = random_inputs(sample_onnx.inputs, count=4).load(np.arange(4))
    with open_runner(sample_onnx, "torch") as torch_runner, open_runner(sample_onnx, "ort") as ort_runner:
        np.testing.assert_allclose(torch_runner.run(x)[0], ort_runner.run(x)[0], rtol=1e-4, atol=1e-4)


def test_a_model_a_runtime_cannot_run_names_the_operator(tmp_path):
    node = helper.make_node("Foo", ["x"], ["y"], domain="com.example", name="mystery")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)]),
        tmp_path / "foo.onnx",
    )
    handle = load_model(tmp_path / "foo.onnx")
    with pytest.raises(BackendError, match=r"ONNX Runtime cannot load foo.onnx: .*com.example:Foo"):
        open_runner(handle, "ort")
    with pytest.raises(BackendError, match=r"OpenVINO cannot compile foo.onnx for cpu: .*com.example.Foo"):
        open_runner(handle, "openvino")


@pytest.mark.parametrize("backend", ["ort", "openvino"])
def test_profile_reports_percentiles_and_named_layer_times(sample_onnx, backend):
    result = profile_model(sample_onnx, backend=backend, batch_sizes=(1, 8), runs=60, budget_s=2.0, threads=1)
    assert [s.batch for s in result.latency] == [1, 8]
    for s in result.latency:
        assert 5 <= s.runs <= 60
        assert 0 < s.min_ms <= s.median_ms <= s.p90_ms <= s.p99_ms
        assert s.throughput == pytest.approx(s.batch * 1000 / s.median_ms)
    assert result.peak_rss_mib > 0 and result.file_size_bytes == sample_model_path().stat().st_size
    mapped = {t.layer for t in result.layers if t.mapped}
    assert {"features.0", "features.2", "features.5", "classifier.1"} <= mapped
    assert sum(t.share for t in result.layers) == pytest.approx(1.0)
    assert all(t.ms > 0 for t in result.layers if t.mapped)
    if backend == "openvino":
        assert result.async_throughput > 0 and result.async_requests >= 1
    doc = json.loads(result.to_json())
    assert doc["latency"][0]["batch"] == 1 and doc["machine"]["cores"] >= 1


def test_profile_on_torch_and_for_a_converted_model(sample_torch):
    result = profile_model(sample_torch, backend="torch", batch_sizes=(2,), runs=20, budget_s=1.0)
    assert result.latency[0].runs >= 5 and result.layers == []
    via_ort = profile_model(sample_torch, backend="ort", batch_sizes=(1,), runs=20, budget_s=1.0)
    assert {"features.0", "features.2", "features.5"} <= {t.layer for t in via_ort.layers}


def test_cancel_stops_profiling_quickly(sample_onnx):
    progress = Progress()
    timer = threading.Timer(0.3, progress.cancel)
    timer.start()
    with pytest.raises(Cancelled):
        profile_model(sample_onnx, runs=10**9, budget_s=60.0, progress=progress)
    timer.cancel()


@needs_cuda
def test_cuda_backends_match_cpu(sample_onnx, sample_torch):
    cpu = evaluate(sample_torch, digits("test"), backend="torch")
    gpu = evaluate(
        sample_torch, digits("test"), backend="torch", device="cuda", reference=sample_torch, reference_backend="torch"
    )
    assert gpu.top1 == pytest.approx(cpu.top1, abs=0.005) and gpu.agreement >= 0.999
    if ("ort", "cuda") in {(b.backend, b.device) for b in available_backends()}:
        ort_gpu = evaluate(sample_onnx, digits("test"), backend="ort", device="cuda")
        assert ort_gpu.top1 == pytest.approx(cpu.top1, abs=0.005)
    profile = profile_model(sample_torch, backend="torch", device="cuda", batch_sizes=(1, 8), runs=50, budget_s=2.0)
    assert profile.latency[0].median_ms > 0


def test_openvino_profiles_a_torch_model_at_any_batch_after_the_user_fixed_batch_1():
    """The shape the user gives fixes the sizes; the batch axis stays free in OpenVINO's
    conversion, as it does in the ONNX export."""
    handle = load_model(sample_model_path("torchscript"), input_shapes={None: (1, 1, 8, 8)})
    result = profile_model(handle, backend="openvino", batch_sizes=(1, 8), runs=10, warmup=2, budget_s=0.5,
                           per_layer=False, async_budget_s=0.2)
    assert [s.batch for s in result.latency] == [1, 8] and not result.notes


def test_a_node_openvino_renamed_when_fusing_is_timed_as_the_layer_it_came_from(model_files):
    from paretolab.core.measure.layer_times import map_layer_times

    graph = load_model(model_files["onnx"]).layer_graph()
    stem = next(node for node in graph if node.op == "Conv")
    raw = {"Multiply_1234": ("Convolution", 0.3), "input_abcd_acdb": ("Reorder", 0.1)}
    times = map_layer_times(raw, graph, {"Multiply_1234": [f"{stem.source}/WithoutBiases", stem.source]})
    assert [(t.layer, t.mapped) for t in times] == [(stem.name, True), ("[runtime] input_abcd_acdb", False)]
