"""MACs and latency against sequence length (non-modal): how a transformer's cost grows, so the
serving length can be chosen knowing what it costs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDialog, QLabel, QVBoxLayout, QWidget

if TYPE_CHECKING:
    from paretolab.core.measure.scaling import ScalingResult


class ScalingDialog(QDialog):
    def __init__(self, result: ScalingResult, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"{result.model}: cost against sequence length")
        self.resize(640, 440)
        first = result.points[0]
        lengths = [p.sequence for p in result.points]
        self.time_ratios = [p.median_ms / first.median_ms for p in result.points]
        self.macs_ratios = [p.macs / first.macs if p.macs and first.macs else float("nan") for p in result.points]
        plot = pg.PlotWidget(self)
        plot.setBackground(None)
        plot.addLegend(offset=(10, 10))
        plot.setLabel("bottom", "sequence length (tokens)")
        plot.setLabel("left", f"cost relative to {first.sequence} tokens (×)")
        plot.plot(lengths, self.macs_ratios, pen=pg.mkPen("#3b528b", width=2), symbol="o", name="MACs")
        plot.plot(lengths, self.time_ratios, pen=pg.mkPen("#5ec962", width=2), symbol="s",
                  name=f"latency, batch 1 ({result.backend}/{result.device})")
        dashed = pg.mkPen("#888888", style=Qt.PenStyle.DashLine)
        plot.plot(lengths, [n / first.sequence for n in lengths], pen=dashed, name="linear in length")
        rows = ", ".join(f"{p.sequence}: {p.median_ms:.3f} ms" for p in result.points)
        note = QLabel(f"Median batch-1 latency — {rows}. Above the dashed line, attention's quadratic cost shows.", self)
        note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(plot, 1)
        layout.addWidget(note)
