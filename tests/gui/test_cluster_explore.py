"""Explore on Ray from the app: trials land on the chart as they finish; a cluster that cannot be
reached is one line in a dialog, and the window goes on."""

from __future__ import annotations

from paretolab.core.pipeline.sweep import SweepSettings
from paretolab.jobs.job import JobState


def test_explore_on_a_local_ray_fills_the_chart_and_a_bad_address_is_one_dialog(qtbot, studio_window):
    w = studio_window
    panel = w.settings_panel
    assert panel.ray_cluster() is None and not panel.ray_address.isEnabled()
    panel.on_ray.setChecked(True)
    assert panel.ray_cluster() == "local" and panel.ray_address.isEnabled()

    two = SweepSettings(budget_s=300, trials=2, sparsities=(0.0,), quantize=("none", "ort-fp16"))
    job = w.studio.explore(two, "digits")
    assert "on Ray" in job.title
    qtbot.waitUntil(lambda: job.state not in (JobState.WAITING, JobState.RUNNING), timeout=180_000)
    assert job.state == JobState.DONE, job.error
    assert len(job.result.variants) == 2
    assert {v.name for v in job.result.variants} <= set(w.chart.points)  # each trial landed on the chart
    assert all(v.metrics["built_by"]["pid"] != v.metrics["measured_by"]["pid"] for v in job.result.variants)

    panel.ray_address.setText("ray://127.0.0.1:9")
    failing = w.studio.explore(SweepSettings(budget_s=300, sparsities=(0.0,), quantize=("ort-int8",)), "digits")
    qtbot.waitUntil(lambda: failing.state not in (JobState.WAITING, JobState.RUNNING), timeout=60_000)
    title, message = w.prompts.errors[-1]
    assert failing.state == JobState.FAILED and title == "The job failed"
    assert message.startswith("cannot reach the Ray cluster at ray://127.0.0.1:9") and "\n" not in message
    assert w.isVisible()
