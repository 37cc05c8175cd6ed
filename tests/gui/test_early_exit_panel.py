"""Early exit in the app: an exit added by right-clicking a layer reaches the recipe, the variant
is built in the background, and its point tells where the inputs left."""

from __future__ import annotations

from paretolab.jobs.job import JobState


def test_an_exit_added_in_the_graph_builds_an_early_exit_variant(qtbot, studio_window, settings):
    w = studio_window
    group = w.settings_panel.technique_groups["early_exit"]
    assert not group.enabled.isChecked() and not group.budget.isEnabled()
    w.graph_view.exit_toggled.emit("features.4")  # right-click > Add an early exit after this layer
    assert group.enabled.isChecked() and group.values()["at"] == ["features.4"] and not group.exits.isEnabled()
    group.budget.setValue(1.0)
    steps = w.settings_panel.recipe()["steps"]
    assert steps == [{"technique": "early_exit",
                      "settings": {"at": ["features.4"], "budget": 1.0, "confidence": "max-softmax"}}]
    assert w.settings_panel.run_button.isEnabled()

    job = w.studio.run(w.settings_panel.recipe(), w.settings_panel.data_spec())
    qtbot.waitUntil(lambda: job.state not in (JobState.WAITING, JobState.RUNNING), timeout=120_000)
    assert job.state == JobState.DONE, job.error
    variant = job.result
    assert [e["exit"] for e in variant.exits] == ["after features.4", "the end"]
    tip = w.chart.points[variant.name].label
    assert "exits: after features.4: " in tip and "latency: average" in tip
    assert w.chart.points[variant.name].latency_ms == variant.metrics["timing"]["over_data"]["variant"]["mean_ms"]

    w.graph_view.exit_toggled.emit("features.4")  # toggled off: back to automatic placement
    assert group.values()["at"] == [] and group.exits.isEnabled()
    w.settings_panel.save(settings)
    group.enabled.setChecked(False)
    w.settings_panel.restore(settings)
    assert group.enabled.isChecked() and group.budget.value() == 1.0
    assert w.settings_panel.recipe()["steps"][0]["settings"] == {"exits": 2, "budget": 1.0, "confidence": "max-softmax"}
