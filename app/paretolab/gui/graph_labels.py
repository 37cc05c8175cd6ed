"""Labels of the layer graph, drawn over it at a size a person can read (issue 28).

Text is drawn in viewport pixels, never scaled with the scene, so it is never smaller than
MIN_TEXT_PX. When a layer's box is tall enough, its name goes inside it; when the boxes are too
small for that (a ResNet or a 300-layer model at Fit), consecutive layers are grouped by the module
that holds them and each group gets one plate naming the module, at the deepest module level whose
plates have room. Names are elided in the middle, so both a module path's start and the op's own
name at its end stay. Labels never overlap: a plate that would cover another is left out.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QTransform

MIN_TEXT_PX = 10  # the smallest text drawn: below it names are guesswork on a laptop screen
MAX_TEXT_PX = 13
PAD = 3.0  # pixels between text and the edge of its box or plate
PLATE_MIN_W = 150.0  # a group's plate may be wider than the group: its name matters more than the margin
BESIDE_MIN_W, BESIDE_MAX_W = 80.0, 320.0  # a name beside its box: the least room worth using, the most taken
ROOMY = 2.0  # descend into a module only when every part of it has this many plate heights of room


@dataclass
class DrawnLabel:
    """One label as painted: what it names and where, in viewport pixels (tests read these)."""

    name: str  # the layer, block or module path it names
    kind: str  # "layer": names one node; "module": a group of nodes; "layers": a run of lone nodes
    text: str
    rect: QRectF
    pixel_size: int
    where: str  # "inside" a box, "beside" it, or on a "plate" over it


@dataclass
class Group:
    """A module of the drawn graph: the nodes it holds, and the modules and loose nodes inside it."""

    path: tuple[str, ...]
    rect: QRectF = field(default_factory=QRectF)
    units: list[Group | str] = field(default_factory=list)  # sub-modules and loose nodes, in graph order
    count: int = 0  # drawn nodes inside, at any depth
    label: str = ""  # a run of lone layers has no module name: its first and last layer name it

    @property
    def title(self) -> str:
        return self.label or ".".join(self.path)


def compact_name(name: str, scope: tuple[str, ...]) -> str:
    """A layer's name as a drawing has room for: its module path and its own last part
    ("/backbone/backbone.0/backbone.0.2/Conv" -> "backbone.0.2/Conv"); torch names as they are."""
    parts = [p for p in name.strip("/").split("/") if p]
    if len(parts) <= 1:
        return name.strip("/") or name
    return f"{'.'.join(scope)}/{parts[-1]}" if scope else parts[-1]


def build_groups(nodes: list[tuple[str, tuple[str, ...], QRectF]]) -> Group:
    """The module tree of the drawn nodes, given each node's module path and scene rect."""
    root = Group(())
    index: dict[tuple[str, ...], Group] = {(): root}
    for name, scope, rect in nodes:
        parent = root
        for depth in range(1, len(scope) + 1):
            path = scope[:depth]
            group = index.get(path)
            if group is None:
                group = index[path] = Group(path)
                parent.units.append(group)
            parent = group
        parent.units.append(name)
        for depth in range(len(scope) + 1):
            group = index[scope[:depth]]
            group.rect = rect if group.count == 0 else group.rect.united(rect)
            group.count += 1
    return root


def _single(unit: Group | str) -> str | None:
    """The node a unit stands for when it holds only one (a module of one layer reads as the layer)."""
    while isinstance(unit, Group):
        if unit.count != 1:
            return None
        unit = unit.units[0]
    return unit


@functools.lru_cache(maxsize=16)
def metrics(family: str, pixel_size: int) -> tuple[QFont, QFontMetricsF]:
    font = QFont(family)
    font.setPixelSize(pixel_size)
    return font, QFontMetricsF(font)


class LabelPainter:
    """Draws the labels of one view; `drawn` keeps what the last paint drew."""

    def __init__(self, family: str) -> None:
        self.family = family
        self.drawn: list[DrawnLabel] = []
        self._cut_cache: tuple[float, list[tuple[str, Group | str]]] | None = None
        self.root = Group(())
        self.rects: dict[str, QRectF] = {}
        self.texts: dict[str, tuple[str, str]] = {}  # node -> (name line, second line)
        self.fills: dict[str, QColor] = {}
        self.free_right: dict[str, float] = {}  # scene x where the next node in the row begins
        self.v_gap = 0.0
        self.text_colour = QColor("black")  # for names drawn beside a box, on the view's background
        self.selected: str | None = None  # named even when boxes are too small: the user is looking for it

    def set_nodes(self, nodes: list[tuple[str, tuple[str, ...], QRectF, str, str]], v_gap: float) -> None:
        """Each drawn node: name, module path, scene rect, and its two lines of text."""
        self.root = build_groups([(n, s, r) for n, s, r, _, _ in nodes])
        self.rects = {n: r for n, _, r, _, _ in nodes}
        self.texts = {n: (a, b) for n, _, _, a, b in nodes}
        self.v_gap = v_gap
        self._cut_cache = None
        rows: dict[float, list[tuple[float, float, str]]] = {}
        for name, rect in self.rects.items():
            rows.setdefault(rect.top(), []).append((rect.left(), rect.right(), name))
        self.free_right = {}
        for row in rows.values():
            row.sort()
            for (_, _, name), (left, _, _) in zip(row, row[1:]):
                self.free_right[name] = left

    def plate_height(self) -> float:
        return metrics(self.family, MIN_TEXT_PX)[1].height() + 4

    def _cut(self, scale: float) -> list[tuple[str, Group | str]]:
        """What to label at `scale`: (kind, unit) for each module or node that gets a plate."""
        if self._cut_cache is not None and self._cut_cache[0] == scale:
            return self._cut_cache[1]
        plate = self.plate_height()

        def room(unit: Group | str) -> float:
            rect = unit.rect if isinstance(unit, Group) else self.rects[unit]
            return (rect.height() + self.v_gap) * scale

        chosen: list[tuple[str, Group | str]] = []

        def flush(run: list[str]) -> None:
            """Lone layers in a row, each too short for a plate: one plate names the first and last."""
            if len(run) >= 2:
                rect = functools.reduce(QRectF.united, (self.rects[n] for n in run))
                group = Group((), rect, list(run), len(run), f"{self.texts[run[0]][0]} … {self.texts[run[-1]][0]}")
                if room(group) >= plate:
                    chosen.append(("layers", group))
            run.clear()

        def visit(group: Group) -> None:
            run: list[str] = []
            for unit in group.units:
                single = _single(unit)
                if single is not None and room(single) < plate:
                    run.append(single)
                    continue
                flush(run)
                if single is not None:
                    chosen.append(("layer", single))
                elif isinstance(unit, Group):
                    if all(room(part) >= ROOMY * plate for part in unit.units):
                        visit(unit)
                    elif room(unit) >= plate:
                        chosen.append(("module", unit))
            flush(run)

        visit(self.root)
        self._cut_cache = (scale, chosen)
        return chosen

    def paint(self, painter: QPainter, visible: QRectF, node_height: float) -> None:
        """Label what lies in `visible` (scene coordinates); `painter` is in scene coordinates."""
        self.drawn = []
        if not self.rects:
            return
        to_view = painter.worldTransform()
        scale = to_view.m22()
        painter.save()
        painter.setWorldTransform(QTransform())
        try:
            if node_height * scale >= self.plate_height():
                self._inside(painter, to_view, visible)
            else:
                self._plates(painter, to_view, visible, scale)
        finally:
            painter.restore()

    def _inside(self, painter: QPainter, to_view: QTransform, visible: QRectF) -> None:
        """Boxes tall enough for text: each name inside its box, the op below it when there is room."""
        for name, scene_rect in self.rects.items():
            if not scene_rect.intersects(visible):
                continue
            box = to_view.mapRect(scene_rect).adjusted(PAD, 1, -PAD, -1)
            first, second = self.texts[name]
            size = max(MIN_TEXT_PX, min(MAX_TEXT_PX, int(box.height() / 2.6)))
            font, fm = metrics(self.family, size)
            beside = self._beside(to_view, visible, name, box, fm)
            if second and fm.horizontalAdvance(first) > box.width() and beside.width() >= BESIDE_MIN_W:
                # the name does not fit but the row has room: the box shows the op, the name goes beside it
                text = fm.elidedText(first, Qt.TextElideMode.ElideMiddle, beside.width())
                painter.setFont(font)
                painter.setPen(self.text_colour)
                painter.drawText(beside, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, text)
                self.drawn.append(DrawnLabel(name, "layer", text, beside, size, "beside"))
                first, second = second, ""
            lines = [first, second] if second and box.height() >= 2 * fm.height() else [first]
            text = "\n".join(fm.elidedText(line, Qt.TextElideMode.ElideMiddle, box.width()) for line in lines)
            fill = self.fills.get(name, QColor("#d9d9d9"))
            painter.setFont(font)
            painter.setPen(QColor("black") if fill.lightness() > 140 else QColor("white"))
            painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)
            self.drawn.append(DrawnLabel(name, "layer", text, box, size, "inside"))

    def _beside(self, to_view: QTransform, visible: QRectF, name: str, box: QRectF, fm: QFontMetricsF) -> QRectF:
        """The room right of a node's box, up to the next node in its row or the view's edge."""
        right = min(self.free_right.get(name, visible.right()), visible.right())
        left = box.right() + 2 * PAD + 2
        end = min(to_view.map(QPointF(right, 0)).x() - 2 * PAD, left + BESIDE_MAX_W)
        return QRectF(left, box.top(), max(0.0, end - left), box.height())

    def _plates(self, painter: QPainter, to_view: QTransform, visible: QRectF, scale: float) -> None:
        """Boxes too small for text: a plate per module (or lone node) with room for one."""
        font, fm = metrics(self.family, MIN_TEXT_PX)
        painter.setFont(font)
        taken: list[QRectF] = []
        seen = to_view.mapRect(visible)
        if self.selected in self.rects and self.rects[self.selected].intersects(visible):
            taken.append(self._selected_tag(painter, to_view, seen, fm))
        for kind, unit in self._cut(scale):
            scene_rect = unit.rect if isinstance(unit, Group) else self.rects[unit]
            if not scene_rect.intersects(visible):
                continue
            area = to_view.mapRect(scene_rect)
            if isinstance(unit, Group):
                name, full = unit.title, unit.title
            else:
                name, full = unit, self.texts[unit][0]
            width = min(fm.horizontalAdvance(full) + 2 * PAD + 1, max(area.width(), PLATE_MIN_W))
            height = self.plate_height()
            plate = self._free_spot(area, width, height, seen, taken)
            if plate is None:
                continue
            taken.append(plate)
            text = fm.elidedText(full, Qt.TextElideMode.ElideMiddle, width - 2 * PAD)
            if isinstance(unit, Group):
                painter.setPen(QPen(QColor("#6f6f6f"), 1, Qt.PenStyle.DashLine))
                painter.setBrush(Qt.BrushStyle.NoBrush)
                painter.drawRoundedRect(area.adjusted(-3, -3, 3, 3), 4, 4)
            painter.setPen(QPen(QColor("#6f6f6f"), 1))
            painter.setBrush(QColor(255, 255, 255, 230))
            painter.drawRoundedRect(plate, 3, 3)
            painter.setPen(QColor("#1a1a1a"))
            painter.drawText(plate, Qt.AlignmentFlag.AlignCenter, text)
            self.drawn.append(DrawnLabel(name, kind, text, plate, MIN_TEXT_PX, "plate"))

    @staticmethod
    def _free_spot(area: QRectF, width: float, height: float, seen: QRectF, taken: list[QRectF]) -> QRectF | None:
        """Where a plate over `area` can go: its middle, else its top or bottom edge (a tag already
        sits in the middle); kept inside the view so a group at its edge is not cut in half."""
        for y in (area.center().y() - height / 2, area.top(), area.bottom() - height):
            plate = QRectF(area.center().x() - width / 2, y, width, height)
            plate.moveTop(max(seen.top(), min(plate.top(), seen.bottom() - height)))
            plate.moveLeft(max(seen.left(), min(plate.left(), seen.right() - width)))
            if not any(plate.intersects(other) for other in taken):
                return plate
        return None

    def _selected_tag(self, painter: QPainter, to_view: QTransform, seen: QRectF, fm: QFontMetricsF) -> QRectF:
        """The selected node's name on a plate right of its box (left of it at the view's right edge)."""
        name = self.selected
        assert name is not None
        box = to_view.mapRect(self.rects[name])
        full = self.texts[name][0]
        width = min(fm.horizontalAdvance(full) + 2 * PAD + 1, BESIDE_MAX_W)
        height = self.plate_height()
        left = box.right() + 2 * PAD if box.right() + 2 * PAD + width <= seen.right() else box.left() - 2 * PAD - width
        plate = QRectF(max(seen.left(), left), box.center().y() - height / 2, width, height)
        plate.moveTop(max(seen.top(), min(plate.top(), seen.bottom() - height)))
        text = fm.elidedText(full, Qt.TextElideMode.ElideMiddle, width - 2 * PAD)
        painter.setPen(QPen(QColor("#d62728"), 2))  # the selection's red
        painter.setBrush(QColor(255, 255, 255, 240))
        painter.drawRoundedRect(plate, 3, 3)
        painter.setPen(QColor("#1a1a1a"))
        painter.drawText(plate, Qt.AlignmentFlag.AlignCenter, text)
        self.drawn.append(DrawnLabel(name, "layer", text, plate, MIN_TEXT_PX, "plate"))
        return plate
