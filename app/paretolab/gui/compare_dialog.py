"""Two variants side by side, per layer (non-modal, so the studio keeps working)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QDialog,
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

if TYPE_CHECKING:
    from paretolab.core.compress.insight.compare import Comparison


def _cell(value: float | None, unit: str) -> QTableWidgetItem:
    text = (
        "—"
        if value is None
        else ("identical" if value == float("inf") else f"{value:.4f} {unit}" if unit == "ms" else f"{value:.1f} {unit}")
    )
    item = QTableWidgetItem(text)
    item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    return item


class CompareDialog(QDialog):
    def __init__(self, comparison: Comparison, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        a, b = comparison.names
        self.setWindowTitle(f"Compare {a} and {b}")
        self.resize(760, 520)
        summary = QLabel(f"Summed layer time: {a} {comparison.totals_ms[0]:.4f} ms, {b} {comparison.totals_ms[1]:.4f} ms. "
                         "SQNR: how closely each layer's output follows the original (higher is closer; — where the "
                         "variant changed the tensor itself, e.g. by pruning).", self)
        summary.setWordWrap(True)
        self.why = QLabel("Why (not) faster — " + " · ".join(comparison.why), self)  # without measuring anything more
        self.why.setWordWrap(True)
        self.table = QTableWidget(len(comparison.rows), 5, self)
        self.table.setHorizontalHeaderLabels(["Layer", f"{a} time", f"{b} time", f"{a} SQNR", f"{b} SQNR"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        for row, item in enumerate(comparison.rows):
            self.table.setItem(row, 0, QTableWidgetItem(item.layer))
            for col, value in enumerate(item.ms):
                self.table.setItem(row, 1 + col, _cell(value, "ms"))
            for col, value in enumerate(item.sqnr_db):
                self.table.setItem(row, 3 + col, _cell(value, "dB"))
        layout = QVBoxLayout(self)
        layout.addWidget(summary)
        layout.addWidget(self.why)
        layout.addWidget(self.table)
