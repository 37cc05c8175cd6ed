"""Pruning and distillation on real models: channels really go, the result still runs
everywhere, and distillation wins back accuracy."""

from __future__ import annotations

import copy
import math

import numpy as np
import onnx
import pytest
import torch

from model_zoo import TINY_INPUT
from paretolab.core.compress.distill import DistillSettings, distill
from paretolab.core.compress.pruning.prune import PruneSettings, prune_module, prune_onnx
from paretolab.core.errors import Cancelled
from paretolab.core.measure.data import digits
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.model.eager import TechniqueUnavailable, eager_module
from paretolab.core.model.handle import load_model
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError, from_dict

X = (torch.rand(1, 1, 8, 8),)


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path("onnx"))


@pytest.fixture()
def eager(sample):
    return eager_module(sample, "test")


def test_sample_onnx_has_its_eager_twin_and_the_copy_is_independent(sample, eager):
    with torch.no_grad():
        eager.features[0].weight.zero_()
    fresh = eager_module(sample, "test")
    assert fresh.features[0].weight.abs().sum().item() > 0


def test_structured_pruning_removes_channels_rounded_to_eight(eager):
    module, report = prune_module(eager, X, PruneSettings(sparsity=0.5))
    assert report.channels == {"features.0": (16, 8), "features.2": (32, 16), "features.5": (64, 32), "classifier.1": (64, 32)}
    assert module.classifier[4].out_features == 10  # the output layer keeps its classes
    assert report.params_after == sum(p.numel() for p in module.parameters()) < report.params_before / 3
    assert report.macs_before == 616_064 and report.macs_after < report.macs_before / 3
    assert module(*X).shape == (1, 10)


def test_structured_pruning_keeps_residual_connections_valid(model_files):
    handle = load_model(model_files["pickle"], trust=True, input_shapes={None: TINY_INPUT})
    module, report = prune_module(eager_module(handle, "t"), (torch.rand(TINY_INPUT),), PruneSettings(sparsity=0.5, round_to=2))
    assert module.stem.out_channels == module.block.conv.out_channels == 4  # both sides of the Add shrink together
    assert module(torch.rand(TINY_INPUT)).shape == (1, 10)


def test_pruned_model_runs_in_onnxruntime_and_openvino_with_fewer_macs(eager, sample, tmp_path):
    from paretolab.core.model.torch_onnx import export_to_onnx

    module, _ = prune_module(eager, X, PruneSettings(sparsity=0.5))
    path = tmp_path / "pruned.onnx"
    export_to_onnx(module, X, path, ["input"], output_names=["logits"])
    pruned = load_model(path)
    assert pruned.layer_graph().total_macs < sample.layer_graph().total_macs / 3
    for backend in ("ort", "openvino"):
        result = evaluate(pruned, digits("val"), backend=backend)
        assert result.samples == 359 and result.top1 is not None


def test_per_layer_ratios_skip_and_global_taylor(eager):
    settings = PruneSettings(sparsity=0.5, layer_ratios={"features.5": 0.25}, skip=("features.0",))
    module, report = prune_module(copy.deepcopy(eager), X, settings)
    assert "features.0" not in report.channels and report.channels["features.5"] == (64, 48)
    messages = []
    module, report = prune_module(copy.deepcopy(eager), X, PruneSettings(importance="taylor", scope="global"), digits("train"),
                                  Progress(lambda f, m: messages.append(m)))
    assert report.params_after < report.params_before
    where = "cuda" if torch.cuda.is_available() else "cpu"  # "auto": the GPU when there is one
    assert report.gradients["device"] == where and report.gradients["seconds"] > 0
    assert f"the gradients for Taylor importance took {report.gradients['seconds']:.1f} s on {where}" in messages
    assert next(module.parameters()).device.type == "cpu"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_taylor_gradients_on_cuda_rank_channels_as_on_the_cpu(eager):
    on = {d: prune_module(copy.deepcopy(eager), X, PruneSettings(importance="taylor", device=d), digits("train"))[1]
          for d in ("cpu", "cuda")}
    assert on["cuda"].gradients["device"] == "cuda" and on["cuda"].channels == on["cpu"].channels


def test_unstructured_pruning_zeroes_weights_but_keeps_shapes(eager, sample, tmp_path):
    module, report = prune_module(copy.deepcopy(eager), X, PruneSettings(method="unstructured", sparsity=0.7, scope="global"))
    assert report.zero_fraction == pytest.approx(0.7, abs=0.01)
    assert module.features[2].weight.shape == (32, 16, 3, 3)
    assert any("same speed" in n for n in report.notes)
    out = tmp_path / "sparse.onnx"
    report = prune_onnx(sample.path, out, PruneSettings(method="unstructured", sparsity=0.6), sample.layer_graph())
    weights = [onnx.numpy_helper.to_array(t) for t in onnx.load(str(out)).graph.initializer if len(t.dims) >= 2]
    assert all(float((w == 0).mean()) == pytest.approx(0.6, abs=0.02) for w in weights)
    assert evaluate(load_model(out), digits("val")).top1 > 0.5


def test_layers_that_cannot_be_pruned_say_why(eager, sample, tmp_path):
    with pytest.raises(SettingsError, match="layer 'features.1' \\(ReLU\\) has no weights to prune"):
        prune_module(eager, X, PruneSettings(layer_ratios={"features.1": 0.5}))
    with pytest.raises(SettingsError, match="layer 'classifier.4' cannot be pruned: its outputs are the model's outputs"):
        prune_module(eager, X, PruneSettings(layer_ratios={"classifier.4": 0.5}))
    with pytest.raises(SettingsError, match="no layer named 'conv9'; prunable layers: features.0"):
        prune_module(eager, X, PruneSettings(skip=("conv9",)))
    with pytest.raises(SettingsError, match="unstructured pruning only"):
        prune_onnx(sample.path, tmp_path / "x.onnx", PruneSettings(), sample.layer_graph())


@pytest.mark.parametrize("sparsity", [-0.1, 0.995, 1.0])
def test_sparsity_outside_the_range(sparsity):
    with pytest.raises(SettingsError, match="'sparsity' must be between 0 and 0.99"):
        from_dict(PruneSettings, {"sparsity": sparsity}, "prune")


def test_structured_pruning_of_formats_without_an_eager_module(model_files, tmp_path):
    with pytest.raises(TechniqueUnavailable, match="digits_cnn.pt is TorchScript"):
        eager_module(load_model(sample_model_path("torchscript")), "structured pruning")
    with pytest.raises(TechniqueUnavailable, match="tiny.onnx is ONNX only"):
        eager_module(load_model(model_files["onnx"]), "structured pruning")


def test_distillation_recovers_a_pruned_student(eager, sample):
    student, _ = prune_module(eager, X, PruneSettings(sparsity=0.5))
    student, report = distill(student, sample, digits("train"), digits("val"), DistillSettings(loss="both", epochs=6))
    assert report.metric == "top1" and report.history
    assert report.history[-1]["kd_loss"] < report.history[0]["kd_loss"]
    assert report.best_score > report.initial_score + 0.3
    assert evaluate_torch(student) == pytest.approx(report.best_score)


def evaluate_torch(module) -> float:
    val = digits("val")
    with torch.no_grad():
        logits = module(torch.from_numpy(val.load(np.arange(len(val)))[0])).numpy()
    return float((logits.argmax(1) == val.labels).mean())


def test_cancelled_distillation_keeps_the_best_student(eager, sample):
    student, _ = prune_module(eager, X, PruneSettings(sparsity=0.5))
    progress = Progress(lambda fraction, message: message.startswith("epoch 3/") and progress.cancel())
    student, report = distill(student, sample, digits("train"), digits("val"), DistillSettings(loss="both", epochs=10), progress)
    assert report.cancelled and len(report.history) == 2
    assert evaluate_torch(student) == pytest.approx(report.best_score)
    with pytest.raises(Cancelled):
        progress.check()


def test_distillation_without_labels_scores_agreement(eager, sample, tmp_path):
    from paretolab.core.measure.data import ArrayDataset

    train = ArrayDataset("unlabelled", [digits("train").load(np.arange(300))[0]])
    student, report = distill(eager, sample, train, train, DistillSettings(loss="teacher", epochs=1))
    assert report.metric == "agreement" and 0.9 <= report.best_score <= 1.0


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_distillation_on_cuda(eager, sample):
    student, _ = prune_module(eager, X, PruneSettings(sparsity=0.5))
    student, report = distill(student, sample, digits("train"), digits("val"),
                              DistillSettings(loss="both", epochs=2, device="cuda"))
    assert report.best_score > report.initial_score and next(student.parameters()).device.type == "cpu"


def test_distillation_runs_on_the_gpu_when_there_is_one_and_says_how_long_it_took(eager, sample):
    messages = []
    _, report = distill(eager, sample, digits("train"), digits("val"), DistillSettings(loss="both", epochs=1),
                        Progress(lambda f, m: messages.append(m)))
    assert report.device == ("cuda" if torch.cuda.is_available() else "cpu") and report.seconds > 0
    assert messages[-1] == f"distillation took {report.seconds:.1f} s on {report.device}"


def test_cuda_device_missing_is_a_clear_error(eager, sample):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SettingsError, match="device 'cuda' is not available on this machine"):
        distill(eager, sample, digits("train"), digits("val"), DistillSettings(device="cuda"))


def test_mixup_blends_inputs_that_the_teacher_labels_live(eager, sample, monkeypatch):
    from paretolab.core.compress import training

    seen = []
    original_run = training.Teacher.run
    monkeypatch.setattr(training.Teacher, "run", lambda self, arrays: seen.append(arrays[0]) or original_run(self, arrays))
    train = digits("train")
    student, _ = prune_module(eager, X, PruneSettings(sparsity=0.5))
    distill(student, sample, train, digits("val"), DistillSettings(loss="teacher", epochs=1))
    first = seen[0]
    assert len(seen) == math.ceil(len(train) / 64) and first.shape[1:] == (1, 8, 8)
    raw = train.load(np.arange(len(train)))[0].reshape(len(train), -1)
    assert not any(np.allclose(first[0].ravel(), row) for row in raw)  # a blend, not a training sample

    seen.clear()
    distill(student, sample, train, digits("val"), DistillSettings(loss="teacher", epochs=1, mixup=0.0))
    assert not seen  # without mixup, the teacher's logits come from its cache of the training samples
    with pytest.raises(SettingsError, match="'mixup' must be 0"):
        DistillSettings(mixup=-1).check()


def test_structured_pruning_keeps_the_nearest_multiple_of_eight():
    """torch-pruning alone rounds kept channels down (48 at 70 % would keep 8); ParetoLab keeps
    the nearest multiple, so it never prunes much more than asked."""
    from paretolab.core.compress.pruning.prune import kept_channels
    from paretolab.core.model.eager import eager_module

    demo = load_model(sample_model_path("demo"))
    _, report = prune_module(eager_module(demo, "test"), (torch.zeros(1, 1, 32, 32),), PruneSettings(sparsity=0.7))
    kept = {after for _, after in report.channels.values()}
    assert kept == {16, 32, 56} == {kept_channels(c, 0.3, 8) for c in (48, 96, 192)}


def test_modules_that_return_dataclasses_or_dicts_prune_and_keep_their_outputs():
    """Hugging Face models return a ModelOutput (a dataclass and a dict): the first tensor is the
    logits, and the layer producing it keeps its width."""
    from dataclasses import dataclass

    from paretolab.core.model.eager import first_output, output_tensors

    @dataclass
    class Output:
        logits: torch.Tensor
        hidden: torch.Tensor | None = None

    class Classifier(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Linear(16, 64)
            self.head = torch.nn.Linear(64, 4)

        def forward(self, x: torch.Tensor) -> Output:
            return Output(self.head(torch.relu(self.body(x))))

    x = torch.zeros(2, 16)
    assert first_output({"logits": x, "aux": None}) is x and output_tensors([x, {"a": x}, None]) == [x, x]
    module, report = prune_module(Classifier(), (x,), PruneSettings(sparsity=0.5, importance="taylor"))
    assert report.channels == {"body": (64, 32)} and module(x).logits.shape == (2, 4)


class _FixedReshape(torch.nn.Module):
    """A CREPE-like pitch model: convolutions, then a reshape to a hard-coded width before a fixed Linear."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = torch.nn.Conv1d(1, 16, 3, padding=1)
        self.conv2 = torch.nn.Conv1d(16, 16, 3, padding=1)
        self.classifier = torch.nn.Linear(16 * 8, 12)

    def forward(self, x):
        x = torch.relu(self.conv2(torch.relu(self.conv1(x))))
        return torch.sigmoid(self.classifier(x.view(x.shape[0], 128)))


def test_structured_pruning_refuses_a_hard_coded_reshape_in_one_line_naming_the_layer():
    from paretolab.core.errors import ParetoLabError

    with pytest.raises(ParetoLabError, match=r"structured pruning cannot resize.*'conv2'") as caught:
        prune_module(_FixedReshape().eval(), (torch.rand(1, 1, 8),), PruneSettings(sparsity=0.5, round_to=2))
    assert "\n" not in str(caught.value)
