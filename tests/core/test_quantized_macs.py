"""MACs describe the model, not its precision: an int8 variant (ONNX Runtime's QOperator, QDQ and
dynamic forms, OpenVINO's IR) counts the multiply-adds of its FP32 original, so `explain` never
calls a model small because its quantized ops went uncounted. And a model older than opset 13
skips the per-channel QDQ forms it cannot hold instead of writing invalid files."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from paretolab.core.compress.variant import Recipe
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.settings import SettingsError


class ConvNet(nn.Module):
    """Convolutions, then two linear layers in a row (QOperator makes them a chain of QGemm)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, stride=2, padding=1),
                                      nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Sequential(nn.Linear(32, 24), nn.ReLU(), nn.Linear(24, 10))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class Recurrent(nn.Module):
    """A linear front end, a recurrent layer over 10 steps (most of the MACs), a linear head."""

    def __init__(self, cell: type[nn.Module]) -> None:
        super().__init__()
        self.frontend = nn.Linear(16, 32)
        self.rnn = cell(32, 32, batch_first=True)
        self.head = nn.Linear(32, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(torch.relu(self.frontend(x)))
        return self.head(out[:, -1])


MODELS = {"conv": (ConvNet, (1, 3, 16, 16)), "lstm": (lambda: Recurrent(nn.LSTM), (1, 10, 16)),
          "gru": (lambda: Recurrent(nn.GRU), (1, 10, 16))}


def _export(name: str, folder: Path, opset: int = 17) -> Path:
    build, shape = MODELS[name]
    torch.manual_seed(0)
    path = folder / f"{name}-opset{opset}.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(build().eval(), (torch.rand(shape),), str(path), dynamo=False, opset_version=opset,
                          input_names=["input"], output_names=["out"])
    return path


@pytest.fixture(scope="module")
def originals(tmp_path_factory) -> dict[str, Path]:  # noqa: ANN001
    folder = tmp_path_factory.mktemp("fp32")
    return {name: _export(name, folder) for name in MODELS}


def _quantized(original: Path, settings: dict, folder: Path):  # noqa: ANN202 - the handle and its variant
    handle = load_model(original)
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": settings}]})
    return handle, optimize(handle, recipe, DataPlan.from_spec("random:32", handle), folder, "v")


@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("settings", [{"format": "qop-u8s8"}, {"format": "qdq-s8s8"}, {"precision": "dynamic-int8"},
                                      {"backend": "openvino"}], ids=["qoperator", "qdq", "dynamic", "openvino-ir"])
def test_an_int8_variant_counts_the_macs_of_its_fp32_original(originals, tmp_path, model, settings):
    handle, variant = _quantized(originals[model], settings, tmp_path)
    fp32 = handle.layer_graph().total_macs
    graph = handle.like(variant.artifact).layer_graph()
    assert fp32 and graph.total_macs == pytest.approx(fp32, rel=0.01), [(n.op, n.macs) for n in graph.nodes if n.macs != 0]
    assert variant.measured.macs == pytest.approx(variant.baseline.macs, rel=0.01)
    recurrent = [n for n in graph.nodes if n.op in ("LSTM", "GRU", "DynamicQuantizeLSTM", "LSTMSequence", "GRUSequence")]
    assert model == "conv" or (recurrent and all(n.macs for n in recurrent))  # the recurrent layer itself is counted


@pytest.mark.parametrize("model", ["lstm", "gru"])
def test_an_fp32_ir_counts_its_recurrent_sequences(originals, tmp_path, model):
    import openvino as ov

    xml = tmp_path / f"{model}.xml"
    ov.save_model(ov.convert_model(str(originals[model])), str(xml))
    onnx_macs = load_model(originals[model]).layer_graph().total_macs
    graph = load_model(xml).layer_graph()
    assert {n.op for n in graph.nodes} & {"LSTMSequence", "GRUSequence"}
    assert graph.total_macs == pytest.approx(onnx_macs, rel=0.01)


def test_an_opset_11_model_skips_per_channel_qdq_up_front(tmp_path):
    import onnx

    original = _export("conv", tmp_path, opset=11)
    handle, variant = _quantized(original, {"format": "auto"}, tmp_path / "auto")
    (report,) = variant.reports
    assert report["chosen"].startswith("ort-int8-qop-")  # QOperator forms hold per-channel scales at opset 11
    assert {c["name"] for c in report["candidates"]} == {"qop-u8s8", "qop-s8s8"}
    assert any("qdq-s8s8 not built: per-channel QDQ needs opset 13, the model is opset 11" in n for n in report["notes"])
    onnx.checker.check_model(onnx.load(str(variant.artifact)))
    with pytest.raises(SettingsError, match="format 'qdq-s8s8' with per-channel scales needs ONNX opset 13 or later and "
                                            "conv-opset11.onnx is opset 11"):
        _quantized(original, {"format": "qdq-s8s8"}, tmp_path / "qdq")
    assert not list((tmp_path / "qdq").glob("*.onnx"))
    _, per_tensor = _quantized(original, {"format": "qdq-s8s8", "per_channel": False}, tmp_path / "per-tensor")
    onnx.checker.check_model(onnx.load(str(per_tensor.artifact)))  # per-tensor QDQ is valid at opset 11
