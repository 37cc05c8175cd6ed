"""The presentation view: the trade-off chart and the best variant's card in large type, and a
one-click slide that explains that trade-off — what a stakeholder is shown, from real numbers.

Widgets only: the numbers are the variants' own (Variant's methods, as the table and report
use them), and the explanation arrives from a job (jobs/demo_jobs.py)."""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from paretolab.core.units import size
from paretolab.gui.tradeoff_chart import ChartPoint, TradeoffChart

if TYPE_CHECKING:
    from paretolab.core.compress.insight.explain import Explanation
    from paretolab.core.compress.variant import Variant

TEXT_PT = 18  # read from the back of a meeting room
TICK_PT = 14


def accuracy_change(variant: Variant) -> str:
    """"-0.8 points (test top-1 96.9% against the original's 97.8%)": the cost, on the test split."""
    mine, base = variant.measured, variant.baseline
    label = "top-1" if variant.metric == "top-1" else variant.metric_label
    return (f"{100 * (mine.score - base.score):+.1f} points ({mine.dataset or 'test'} {label} {100 * mine.score:.1f}% "
            f"against the original's {100 * base.score:.1f}%)")


def speedup_line(variant: Variant) -> str:
    """"5.02× faster (95 % interval 4.94-5.12×) on openvino/cpu, default threads"."""
    if variant.speedup is None:
        return "speed-up not measured"
    low_high = variant.speedup_range
    span = f" (95 % interval {low_high[0]:.2f}–{low_high[1]:.2f}×)" if low_high else ""
    return f"{variant.speedup:.2f}× faster{span} on {variant.baseline.where}"


def size_line(variant: Variant) -> str:
    mine, base = variant.measured.size_bytes, variant.baseline.size_bytes
    ratio = f", {base / mine:.1f}× smaller than the original's {size(base)}" if mine and base else ""
    return f"{size(mine)}{ratio}"


class PresentationView(QWidget):
    """A window of its own (it can go full screen on a projector while the studio stays put)."""

    explain_requested = Signal(object)  # Variant
    remeasure_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.WindowType.Window)
        self.setWindowTitle("ParetoLab — presentation")
        font = self.font()
        font.setPointSize(TEXT_PT)
        self.setFont(font)
        self.best: Variant | None = None
        self.variants: list[Variant] = []
        self.title = QLabel(self)
        self.title.setTextFormat(Qt.TextFormat.RichText)
        self.title.setWordWrap(True)
        self.source = QLabel(self)  # where and when every number was measured
        self.source.setWordWrap(True)
        small = self.font()
        small.setPointSize(TICK_PT - 2)
        self.source.setFont(small)
        self.chart = TradeoffChart(self)
        self.chart.axis.hide()  # latency: what the slide talks about
        for label in self.chart.findChildren(QLabel):
            label.hide()  # the axis chooser's caption
        for side in ("left", "bottom"):
            axis = self.chart.plot.getAxis(side)
            axis.setTickFont(QFont(self.font().family(), TICK_PT))
            axis.setLabel(axis.labelText, **{"font-size": f"{TICK_PT}pt"})
        self.chart.legend.setLabelTextSize(f"{TICK_PT}pt")
        # bottom, a fifth in from the left: the demo's points sit along the top and at both ends
        self.chart.legend.anchor(itemPos=(0, 1), parentPos=(0.2, 1), offset=(0, -10))
        self.card = _Card(self)
        self.explain_button = QPushButton("Explain this trade-off", self)
        self.explain_button.clicked.connect(lambda: self.best is not None and self.explain_requested.emit(self.best))
        self.remeasure_button = QPushButton("Re-measure here", self)
        self.remeasure_button.setToolTip("Re-run every recipe on this machine (each is a job in the studio's queue); "
                                         "the chart shows this machine's numbers once all are done")
        self.remeasure_button.clicked.connect(self.remeasure_requested)
        self.slide = QLabel(self)
        self.slide.setTextFormat(Qt.TextFormat.RichText)
        self.slide.setWordWrap(True)
        self.slide.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        self.slide.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        back = QPushButton("Back to the chart", self)
        back.clicked.connect(lambda: self.pages.setCurrentIndex(0))

        overview = QWidget(self)
        row = QHBoxLayout(overview)
        row.addWidget(self.chart, 3)
        side = QVBoxLayout()
        side.addWidget(self.card)
        side.addStretch(1)
        side.addWidget(self.explain_button)
        side.addWidget(self.remeasure_button)
        row.addLayout(side, 2)
        slide_page = QWidget(self)
        column = QVBoxLayout(slide_page)
        column.addWidget(self.slide, 1)
        column.addWidget(back, 0, Qt.AlignmentFlag.AlignRight)
        self.pages = QStackedWidget(self)
        self.pages.addWidget(overview)
        self.pages.addWidget(slide_page)
        layout = QVBoxLayout(self)
        layout.addWidget(self.title)
        layout.addWidget(self.pages, 1)
        layout.addWidget(self.source)
        self.resize(1600, 900)

    def show_variants(self, model: str, variants: list[Variant], best: Variant | None, source: str) -> None:
        """Put `variants` on the chart (one machine's, with their original) and `best` on the card."""
        from paretolab.gui.studio import Studio  # the studio's own points and tooltips

        self.variants, self.best = list(variants), best
        self.chart.clear()
        for variant in variants:
            key, base = Studio._baseline_point(variant)
            if key not in self.chart.points:
                self.chart.set_point(base)
            self.chart.set_score_label(variant.selection_split, variant.metric_label)
            self.chart.set_point(Studio._point(variant))
        self.chart.select(best.name if best else None)
        self.chart.redraw()
        self.title.setText(f"<b>{html.escape(model)}</b>: {len(variants)} compressed variants, "
                           "accuracy against latency (the green staircase is the best trade-off at each speed)")
        self.source.setText(source)
        self.card.show_variant(best)
        self.explain_button.setEnabled(best is not None)
        self.pages.setCurrentIndex(0)

    def set_source(self, text: str) -> None:
        self.source.setText(text)

    def show_explanation(self, variant: Variant, why: Explanation) -> None:
        """The slide: what was done, what it bought, what it cost, and why the speed-up is what it is."""
        steps = "".join(f"<li>{html.escape(step.summary())}</li>" for step in variant.recipe.steps)
        expected = (f"measured {why.measured:.2f}×, expected {why.expected:.2f}× from {html.escape(why.basis)}"
                    if why.measured is not None else f"expected {why.expected:.2f}× from {html.escape(why.basis)}")
        reasons = "".join(f"<li>{html.escape(r)}</li>" for r in why.reasons) or (
            "<li>explain found nothing holding this speed-up back</li>")
        self.slide.setText(
            f"<h1>{html.escape(variant.name)}: {variant.speedup or 0:.2f}× faster — and what it costs</h1>"
            f"<p><b>What was done</b></p><ol>{steps}</ol>"
            f"<p><b>What it bought</b>: {html.escape(speedup_line(variant))}; size {html.escape(size_line(variant))}</p>"
            f"<p><b>What it cost</b>: accuracy {html.escape(accuracy_change(variant))}</p>"
            f"<p><b>Why this speed-up</b>: {expected}</p><ul>{reasons}</ul>"
        )
        self.pages.setCurrentIndex(1)

    def slide_text(self) -> str:
        """The slide as plain text (what a test or a screen reader reads)."""
        from PySide6.QtGui import QTextDocument

        doc = QTextDocument()
        doc.setHtml(self.slide.text())
        return doc.toPlainText()

    def chart_point(self, key: str) -> ChartPoint | None:
        return self.chart.points.get(key)


class _Card(QFrame):
    """The best variant in four lines: name and recipe, speed-up with its interval, accuracy change, size."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.name = QLabel(self)
        self.speedup = QLabel(self)
        self.accuracy = QLabel(self)
        self.size = QLabel(self)
        self.latency = QLabel(self)
        layout = QVBoxLayout(self)
        heading = QLabel("<b>Best trade-off</b> (fastest on the front within 1 point of the original's accuracy)", self)
        heading.setWordWrap(True)
        layout.addWidget(heading)
        for label in (self.name, self.speedup, self.accuracy, self.size, self.latency):
            label.setTextFormat(Qt.TextFormat.RichText)  # escaped text reads as text, not as "&#x27;"
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            layout.addWidget(label)

    def show_variant(self, variant: Variant | None) -> None:
        if variant is None:
            for label in (self.name, self.speedup, self.accuracy, self.size, self.latency):
                label.setText("—")
            return
        big = f"font-size: {TEXT_PT + 10}pt"
        self.name.setText(f"<b>{html.escape(variant.name)}</b>: {html.escape(variant.recipe.summary())}")
        self.speedup.setText(f"<span style='{big}'><b>{variant.speedup or 0:.2f}×</b></span> faster<br>"
                             f"{html.escape(speedup_line(variant))}")
        self.accuracy.setText(f"Accuracy: {html.escape(accuracy_change(variant))}")
        self.size.setText(f"Size: {html.escape(size_line(variant))}")
        self.latency.setText(f"Latency: {variant.measured.latency_ms:.3f} ms against {variant.baseline.latency_ms:.3f} ms "
                             "(median, batch 1)" + (f"<br>⚠ busy: {html.escape(variant.busy)}" if variant.busy else ""))
