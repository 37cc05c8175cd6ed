"""Per-layer importance or sensitivity as bars, optionally sorted, linked to the selection."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
    QWidget,
)

from paretolab.gui.theme import style_plot


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
        self.plot.showGrid(y=True, alpha=0.25)
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.setMinimumWidth(320)
        self.bars = pg.BarGraphItem(x=[], height=[], width=0.8)
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

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the system switched light/dark
            style_plot(self.plot, self)

    def redraw(self) -> None:
        values = self.metrics.get(self.metric_box.currentText(), {})
        self.order = sorted(values, key=lambda k: -values[k]) if self.sorted.isChecked() else list(values)
        heights = [values[k] for k in self.order]
        brushes = [pg.mkBrush("#d62728" if k == self.selected else "#1f77b4") for k in self.order]
        self.bars.setOpts(x=list(range(len(self.order))), height=heights, width=0.8, brushes=brushes)
        axis = self.plot.getAxis("bottom")
        step = max(1, len(self.order) // 20)  # label every bar on small models, every n-th on big ones
        axis.setTicks([[(i, name) for i, name in enumerate(self.order) if i % step == 0]])
        self.plot.setLabel("left", self.metric_box.currentText())

    def _clicked(self, event) -> None:
        point = self.plot.plotItem.vb.mapSceneToView(event.scenePos())
        index = int(round(point.x()))
        if 0 <= index < len(self.order):
            self.select(self.order[index])
            self.layer_selected.emit(self.order[index])
