"""Per-layer importance or sensitivity as bars, optionally sorted, linked to the selection.

The bars lie down, one row a layer, so that layer names read horizontally on the left; names are
elided in the middle to the axis's width, and only as many are written as the rows' height leaves
room for (every n-th, the selected one always), so they never overlap however many layers there are.
Long module paths are abbreviated from the left, keeping the block numbers and the leaf."""

from __future__ import annotations

import math

import pyqtgraph as pg
from pyqtgraph.GraphicsScene.mouseEvents import MouseClickEvent
from PySide6.QtCore import QEvent, Qt, Signal
from PySide6.QtGui import QFontMetrics, QResizeEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from paretolab.gui.theme import style_plot

NAME_WIDTH = 150  # pixels of the left axis given to layer names


def short_name(name: str, metrics: QFontMetrics, width: int = NAME_WIDTH) -> str:
    """A module path that fits `width`: its leading parts cut to their first letter, from the left,
    numbers kept ("model.encoder.layers.12.attn.out_proj" → "m.e.l.12.attn.out_proj", as logback
    abbreviates class names), since the block numbers and the leaf are what tell layers apart; the
    middle elided if that is still too wide."""
    parts = name.split(".")
    for i in range(len(parts)):
        text = ".".join(parts)
        if metrics.horizontalAdvance(text) <= width or i == len(parts) - 1:
            break
        parts[i] = parts[i] if parts[i].isdigit() else parts[i][:1]
    return metrics.elidedText(".".join(parts), Qt.TextElideMode.ElideMiddle, width)


class ImportanceChart(QWidget):
    layer_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.metrics: dict[str, dict[str, float]] = {}
        self.order: list[str] = []
        self.selected: str | None = None
        self.metric_box = QComboBox(self)
        self.metric_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.metric_box.currentIndexChanged.connect(self.redraw)
        self.sorted = QCheckBox("sorted", self)
        self.sorted.setChecked(True)
        self.sorted.toggled.connect(self.redraw)
        self.plot = pg.PlotWidget(self)
        style_plot(self.plot, self)
        self.plot.showGrid(x=True, alpha=0.25)
        self.plot.getAxis("bottom").enableAutoSIPrefix(False)
        self.plot.invertY(True)  # the first (most important, when sorted) layer on top
        self.plot.setMouseEnabled(x=False, y=True)
        names = self.plot.getAxis("left")
        names.setWidth(NAME_WIDTH + 10)
        names.setStyle(tickFont=self.font(), autoExpandTextSpace=False)
        self.setMinimumWidth(320)
        self.bars = pg.BarGraphItem(x0=0, y=[], width=[], height=0.8)
        self.plot.addItem(self.bars)
        self.plot.scene().sigMouseClicked.connect(self._clicked)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Show:", self))
        bar.addWidget(self.metric_box, 1)
        bar.addWidget(self.sorted)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.plot)

    def set_metric(self, title: str, values: dict[str, float]) -> None:
        self.metrics[title] = values
        if self.metric_box.findText(title) < 0:
            self.metric_box.addItem(title)
        self.redraw()

    def clear(self) -> None:
        self.metrics.clear()
        self.metric_box.clear()
        self.redraw()

    def select(self, layer: str) -> None:
        self.selected = layer
        self.redraw()

    def changeEvent(self, event: QEvent) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the system switched light/dark
            style_plot(self.plot, self)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._label_rows()  # taller or shorter: more or fewer names fit

    def redraw(self) -> None:
        values = self.metrics.get(self.metric_box.currentText(), {})
        self.order = sorted(values, key=lambda k: -values[k]) if self.sorted.isChecked() else list(values)
        lengths = [values[k] for k in self.order]
        brushes = [pg.mkBrush("#d62728" if k == self.selected else "#1f77b4") for k in self.order]
        self.bars.setOpts(x0=0, y=list(range(len(self.order))), width=lengths, height=0.8, brushes=brushes)
        if self.order:
            self.plot.setYRange(-0.6, len(self.order) - 0.4, padding=0)
        self.plot.setLabel("bottom", self.metric_box.currentText())
        self._label_rows()

    def _label_rows(self) -> None:
        """Every n-th layer's name, n the rows one line of text needs; the selected layer's always."""
        if not self.order:
            self.plot.getAxis("left").setTicks([[]])
            return
        metrics = QFontMetrics(self.font())
        row_px = max(1.0, self.plot.plotItem.vb.height() or 200.0) / len(self.order)
        step = max(1, math.ceil(1.15 * metrics.height() / row_px))
        shown = list(range(0, len(self.order), step))
        if self.selected in self.order:
            chosen = self.order.index(self.selected)  # its name, in place of those it would overlap
            shown = sorted([i for i in shown if abs(i - chosen) >= step] + [chosen])
        names = [(i, short_name(self.order[i], metrics)) for i in shown]
        self.plot.getAxis("left").setTicks([names])

    def _clicked(self, event: MouseClickEvent) -> None:
        point = self.plot.plotItem.vb.mapSceneToView(event.scenePos())
        index = int(round(point.y()))
        if 0 <= index < len(self.order):
            self.select(self.order[index])
            self.layer_selected.emit(self.order[index])
