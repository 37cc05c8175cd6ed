"""The variants table's "Why (not) faster?": the explanation runs as a job and is shown."""

from __future__ import annotations


def test_why_not_faster_explains_a_variant_in_a_message(qtbot, studio_window):
    from paretolab.jobs.job import JobState

    w = studio_window
    w.settings_panel.target.setCurrentText("dynamic int8, ONNX Runtime")
    job = w.studio.run(w.settings_panel.recipe(), w.settings_panel.data_spec())
    qtbot.waitUntil(lambda: job.state not in (JobState.WAITING, JobState.RUNNING), timeout=120_000)
    assert job.state == JobState.DONE, job.error
    explaining = w.studio.explain(job.result)
    qtbot.waitUntil(lambda: explaining.state not in (JobState.WAITING, JobState.RUNNING), timeout=120_000)
    title, text = w.prompts.infos[-1]
    assert title == f"Why is {job.result.name} (not) faster?" and "expected  1.00x" in text and "ConvInteger" in text
