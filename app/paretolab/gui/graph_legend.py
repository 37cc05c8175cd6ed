"""The graph's colour scale: viridis, readable in light and dark palettes and for colour-blind
eyes, and the legend bar under the graph that names the metric and its range."""

from __future__ import annotations

import math

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QLinearGradient, QPainter
from PySide6.QtWidgets import QWidget

# viridis, sampled: readable in light and dark palettes, and for colour-blind eyes
VIRIDIS = ["#440154", "#472d7b", "#3b528b", "#2c728e", "#21918c", "#28ae80", "#5ec962", "#addc30", "#fde725"]


def colour_for(value: float) -> QColor:
    """0..1 -> viridis."""
    value = min(max(value, 0.0), 1.0) * (len(VIRIDIS) - 1)
    low = int(math.floor(value))
    high = min(low + 1, len(VIRIDIS) - 1)
    a, b, t = QColor(VIRIDIS[low]), QColor(VIRIDIS[high]), value - low
    return QColor(int(a.red() + (b.red() - a.red()) * t), int(a.green() + (b.green() - a.green()) * t),
                  int(a.blue() + (b.blue() - a.blue()) * t))


class Legend(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.low, self.high, self.title = "", "", ""
        self.setMinimumHeight(22)

    def set_range(self, title: str, low: str, high: str) -> None:
        self.title, self.low, self.high = title, low, high
        self.update()

    def paintEvent(self, event) -> None:
        painter = QPainter(self)
        bar = QRectF(self.width() * 0.3, 4, self.width() * 0.4, self.height() - 8)
        gradient = QLinearGradient(bar.topLeft(), bar.topRight())
        for i, c in enumerate(VIRIDIS):
            gradient.setColorAt(i / (len(VIRIDIS) - 1), QColor(c))
        painter.fillRect(bar, QBrush(gradient))
        painter.setPen(self.palette().windowText().color())
        painter.drawText(
            QRectF(0, 0, bar.left() - 6, self.height()),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            f"{self.title}  {self.low}",
        )
        painter.drawText(
            QRectF(bar.right() + 6, 0, self.width(), self.height()),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            self.high,
        )
