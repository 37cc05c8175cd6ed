"""The sortable, filterable per-layer table."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import (
    QModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import (
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from paretolab.core.model.blocks import module_rows
from paretolab.core.model.graph import LayerGraph
from paretolab.core.tensors import format_shape
from paretolab.gui.table_model import ColumnsModel

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
COLUMNS = ("#", "Layer", "Op", "Output shape", "Params", "MACs", "% MACs")
_NUMERIC = {0, 4, 5, 6}


class LayerTableModel(ColumnsModel):
    COLUMNS = COLUMNS

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._graph: LayerGraph | None = None
        self._total_macs = 0

    def set_graph(self, graph: LayerGraph | None) -> None:
        self.beginResetModel()
        self._graph = graph
        self._total_macs = (graph.total_macs or 0) if graph else 0
        self.endResetModel()

    def row_count(self) -> int:
        return 0 if self._graph is None else len(self._graph.nodes)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or self._graph is None:
            return None
        node = self._graph.nodes[index.row()]
        col = index.column()
        share = 100.0 * node.macs / self._total_macs if self._total_macs and node.macs else 0.0
        if role == SORT_ROLE:
            return (index.row(), node.name, node.op, format_shape(node.output_shapes[0] if node.output_shapes else None),
                    node.params, node.macs if node.macs is not None else -1, share)[col]
        if role == Qt.ItemDataRole.DisplayRole:
            if col == 0:
                return str(index.row() + 1)
            if col == 1:
                return node.name
            if col == 2:
                return node.op
            if col == 3:
                return format_shape(node.output_shapes[0]) if node.output_shapes else ""
            if col == 4:
                return f"{node.params:,}"
            if col == 5:
                return "?" if node.macs is None else f"{node.macs:,}"
            return f"{share:.1f}" if share else ""
        if role == Qt.ItemDataRole.TextAlignmentRole and col in _NUMERIC:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ToolTipRole and col == 1:
            weights = ", ".join(f"{w.name} {format_shape(w.shape)}" for w in node.weights) or "no weights"
            return f"{node.name} ({node.op})\n{weights}"
        return None


SHARE_COLUMN = 6


class ShareBarDelegate(QStyledItemDelegate):
    """Draws a layer's share of the MACs as a bar behind the number: heavy layers stand out."""

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: QModelIndex) -> None:
        share = index.data(SORT_ROLE) or 0.0
        if share > 0:
            bar = option.rect.adjusted(2, 3, -2, -3)
            bar.setWidth(max(1, int(bar.width() * share / 100.0)))
            colour = QColor(option.palette.highlight().color())
            colour.setAlpha(110)
            painter.fillRect(bar, colour)
        super().paint(painter, option, index)


class LayerTable(QWidget):
    """A filter box over a sortable table of the graph's layers."""

    layer_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = LayerTableModel(self)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.filter = QLineEdit(self)
        self.filter.setPlaceholderText("Filter layers by name or op…")
        self.filter.setClearButtonEnabled(True)
        self.filter.textChanged.connect(self.proxy.setFilterFixedString)
        self.by_module = QCheckBox("By module", self)
        self.by_module.setToolTip("One row per module (attention, MLP, …), shape plumbing folded in")
        self.by_module.toggled.connect(self._show)
        self._graph: LayerGraph | None = None

        self.view = QTableView(self)
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QTableView.SelectionBehavior.SelectRows)
        self.view.setAlternatingRowColors(True)
        self.view.setItemDelegateForColumn(SHARE_COLUMN, ShareBarDelegate(self.view))
        self.view.verticalHeader().setVisible(False)
        self.view.verticalHeader().setDefaultSectionSize(22)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(False)

        self.view.setSelectionMode(QTableView.SelectionMode.SingleSelection)
        self.view.selectionModel().selectionChanged.connect(self._on_selection)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        bar.addWidget(self.filter, 1)
        bar.addWidget(self.by_module)
        layout.addLayout(bar)
        layout.addWidget(self.view)

    def set_graph(self, graph: LayerGraph | None) -> None:
        """Show `graph`; by module when that folds away a third of the rows (a transformer's plumbing)."""
        self._graph = graph
        modules = module_rows(graph) if graph is not None else None
        with_modules = modules is not None and graph is not None and len(modules) < 2 * len(graph) / 3
        self.by_module.blockSignals(True)
        self.by_module.setChecked(with_modules)
        self.by_module.blockSignals(False)
        self.by_module.setEnabled(with_modules)
        self._show()

    def _show(self) -> None:
        graph = self._graph
        if graph is not None and self.by_module.isChecked():
            graph = module_rows(graph)
        self.model.set_graph(graph)
        self.view.resizeColumnsToContents()
        self.view.setColumnWidth(SHARE_COLUMN, 160)
        self.view.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)

    def select(self, name: str) -> None:
        for row in range(self.proxy.rowCount()):
            if self.proxy.index(row, 1).data() == name:
                if not self.view.selectionModel().isRowSelected(row, QModelIndex()):
                    self.view.selectRow(row)
                    self.view.scrollTo(self.proxy.index(row, 1))
                return

    def _on_selection(self, *args) -> None:
        rows = self.view.selectionModel().selectedRows(1)
        if rows:
            self.layer_selected.emit(rows[0].data())

    def visible_layer_names(self) -> list[str]:
        """Layer names in the order the user sees them (after sorting and filtering)."""
        return [self.proxy.index(r, 1).data() for r in range(self.proxy.rowCount())]
