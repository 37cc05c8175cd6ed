"""Every variant with its recipe and measured numbers, sortable, linked to the chart."""

from __future__ import annotations

import re
from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QAction, QBrush, QColor, QKeySequence
from PySide6.QtWidgets import QHeaderView, QTableView, QVBoxLayout, QWidget

from paretolab.core.compress.variant import Variant, collapse_warning
from paretolab.core.units import percent, size
from paretolab.gui.table_model import ColumnsModel

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
KEY_ROLE = Qt.ItemDataRole.UserRole + 2
COLUMNS = ("Variant", "Recipe", "Top-1 (test)", "Fidelity (test)", "Latency ms", "Speed-up", "Size", "Measured on")


class VariantsModel(ColumnsModel):
    COLUMNS = COLUMNS

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.variants: list[Variant] = []

    def add(self, variant: Variant) -> None:
        self.beginInsertRows(QModelIndex(), len(self.variants), len(self.variants))
        self.variants.append(variant)
        self.endInsertRows()

    def remove(self, variant: Variant) -> None:
        row = self.variants.index(variant)
        self.beginRemoveRows(QModelIndex(), row, row)
        self.variants.pop(row)
        self.endRemoveRows()

    def replace(self, old: Variant, new: Variant) -> None:
        """Show `new` in `old`'s row: a rename or a re-profile returns a new Variant."""
        row = self.variants.index(old)
        self.variants[row] = new
        self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))

    def clear(self) -> None:
        self.beginResetModel()
        self.variants.clear()
        self.endResetModel()

    def row_count(self) -> int:
        return len(self.variants)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        v = self.variants[index.row()]
        m = v.measured
        fidelity = m.agreement if m.agreement is not None else m.cosine
        values = (v.name, v.recipe.summary(), m.top1, fidelity, m.latency_ms, v.speedup, m.size_bytes, m.where)
        col = index.column()
        if role == KEY_ROLE:
            return v.name
        if role == SORT_ROLE:
            if col == 0:  # v2 before v10
                return re.sub(r"\d+", lambda digits: digits.group().zfill(12), v.name)
            return values[col] if values[col] is not None else -1
        shows_warning = role in (Qt.ItemDataRole.DisplayRole, Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.ForegroundRole)
        collapsed = collapse_warning(v) if shows_warning else None
        if shows_warning and m.broken and not collapsed:  # below its output kind's floor, or an output collapsed
            collapsed = f"{m.verdict_text()}: this variant is broken and kept off the Pareto front"
        if role == Qt.ItemDataRole.ForegroundRole and collapsed and col in (0, 2, 3):
            return QBrush(QColor("#d62728"))
        if role == Qt.ItemDataRole.ForegroundRole and m.quality == "unknown" and col == 3:
            return QBrush(QColor("#888888"))  # judged on random inputs: information, not a verdict
        if role == Qt.ItemDataRole.DisplayRole:
            value = values[col]
            if col == 0:
                return f"⚠ {v.name}" if collapsed else v.name
            if col == 2:
                return percent(value)
            if col == 3:
                return m.fidelity_text()
            if col == 4:
                return f"{value:.4f}" if value is not None else ""
            if col == 5:
                tie = v.speedup_range is not None and v.speedup_range[0] <= 1.0 <= v.speedup_range[1]
                busy = " ⚠ busy" if v.timing.busy else ""
                return f"{'≈ ' if tie else ''}{value:.2f}x{busy}" if value else ""
            if col == 6:
                return size(value)
            return str(value or "")
        if role == Qt.ItemDataRole.ToolTipRole:
            tip = f"{v.artifact}\n{v.recipe.summary()}\nspeed-up {v.speedup_text()}\nchosen by {v.selection_split}"
            tip += f"\nspeed-up = {v.speedup_basis()}" if v.speedup_basis() else ""
            tip += f"\n{v.deployed_text()}" if v.deployed_text() else ""
            tip += f"\n⚠ {v.busy}" if v.busy else ""
            if m.quality == "unknown":
                tip += "\nquality unknown: judged on random inputs; give real data to judge it"
            return tip + (f"\n\nWarning: {collapsed}" if collapsed else "")
        if role == Qt.ItemDataRole.TextAlignmentRole and col >= 2:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return None


class VariantsTable(QWidget):
    variant_selected = Signal(str)
    delete_requested = Signal(object)
    rename_requested = Signal(object)
    reprofile_requested = Signal(object)
    compare_requested = Signal(object)
    save_recipe_requested = Signal(object)
    explain_requested = Signal(object)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = VariantsModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.view.verticalHeader().setVisible(False)
        self.view.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for text, signal, key in (
            ("Why (not) faster?", self.explain_requested, None),
            ("Compare with…", self.compare_requested, None),
            ("Save recipe…", self.save_recipe_requested, None),
            ("Re-profile", self.reprofile_requested, None),
            ("Rename…", self.rename_requested, "F2"),
            ("Delete", self.delete_requested, "Delete"),
        ):
            action = QAction(text, self.view)
            if key:
                action.setShortcut(QKeySequence(key))
                action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
            action.triggered.connect(lambda _=False, signal=signal: self.selected() and signal.emit(self.selected()))
            self.view.addAction(action)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view)

    def add(self, variant: Variant) -> None:
        self.model.add(variant)
        self.view.resizeColumnsToContents()

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.model.variants if v.name == name), None)

    def selected(self) -> Variant | None:
        rows = self.view.selectionModel().selectedRows()
        return self.variant(rows[0].data(KEY_ROLE)) if rows else None

    def select(self, name: str) -> None:
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, 0).data(KEY_ROLE) == name:
                self.view.selectRow(row)
                return

    def _on_selection(self, *args) -> None:
        chosen = self.selected()
        if chosen is not None:
            self.variant_selected.emit(chosen.name)
