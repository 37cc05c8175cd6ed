"""The model zoo end to end: every architecture, in every form users bring it, opens, profiles
on both runtimes, gets importance, and goes through every technique that applies, keeping its
interface and its outputs within the bound the technique states (tests/zoo_models.py)."""

from __future__ import annotations

import numpy as np
import pytest

from paretolab.core.compress.insight.importance import weight_importance
from paretolab.core.compress.quantization.torch_precision import native_precisions
from paretolab.core.compress.variant import Recipe, collapse_warning
from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.data import random_inputs
from paretolab.core.measure.plan import DataPlan
from paretolab.core.measure.profile import profile_model
from paretolab.core.measure.runtimes import open_runner
from paretolab.core.model.torch_artifact import torch_sibling
from paretolab.core.pipeline.optimize import optimize
from zoo_models import TECHNIQUES, ZOO, open_zoo_model, write_zoo_files  # type: ignore[import-not-found]

FORMS = ("onnx", "onnx (dynamo)", "onnx (foreign)", "pytorch")


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo")
    return {name: write_zoo_files(entry, root / name) for name, entry in ZOO.items()}


def _outputs(handle, backend="ort"):
    inputs = random_inputs(handle.inputs, count=1, seed=3).load(np.arange(1))
    with open_runner(handle, backend) as runner:
        return runner.run(inputs)


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("name", list(ZOO))
def test_every_form_opens_runs_and_agrees_with_the_eager_model(zoo, name, form):
    handle = open_zoo_model(ZOO[name], zoo[name][form])
    graph = handle.layer_graph()
    assert graph.total_params > 0 and graph.total_macs > 0
    reference = _outputs(open_zoo_model(ZOO[name], zoo[name]["onnx"]))
    mine = _outputs(handle)
    assert [o.shape for o in mine] == [o.shape for o in reference]
    for got, want in zip(mine, reference):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("name", list(ZOO))
def test_profiles_on_both_runtimes_and_batches_only_what_can_be(zoo, name):
    handle = open_zoo_model(ZOO[name], zoo[name]["onnx (foreign)"])
    for backend in ("ort", "openvino"):
        result = profile_model(handle, backend=backend, batch_sizes=(1, 2), runs=10, warmup=2, budget_s=0.5,
                               async_budget_s=0.2)
        assert result.latency[0].batch == 1 and result.latency[0].median_ms > 0
        assert result.layers, f"{backend} gave no per-layer times"
        measured = {s.batch for s in result.latency}
        assert 2 in measured or any("batch 2 skipped" in n for n in result.notes)


@pytest.mark.parametrize("name", list(ZOO))
def test_importance_finds_the_weights_of_files_from_other_frameworks(zoo, name):
    handle = open_zoo_model(ZOO[name], zoo[name]["onnx (foreign)"])
    layers = weight_importance(handle)
    assert layers and all(layer.l1 > 0 for layer in layers)


def _run(handle, technique, out):
    recipe = Recipe.from_dict(technique.recipe_doc())
    return optimize(handle, recipe, DataPlan.from_spec("random:16", handle), out, "v")


def _check_variant(variant, original, technique):
    made = original.like(variant.artifact)
    names = [s.name for s in original.outputs or original.layer_graph().outputs]
    assert [s.name for s in made.outputs] == names  # a variant keeps the interface
    assert [o.shape for o in _outputs(made, variant.measured.backend)] == [o.shape for o in _outputs(original)]
    assert variant.measured.cosine >= technique.min_cosine, variant.measured.fidelity_text()
    assert variant.measured.latency_ms > 0 and variant.speedup is not None


FILE_TECHNIQUES = [t for t in TECHNIQUES.values() if not t.needs_module]


@pytest.mark.parametrize("technique", FILE_TECHNIQUES, ids=[t.name for t in FILE_TECHNIQUES])
@pytest.mark.parametrize("name", list(ZOO))
def test_every_file_technique_keeps_the_model_faithful(zoo, tmp_path, name, technique):
    original = open_zoo_model(ZOO[name], zoo[name]["onnx"])
    _check_variant(_run(original, technique, tmp_path), original, technique)


@pytest.mark.parametrize("form", ["onnx (dynamo)", "onnx (foreign)"])
@pytest.mark.parametrize("name", list(ZOO))
def test_int8_works_on_files_from_the_other_exporter_and_other_frameworks(zoo, tmp_path, name, form):
    original = open_zoo_model(ZOO[name], zoo[name][form])
    technique = TECHNIQUES["int8 (ONNX Runtime)"]
    _check_variant(_run(original, technique, tmp_path), original, technique)


@pytest.mark.parametrize("name", [name for name in ZOO if name != "vad"])
def test_structured_pruning_and_distillation_keep_the_interface(zoo, tmp_path, name):
    original = open_zoo_model(ZOO[name], zoo[name]["pytorch"])
    technique = TECHNIQUES["structured 20% + distill"]
    variant = _run(original, technique, tmp_path)
    _check_variant(variant, original, technique)
    assert variant.measured.params < variant.baseline.params  # channels really went
    if variant.metric == "cosine" and variant.measured.cosine < 0.95:  # random weights lose much: the user is told
        assert "broken" in (collapse_warning(variant) or "")
    beside = torch_sibling(variant.artifact)  # the same variant as a PyTorch file, for PyTorch serving
    assert beside is not None, variant.reports
    made = original.like(beside)
    for ours, theirs in zip(_outputs(made, "torch"), _outputs(original.like(variant.artifact))):
        np.testing.assert_allclose(ours, theirs, rtol=1e-3, atol=1e-3)


@pytest.mark.skipif("bf16" not in native_precisions("cpu"), reason="this CPU has neither AVX512-BF16 nor AMX")
@pytest.mark.parametrize("name", ["unet", "detector", "transformer"])
def test_a_pytorch_precision_keeps_every_output_of_models_that_are_not_classifiers(zoo, tmp_path, name):
    original = open_zoo_model(ZOO[name], zoo[name]["pytorch"])
    fastest = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "torch", "precision": "fastest"}}]})
    variant = optimize(original, fastest, DataPlan.from_spec("random:16", original), tmp_path, "v")
    assert variant.artifact.suffix == ".pt2" and variant.measured.backend == "torch"
    assert [o.shape for o in _outputs(original.like(variant.artifact), "torch")] == [o.shape for o in _outputs(original)]
    assert variant.measured.cosine >= 0.99, variant.measured.fidelity_text()


def test_structured_pruning_says_why_it_cannot_resize_a_recurrent_model(zoo, tmp_path):
    original = open_zoo_model(ZOO["vad"], zoo["vad"]["pytorch"])
    with pytest.raises(ParetoLabError, match=r"recurrent layers \(gru \(GRU\)\).+use unstructured pruning"):
        _run(original, TECHNIQUES["structured 20% + distill"], tmp_path)
    assert not list(tmp_path.glob("v*"))  # no partial variant


def test_extended_graph_optimization_says_which_runtimes_run_its_fused_ops(zoo, tmp_path):
    original = open_zoo_model(ZOO["transformer"], zoo["transformer"]["onnx"])
    variant = _run(original, TECHNIQUES["graph optimization"], tmp_path)
    report = variant.reports[0]
    assert report["runs_on"][0] == "ort"
    assert any("ONNX Runtime's own ops (FusedGemm" in note and "choose level basic" in note for note in report["notes"])


@pytest.mark.parametrize(("name", "layers"), [("resnet", {"fc"}), ("unet", {"mask", "classes"}), ("vad", {"gru", "decoder"}),
                                              ("detector", {"cls_head", "box_head"}), ("transformer", {"pool"})])
def test_the_layers_outputs_are_computed_from_are_found_behind_reshapes_and_activations(name, layers):
    from paretolab.core.compress.pruning.prune import _output_layers

    model = ZOO[name].model()
    for p in model.parameters():  # a frozen model (fine-tuning leftovers) is traced all the same
        p.requires_grad_(False)
    assert _output_layers(model, ZOO[name].inputs()) == layers
    assert not any(p.requires_grad for p in model.parameters())
