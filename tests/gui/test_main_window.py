"""The first window: opens the sample, sorts and filters layers, and survives bad files."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, QRect, Qt, QUrl
from PySide6.QtGui import QDropEvent
from PySide6.QtWidgets import QApplication, QMessageBox

from conftest import FakePrompts, open_and_wait  # type: ignore[import-not-found]
from paretolab.core.sample import sample_model_path
from paretolab.gui.main_window import MainWindow


def test_opens_the_sample_with_summary_and_layers(qtbot, window):
    with qtbot.waitSignal(window.open_sample().succeeded, timeout=60_000):
        pass
    qtbot.waitUntil(lambda: window.job is None)
    assert window.windowTitle() == "ParetoLab — digits_cnn.onnx"
    assert window.layer_table.proxy.rowCount() == 12
    assert window.summary.labels["Parameters"].text() == "40.4 K (40,394)"
    assert window.summary.labels["MACs"].text() == "616 K"
    assert window.summary.labels["Inputs"].text() == "input [batch, 1, 8, 8] float32"
    assert not window.progress_bar.isVisible()


def test_layer_table_sorts_numerically_and_filters(qtbot, window):
    open_and_wait(qtbot, window, sample_model_path())
    table = window.layer_table
    table.view.sortByColumn(5, Qt.SortOrder.DescendingOrder)  # MACs
    assert set(table.visible_layer_names()[:2]) == {"features.2", "features.5"}
    assert table.visible_layer_names()[2] == "classifier.1"  # 16,384 > 9,216: numbers, not text
    table.view.sortByColumn(4, Qt.SortOrder.AscendingOrder)  # params
    assert table.visible_layer_names()[-1] == "features.5"
    qtbot.keyClicks(table.filter, "conv")
    assert sorted(table.visible_layer_names()) == ["features.0", "features.2", "features.5"]


def test_bad_file_shows_a_dialog_and_keeps_the_current_model(qtbot, window, bad_files):
    open_and_wait(qtbot, window, sample_model_path())
    open_and_wait(qtbot, window, bad_files["truncated_onnx"])
    dialogs = [w for w in window.findChildren(QMessageBox) if w.isVisible()]
    assert len(dialogs) == 1 and "truncated.onnx is not a readable ONNX file" in dialogs[0].text()
    dialogs[0].accept()
    assert window.loaded is not None and window.loaded.handle.path.name == "digits_cnn.onnx"
    assert window.layer_table.proxy.rowCount() == 12
    open_and_wait(qtbot, window, sample_model_path("torchscript"))  # and the app keeps working
    assert window.loaded.handle.format == "torchscript"


def test_every_broken_file_reaches_the_user_as_one_line(qtbot, window, bad_files):
    window.prompts = FakePrompts()
    for key in ("empty", "garbage_onnx", "future_opset", "xml_without_bin", "unknown_ext", "truncated_pt2"):
        open_and_wait(qtbot, window, bad_files[key])
    assert len(window.prompts.errors) == 6
    for (title, message), key in zip(
        window.prompts.errors, ("empty", "garbage_onnx", "future_opset", "xml_without_bin", "unknown_ext", "truncated_pt2")
    ):
        assert title == "Could not open the model" and bad_files[key].name in message and "\n" not in message


def test_untrusted_pickle_asks_then_asks_for_the_shape_then_loads(qtbot, window, model_files):
    window.prompts = FakePrompts(confirm=True, text="1x3x16x16")
    window.open_model(model_files["pickle"])
    qtbot.waitUntil(lambda: window.loaded is not None, timeout=60_000)
    qtbot.waitUntil(lambda: window.job is None)
    assert len(window.prompts.questions) == 2
    assert "runs code" in window.prompts.questions[0] and "give one below" in window.prompts.questions[1]
    assert "--input-shape" not in window.prompts.questions[1]  # the shape question speaks the GUI's language
    assert window.loaded.handle.format == "torch-pickle"
    assert [n.name for n in window.loaded.graph][:2] == ["stem", "bn"]
    assert window.prompts.errors == []


def test_declining_an_untrusted_pickle_loads_nothing(qtbot, window, model_files):
    window.prompts = FakePrompts(confirm=False)
    open_and_wait(qtbot, window, model_files["pickle"])
    assert window.loaded is None and window.prompts.errors == [] and len(window.prompts.questions) == 1


def test_state_dict_asks_for_the_class(qtbot, window, model_files):
    answers = iter(["model_zoo:TinyNet", "1x3x16x16"])
    prompts = FakePrompts()
    prompts.ask_text = lambda title, message, default="": (prompts.questions.append(message), next(answers))[1]
    window.prompts = prompts
    window.open_model(model_files["state_dict"])
    qtbot.waitUntil(lambda: window.loaded is not None, timeout=60_000)
    qtbot.waitUntil(lambda: window.job is None)
    assert window.loaded.handle.format == "torch-state-dict"
    assert "--arch" in prompts.questions[0] and "give one below" in prompts.questions[1]


def test_drop_a_model_file_on_the_window(qtbot, window, model_files):
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(model_files["openvino"]))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)
    qtbot.waitUntil(lambda: window.job is None, timeout=60_000)
    assert window.loaded.handle.format == "openvino"


def test_recent_files_persist_across_windows(qtbot, window, settings, model_files):
    open_and_wait(qtbot, window, model_files["onnx"])
    open_and_wait(qtbot, window, sample_model_path())
    assert window.recent_files()[:2] == [str(sample_model_path().resolve()), str(model_files["onnx"].resolve())]
    window.close()
    again = MainWindow(settings=settings, experiments_root=settings.fileName() + ".variants")
    qtbot.addWidget(again)
    again._fill_recent_menu()
    assert [a.text() for a in again.recent_menu.actions()][:2] == again.recent_files()[:2]
    again.recent_menu.actions()[1].trigger()
    qtbot.waitUntil(lambda: again.job is None, timeout=60_000)
    assert again.loaded.handle.path.name == "tiny.onnx"
    again.close()


def test_closing_while_a_model_loads_cancels_cleanly(qtbot, window, model_files):
    window.open_model(model_files["pt2"])
    window.close()  # the autouse fixture fails the test if a worker thread is left running
    assert not window.isVisible()


def test_file_open_uses_the_chosen_path(qtbot, window, model_files):
    window.prompts = FakePrompts(text=str(model_files["onnx"]))
    window.open_action.trigger()
    qtbot.waitUntil(lambda: window.job is None, timeout=60_000)
    assert window.loaded.handle.path == model_files["onnx"]


def test_settings_and_layout_persist(qtbot, settings, tmp_path):
    first = MainWindow(settings=settings, experiments_root=tmp_path / "v")
    qtbot.addWidget(first)
    first.settings_panel.sparsity.setValue(0.4)
    first.settings_panel.technique_groups["distill"].enabled.setChecked(True)
    first.settings_panel.epochs.setValue(7)
    first.settings_panel.target.setCurrentText("FP16, OpenVINO")
    first.chart_dock.hide()
    first.close()
    second = MainWindow(settings=settings, experiments_root=tmp_path / "v")
    qtbot.addWidget(second)
    panel = second.settings_panel
    assert panel.sparsity.value() == 0.4 and panel.technique_groups["distill"].enabled.isChecked() and panel.epochs.value() == 7
    assert panel.target.currentText() == "FP16, OpenVINO"
    assert not second.chart_dock.isVisibleTo(second)
    assert "threads" in second.runtime_label.text()
    second.close()


def test_window_fits_a_laptop_screen_with_run_chart_and_variants_visible(qtbot, window):
    open_and_wait(qtbot, window, sample_model_path())
    hint = window.minimumSizeHint()
    assert hint.width() <= 1366 and hint.height() <= 768 - 48, hint  # 48 px for a taskbar
    window.resize(1366, 768 - 48)
    qtbot.waitUntil(lambda: window.width() == 1366)
    QApplication.processEvents()
    room = window.rect()

    def on_screen(widget, min_width: int, min_height: int) -> bool:
        """Shown (not behind a tab), inside the window, not clipped by a scroll area, and big enough."""
        box = QRect(widget.mapTo(window, QPoint(0, 0)), widget.size())
        return (widget.isVisible() and room.contains(box) and not widget.visibleRegion().isEmpty()
                and box.width() >= min_width and box.height() >= min_height)

    assert on_screen(window.settings_panel.run_button, 60, 15)
    assert on_screen(window.settings_panel.explore_button, 60, 15)
    assert on_screen(window.chart, 300, 250)
    assert on_screen(window.variants, 500, 120)
    assert on_screen(window.graph_view, 300, 250)


def test_open_sample_offers_both_built_in_models(qtbot, window):
    menu = next(a.menu() for a in window.menuBar().actions()[0].menu().actions() if a.menu() and "Sample" in a.text())
    actions = menu.actions()
    assert len(actions) == 2 and "Digits CNN" in actions[0].text() and "ResNet" in actions[1].text()
    actions[1].trigger()
    qtbot.waitUntil(lambda: window.job is None and window.loaded is not None, timeout=60_000)
    assert window.loaded.handle.path.name == "digits32_resnet.onnx"
    assert window.loaded.torch_reason is None  # its eager module ships: pruning and distillation apply
    actions[0].trigger()
    qtbot.waitUntil(lambda: window.job is None and window.loaded.handle.path.name == "digits_cnn.onnx", timeout=60_000)


def test_a_model_with_free_dimensions_asks_once_and_reaches_the_chart(qtbot, window, model_files, tmp_path):
    """No command line: the window asks for the free sizes when the model opens, offers random
    inputs (the digits do not fit), builds a variant, and remembers the shapes next time."""
    import onnx

    from conftest import FakePrompts  # type: ignore[import-not-found]
    from paretolab.jobs.job import JobState

    model = onnx.load(str(model_files["onnx"]))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for i in (2, 3):
        dims[i].Clear()
        dims[i].dim_param = "side"
    path = tmp_path / "free_sides.onnx"
    onnx.save(model, str(path))

    window.prompts = FakePrompts(text="1x3x16x16")
    window.open_model(path)
    qtbot.waitUntil(lambda: window.loaded is not None and window.loaded.handle.inputs[0].is_static, timeout=60_000)
    assert window.loaded.handle.inputs[0].shape == (1, 3, 16, 16) and len(window.prompts.questions) == 1
    assert "free_sides.onnx takes input [batch, 3, side, side]" in window.prompts.questions[0]
    assert window.settings_panel.data_spec() == "random:64"

    window.settings_panel.target.setCurrentText("FP16, ONNX Runtime")
    job = window.studio.run(window.settings_panel.recipe(), window.settings_panel.data_spec())
    qtbot.waitUntil(lambda: job.state not in (JobState.WAITING, JobState.RUNNING), timeout=120_000)
    assert job.state == JobState.DONE, job.error
    assert set(window.chart.points) == {"baseline", job.result.name}
    # no labels: the y axis says it plots agreement with the original, not accuracy
    assert "agreement with the original" in window.chart.plot.getAxis("left").labelText

    window.open_model(path)  # again, with no shapes: the experiment remembers them, nothing is asked
    qtbot.waitUntil(lambda: window.job is None, timeout=60_000)
    assert window.loaded.handle.inputs[0].shape == (1, 3, 16, 16) and len(window.prompts.questions) == 1


def test_a_tflite_model_opens_and_an_openvino_variant_reaches_the_chart(qtbot, window, tmp_path):
    import tensorflow_models  # type: ignore[import-not-found]
    from paretolab.jobs.job import JobState

    path = tmp_path / "classifier.tflite"
    tensorflow_models.write_tflite(path)
    open_and_wait(qtbot, window, path)
    assert window.summary.labels["Format"].text() == "tflite"
    assert window.summary.labels["MACs"].text() == "4.86 K"
    window.settings_panel.target.setCurrentText("int8, OpenVINO (NNCF)")
    job = window.studio.run(window.settings_panel.recipe(), window.settings_panel.data_spec())
    qtbot.waitUntil(lambda: job.state not in (JobState.WAITING, JobState.RUNNING), timeout=120_000)
    assert job.state == JobState.DONE, job.error
    assert job.result.measured.backend == "openvino" and job.result.name in window.chart.points


def test_a_hugging_face_folder_opens_at_a_default_length_without_asking_and_reaches_the_chart(qtbot, window, tmp_path):
    import pytest

    pytest.importorskip("transformers")
    import hf_models  # type: ignore[import-not-found]
    from paretolab.jobs.job import JobState

    folder = hf_models.write("bert", tmp_path)
    window.prompts = FakePrompts(text="1x32")
    window.open_model(folder)
    qtbot.waitUntil(lambda: window.loaded is not None and window.job is None, timeout=60_000)
    assert [s.shape for s in window.loaded.handle.inputs] == [(1, 128), (1, 128)]  # batch 1, 128 tokens: a text model
    assert not window.prompts.questions and window.loaded.handle.notes  # nothing asked; the note says which length
    assert window.summary.labels["Format"].text() == "huggingface"
    window.settings_panel.target.setCurrentText("dynamic int8, ONNX Runtime")
    job = window.studio.run(window.settings_panel.recipe(), window.settings_panel.data_spec())
    qtbot.waitUntil(lambda: job.state not in (JobState.WAITING, JobState.RUNNING), timeout=120_000)
    assert job.state == JobState.DONE, job.error
    assert job.result.name in window.chart.points


def test_text_data_for_a_hugging_face_model_is_chosen_as_a_file_and_gives_accuracy(qtbot, window, tmp_path):
    import pytest

    pytest.importorskip("transformers")
    import hf_models  # type: ignore[import-not-found]
    from paretolab.gui.settings_panel import CHOOSE_FILE
    from paretolab.jobs.job import JobState

    folder = hf_models.write("bert", tmp_path)
    reviews = tmp_path / "reviews.csv"
    reviews.write_text("text,label\n" + "".join(f"{t},{label}\n" for t, label in hf_models.REVIEWS))
    window.prompts = FakePrompts(text="1x16")
    window.open_model(folder)
    qtbot.waitUntil(lambda: window.loaded is not None and window.job is None, timeout=60_000)
    panel = window.settings_panel
    window.prompts.path = str(reviews)
    panel.data.activated.emit(panel.data.findText(CHOOSE_FILE))
    assert panel.data_spec() == str(reviews) and not panel.preprocess.isEnabled()
    panel.target.setCurrentText("dynamic int8, ONNX Runtime")
    job = window.studio.run(panel.recipe(), panel.data_spec())
    qtbot.waitUntil(lambda: job.state not in (JobState.WAITING, JobState.RUNNING), timeout=120_000)
    assert job.state == JobState.DONE, job.error
    assert job.result.measured.top1 is not None  # the labels, by class name, give accuracy


def test_a_pickle_whose_code_is_elsewhere_asks_for_its_folder(qtbot, window, tmp_path):
    from pickled_code import pickle_with_code  # type: ignore[import-not-found]

    path, code = pickle_with_code(tmp_path, "paretolab_test_net_gui", "models")
    window.prompts = FakePrompts(confirm=True, text="1x6")  # trust it, then its input shape
    window.prompts.path = str(code)  # the folder the window asks for
    window.open_model(path)
    qtbot.waitUntil(lambda: window.loaded is not None and window.job is None, timeout=60_000)
    assert window.loaded.handle.path == path and not window.prompts.errors


def test_cost_against_sequence_length_is_charted(qtbot, window, tmp_path):
    import pytest

    pytest.importorskip("transformers")
    import hf_models  # type: ignore[import-not-found]
    from paretolab.jobs.job import JobState

    window.prompts = FakePrompts(text="1x16")
    window.open_model(hf_models.write("bert", tmp_path))
    qtbot.waitUntil(lambda: window.loaded is not None and window.job is None, timeout=60_000)
    window.prompts.text_answer = "8, 32,16"
    job = window.profile_sequence_lengths()
    qtbot.waitUntil(lambda: job.state not in (JobState.WAITING, JobState.RUNNING), timeout=120_000)
    assert job.state == JobState.DONE, job.error
    dialog = window.scaling_dialog
    assert dialog is not None and dialog.isVisible()
    assert dialog.macs_ratios == pytest.approx([1.0, hf_models.bert_macs(16) / hf_models.bert_macs(8),
                                                hf_models.bert_macs(32) / hf_models.bert_macs(8)])
    dialog.close()
    window.prompts.text_answer = "8,many"
    assert window.profile_sequence_lengths() is None and "not a list of whole numbers" in window.prompts.errors[-1][1]


TAB_BARS = """
import sys, tempfile, time
from pathlib import Path
from PySide6.QtCore import QSettings, Qt
from PySide6.QtWidgets import QApplication, QTabBar
app = QApplication(sys.argv)
from paretolab.gui.main_window import MainWindow
folder = Path(tempfile.mkdtemp())
window = MainWindow(settings=QSettings(str(folder / "s.ini"), QSettings.Format.IniFormat), experiments_root=folder / "v")
window.resize(1400, 860)
window.show()
for _ in range(30):
    app.processEvents()
    time.sleep(0.01)
bars = window.findChildren(QTabBar, options=Qt.FindChildOption.FindDirectChildrenOnly)
print(sorted(tuple(b.tabText(i) for i in range(b.count())) for b in bars if b.isVisible()))
window.close()
"""


def test_each_group_of_tabbed_panels_has_one_tab_bar_on_screen():
    """Qt can leave a stale tab bar from an earlier layout pass drawn over the Compress panel (a
    window opened larger than its first layout, as a saved geometry does). A fresh process: the
    test session's QApplication does not show it."""
    import os
    import subprocess
    import sys

    result = subprocess.run([sys.executable, "-c", TAB_BARS], capture_output=True, text=True, timeout=120,
                            env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert result.stdout.strip() == "[('Trade-off', 'Importance'), ('Variants', 'Jobs')]", result.stdout + result.stderr


def _detector_with_a_size_formula(path):
    """A YOLOv8-like head: three conv maps at strides 8/16/32 of a free-H/W input, flattened and
    concatenated, saved with the shapes ONNX Runtime's symbolic inference writes (a size formula)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    from onnxruntime.tools.symbolic_shape_infer import SymbolicShapeInference

    nodes, weights = [], [numpy_helper.from_array(np.array([1, 22, -1], dtype=np.int64), "flat")]
    for s in (8, 16, 32):
        weights.append(numpy_helper.from_array(np.full((22, 3, s, s), 0.01, np.float32), f"w{s}"))
        nodes += [helper.make_node("Conv", ["images", f"w{s}"], [f"c{s}"], kernel_shape=[s, s], strides=[s, s], name=f"conv{s}"),
                  helper.make_node("Reshape", [f"c{s}", "flat"], [f"r{s}"], name=f"flat{s}")]
    nodes.append(helper.make_node("Concat", ["r8", "r16", "r32"], ["output0"], axis=2, name="concat"))
    images = helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, "height", "width"])
    graph = helper.make_graph(nodes, "detector", [images], [helper.make_tensor_value_info("output0", TensorProto.FLOAT, None)],
                              weights)
    model = SymbolicShapeInference.infer_shapes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]),
                                                auto_merge=True)
    assert "floor(height/8)" in model.graph.output[0].type.tensor_type.shape.dim[2].dim_param  # as the user's file has it
    onnx.save(model, str(path))
    return path


def test_an_output_size_formula_is_short_and_resolved_once_the_input_shape_is_set(qtbot, window, tmp_path):
    model = _detector_with_a_size_formula(tmp_path / "detector.onnx")
    window.prompts = FakePrompts(text=None)  # the shape question offered on open is left unanswered first
    open_and_wait(qtbot, window, model)
    outputs = window.summary.labels["Outputs"]
    assert outputs.text() == "output0 [1, 22, ?] float32"
    assert outputs.toolTip() == ("output0 size 2: floor(height/32)*floor(width/32)+floor(height/16)*floor(width/16)"
                                 "+floor(height/8)*floor(width/8)")
    window.prompts.text_answer = "1x3x320x320"
    window.set_input_shapes()
    qtbot.waitUntil(lambda: window.job is None and window.loaded.handle.inputs[0].is_static, timeout=60_000)
    assert outputs.text() == "output0 [1, 22, 2100] float32"  # 40*40 + 20*20 + 10*10 cells
    assert outputs.toolTip() == ""
