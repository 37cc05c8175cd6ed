"""Module blocks: layers grouped by the module their exporter's names record, repeats found,
shape plumbing folded, and the module table of a real transformer."""

from __future__ import annotations

import pytest

from paretolab.core.model.blocks import auto_expanded, block_view, module_blocks, module_rows, scope_of
from paretolab.core.model.handle import load_model


@pytest.mark.parametrize("name, scope", [
    ("encoder.layer.0.attention.self.query", ("encoder", "layer", "0", "attention", "self", "query")),  # torch-named
    ("encoder.layer.0/Add_1", ("encoder", "layer", "0")),
    ("/encoder/layer.0/attention/self/query/MatMul", ("encoder", "layer", "0", "attention", "self", "query")),  # ONNX
    ("/blocks/blocks.0/conv/Conv", ("blocks", "0", "conv")),  # TorchScript's relative scopes
    ("__module.encoder.layer.0.attention/aten::matmul/MatMul", ("encoder", "layer", "0", "attention")),  # OpenVINO
    ("Gather_12", ("Gather_12",)),  # a bare op name is its own module
])
def test_the_module_path_comes_from_every_exporters_names(name, scope):
    assert scope_of(name) == scope


def test_the_zoo_transformer_reads_as_embeddings_repeats_and_a_head(tmp_path):
    from zoo_models import ZOO, export, open_zoo_model  # type: ignore[import-not-found]

    for dynamo in (False, True):
        handle = open_zoo_model(ZOO["transformer"], export(ZOO["transformer"], tmp_path / f"t{dynamo}.onnx", dynamo))
        graph = handle.layer_graph()
        blocks = module_blocks(graph)
        repeats = [b for b in blocks.values() if b.repeats]
        assert [(b.repeats, b.name) for b in repeats] == [(2, "layers")], sorted(blocks)
        view, shown = block_view(graph, blocks, auto_expanded(graph, blocks, limit=12))
        assert len(view) <= 12 and repeats[0].path in {n.name for n in view}
        assert view.total_macs == graph.total_macs and view.total_params == graph.total_params
        assert set(shown) == {n.name for n in graph}
        rows = module_rows(graph)
        assert len(rows) < len(graph) and rows.total_macs == graph.total_macs
        assert rows.total_params == graph.total_params


def test_a_graph_without_modules_stays_as_it_is(model_files):
    graph = load_model(model_files["onnx"]).layer_graph()
    blocks = module_blocks(graph)
    view, _ = block_view(graph, blocks, auto_expanded(graph, blocks))
    assert [n.name for n in view] == [n.name for n in graph]  # small: every block open
