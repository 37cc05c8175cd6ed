"""The studio on a laptop screen (issue 28): at 1366×768 and 1280×720 every dock shows its
controls fully — each visible control lies within the window, or inside a scroll area that
can reach it (no hidden horizontal overflow) — and questions fit beside it."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, QRect
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractScrollArea,
    QAbstractSlider,
    QAbstractSpinBox,
    QApplication,
    QComboBox,
    QDialogButtonBox,
    QDockWidget,
    QLineEdit,
    QScrollArea,
    QScrollBar,
    QWidget,
)

from conftest import FakePrompts, open_and_wait  # type: ignore[import-not-found]
from paretolab.core.sample import sample_model_path
from paretolab.gui.main_window import FRAME_ROOM
from paretolab.gui.prompts import Prompts

LAPTOPS = [(1366, 768), (1280, 720)]
CONTROLS = (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QAbstractSlider)


def _scroll_parent(widget: QWidget, top: QWidget) -> QAbstractScrollArea | None:
    parent = widget.parentWidget()
    while parent is not None and parent is not top:
        if isinstance(parent, QAbstractScrollArea) and not isinstance(parent, QScrollBar):
            return parent
        parent = parent.parentWidget()
    return None


def cut_controls(top: QWidget, root: QWidget) -> list[str]:
    """Controls under `root` that the user cannot see whole: outside `top`, clipped by a parent
    that cannot scroll, or past the width of a scroll area that does not scroll sideways."""
    area = top.rect()
    problems = []
    for control in root.findChildren(QWidget):
        if not isinstance(control, CONTROLS) or isinstance(control, QScrollBar) or not control.isVisible():
            continue
        if control.objectName().startswith("qt_dockwidget_"):
            continue  # the dock's own float/close buttons
        name = f"{type(control).__name__} '{getattr(control, 'text', lambda: '')() or control.toolTip()[:40]}'"
        scroll = _scroll_parent(control, top)
        if scroll is None:
            rect = QRect(control.mapTo(top, QPoint(0, 0)), control.size())
            seen = control.visibleRegion().boundingRect()
            if not area.contains(rect) or seen.width() < control.width() - 1 or seen.height() < control.height() - 1:
                problems.append(f"{name} at {rect.getRect()} (visible {seen.getRect()})")
        elif isinstance(scroll, QScrollArea) and scroll.horizontalScrollBarPolicy().name == "ScrollBarAlwaysOff":
            right = control.mapTo(scroll.widget(), QPoint(control.width(), 0)).x()
            if right > scroll.viewport().width() + 1:
                problems.append(f"{name} ends at x={right}, past the {scroll.viewport().width()} px it can show")
    return problems


@pytest.fixture(params=LAPTOPS, ids=lambda size: f"{size[0]}x{size[1]}")
def laptop(request, qtbot, window):
    width, height = request.param
    window.prompts = FakePrompts()
    window.setGeometry(0, 0, width, height)
    open_and_wait(qtbot, window, sample_model_path("demo"))  # a ResNet: long layer names, per-layer overrides
    QApplication.processEvents()
    return window


def test_every_dock_shows_its_controls_whole(qtbot, laptop):
    for dock in laptop.findChildren(QDockWidget):
        dock.raise_()
        qtbot.wait(20)
        assert dock.widget().isVisible(), dock.windowTitle()
        assert not cut_controls(laptop, dock), f"{dock.windowTitle()}: {cut_controls(laptop, dock)}"
    assert laptop.rect().contains(laptop.statusBar().geometry())


def test_the_compress_panel_fits_its_dock_and_shows_the_sparsity_value(qtbot, laptop):
    panel = laptop.settings_panel
    body = panel.scroll.widget()
    assert body.minimumSizeHint().width() <= panel.scroll.viewport().width()
    value = next(w for w in panel.sparsity.findChildren(QWidget) if type(w).__name__ == "SliderLabel")  # the number
    assert value.isVisible() and value.visibleRegion().boundingRect().width() >= value.width() - 1


def test_the_jobs_table_shows_its_cancel_column(qtbot, laptop):
    laptop.jobs_dock.raise_()
    qtbot.wait(20)
    table = laptop.jobs_panel.table
    assert table.rowCount() >= 1
    assert table.horizontalHeader().length() <= table.viewport().width() + 1  # no sideways scrolling to reach Cancel


def test_the_window_leaves_room_for_its_frame_on_this_screen(qtbot, window):
    room = (window.screen() or QGuiApplication.primaryScreen()).availableGeometry()
    assert window.height() <= room.height() - FRAME_ROOM.height()  # the status bar is on screen before maximising


@pytest.mark.parametrize("size", LAPTOPS, ids=lambda size: f"{size[0]}x{size[1]}")
def test_the_input_shape_question_fits_with_its_buttons(qtbot, window, size):
    long = ("model.onnx takes images [batch, 3, height, width] float32, attention_mask [batch, sequence] int64 and "
            "token_type_ids [batch, sequence] int64. Give the shape to measure and compress it with (one per input, e.g. "
            "1x3x640x640, or name=1x3x640x640 separated by spaces); it is remembered for this model. " * 2)
    dialog = Prompts(window).text_dialog("Input shapes", long, "images=1x3x640x640 attention_mask=1x128")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    assert dialog.width() <= size[0] and dialog.height() <= size[1]
    buttons = dialog.findChild(QDialogButtonBox)
    for button in buttons.buttons():
        assert dialog.rect().contains(QRect(button.mapTo(dialog, QPoint(0, 0)), button.size()))
    assert not cut_controls(dialog, dialog)
    dialog.close()
