"""The technique registry: every technique is one entry, and the pipeline knows none by name."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
import pytest

from paretolab.core.compress import techniques
from paretolab.core.compress.techniques import QUANT_TARGETS, TECHNIQUE_COLOURS, TECHNIQUES, Technique, recipe_steps
from paretolab.core.compress.variant import Recipe, technique_kind
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import apply_recipe
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError


@pytest.mark.parametrize("name", list(TECHNIQUES))
def test_every_technique_round_trips_a_recipe_with_its_defaults(name):
    recipe = Recipe.from_dict({"steps": [{"technique": name}]})
    assert Recipe.from_dict(recipe.to_dict()) == recipe
    assert recipe.summary().split()[0] in (name, name.split("_")[0], "low-rank")


@pytest.mark.parametrize("key", list(QUANT_TARGETS))
def test_every_quantization_target_is_a_valid_recipe(key):
    target = QUANT_TARGETS[key]
    recipe = Recipe.from_dict({"steps": recipe_steps(quantize=target.settings())})
    assert (recipe.steps[0].settings.backend, recipe.steps[0].settings.precision) == (target.backend, target.precision)


def test_recipe_steps_follow_the_registry_order_whatever_the_call_order():
    steps = recipe_steps(quantize={"precision": "fp16"}, prune={"sparsity": 0.3}, distill=None, graphopt={})
    assert [s["technique"] for s in steps] == ["prune", "graphopt", "quantize"]
    with pytest.raises(SettingsError, match="unknown technique 'sharpen'"):
        recipe_steps(sharpen={})


def test_chart_colours_come_from_the_entries():
    prune_int8 = Recipe.from_dict({"steps": recipe_steps(prune={}, quantize={})})
    distill_int8 = Recipe.from_dict({"steps": recipe_steps(prune={}, distill={}, quantize={})})
    assert technique_kind(prune_int8) == "prune+quantize"
    assert technique_kind(Recipe.from_dict({"steps": recipe_steps(distill={}, quantize={})})) == "quantize"
    assert technique_kind(Recipe.from_dict({"steps": recipe_steps(lowrank={})})) == "other"
    assert {t.name for t in TECHNIQUES.values() if t.colour} <= TECHNIQUE_COLOURS.keys()
    assert technique_kind(distill_int8) in TECHNIQUE_COLOURS


@dataclass(frozen=True)
class ScaleSettings:
    factor: float = 2.0

    def check(self) -> None:
        if self.factor <= 0:
            raise SettingsError("setting 'factor' must be positive")


def _scale_outputs(ctx, index: int, settings: ScaleSettings) -> None:
    """A technique the pipeline has never heard of: multiply the model's first output."""
    model = onnx.load(ctx.file(index).onnx_file())
    out = model.graph.output[0].name
    scaled = f"{out}_unscaled"
    for node in model.graph.node:
        node.output[:] = [scaled if o == out else o for o in node.output]
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.array(settings.factor, np.float32), "scale_factor"))
    model.graph.node.append(onnx.helper.make_node("Mul", [scaled, "scale_factor"], [out]))
    onnx.save(model, ctx.out(index))
    ctx.set_file(ctx.out(index))
    ctx.report(index, {"technique": "scale", "factor": settings.factor})


def test_a_new_technique_is_one_entry(monkeypatch, tmp_path):
    entry = Technique("scale", ScaleSettings, lambda s: f"scale x{s.factor:g}", _scale_outputs, lambda s: "onnx")
    monkeypatch.setitem(TECHNIQUES, "scale", entry)
    recipe = Recipe.from_dict({"steps": techniques.recipe_steps(scale={"factor": 3.0})})
    assert recipe.summary() == "scale x3"
    with pytest.raises(SettingsError, match="must come before step 1 \\(scale x3\\)"):
        Recipe.from_dict({"steps": [*recipe.to_dict()["steps"], {"technique": "prune"}]})

    sample = load_model(sample_model_path("onnx"))
    artifact, reports = apply_recipe(sample, recipe, DataPlan.from_spec("random:4", sample), tmp_path / "scaled")
    assert reports == [{"step": 1, "technique": "scale", "factor": 3.0}]
    x = np.random.default_rng(0).standard_normal((1, *sample.inputs[0].shape[1:])).astype(np.float32)
    import onnxruntime as ort

    before = ort.InferenceSession(str(sample.path)).run(None, {sample.inputs[0].name: x})[0]
    after = ort.InferenceSession(str(artifact)).run(None, {sample.inputs[0].name: x})[0]
    np.testing.assert_allclose(after, 3.0 * before, rtol=1e-5, atol=1e-5)
