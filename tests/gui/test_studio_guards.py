"""Settings that cannot run are refused before any work, nothing from the last model lingers,
one Explore at a time, and the status bar and the Jobs list say how things ended (issue 28)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from conftest import FakePrompts, open_and_wait  # type: ignore[import-not-found]
from paretolab.core.pipeline.sweep import SweepSettings
from paretolab.core.sample import sample_model_path
from paretolab.jobs.job import JobState

EXIT = {"technique": "early_exit", "settings": {"exits": 2, "budget": 0.5, "confidence": "max-softmax"}}


class _TwoHeads(nn.Module):
    """A detector's shape: boxes and scores, no single [batch, classes] output."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.boxes, self.scores = nn.Linear(256, 4), nn.Linear(256, 3)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = torch.relu(self.conv(x)).flatten(1)
        return self.boxes(h), torch.sigmoid(self.scores(h))


def _detector(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(_TwoHeads().eval(), (torch.rand(1, 1, 8, 8),), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["boxes", "scores"])
    return path


def _compute_jobs(w) -> list:
    return [j for j in w.studio.queue.jobs if j.exclusive]


def test_an_exit_from_the_last_model_is_reset_and_a_detector_cannot_take_exits(qtbot, studio_window, tmp_path):
    w = studio_window
    group = w.settings_panel.technique_groups["early_exit"]
    w.graph_view.exit_toggled.emit("features.4")
    assert group.enabled.isChecked() and group.values()["at"] == ["features.4"]
    open_and_wait(qtbot, w, _detector(tmp_path / "detector.onnx"))
    assert group.values()["at"] == []  # the last model's layer does not follow to this one
    assert not group.enabled.isChecked() and not group.enabled.isEnabled()
    assert "early exit needs a model with one output" in group.enabled.toolTip()
    assert w.studio.run({"steps": [EXIT]}, "random:64") is None  # Ctrl+R or a stale recipe: refused before any work
    assert w.prompts.errors[-1][0] == "Cannot run these settings" and "early exit needs" in w.prompts.errors[-1][1]
    assert _compute_jobs(w) == []
    open_and_wait(qtbot, w, sample_model_path())
    assert group.enabled.isEnabled()  # a classifier again: offered again


def test_openvino_int8_and_early_exit_cannot_be_chosen_together(qtbot, studio_window):
    w = studio_window
    panel, group = studio_window.settings_panel, studio_window.settings_panel.technique_groups["early_exit"]
    ov_int8 = panel.target.findData("openvino-int8")
    group.enabled.setChecked(True)
    assert not panel.target.model().item(ov_int8).isEnabled()
    assert "nothing can follow" in panel.target.itemData(ov_int8, 3)  # ToolTipRole
    group.enabled.setChecked(False)
    assert panel.target.model().item(ov_int8).isEnabled()
    panel.target.setCurrentIndex(ov_int8)
    assert not group.enabled.isEnabled() and "nothing can follow" in group.enabled.toolTip()
    assert panel.run_button.isEnabled()  # OpenVINO int8 alone runs
    both = {"steps": [{"technique": "quantize", "settings": {"backend": "openvino", "precision": "int8"}}, EXIT]}
    assert w.studio.run(both, "digits") is None
    assert "nothing can follow" in w.prompts.errors[-1][1] and _compute_jobs(w) == []


def test_a_second_explore_is_refused_while_one_runs_and_offered_again_after(qtbot, studio_window):
    w = studio_window
    first = w.studio.explore(SweepSettings(budget_s=0.5, sparsities=(0.0, 0.5), quantize=("none",)), "digits")
    assert first is not None and not w.settings_panel.explore_button.isEnabled()
    assert "Explore is running" in w.settings_panel.explore_button.toolTip()
    assert w.studio.explore(SweepSettings(budget_s=60), "digits") is None
    assert w.prompts.infos[-1][0] == "Explore is already running" and len(_compute_jobs(w)) == 1
    qtbot.waitUntil(lambda: first.state in (JobState.DONE, JobState.FAILED), timeout=120_000)
    assert first.state == JobState.DONE
    qtbot.waitUntil(w.settings_panel.explore_button.isEnabled, timeout=5_000)


def test_cancelling_in_the_status_bar_ends_with_the_job(qtbot, studio_window):
    w = studio_window
    w.settings_panel.sparsity.setValue(0.5)
    w.settings_panel.technique_groups["distill"].enabled.setChecked(True)
    w.settings_panel.epochs.setValue(50)
    job = w.studio.run(w.settings_panel.recipe(), "digits")
    qtbot.waitUntil(lambda: job.state == JobState.RUNNING, timeout=10_000)
    w.cancel_job()
    assert w.status_label.text() == "Cancelling…"
    qtbot.waitUntil(lambda: job.state != JobState.RUNNING, timeout=60_000)
    qtbot.waitUntil(lambda: w.status_label.text() != "Cancelling…", timeout=5_000)
    assert w.status_label.text() == f"{job.title}: cancelled"


def test_a_failed_open_leaves_the_jobs_list_once_an_open_works(qtbot, window, tmp_path):
    window.prompts = FakePrompts()
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"not a model")
    open_and_wait(qtbot, window, broken)
    titles = lambda: [window.jobs_panel.table.item(r, 0).text() for r in range(window.jobs_panel.table.rowCount())]  # noqa: E731
    assert titles() == ["Open broken.onnx"] and window.prompts.errors
    open_and_wait(qtbot, window, sample_model_path())
    assert titles() == ["Open digits_cnn.onnx"]
    assert window.jobs_panel.table.item(0, 1).text() == "done"


def test_layer_details_and_analysis_follow_the_model(qtbot, studio_window, tmp_path):
    w = studio_window
    w.graph_view.select("features.0")
    assert "features.0" in w.graph_view.details.text()
    job = w.analyse_layers()
    qtbot.waitUntil(lambda: job.state in (JobState.DONE, JobState.FAILED), timeout=180_000)
    assert job.state == JobState.DONE and "importance (mean |w|)" in w.graph_view.metrics
    open_and_wait(qtbot, w, _detector(tmp_path / "detector.onnx"))
    assert "features.0" not in w.graph_view.details.text()  # not the last model's layer
    assert "importance (mean |w|)" not in w.graph_view.metrics
    analyses = [j for j in w.studio.queue.jobs if j.title.startswith("Analyse")]
    open_and_wait(qtbot, w, sample_model_path())  # reopened: its analysis comes back from memory, not a new job
    assert "importance (mean |w|)" in w.graph_view.metrics
    assert [j for j in w.studio.queue.jobs if j.title.startswith("Analyse")] == analyses


def test_the_right_click_menu_is_titled_with_its_layer(qtbot, studio_window):
    view = studio_window.graph_view
    menu = view._layer_menu(view.items["features.0"])
    first = menu.actions()[0]
    assert first.text() == "features.0" and not first.isEnabled()
    menu.deleteLater()


def test_exporting_over_a_file_the_save_dialog_agreed_to_replace(qtbot, studio_window, tmp_path):
    w = studio_window
    w.settings_panel.sparsity.setValue(0.3)
    w.settings_panel.method.setCurrentText("unstructured")
    with qtbot.waitSignal(w.studio.variant_added, timeout=120_000):
        w.settings_panel.request_run()
    old = tmp_path / "exported.onnx"
    old.write_bytes(b"an older export")
    w.prompts.choice, w.prompts.path = "ONNX", str(old)
    export = w.export_selected()
    qtbot.waitUntil(lambda: export.state in (JobState.DONE, JobState.FAILED), timeout=60_000)
    assert export.state == JobState.DONE, export.error
    assert old.read_bytes() != b"an older export" and "the same as the variants table" in w.prompts.infos[-1][1]


def test_the_wheel_over_an_unfocused_spin_box_scrolls_the_panel_not_the_value(qtbot, studio_window):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtGui import QWheelEvent
    from PySide6.QtWidgets import QApplication

    samples = studio_window.settings_panel.samples
    studio_window.settings_panel.target.setCurrentIndex(1)  # int8: Samples enabled

    def turn() -> None:
        centre = QPointF(samples.rect().center())
        event = QWheelEvent(centre, QPointF(samples.mapToGlobal(samples.rect().center())), QPoint(0, 0), QPoint(0, 120),
                            Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(samples, event)

    studio_window.settings_panel.run_button.setFocus()
    turn()
    assert samples.value() == 128
    samples.setFocus()
    qtbot.waitUntil(samples.hasFocus, timeout=2_000)
    turn()
    assert samples.value() != 128  # clicked into: the wheel is the user's intent


def test_open_folder_opens_a_hugging_face_model(qtbot, window, tmp_path):
    import pytest

    pytest.importorskip("transformers")
    import hf_models  # type: ignore[import-not-found]

    window.prompts = FakePrompts()
    window.prompts.path = str(hf_models.write("bert", tmp_path))
    window.choose_model_folder()
    qtbot.waitUntil(lambda: window.job is None, timeout=120_000)
    assert window.loaded is not None and window.loaded.handle.path == tmp_path / "bert"
    assert any(a.text().startswith("Open &Folder") for a in window.menuBar().actions()[0].menu().actions())


def test_the_shape_question_speaks_the_gui_s_language_and_fits_a_laptop():
    from paretolab.gui.prompts import gui_words

    said = gui_words("input 'x' has free dimensions; give one with --input-shape, e.g. --input-shape x=1x3x224x224")
    assert "--" not in said and "e.g. x=1x3x224x224" in said


def test_a_remembered_early_exit_survives_startup_and_opening_a_classifier(qtbot, settings, tmp_path):
    from paretolab.gui.main_window import MainWindow

    settings.setValue("compress/early_exit", True)
    win = MainWindow(settings=settings, experiments_root=tmp_path / "variants")
    qtbot.addWidget(win)
    win.prompts = FakePrompts()
    assert win.settings_panel.technique_groups["early_exit"].enabled.isChecked()
    open_and_wait(qtbot, win, sample_model_path())
    switch = win.settings_panel.technique_groups["early_exit"].enabled
    assert switch.isChecked() and switch.isEnabled()
    win.close()
