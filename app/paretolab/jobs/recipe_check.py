"""Checks the GUI runs on a recipe before any work: the same core rules a run applies, asked
up front, so an impossible combination is disabled with its reason instead of failing minutes in."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paretolab.core.errors import ParetoLabError

if TYPE_CHECKING:
    from paretolab.core.model.handle import ModelHandle


def technique_unavailable(name: str, handle: ModelHandle | None) -> str | None:
    """Why the open model cannot take technique `name` at all (what its description says it needs:
    class scores for early exit, ...), or None: the run's own check, on a step with default settings."""
    if handle is None:
        return "open a model first"
    return recipe_problem({"steps": [{"technique": name}]}, handle)


def recipe_problem(doc: dict, handle: ModelHandle | None) -> str | None:
    """Why the recipe `doc` cannot run on the open model, in one line, or None: the steps' order
    (nothing follows OpenVINO quantization, ...) and what each technique needs of the model (class
    scores for early exit, an editable PyTorch module for distillation)."""
    from paretolab.core.compress.techniques import check_recipe
    from paretolab.core.compress.variant import Recipe

    try:
        recipe = Recipe.from_dict(doc, "settings")
        if handle is not None:
            check_recipe(handle, recipe.steps)  # what each technique needs of the model: the run's own check
    except ParetoLabError as exc:
        return str(exc)
    return None
