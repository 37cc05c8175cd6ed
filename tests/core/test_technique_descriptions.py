"""Each technique describes itself once (settings, bounds, sweep values, what it needs), and the
CLI's flags, the sweep's space and the check before any work are built from that description:
a technique described in one module (tests/dummy_technique.py) gets them all by registering."""

from __future__ import annotations

import subprocess
import sys

import pytest

from dummy_technique import FUTURE_OPSET, SCALE, SCALE_FUTURE
from paretolab.cli import recipe_from_args
from paretolab.cli_parser import build_parser
from paretolab.core.compress.pruning.prune import PruneSettings
from paretolab.core.compress.techniques import TECHNIQUES, check_recipe, register
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import ParetoLabError
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.sweep import described_dimensions, search_space
from paretolab.core.pipeline.sweep_settings import SweepSettings
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError, from_dict

ONNX = str(sample_model_path("onnx"))
SMALL = SweepSettings(sparsities=(0.0,), quantize=("none",))  # nothing but what the registered technique adds


@pytest.fixture()
def registered():
    """Register a description for the test; the registry is as it was afterwards."""
    before = dict(TECHNIQUES)

    def add(entry):
        register(entry, before="quantize")  # an ONNX step: before quantization, like graph optimization
        return entry

    yield add
    TECHNIQUES.clear()
    TECHNIQUES.update(before)


def _parse(*argv: str):
    return build_parser().parse_args(["optimize", ONNX, "--out", "unused", *argv])


def test_descriptions_load_without_torch_onnx_or_runtimes():
    code = ("import sys; import paretolab.core.compress.techniques as t, paretolab.core.compress.technique_flags; "
            "[e.fields for e in t.TECHNIQUES.values()]; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'openvino', 'nncf') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_registered_technique_gets_a_flag_for_itself_and_each_setting(registered):
    registered(SCALE)
    recipe = recipe_from_args(_parse("--prune", "unstructured:0.3", "--scale", "--scale-factor", "3"))
    assert [s.technique for s in recipe.steps] == ["prune", "scale"]
    assert recipe.steps[1].settings.factor == 3.0 and recipe.summary() == "prune unstructured 30% → scale x3"
    with pytest.raises(SettingsError, match="setting 'factor' must be between 0.5 and 4, not 9"):
        recipe_from_args(_parse("--scale", "--scale-factor", "9"))  # the description's bounds, checked by the class
    with pytest.raises(SettingsError, match="--scale-factor is a setting of output scaling: add --scale too"):
        recipe_from_args(_parse("--graphopt", "basic", "--scale-factor", "3"))


def test_a_registered_technique_adds_its_sweep_dimension(registered):
    assert described_dimensions() == {}  # the built-in dimensions are the sweep's own
    assert len(search_space(SMALL, torch_edits=False)) == 1
    registered(SCALE)
    assert described_dimensions() == {"scale.factor": (None, 1.5, 3.0)}
    space = search_space(SMALL, torch_edits=False)
    assert sorted(p["scale.factor"] or 0 for p in space.values()) == [0, 1.5, 3.0]
    assert len(search_space(SweepSettings(), torch_edits=True)) == 3 * 40  # the default space, times its three values


def test_a_requirement_refuses_the_model_before_any_work_and_the_sweep_never_tries_it(registered, tmp_path):
    handle = load_model(sample_model_path("onnx"))
    registered(SCALE_FUTURE)
    recipe = Recipe.from_dict({"steps": [{"technique": "scale", "settings": {"factor": 1.5}}]})
    with pytest.raises(ParetoLabError, match=f"output scaling needs ONNX opset {FUTURE_OPSET} or newer, and "
                                             "digits_cnn.onnx uses opset"):
        check_recipe(handle, recipe.steps)
    from paretolab.core.measure.plan import DataPlan
    from paretolab.core.pipeline.optimize import optimize

    with pytest.raises(ParetoLabError, match="needs ONNX opset"):
        optimize(handle, recipe, DataPlan.from_spec("random:4", handle), tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    # the sweep leaves the step out: every value of its dimension is the recipe without it
    space = search_space(SMALL, torch_edits=False, handle=handle)
    assert len(space) == 1 and "scale" not in next(iter(space))
    assert len(search_space(SMALL, torch_edits=False)) == 3  # without a model to ask, all three stand


def test_requirements_of_the_built_in_techniques():
    onnx_only = load_model(sample_model_path("onnx"))
    torchscript = load_model(sample_model_path("onnx").with_name("digits_cnn.pt"))
    for name, words in (("lowrank", "low-rank factorization"), ("distill", "distillation")):
        with pytest.raises(ParetoLabError, match=f"{words} needs an editable PyTorch module, and digits_cnn.pt is "
                                                 "TorchScript"):
            check_recipe(torchscript, Recipe.from_dict({"steps": [{"technique": name}]}).steps)
    check_recipe(onnx_only, Recipe.from_dict({"steps": [{"technique": "graphopt"}]}).steps)  # needs nothing
    check_recipe(onnx_only, Recipe.from_dict({"steps": [{"technique": "prune",
                                                          "settings": {"method": "unstructured"}}]}).steps)


def test_sparsity_bounds_agree_everywhere():
    """Validation, the CLI, the sweep and the slider (tests/gui/test_technique_controls.py) read one bound."""
    bound = TECHNIQUES["prune"].setting("sparsity").maximum
    assert bound == 0.99
    assert from_dict(PruneSettings, {"sparsity": bound}, "s").sparsity == bound
    assert recipe_from_args(_parse("--prune", f"structured:{bound}")).steps[0].settings.sparsity == bound
    SweepSettings(sparsities=(bound,)).check()
    for refuse in (lambda: from_dict(PruneSettings, {"sparsity": 1.0}, "s"),
                   lambda: recipe_from_args(_parse("--prune", "structured:1.0")),
                   lambda: SweepSettings(sparsities=(1.0,)).check()):
        with pytest.raises(SettingsError, match="between 0 and 0.99"):
            refuse()
    assert SweepSettings().sparsities == TECHNIQUES["prune"].setting("sparsity").sweep


def test_the_sweep_command_takes_any_dimension_and_the_flags_users_know():
    from paretolab.cli_parser import sweep_overrides

    args = build_parser().parse_args(["sweep", ONNX, "--try", "sparsity=0,0.5", "--try", "quantize=none,ort-fp16",
                                      "--exits", "0,2"])
    overrides = sweep_overrides(args)
    assert overrides == {"sparsity": (0.0, 0.5), "quantize": ("none", "ort-fp16"), "early_exit": (0, 2)}
    settings = SweepSettings(overrides=overrides)
    assert settings == SweepSettings(sparsities=(0.0, 0.5), quantize=("none", "ort-fp16"), early_exit=(0, 2))
    assert sweep_overrides(build_parser().parse_args(["sweep", ONNX])) == {}  # the descriptions' values
    for bad in (["--exits", "9"], ["--try", "sparsity=0,1.5"], ["--try", "nothing=1"], ["--try", "sparsity"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["sweep", ONNX, *bad])


def test_a_registered_technique_is_swept_through_the_generic_overrides(registered):
    registered(SCALE)
    space = search_space(SweepSettings(overrides={"sparsity": (0.0,), "quantize": ("none",), "scale.factor": (None, 2.0)}),
                         torch_edits=False)
    assert sorted(p["scale.factor"] or 0 for p in space.values()) == [0, 2.0]
    with pytest.raises(SettingsError, match="'sweep scale.factor' must be between 0.5 and 4, not 9"):
        SweepSettings(overrides={"scale.factor": (9.0,)}).check()


def test_no_module_outside_the_techniques_names_one():
    """The sweep's rules (distillation only after structured pruning, nothing after OpenVINO IR, a
    target's backend), the panel's groups, the CLI's flags and choices are read from the descriptions:
    a technique renamed or added changes no module outside the technique modules and the registry."""
    from pathlib import Path

    import paretolab

    root = Path(paretolab.__file__).parent
    outside = [path for path in root.rglob("*.py") if "compress" not in path.relative_to(root).parts]
    for path in [*outside, *(root / "core/compress" / name for name in ("technique_sweep.py", "technique_flags.py"))]:
        text = path.read_text()
        named = [name for name in TECHNIQUES if f'"{name}"' in text or f"'{name}'" in text]
        assert named == [], f"{path.relative_to(root)} names {named}"
    assert len(outside) > 100  # every module outside the technique modules and the registry
