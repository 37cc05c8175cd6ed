"""The layer graph, drawn top-down, coloured by a chosen metric.

All edges are one path item and nodes are plain rectangles, so a 1,000-layer model draws in
about a second and pans smoothly (the scene's index skips what is off screen). Labels are drawn
over the scene at a readable pixel size (graph_labels.py): layer names when the boxes have room,
else one plate per module. Transformers and very large graphs open as module blocks
(core/model/blocks.py): double-click a block to open it, right-click a layer to close its block."""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QGraphicsItem,
    QGraphicsPathItem,
    QGraphicsRectItem,
    QGraphicsScene,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMenu,
    QPushButton,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

from paretolab.core.model.blocks import BLOCK_OP, Block, auto_expanded, block_view, module_blocks, node_scope
from paretolab.core.model.graph import LayerGraph
from paretolab.core.model.layout import layered_layout
from paretolab.core.tensors import format_shape
from paretolab.gui.graph_labels import LabelPainter, compact_name
from paretolab.gui.graph_legend import Legend, colour_for

NODE_W, NODE_H = 150.0, 34.0
V_GAP = 36.0  # between rows of nodes
BLOCKS_FROM = 2000  # layers: graphs this large open as blocks even without repeated blocks
SUMMED = ("MACs share", "parameters")  # metrics a block shows as its layers' sum; others, their largest
EMPTY_HINT = ("No model open.\n\nFile > Open… (Ctrl+O), or drop a model file on the window\n"
              "(.onnx, .pt/.pth, .pt2, OpenVINO .xml).\n\nFile > Open Sample offers two built-in models to try things on.")
class NodeItem(QGraphicsRectItem):
    def __init__(self, name: str, op: str, rect: QRectF, block: Block | None = None) -> None:
        super().__init__(rect)
        self.name, self.op, self.block = name, op, block
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIsSelectable)
        self.setPen(QPen(QColor("#555555"), 2 if block else 1))
        self.setToolTip(f"{name}: {block.title} (double-click to open)" if block else f"{name} ({op})")

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        """The box only: its text is drawn over the scene at a readable size (graph_labels.py)."""
        selected = self.isSelected()
        painter.setPen(QPen(QColor("#d62728"), 3) if selected else self.pen())
        painter.setBrush(self.brush())
        painter.drawRoundedRect(self.rect(), 4, 4)

    def scope_and_lines(self, graph: LayerGraph) -> tuple[tuple[str, ...], str, str]:
        """The module path the node belongs to, and its two lines of text."""
        block = self.block
        if block is None:
            scope = node_scope(graph.node(self.name))
            return scope, compact_name(self.name, scope), self.op
        owner = block.path.split("/")[0]  # a block's shape ops belong to the block
        scope = tuple(p for p in owner.split(".") if p)
        first = block.title if block.repeats or block.plumbing else block.short_name
        return scope, first, f"{len(block.layers)} layers"


class _View(QGraphicsView):
    """Zooms with the wheel; keeps the graph fitted on resize until the user zooms."""

    def __init__(self, scene: QGraphicsScene, owner: GraphView) -> None:
        super().__init__(scene, owner)
        self.owner = owner
        self.auto_fit = True
        self.labels = LabelPainter(self.font().family())

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self.viewport().update()  # labels keep to the view's edges: a scrolled copy of them would smear

    def drawForeground(self, painter: QPainter, rect: QRectF | QRect) -> None:
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        self.labels.text_colour = self.palette().color(QPalette.ColorRole.Text)
        self.labels.paint(painter, visible, NODE_H)

    def mouseDoubleClickEvent(self, event) -> None:
        item = self.itemAt(event.position().toPoint())
        if isinstance(item, NodeItem) and item.block is not None:
            self.owner.open_block(item.name)
            return
        super().mouseDoubleClickEvent(event)

    def wheelEvent(self, event: QWheelEvent) -> None:
        self.auto_fit = False
        factor = 1.2 if event.angleDelta().y() > 0 else 1 / 1.2
        self.scale(factor, factor)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self.auto_fit:
            self.owner.fit()


class GraphView(QWidget):
    node_selected = Signal(str)
    keep_fp32_toggled = Signal(str)  # right-click > "Keep in FP32 when quantizing"
    exit_toggled = Signal(str)  # right-click > "Add an early exit after this layer"

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.scene = QGraphicsScene(self)
        self.view = _View(self.scene, self)
        self.view.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        self.view.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.view.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.metric_box = QComboBox(self)
        self.metric_box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.metric_box.currentIndexChanged.connect(self._recolour)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Find layer…")
        self.search.returnPressed.connect(self.find)
        fit = QPushButton("Fit", self)
        fit.clicked.connect(self.fit)
        self.legend = Legend(self)
        self.details = QLabel("Click a layer for its details.", self)
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Colour by:", self))
        bar.addWidget(self.metric_box)
        bar.addWidget(self.search, 1)
        bar.addWidget(fit)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.legend)
        layout.addWidget(self.details)
        self.graph: LayerGraph | None = None
        self.blocks: dict[str, Block] = {}
        self.expanded: set[str] = set()
        self.shown: dict[str, str] = {}  # each layer's visible node: itself, or the closed block holding it
        self.items: dict[str, NodeItem] = {}
        self.metrics: dict[str, dict[str, float]] = {}
        self._extra: dict[str, dict[str, str]] = {}  # per layer: shown in the details
        self.scene.selectionChanged.connect(self._on_selection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self._show_empty_hint()

    def _context_menu(self, pos) -> None:
        item = self.view.itemAt(pos)
        if not isinstance(item, NodeItem):
            return
        self._layer_menu(item).popup(self.view.mapToGlobal(pos))

    def _layer_menu(self, item: NodeItem) -> QMenu:
        """The right-click menu, titled with the layer (or block) it acts on."""
        menu = QMenu(self)
        title = menu.addAction(item.block.title if item.block is not None else item.name)
        title.setEnabled(False)
        menu.addSeparator()
        if item.block is not None:
            menu.addAction(f"Open {item.block.title}").triggered.connect(lambda: self.open_block(item.name))
        else:
            action = menu.addAction("Keep in FP32 when quantizing (toggle)")
            action.triggered.connect(lambda: self.keep_fp32_toggled.emit(item.name))
            menu.addAction("Add an early exit after this layer (toggle)").triggered.connect(
                lambda: self.exit_toggled.emit(item.name))
        parent = self._open_parent(item.name)
        if parent:
            menu.addAction(f"Close {self.blocks[parent].title}").triggered.connect(lambda: self.close_block(parent))
        return menu

    def set_graph(self, graph: LayerGraph | None) -> None:
        self.graph = graph
        self.metrics, self._extra = {}, {}
        self.details.setText("Click a layer for its details.")  # not the last model's layer
        self.blocks = module_blocks(graph) if graph is not None else {}
        if graph is not None and not (len(graph) >= BLOCKS_FROM or any(b.repeats for b in self.blocks.values())):
            self.blocks = {}  # small models without repeats read best layer by layer
        self.expanded = auto_expanded(graph, self.blocks) if graph is not None else set()
        self._draw()
        if graph is not None:
            total = graph.total_macs or 0
            self.set_metric("MACs share", {n.name: (n.macs or 0) / total for n in graph} if total else {})
            self.set_metric("parameters", {n.name: float(n.params) for n in graph})

    def open_block(self, path: str) -> None:
        self.expanded.add(path)
        self._draw(keep_view=True)

    def close_block(self, path: str) -> None:
        self.expanded = {p for p in self.expanded if p != path and not p.startswith(path + ".")
                         and not p.startswith(path + "/")}
        self._draw(keep_view=True)

    def _open_parent(self, name: str) -> str | None:
        """The innermost open block holding the visible node `name`."""
        holders = [p for p in self.expanded if p in self.blocks and name != p and name in self._members(p)]
        return max(holders, key=len, default=None)

    def _members(self, path: str) -> set[str]:
        return {self.shown.get(layer, layer) for layer in self.blocks[path].layers}

    def _draw(self, keep_view: bool = False) -> None:
        self.scene.clear()
        self.items.clear()
        graph = self.graph
        self.view.labels.fills = {}
        if graph is None:
            self.view.labels.set_nodes([], V_GAP)
            self.shown = {}
            self._show_empty_hint()
            return
        if self.blocks:
            graph, self.shown = block_view(graph, self.blocks, self.expanded)
        else:
            self.shown = {n.name: n.name for n in graph}
        placed = layered_layout(graph, node_width=NODE_W, node_height=NODE_H, v_gap=V_GAP)
        edges = QPainterPath()
        for a, b in graph.edges:
            if a in placed and b in placed:
                pa, pb = placed[a], placed[b]
                start, end = QPointF(pa.x, pa.y + NODE_H), QPointF(pb.x, pb.y)
                middle = (start.y() + end.y()) / 2
                edges.moveTo(start)
                edges.cubicTo(QPointF(start.x(), middle), QPointF(end.x(), middle), end)
        edge_item = QGraphicsPathItem(edges)
        edge_item.setPen(QPen(QColor("#8a8a8a"), 1))
        edge_item.setZValue(-1)
        self.scene.addItem(edge_item)
        for node in graph:
            p = placed[node.name]
            block = self.blocks.get(node.name) if node.op == BLOCK_OP else None
            item = NodeItem(node.name, node.op, QRectF(p.x - NODE_W / 2, p.y, NODE_W, NODE_H), block)
            self.scene.addItem(item)
            self.items[node.name] = item
        labelled = []
        for name, item in self.items.items():
            scope, first, second = item.scope_and_lines(graph)
            labelled.append((name, scope, item.rect(), first, second))
        self.view.labels.set_nodes(labelled, V_GAP)
        # the scroll range is this drawing's (a scene's own rect only ever grows: the last model's, the hint's)
        self.scene.setSceneRect(self.scene.itemsBoundingRect().adjusted(-20, -NODE_H, 20, NODE_H))
        if self.metric_box.count():
            self._recolour()
        if not keep_view:
            self.view.auto_fit = True
            self.fit()

    def _show_empty_hint(self) -> None:
        hint = self.scene.addText(EMPTY_HINT)
        self.scene.setSceneRect(hint.sceneBoundingRect())
        hint.setDefaultTextColor(self.palette().color(self.foregroundRole()))
        self.view.resetTransform()
        self.view.centerOn(hint)

    def set_metric(self, title: str, values: dict[str, float], select: bool = False) -> None:
        """Add or replace a colouring; `select` shows it now."""
        self.metrics[title] = values
        if self.metric_box.findText(title) < 0:
            self.metric_box.addItem(title)
        if select:
            self.metric_box.setCurrentText(title)
        elif self.metric_box.currentText() == title:
            self._recolour()

    def set_details(self, title: str, values: dict[str, str]) -> None:
        for layer, text in values.items():
            self._extra.setdefault(layer, {})[title] = text

    def _recolour(self) -> None:
        title = self.metric_box.currentText()
        values = self._visible_values(title, self.metrics.get(title, {}))
        known = [v for v in values.values() if v is not None]
        low, high = (min(known), max(known)) if known else (0.0, 1.0)
        span = (high - low) or 1.0
        for name, item in self.items.items():
            value = values.get(name)
            item.setBrush(QBrush(QColor("#d9d9d9") if value is None else colour_for((value - low) / span)))
            self.view.labels.fills[name] = item.brush().color()
        self.legend.set_range(self.metric_box.currentText(), f"{low:.3g}", f"{high:.3g}")

    def _visible_values(self, title: str, values: dict[str, float]) -> dict[str, float]:
        """Per visible node: a layer's value, or its block's (the layers' sum or largest)."""
        shown: dict[str, list[float]] = {}
        for layer, value in values.items():
            if value is not None:
                shown.setdefault(self.shown.get(layer, layer), []).append(value)
        combine = sum if title in SUMMED else max
        return {name: float(combine(vs)) for name, vs in shown.items()}

    def select(self, name: str) -> None:
        if name not in self.items and name in self.blocks:
            self._reveal_block(name)
        elif name not in self.items and name in self.shown and self.shown[name] != name:
            self._reveal(name)
        item = self.items.get(name)
        if item is None and name in self.blocks:  # an open block: its first visible part stands for it
            item = next((self.items[self.shown[layer]] for layer in self.blocks[name].layers
                         if self.shown.get(layer) in self.items), None)
        if item is None or item.isSelected():
            return
        self.scene.clearSelection()
        item.setSelected(True)
        self.view.centerOn(item)

    def _reveal_block(self, path: str) -> None:
        """Open every block around `path` so it shows."""
        self.expanded |= {p for p in self.blocks if path.startswith(p + ".") or path.startswith(p + "/")}
        self._draw(keep_view=True)

    def _reveal(self, layer: str) -> None:
        """Open every block that hides `layer`."""
        self.expanded |= {path for path, block in self.blocks.items() if layer in block.layers}
        self._draw(keep_view=True)

    def find(self) -> None:
        text = self.search.text().strip().lower()
        match = next((n for n in [*self.items, *self.shown] if text and text in n.lower()), None)
        if match:
            self.select(match)

    def fit(self) -> None:
        rect = self.scene.itemsBoundingRect().adjusted(-10, -10, 10, 10)
        if rect.height() > 12 * rect.width():  # a deep chain: fit the width, start at the top
            rect = QRectF(rect.left(), rect.top(), rect.width(), rect.width() * 1.2)
        self.view.fitInView(rect, Qt.AspectRatioMode.KeepAspectRatio)
        # a margin of half a label plate, so the first and last nodes' plates are not cut by the edge
        pad = (self.view.labels.plate_height() / 2 + 2) / max(self.view.transform().m22(), 1e-9)
        self.view.fitInView(rect.adjusted(-pad, -pad, pad, pad), Qt.AspectRatioMode.KeepAspectRatio)
        if self.view.transform().m22() > 1.0:  # never magnified: a short chain shows at its natural size
            self.view.resetTransform()
            height = self.view.viewport().height()
            self.view.centerOn(QPointF(rect.center().x(), min(rect.center().y(), rect.top() - pad + height / 2)))

    def _on_selection(self) -> None:
        chosen = [i for i in self.scene.selectedItems() if isinstance(i, NodeItem)]
        self.view.labels.selected = chosen[0].name if chosen else None
        self.view.viewport().update()  # its name tag lies outside its box: repaint the labels too
        if not chosen or self.graph is None:
            return
        if chosen[0].block is not None:
            self.details.setText(f"<b>{chosen[0].name}</b>: {chosen[0].block.title} · double-click to open")
            return
        node = self.graph.node(chosen[0].name)
        lines = [
            f"<b>{node.name}</b> ({node.op})",
            "in: "
            + ", ".join(format_shape(s) for s in node.input_shapes if s)
            + " → out: "
            + ", ".join(format_shape(s) for s in node.output_shapes if s),
            f"params {node.params:,} · MACs {node.macs if node.macs is not None else '?':,}"
            if node.macs is not None
            else f"params {node.params:,}",
        ]
        lines += [f"{k}: {v}" for k, v in self._extra.get(node.name, {}).items()]
        self.details.setText("<br>".join(lines))
        self.node_selected.emit(node.name)
