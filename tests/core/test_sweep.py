"""Explore: a budgeted multi-objective sweep that saves every trial and resumes without re-running."""

from __future__ import annotations

import pytest

from paretolab.core.errors import Cancelled
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.pipeline.sweep import SweepSettings, search_space, sweep
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_model_path
from paretolab.core.settings import SettingsError, from_dict
from paretolab.core.store.experiment import Experiment
from paretolab.core.store.pareto import Point, pareto_front

SMALL = SweepSettings(budget_s=240, trials=5, sparsities=(0.0, 0.5), quantize=("none", "ort-fp16"), distill_epochs=2)


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path())


def test_sweep_saves_each_trial_and_finds_a_front(sample, tmp_path):
    experiment = Experiment.for_model(sample, tmp_path)
    seen = []
    made = sweep(sample, DataPlan.from_spec("digits", sample), experiment, SMALL, torch_edits=True, on_variant=seen.append)
    assert len(made.variants) == 5 and seen and len(seen) == len({v.name for v in made.variants})
    assert made.space == 8 and made.measured == len(seen) and not made.exhausted
    stored = experiment.variants()
    assert {v.name for v in stored} == {v.name for v in seen}  # every new trial is on disk
    points = [Point(v.name, v.measured.latency_ms, v.selection_score) for v in stored]
    front = pareto_front(points)
    fastest = min(points, key=lambda p: p.cost)
    most_accurate = max(points, key=lambda p: (p.score, -p.cost))
    assert fastest in front and most_accurate in front  # the ends of the trade-off are always on the front
    assert all(not (q.cost <= p.cost and q.score >= p.score and q != p) for p in front for q in points)

    # trials are scored on the validation split, never on the test split the table reports
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    study = optuna.load_study(study_name="paretolab-sweep",
                              storage=JournalStorage(JournalFileBackend(str(experiment.folder / "sweep.journal"))))
    by_latency = {v.measured.latency_ms: v for v in stored}
    for trial in study.trials:
        variant = by_latency[trial.values[1]]
        assert trial.values[0] == variant.selection_score == variant.metrics["validation"]["variant"]["top1"]
        assert variant.metrics["validation"]["dataset"].endswith("val") and variant.measured.dataset.endswith("test")

    again = sweep(sample, DataPlan.from_spec("digits", sample), experiment, SMALL, torch_edits=True)
    assert len(again.variants) == 5
    distinct = {v.recipe.summary() for v in made.variants + again.variants}
    assert len(experiment.variants()) == len(distinct)  # settings measured once, however often proposed


def test_sweep_stops_when_every_setting_is_measured_and_a_resume_adds_nothing(sample, tmp_path):
    tiny = SweepSettings(budget_s=600, sparsities=(0.0, 0.5), quantize=("none", "ort-fp16"))
    assert len(search_space(tiny, torch_edits=False)) == 4
    assert len(search_space(SweepSettings(), torch_edits=True)) == 40  # the GUI's default space
    experiment = Experiment.for_model(sample, tmp_path)
    messages = []
    result = sweep(sample, DataPlan.from_spec("digits", sample), experiment, tiny, torch_edits=False,
                   progress=Progress(lambda f, m: messages.append(m)))
    assert result.exhausted and result.measured == 4 and len(experiment.variants()) == 4
    assert len(result.variants) <= 8  # each repeat queues an unmeasured setting next
    assert messages[-1].endswith("all 4 settings measured, nothing left to explore")
    journal = experiment.folder / "sweep.journal"
    size = journal.stat().st_size
    resumed = sweep(sample, DataPlan.from_spec("digits", sample), experiment, tiny, torch_edits=False)
    assert resumed.exhausted and resumed.variants == [] and journal.stat().st_size == size


def test_sweep_cancels_and_keeps_finished_trials(sample, tmp_path):
    experiment = Experiment.for_model(sample, tmp_path)
    progress = Progress(lambda f, m: m.startswith("trial 2") and progress.cancel())
    with pytest.raises(Cancelled):
        sweep(sample, DataPlan.from_spec("digits", sample), experiment, SMALL, torch_edits=True, progress=progress)
    assert 1 <= len(experiment.variants()) <= 2


def test_sweep_settings_are_checked():
    with pytest.raises(SettingsError, match="'sweep quantize' must be none or ort-int8 or .*, not int3"):
        from_dict(SweepSettings, {"overrides": {"quantize": ["int3"]}}, "sweep")
    with pytest.raises(SettingsError, match="'sweep sparsities' must be between 0 and 0.99, not 1.5"):
        SweepSettings(overrides={"sparsity": (0.0, 1.5)}).check()
    with pytest.raises(SettingsError, match="the sweep has no dimension 'sparsities2'"):
        SweepSettings(overrides={"sparsities2": (0.5,)}).check()
    assert SweepSettings(sparsities=(0.0, 0.5)) == SweepSettings(overrides={"sparsity": (0.0, 0.5)})


def test_a_student_is_trained_once_per_sweep_whatever_follows_it(sample, tmp_path):
    from paretolab.core.compress.variant import Recipe
    from paretolab.core.pipeline.prefix_cache import PrefixCache

    def recipe(quantize: dict) -> Recipe:
        return Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}},
                                           {"technique": "distill", "settings": {"epochs": 2}},
                                           {"technique": "quantize", "settings": quantize}]})

    plan, cache = DataPlan.from_spec("digits", sample), PrefixCache(tmp_path / ".students")
    ptq = {"backend": "openvino", "precision": "int8", "qat": "off"}
    first = optimize(sample, recipe({"backend": "ort", "precision": "fp16"}), plan, tmp_path, "a", reuse=cache)
    second = optimize(sample, recipe(ptq), plan, tmp_path, "b", reuse=cache)
    assert not any(r.get("reused") for r in first.reports)
    assert [r.get("reused") for r in second.reports] == [True, True, None]  # pruning and distillation came from the cache
    assert second.reports[1]["history"] == first.reports[1]["history"]
    fresh = optimize(sample, recipe(ptq), plan, tmp_path, "c")
    assert abs(fresh.metrics["variant"]["top1"] - second.metrics["variant"]["top1"]) <= 2 / 360  # the same student
    assert len(list((tmp_path / ".students").glob("*.onnx"))) == 1


def test_a_step_that_trains_the_module_before_it_never_starts_from_the_cache(sample, tmp_path):
    """Quantization-aware training needs the distilled module, which the cache (ONNX) does not keep:
    such a recipe is trained afresh, so it gives the same variant whatever the sweep ran before it."""
    from paretolab.core.compress.variant import Recipe
    from paretolab.core.pipeline.optimize import apply_recipe
    from paretolab.core.pipeline.prefix_cache import PrefixCache

    def recipe(quantize: dict) -> Recipe:
        return Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"method": "structured", "sparsity": 0.5}},
                                           {"technique": "distill", "settings": {"epochs": 1}},
                                           {"technique": "quantize", "settings": quantize}]})

    plan, cache = DataPlan.from_spec("digits", sample), PrefixCache(tmp_path / ".students")
    apply_recipe(sample, recipe({"backend": "ort", "precision": "fp16"}), plan, tmp_path / "a", reuse=cache)
    assert len(list((tmp_path / ".students").glob("*.onnx"))) == 1
    _, reports = apply_recipe(sample, recipe({"backend": "openvino", "precision": "int8", "qat": "always", "qat_epochs": 1}),
                              plan, tmp_path / "b", reuse=cache)
    assert not any(r.get("reused") for r in reports)
    assert reports[-1]["qat"]["ran"]


def test_early_exit_is_a_setting_of_the_sweep(sample, tmp_path):
    exits = SweepSettings(budget_s=600, sparsities=(0.0,), quantize=("none", "ort-int8", "openvino-int8"), early_exit=(0, 1))
    space = search_space(exits, torch_edits=False)
    assert len(space) == 5  # OpenVINO's IR takes no exits after it: that pair is the trial without
    assert sum(p.get("early_exit") == 1 for p in space.values()) == 2
    with pytest.raises(SettingsError, match=r"'sweep early_exit' must be between 1 and 8, not 9 \(0: no early exit\)"):
        from_dict(SweepSettings, {"overrides": {"early_exit": [9]}}, "sweep")
    small = SweepSettings(budget_s=600, sparsities=(0.0,), quantize=("none",), early_exit=(0, 1))
    result = sweep(sample, DataPlan.from_spec("digits", sample), Experiment.for_model(sample, tmp_path), small,
                   torch_edits=False)
    assert result.exhausted and result.measured == 2
    with_exits = [v for v in result.variants if v.exits]
    assert with_exits and with_exits[0].recipe.summary().startswith("early exit 1 exit (")


def test_where_distillation_ran_does_not_make_a_new_setting():
    from paretolab.core.compress.variant import Recipe
    from paretolab.core.pipeline.sweep import recipe_key

    def made(device: str) -> Recipe:
        return Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"sparsity": 0.5}},
                                           {"technique": "distill", "settings": {"epochs": 2, "device": device}}]})

    assert recipe_key(made("cpu")) == recipe_key(made("auto"))  # a sweep resumed from an older version re-runs nothing
    assert recipe_key(made("cpu")) != recipe_key(Recipe.from_dict({"steps": [{"technique": "prune"}]}))


def test_a_tiny_budget_stops_after_one_trial_and_starts_none_after_it(sample, tmp_path):
    """Explore stops within its budget plus one trial: the first trial always runs (something is
    kept), and none starts once the budget is spent."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    experiment = Experiment.for_model(sample, tmp_path)
    tiny = SweepSettings(budget_s=0.2, sparsities=(0.0, 0.3, 0.5), quantize=("none", "ort-fp16"))
    made = sweep(sample, DataPlan.from_spec("digits", sample), experiment, tiny, torch_edits=False)
    assert len(made.variants) == 1 and len(experiment.variants()) == 1 and not made.exhausted
    study = optuna.load_study(study_name="paretolab-sweep",
                              storage=JournalStorage(JournalFileBackend(str(experiment.folder / "sweep.journal"))))
    assert [t.state for t in study.trials].count(optuna.trial.TrialState.COMPLETE) == 1


def test_optuna_speaks_to_the_log_file_not_the_terminal(sample, tmp_path, capfd):
    """A cancelled trial's traceback is Optuna's warning: it must land in the log, never on stderr."""
    import logging

    from paretolab.core.pipeline.sweep import open_study

    open_study(Experiment.for_model(sample, tmp_path), SMALL)
    optuna_log = logging.getLogger("optuna")
    assert optuna_log.propagate
    logging.getLogger("optuna.study.study").warning("Trial 3 failed with value None.")
    assert "Trial 3 failed" not in capfd.readouterr().err
