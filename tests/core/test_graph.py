"""LayerGraph: names, shapes, parameter and MAC counts against hand-computed values."""

from __future__ import annotations

import time

import onnx
import pytest
import torch

from model_zoo import (
    TINY_INPUT,
    TINY_LAYERS,
    TINY_MACS,
    TINY_PARAMS,
    deep_mlp,
    export_onnx,
    tiny_net,
)
from paretolab.core.model.graph_onnx import build_onnx_graph
from paretolab.core.model.handle import load_model


@pytest.fixture(scope="module")
def torch_graph(model_files):
    return load_model(model_files["pickle"], trust=True, input_shapes={None: TINY_INPUT}).layer_graph()


def test_torch_layers_are_named_by_module_path(torch_graph):
    assert [n.name for n in torch_graph] == TINY_LAYERS
    assert [n.op for n in torch_graph] == [
        "Conv",
        "BatchNormalization",
        "Relu",
        "Conv",
        "Add",
        "GlobalAveragePool",
        "Flatten",
        "Gemm",
    ]


def test_torch_counts_match_hand_computed_values(torch_graph):
    assert torch_graph.total_params == TINY_PARAMS == sum(p.numel() for p in tiny_net().parameters())
    assert torch_graph.total_macs == TINY_MACS
    assert torch_graph.node("stem").params == 224 and torch_graph.node("stem").macs == 55_296
    assert torch_graph.node("bn").params == 16
    assert torch_graph.node("block.conv").macs == 73_728 and torch_graph.node("block.conv").params == 288
    assert torch_graph.node("fc").macs == 80 and torch_graph.node("fc").params == 90
    assert torch_graph.node("block.conv").output_shapes == [(1, 8, 16, 16)]
    assert torch_graph.node("fc").output_shapes == [(1, 10)]


def test_edges_follow_the_data_including_the_residual(torch_graph):
    assert ("act", "block.conv") in torch_graph.edges
    assert ("act", "block/Add") in torch_graph.edges  # the skip connection
    assert ("block.conv", "block/Add") in torch_graph.edges
    assert torch_graph.predecessors("fc") == ["flatten"]
    assert torch_graph.successors("stem") == ["bn"]


@pytest.mark.parametrize("key", ["script", "trace", "pt2"])
def test_every_torch_format_names_layers_the_same_way(model_files, key, torch_graph):
    shapes = None if key == "pt2" else {None: TINY_INPUT}
    graph = load_model(model_files[key], input_shapes=shapes).layer_graph()
    assert graph.total_params == TINY_PARAMS
    convs = [n.name for n in graph if n.op in ("Conv", "Gemm")]
    assert convs == ["stem", "block.conv", "fc"]


def test_onnx_counts_include_weights_and_fold_batchnorm(model_files):
    graph = load_model(model_files["onnx"]).layer_graph()
    # The exported graph folds BatchNorm into the stem convolution: 7 layers, BN's 16 params gone.
    assert graph.op_counts == {"Conv": 2, "Relu": 1, "Add": 1, "GlobalAveragePool": 1, "Flatten": 1, "Gemm": 1}
    assert graph.total_params == TINY_PARAMS - 16
    assert graph.total_macs == TINY_MACS
    conv = next(n for n in graph if n.op == "Conv")
    assert [w.shape for w in conv.weights] == [(8, 3, 3, 3), (8,)]


def test_openvino_graph_counts_the_same_macs(model_files):
    graph = load_model(model_files["openvino"]).layer_graph()
    assert graph.total_macs == TINY_MACS
    assert graph.op_counts.get("Convolution") == 1 and graph.op_counts.get("GroupConvolution") == 1
    assert graph.op_counts.get("MatMul") == 1


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_dynamic_dims_leave_macs_unknown_with_a_note(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)).eval()
    path = tmp_path / "dyn.onnx"
    torch.onnx.export(model, (torch.rand(1, 3, 8, 8),), str(path), dynamo=False, input_names=["img"],
                      dynamic_axes={"img": {0: "n", 2: "h", 3: "w"}})
    graph = load_model(path).layer_graph()
    assert graph.node(graph.nodes[0].name).macs is None
    assert not graph.macs_complete
    assert any("'img'" in note and "--input-shape" in note for note in graph.notes)
    fixed = load_model(path, input_shapes={"img": (1, 3, 10, 10)}).layer_graph()
    assert fixed.total_macs == 4 * 8 * 8 * 27


def test_thousand_layer_graph_builds_well_under_a_second(tmp_path):
    path = export_onnx(deep_mlp(), tmp_path / "deep.onnx", shape=(1, 16))
    model = onnx.load(str(path))
    assert len(model.graph.node) == 1000
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        graph = build_onnx_graph(model)
        timings.append(time.perf_counter() - start)
    assert len(graph) == 1000 and len(graph.edges) == 999
    assert graph.total_macs == 500 * 16 * 16
    assert sorted(timings)[1] < 1.0, timings


def test_graph_serialises_to_plain_json(model_files):
    import json

    doc = json.loads(json.dumps(load_model(model_files["onnx"]).layer_graph().to_dict()))
    assert doc["summary"]["macs"] == TINY_MACS
    assert len(doc["nodes"]) == 7


def test_recurrent_layers_count_their_macs(tmp_path):
    """An LSTM's compute is all in its gates: seq x batch x (W + R) multiply-accumulates."""
    import torch

    from paretolab.core.model.torch_onnx import export_to_onnx

    class Tagger(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = torch.nn.LSTM(16, 32, batch_first=True)
            self.head = torch.nn.Linear(32, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.head(self.lstm(x)[0])

    path = tmp_path / "tagger.onnx"
    export_to_onnx(Tagger().eval(), (torch.zeros(1, 10, 16),), path, ["x"])
    graph = load_model(path).layer_graph()
    lstm = next(n for n in graph if n.op == "LSTM")
    assert lstm.macs == 10 * 1 * (4 * 32 * 16 + 4 * 32 * 32)
    assert graph.total_macs == lstm.macs + 10 * 32 * 5
