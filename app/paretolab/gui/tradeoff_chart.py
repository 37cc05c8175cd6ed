"""The accuracy-versus-latency chart: one point per variant, the Pareto front as a staircase.

Points are redrawn with setData on a short timer, not on every change, as pyqtgraph's own
examples advise; hovering shows a variant's recipe and numbers; clicking selects it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pyqtgraph as pg
import pyqtgraph.exporters
from PySide6.QtCore import QEvent, QTimer, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from paretolab.core.compress.techniques import TECHNIQUE_COLOURS
from paretolab.core.store.pareto import Point, pareto_front, step_line
from paretolab.core.units import size
from paretolab.gui.theme import style_plot


@dataclass(frozen=True)
class ChartPoint:
    key: str
    label: str  # name and recipe, for the tooltip
    latency_ms: float
    score: float  # top-1 accuracy, agreement with the original, or the worst output's per-kind quality, 0..1
    size_bytes: int
    technique: str  # a TECHNIQUE_COLOURS key
    baseline: bool = False
    quality: str = ""  # "broken": grey, off the front; "unknown": hollow, judged on random inputs (Measurement.quality)
    plotted: str = ""  # what `score` is when not the axis's class-score measure: "output0 (detection): recall 40%"


class TradeoffChart(QWidget):
    point_selected = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: dict[str, ChartPoint] = {}
        self.selected: str | None = None
        self.axis = QComboBox(self)
        self.axis.addItems(["latency", "model size"])
        self.axis.currentIndexChanged.connect(self._schedule)
        self.plot = pg.PlotWidget(self)
        style_plot(self.plot, self)
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.set_score_label("the validation split")
        for side in ("left", "bottom"):  # milliseconds stay milliseconds: no "(x0.001)" rescaling
            self.plot.getAxis(side).enableAutoSIPrefix(False)
        self.setMinimumWidth(320)
        self.scatter = pg.ScatterPlotItem(hoverable=True, tip=self._tip, hoverSize=14)
        self.scatter.sigClicked.connect(self._clicked)
        self.front = pg.PlotDataItem(pen=pg.mkPen("#2ca02c", width=1), skipFiniteCheck=True)
        self.plot.addItem(self.front)
        self.plot.addItem(self.scatter)
        self.legend = pg.LegendItem(offset=(-8, -8), labelTextSize="8pt", verSpacing=-6)
        self.legend.setParentItem(self.plot.getPlotItem().getViewBox())
        self._legend_kinds: tuple[str, ...] = ()
        self._empty = True
        header = QHBoxLayout()
        header.addWidget(QLabel("x axis:", self))
        header.addWidget(self.axis)
        header.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(header)
        layout.addWidget(self.plot)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(50)
        self._timer.timeout.connect(self.redraw)
        self.redraw()

    def set_point(self, point: ChartPoint) -> None:
        """Add a variant's point or move it; the chart redraws shortly after."""
        self.points[point.key] = point
        self._schedule()

    def remove_point(self, key: str) -> None:
        self.points.pop(key, None)
        self._schedule()

    def clear(self) -> None:
        self.points.clear()
        self.selected = None
        self._schedule()

    def select(self, key: str | None) -> None:
        self.selected = key
        self._schedule()

    def _schedule(self) -> None:
        self._timer.start()

    def _x(self, p: ChartPoint) -> float:
        return p.latency_ms if self.axis.currentIndex() == 0 else p.size_bytes / 1024

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.PaletteChange:  # the system switched light/dark
            style_plot(self.plot, self)

    def redraw(self) -> None:
        self.plot.setLabel("bottom", "latency, batch 1 (ms: median; early exit: average)" if self.axis.currentIndex() == 0
                           else "model size (KiB)")
        points = list(self.points.values())
        largest = max((p.size_bytes for p in points), default=1) or 1
        spots = []
        for p in points:
            colour = QColor(TECHNIQUE_COLOURS.get(p.technique, TECHNIQUE_COLOURS["other"]))
            rim = "#404040"
            if p.quality == "unknown":  # hollow: its quality was judged on random inputs
                colour, rim = QColor(0, 0, 0, 0), "#9a9a9a"
            elif p.quality == "broken":
                colour, rim = QColor("#b0b0b0"), "#d62728"
            spots.append({
                "pos": (self._x(p), 100 * p.score),
                "size": 8 + 14 * (p.size_bytes / largest) ** 0.5,
                "brush": pg.mkBrush(colour),
                "pen": pg.mkPen(rim if p.key != self.selected else "#d62728", width=1 if p.key != self.selected else 3),
                "symbol": "x" if p.quality == "broken" else "s" if p.baseline else "o",
                "data": p.key,
            })
        self.scatter.setData(spots)
        self._update_legend(points)
        if not points:  # an empty chart still reads in percent and milliseconds
            self.plot.setRange(xRange=(0, 1), yRange=(0, 100), padding=0.02)
        elif self._empty:  # the first point: follow the data again (later points keep the user's zoom)
            self.plot.enableAutoRange()
        self._empty = not points
        front = pareto_front([Point(p.key, self._x(p), p.score, p.quality == "broken") for p in points])
        xs, ys = step_line(front)
        self.front.setData(xs, [100 * y for y in ys])

    def _update_legend(self, points: list[ChartPoint]) -> None:
        """One entry per technique on the chart, in TECHNIQUE_COLOURS' order, and the front."""
        kinds = tuple(k for k in TECHNIQUE_COLOURS if any(p.technique == k for p in points))
        if kinds == self._legend_kinds:
            return
        self._legend_kinds = kinds
        self.legend.clear()
        for kind in kinds:
            sample = pg.ScatterPlotItem(symbol="s" if kind == "baseline" else "o", size=9, pen=pg.mkPen("#404040"),
                                        brush=pg.mkBrush(TECHNIQUE_COLOURS[kind]))
            self.legend.addItem(sample, kind)
        if len(points) > 1:
            self.legend.addItem(self.front, "Pareto front")
        self.legend.setVisible(bool(kinds))

    def legend_entries(self) -> list[str]:
        return [label.text for _, label in self.legend.items]

    def front_keys(self) -> list[str]:
        return [p.key for p in pareto_front([Point(p.key, self._x(p), p.score, p.quality == "broken")
                                             for p in self.points.values()])]

    def set_score_label(self, split: str, measure: str = "top-1 accuracy") -> None:
        """Name the measure and the split the y axis shows: the split variants are chosen by, never
        the test split; for outputs that are not class scores, the worst output's measure for its
        kind on 0..1 (detection recall, exact strings, neighbours, SQNR), named in each tooltip."""
        self.plot.setLabel("left", f"{measure} on {split} (%)")

    def _tip(self, x: float, y: float, data: str) -> str:
        p = self.points.get(data)
        if p is None:
            return ""
        quality = {"unknown": "\nquality unknown: judged on random inputs (hollow)",
                   "broken": "\nBROKEN: kept off the Pareto front"}.get(p.quality, "")
        what = f" quality, the worst output: {p.plotted}" if p.plotted else ""
        return (f"{p.label}\nplotted: {100 * p.score:.2f}%{what}   {p.latency_ms:.3f} ms   {size(p.size_bytes)}"
                f"{quality}")

    def _clicked(self, item, spots, event=None) -> None:
        if spots:
            key = spots[0].data()
            self.select(key)
            self.point_selected.emit(key)

    def export(self, path: Path) -> Path:
        """Save the chart as PNG or SVG (by the file's suffix).

        SVG goes through Qt's own QSvgGenerator: pyqtgraph's SVGExporter fails on the SVG
        that Qt 6.7+ writes (known upstream; a ValueError while it rewrites coordinates)."""
        path = Path(path)
        self.redraw()
        if path.suffix.lower() == ".svg":
            generator = QSvgGenerator()
            generator.setFileName(str(path))
            generator.setSize(self.plot.size())
            generator.setViewBox(self.plot.rect())
            generator.setTitle("ParetoLab trade-off chart")
            painter = QPainter(generator)
            self.plot.render(painter)
            painter.end()
        else:  # landscape whatever the dock's shape: a report or slide wants 16:10, not a tall strip
            shown = self.plot.size()
            self.plot.resize(960, 600)
            try:
                exporter = pyqtgraph.exporters.ImageExporter(self.plot.plotItem)
                exporter.parameters()["width"] = 1600
                exporter.export(str(path))
            finally:
                self.plot.resize(shown)
        return path
