"""Hugging Face model folders: BERT-, ViT- and GPT-2-style tiny models open from what
save_pretrained wrote, count their attention's MACs, export with free batch and sequence axes,
match the eager model on ONNX Runtime and OpenVINO, and compress (tests/hf_models.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

import hf_models  # type: ignore[import-not-found]
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import ModelLoadError
from paretolab.core.measure.data import random_inputs
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.runtimes import open_runner
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    return {name: hf_models.write(name, root) for name in hf_models.SHAPES}


def _open(folders, name, shape=None):
    return load_model(folders[name], input_shapes={None: shape or hf_models.SHAPES[name]})


def _outputs(handle, backend):
    inputs = random_inputs(handle.inputs, count=1, seed=3, id_ranges={"input_ids": 100}).load(np.arange(1))
    if len(inputs) == 2:
        inputs[1] = np.ones_like(inputs[1])  # attention mask
    with open_runner(handle, backend) as runner:
        return runner.run(inputs)


def test_a_text_model_knows_its_inputs_head_and_the_cost_of_attention(folders):
    handle = load_model(folders["bert"] / "config.json", input_shapes={None: (1, 32)})  # the folder or its config
    assert handle.format == "huggingface" and handle.path == folders["bert"]
    assert [(s.name, s.shape, s.dtype) for s in handle.inputs] == [
        ("input_ids", (1, 32), "int64"), ("attention_mask", (1, 32), "int64")]
    assert [(s.name, s.shape) for s in handle.outputs] == [("logits", ("batch", 3))]
    graph = handle.layer_graph()
    assert graph.macs_complete and graph.total_macs == hf_models.bert_macs(32)
    assert _open(folders, "bert", (1, 16)).layer_graph().total_macs == hf_models.bert_macs(16)
    assert handle.size_bytes == sum(f.stat().st_size for f in folders["bert"].iterdir())


@pytest.mark.parametrize("name", list(hf_models.SHAPES))
def test_every_model_runs_the_same_in_torch_onnx_runtime_and_openvino(folders, name):
    handle = _open(folders, name)
    assert handle.layer_graph().macs_complete and handle.layer_graph().total_macs > 0
    reference = _outputs(handle, "torch")
    for backend in ("ort", "openvino"):
        for got, want in zip(_outputs(handle, backend), reference):
            np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


def test_variants_keep_batch_and_sequence_free(folders, tmp_path):
    handle = _open(folders, "gpt")
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "ort", "precision": "dynamic-int8"}}]})
    variant = optimize(handle, recipe, DataPlan.from_spec("random:16", handle), tmp_path, "v")
    assert variant.measured.cosine >= 0.99, variant.measured.fidelity_text()
    made = load_model(variant.artifact)
    assert [s.shape for s in made.source.inputs] == [("batch", "sequence")] * 2  # declared free; opened at a default length
    longer = load_model(variant.artifact, input_shapes={None: (2, 48)})
    (logits,) = _outputs(longer, "ort")
    assert logits.shape == (1, 48, hf_models.GPT["vocab_size"])


HEADS_AND_DISTILL = [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}},
                     {"technique": "distill", "settings": {"epochs": 1}}]
DYNAMIC = [{"technique": "quantize", "settings": {"backend": "ort", "precision": "dynamic-int8"}}]
INT4_WEIGHTS = [{"technique": "quantize", "settings": {"backend": "openvino", "precision": "int4-weights", "group_size": 16}}]


@pytest.mark.parametrize("name, steps, min_cosine", [
    ("bert", [{"technique": "quantize", "settings": {"backend": "openvino", "precision": "int8"}}], 0.98),
    ("vit", [{"technique": "quantize", "settings": {"backend": "ort", "precision": "int8"}}], 0.98),
    ("bert", DYNAMIC, 0.99), ("vit", DYNAMIC, 0.99),
    ("bert", INT4_WEIGHTS, 0.98), ("vit", INT4_WEIGHTS, 0.98),
    ("bert", HEADS_AND_DISTILL, 0.0), ("vit", HEADS_AND_DISTILL, 0.0),  # random weights: no fidelity bound to keep
])
def test_compresses_and_keeps_the_interface(folders, tmp_path, name, steps, min_cosine):
    handle = _open(folders, name)
    variant = optimize(handle, Recipe.from_dict({"steps": steps}), DataPlan.from_spec("random:16", handle), tmp_path, "v")
    assert variant.measured.cosine >= min_cosine, variant.measured.fidelity_text()
    if steps[0]["settings"] == {"backend": "openvino", "precision": "int8"}:  # the transformer preset competes
        assert {c["name"] for c in variant.reports[0]["candidates"]} == {"default", "transformer"}
    if steps is HEADS_AND_DISTILL:  # half the heads and half the MLP: the attention and MLP MACs halve
        assert {tuple(v) for v in variant.reports[0]["heads"].values()} == {(4, 2)}
        assert variant.measured.macs < 0.7 * variant.baseline.macs
        program = handle.like(tmp_path / "v.pt2")  # and the same variant as a PyTorch program, for PyTorch serving
        for ours, theirs in zip(_outputs(program, "torch"), _outputs(handle.like(variant.artifact), "ort")):
            np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)
    made = handle.like(variant.artifact)
    assert [s.name for s in made.outputs] == ["logits"]
    assert [o.shape for o in _outputs(made, variant.measured.backend)] == [o.shape for o in _outputs(handle, "ort")]


def test_broken_folders_are_one_line(folders, tmp_path):
    no_weights = tmp_path / "no_weights"
    no_weights.mkdir()
    (no_weights / "config.json").write_text((folders["bert"] / "config.json").read_text())
    unknown = tmp_path / "unknown"
    unknown.mkdir()
    (unknown / "config.json").write_text(json.dumps({"model_type": "not-a-model"}))
    (unknown / "model.safetensors").write_bytes(b"")
    for folder, message in ((no_weights, "has a config.json but no weights"),
                            (unknown, "config.json is not a configuration transformers knows"),
                            (tmp_path, "is a folder; open the model file inside it")):
        with pytest.raises(ModelLoadError, match=message) as caught:
            load_model(folder)
        assert "\n" not in str(caught.value)


def _quantize(backend, precision, **extra):
    return [{"technique": "quantize", "settings": {"backend": backend, "precision": precision, **extra}}]


@pytest.mark.parametrize("steps, min_cosine", [
    (_quantize("ort", "int8-weights"), 0.999),
    (_quantize("ort", "int4-weights", group_size=16), 0.99),
    (_quantize("openvino", "int8-weights"), 0.999),
    (_quantize("openvino", "int4-weights", group_size=16, ratio=0.8), 0.99),
])
def test_weight_only_quantization_keeps_the_counts_and_stays_close(folders, tmp_path, steps, min_cosine):
    """Weight-only int8/int4 on a decoder LM: no calibration, logits within the bound, and MACs and
    parameters that do not change with how the weights are stored."""
    handle = _open(folders, "gpt")
    variant = optimize(handle, Recipe.from_dict({"steps": steps}), DataPlan.from_spec("random:8", handle), tmp_path, "v")
    assert variant.measured.cosine >= min_cosine, variant.measured.fidelity_text()
    assert variant.measured.macs == variant.baseline.macs
    assert variant.measured.params == pytest.approx(variant.baseline.params, rel=0.03)
    graph = load_model(variant.artifact, input_shapes={None: (1, 32)}).layer_graph()
    ops = set(graph.op_counts)
    assert ("MatMulNBits" in ops) if steps[0]["settings"]["backend"] == "ort" else ("MatMul" in ops)


@pytest.mark.parametrize("settings, message", [
    ({"backend": "ort", "precision": "int4-weights", "group_size": 100}, "'group_size' must be a power of two"),
    ({"backend": "ort", "precision": "int4-weights", "ratio": 0.5}, "'ratio' .* applies to OpenVINO weight-only int4"),
])
def test_weight_only_settings_are_checked(settings, message):
    from paretolab.core.settings import SettingsError

    with pytest.raises(SettingsError, match=message):
        Recipe.from_dict({"steps": [{"technique": "quantize", "settings": settings}]})


def test_text_files_are_tokenized_by_the_models_tokenizer_with_labels_by_name(folders, tmp_path, capsys):
    from paretolab.cli import main
    from paretolab.core.measure.plan import dataset_for

    handle = _open(folders, "bert", (1, 16))
    lines = tmp_path / "reviews.txt"
    lines.write_text("\n".join(text for text, _ in hf_models.REVIEWS) + "\n\n")
    table = tmp_path / "reviews.csv"
    table.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in hf_models.REVIEWS))
    rows = tmp_path / "reviews.jsonl"
    rows.write_text("".join(json.dumps({"sentence": t, "label": hf_models.LABELS[label]}) + "\n"
                            for t, label in hf_models.REVIEWS))
    unlabelled = dataset_for(str(lines), handle)
    ids, mask = unlabelled.load(np.arange(len(unlabelled)))
    assert len(unlabelled) == 6 and not unlabelled.has_labels and ids.shape == mask.shape == (6, 16)
    assert ids[0, 0] == hf_models.VOCAB.index("[CLS]") and ids[0, 1] == hf_models.VOCAB.index("the")
    assert mask[1].tolist() == [1] * 5 + [0] * 11  # [CLS] i hated it [SEP], then padding
    for path in (table, rows):
        labelled = dataset_for(str(path), handle)
        assert labelled.labels.tolist() == [1, 0, 1, 0, 1, 0]
    code = main(["evaluate", str(folders["bert"]), "--input-shape", "1x16", "--data", str(table), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["top1"] is not None  # labels give accuracy


@pytest.mark.parametrize("content, message", [
    ("text,label\ngood,positive\nbad,\n", "some examples have no 'label'"),
    ("text,label\ngood,thrilled\n", "label 'thrilled' is not one of the model's classes"),
    ("review_body\ngood\n", "has no text column"),
])
def test_bad_text_files_are_one_line(folders, tmp_path, content, message):
    from paretolab.core.measure.data import DataError
    from paretolab.core.measure.plan import dataset_for

    path = tmp_path / "data.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        dataset_for(str(path), _open(folders, "bert", (1, 16)))


def test_text_data_without_a_tokenizer_says_where_to_put_it(folders, tmp_path):
    from paretolab.core.measure.data import DataError
    from paretolab.core.measure.plan import dataset_for

    path = tmp_path / "lines.txt"
    path.write_text("the movie\n")
    with pytest.raises(DataError, match="text data needs the model's tokenizer"):
        dataset_for(str(path), _open(folders, "gpt", (1, 16)))


def test_macs_and_latency_follow_the_sequence_length(folders, capsys):
    from paretolab.cli import main
    from paretolab.core.errors import InputShapeError
    from paretolab.core.measure.scaling import sequence_scaling
    from paretolab.core.sample import sample_model_path

    result = sequence_scaling(_open(folders, "bert"), [32, 8, 16], runs=5, budget_s=0.2)
    assert [p.sequence for p in result.points] == [8, 16, 32]
    assert [p.macs for p in result.points] == [hf_models.bert_macs(n) for n in (8, 16, 32)]
    assert all(p.median_ms > 0 for p in result.points) and result.backend == "ort"
    with pytest.raises(InputShapeError, match="has no free sequence axis"):
        sequence_scaling(load_model(sample_model_path()), [8, 16])
    assert main(["profile", str(folders["gpt"]), "--input-shape", "1x8", "--sequence", "8,16", "--runs", "5",
                 "--budget", "0.2", "--json"]) == 0
    points = json.loads(capsys.readouterr().out)["points"]
    assert [p["sequence"] for p in points] == [8, 16] and points[1]["macs"] > 2 * points[0]["macs"] * 0.99


@pytest.mark.parametrize("name", ["bert", "vit"])
def test_structured_pruning_removes_whole_heads_and_mlp_width_and_keeps_the_hidden_size(folders, name):
    import copy

    import torch

    from paretolab.core.compress.pruning.prune import PruneSettings, prune_module

    handle = _open(folders, name)
    examples = handle.source.example_inputs(handle.inputs)
    module, report = prune_module(copy.deepcopy(handle.native), examples, PruneSettings(method="structured", sparsity=0.5))
    assert set(report.heads.values()) == {(4, 2)} and len(report.heads) == 2
    hidden = 32
    for path, layer in module.named_modules():
        if isinstance(layer, torch.nn.LayerNorm):
            assert layer.normalized_shape == (hidden,), path  # the residual stream keeps its width
        if any(path.endswith(p) for p in ("query", "key", "value", "q_proj", "k_proj", "v_proj")):
            assert layer.out_features == 16 and layer.in_features == hidden  # 2 heads of 8
    attention = [m for m in module.modules() if hasattr(m, "num_attention_heads") or hasattr(m, "num_heads")]
    assert attention and all(getattr(m, "num_attention_heads", getattr(m, "num_heads", None)) == 2 for m in attention
                             if hasattr(m, "query") or hasattr(m, "q_proj"))
    with torch.no_grad():
        assert module(*examples).shape == handle.native(*examples).shape


def test_each_attention_head_gets_an_importance(folders, capsys):
    from paretolab.cli import main
    from paretolab.core.compress.insight.importance import head_scores

    scores = head_scores(_open(folders, "vit"))
    assert len(scores) == 2 and all(len(v) == 4 and min(v) > 0 for v in scores.values())
    assert main(["importance", str(folders["bert"]), "--input-shape", "1x16", "--data", "random:8", "--json"]) == 0
    heads = json.loads(capsys.readouterr().out)["heads"]
    assert sorted(heads) == ["model.bert.encoder.layer.0.attention.self", "model.bert.encoder.layer.1.attention.self"]
