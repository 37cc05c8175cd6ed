"""The sweep's search space, written down as the recipes it proposes: the space built from the
techniques' descriptions must stay the one the sweep used to build by hand (issue 31), for the
default settings, the CLI's overrides (`paretolab sweep --exits 0,2` on a model without an editable
PyTorch module) and an Explore narrowed as the tests and the studio narrow it; a seeded study
proposes the same recipes in the same order. No model is needed: the space is settings only."""

from __future__ import annotations

import json

import optuna
import pytest

from paretolab.core.compress.techniques import QUANT_TARGETS, quant_target
from paretolab.core.compress.variant import Recipe
from paretolab.core.pipeline.sweep import recipe_key, search_space, suggest
from paretolab.core.pipeline.sweep_settings import SweepSettings

DEFAULT_SPACE = (
    "graphopt:basic",
    "quantize:ort-int8",
    "quantize:openvino-int8",
    "quantize:ort-fp16",
    "prune:structured:0.3 distill:5",
    "prune:structured:0.3 distill:5 quantize:ort-int8",
    "prune:structured:0.3 distill:5 quantize:openvino-int8",
    "prune:structured:0.3 distill:5 quantize:ort-fp16",
    "prune:structured:0.3",
    "prune:structured:0.3 quantize:ort-int8",
    "prune:structured:0.3 quantize:openvino-int8",
    "prune:structured:0.3 quantize:ort-fp16",
    "prune:unstructured:0.3",
    "prune:unstructured:0.3 quantize:ort-int8",
    "prune:unstructured:0.3 quantize:openvino-int8",
    "prune:unstructured:0.3 quantize:ort-fp16",
    "prune:structured:0.5 distill:5",
    "prune:structured:0.5 distill:5 quantize:ort-int8",
    "prune:structured:0.5 distill:5 quantize:openvino-int8",
    "prune:structured:0.5 distill:5 quantize:ort-fp16",
    "prune:structured:0.5",
    "prune:structured:0.5 quantize:ort-int8",
    "prune:structured:0.5 quantize:openvino-int8",
    "prune:structured:0.5 quantize:ort-fp16",
    "prune:unstructured:0.5",
    "prune:unstructured:0.5 quantize:ort-int8",
    "prune:unstructured:0.5 quantize:openvino-int8",
    "prune:unstructured:0.5 quantize:ort-fp16",
    "prune:structured:0.7 distill:5",
    "prune:structured:0.7 distill:5 quantize:ort-int8",
    "prune:structured:0.7 distill:5 quantize:openvino-int8",
    "prune:structured:0.7 distill:5 quantize:ort-fp16",
    "prune:structured:0.7",
    "prune:structured:0.7 quantize:ort-int8",
    "prune:structured:0.7 quantize:openvino-int8",
    "prune:structured:0.7 quantize:ort-fp16",
    "prune:unstructured:0.7",
    "prune:unstructured:0.7 quantize:ort-int8",
    "prune:unstructured:0.7 quantize:openvino-int8",
    "prune:unstructured:0.7 quantize:ort-fp16",
)
DEFAULT_PROPOSED = (
    "prune:unstructured:0.3 quantize:openvino-int8",
    "prune:unstructured:0.7 quantize:ort-fp16",
    "quantize:ort-int8",
    "prune:unstructured:0.3 quantize:openvino-int8",
    "prune:unstructured:0.5 quantize:ort-fp16",
    "prune:structured:0.5 distill:5",
    "quantize:openvino-int8",
    "quantize:ort-fp16",
)
CLI_SPACE = (
    "graphopt:basic",
    "early_exit:2",
    "quantize:ort-int8",
    "quantize:ort-int8 early_exit:2",
    "quantize:openvino-int8",
    "quantize:ort-fp16",
    "quantize:ort-fp16 early_exit:2",
    "prune:unstructured:0.3",
    "prune:unstructured:0.3 early_exit:2",
    "prune:unstructured:0.3 quantize:ort-int8",
    "prune:unstructured:0.3 quantize:ort-int8 early_exit:2",
    "prune:unstructured:0.3 quantize:openvino-int8",
    "prune:unstructured:0.3 quantize:ort-fp16",
    "prune:unstructured:0.3 quantize:ort-fp16 early_exit:2",
    "prune:unstructured:0.5",
    "prune:unstructured:0.5 early_exit:2",
    "prune:unstructured:0.5 quantize:ort-int8",
    "prune:unstructured:0.5 quantize:ort-int8 early_exit:2",
    "prune:unstructured:0.5 quantize:openvino-int8",
    "prune:unstructured:0.5 quantize:ort-fp16",
    "prune:unstructured:0.5 quantize:ort-fp16 early_exit:2",
    "prune:unstructured:0.7",
    "prune:unstructured:0.7 early_exit:2",
    "prune:unstructured:0.7 quantize:ort-int8",
    "prune:unstructured:0.7 quantize:ort-int8 early_exit:2",
    "prune:unstructured:0.7 quantize:openvino-int8",
    "prune:unstructured:0.7 quantize:ort-fp16",
    "prune:unstructured:0.7 quantize:ort-fp16 early_exit:2",
)
CLI_PROPOSED = (
    "prune:unstructured:0.3 quantize:ort-fp16",
    "prune:unstructured:0.7 quantize:ort-fp16 early_exit:2",
    "quantize:ort-fp16",
    "prune:unstructured:0.3 quantize:ort-int8",
    "prune:unstructured:0.5 quantize:ort-int8 early_exit:2",
    "prune:unstructured:0.5 quantize:openvino-int8",
    "prune:unstructured:0.5 quantize:openvino-int8",
    "prune:unstructured:0.5",
)
NARROWED_SPACE = (
    "graphopt:basic",
    "early_exit:3",
    "quantize:ort-fp16",
    "quantize:ort-fp16 early_exit:3",
    "prune:structured:0.5 distill:2",
    "prune:structured:0.5 distill:2 early_exit:3",
    "prune:structured:0.5 distill:2 quantize:ort-fp16",
    "prune:structured:0.5 distill:2 quantize:ort-fp16 early_exit:3",
    "prune:structured:0.5",
    "prune:structured:0.5 early_exit:3",
    "prune:structured:0.5 quantize:ort-fp16",
    "prune:structured:0.5 quantize:ort-fp16 early_exit:3",
    "prune:unstructured:0.5",
    "prune:unstructured:0.5 early_exit:3",
    "prune:unstructured:0.5 quantize:ort-fp16",
    "prune:unstructured:0.5 quantize:ort-fp16 early_exit:3",
)


def _recipe(text: str) -> str:
    """The recipe key of "prune:structured:0.3 distill:5 quantize:ort-int8 early_exit:2"."""
    steps = []
    for word in text.split():
        match word.split(":"):
            case ["prune", method, sparsity]:
                steps.append({"technique": "prune", "settings": {"method": method, "sparsity": float(sparsity)}})
            case ["distill", epochs]:
                steps.append({"technique": "distill", "settings": {"epochs": int(epochs)}})
            case ["quantize", target]:
                steps.append({"technique": "quantize", "settings": quant_target(target).settings()})
            case ["early_exit", exits]:
                steps.append({"technique": "early_exit", "settings": {"exits": int(exits)}})
            case ["graphopt", level]:
                steps.append({"technique": "graphopt", "settings": {"level": level}})
            case _:
                raise AssertionError(f"no such step in the written-down space: {word}")
    return recipe_key(Recipe.from_dict({"steps": steps}, "test"))


CASES = {
    "default": (SweepSettings(), True, DEFAULT_SPACE, DEFAULT_PROPOSED),
    "cli --exits 0,2": (SweepSettings(budget_s=90, trials=3, early_exit=(0, 2)), False, CLI_SPACE, CLI_PROPOSED),
    "narrowed": (SweepSettings(budget_s=240, sparsities=(0.0, 0.5), quantize=("none", "ort-fp16"), distill_epochs=2,
                               early_exit=(0, 3)), True, NARROWED_SPACE, None),
}


@pytest.mark.parametrize("case", CASES)
def test_the_space_is_the_one_written_down_in_the_same_order(case):
    settings, torch_edits, expected, _ = CASES[case]
    assert len(set(expected)) == len(expected)
    assert list(search_space(settings, torch_edits)) == [_recipe(text) for text in expected]


@pytest.mark.parametrize("case", [name for name, (*_, proposed) in CASES.items() if proposed])
def test_a_seeded_study_proposes_the_same_recipes_in_the_same_order(case):
    settings, torch_edits, _, expected = CASES[case]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.NSGAIISampler(seed=0, population_size=8))
    proposed = [recipe_key(suggest(study.ask(), settings, torch_edits)) for _ in expected]
    assert proposed == [_recipe(text) for text in expected]


def test_the_methods_and_epochs_are_read_from_the_descriptions(monkeypatch):
    import dataclasses

    from paretolab.core.compress.techniques import TECHNIQUES

    prune = TECHNIQUES["prune"]
    fields = tuple(dataclasses.replace(s, sweep=("unstructured",)) if s.name == "method" else s for s in prune.fields)
    monkeypatch.setitem(TECHNIQUES, "prune", dataclasses.replace(prune, fields=fields))
    space = [text for text in DEFAULT_SPACE if "structured:" not in text or "unstructured:" in text]
    assert list(search_space(SweepSettings(), True)) == [_recipe(text) for text in space]  # no structured pruning
    assert SweepSettings().distill_epochs == TECHNIQUES["distill"].setting("epochs").sweep[0] == 5
    assert SweepSettings().quantize == ("none", *(key for key, target in QUANT_TARGETS.items() if target.sweep))


def test_a_sweep_may_search_the_recovery_loss_beside_the_default():
    """--try distill.loss=labels,auto: each distilled student also comes with the searched recovery
    (loss and learning rate chosen on validation), recorded as a parameter of its own."""
    plain = SweepSettings(sparsities=(0.0, 0.5), quantize=("none",))
    both = SweepSettings(sparsities=(0.0, 0.5), quantize=("none",), overrides={"distill.loss": ("labels", "auto")})
    space, searched = search_space(plain, torch_edits=True), search_space(both, torch_edits=True)
    losses = [step["settings"].get("loss") for key in searched for step in json.loads(key)["steps"]
              if step["technique"] == "distill"]
    assert sorted(losses) == ["auto", "labels"]
    assert len(searched) == len(space) + 1
    assert all("distill.loss" not in params for params in space.values())
    assert any(params.get("distill.loss") == "auto" for params in searched.values())
