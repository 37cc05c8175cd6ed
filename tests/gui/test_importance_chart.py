"""The importance chart's layer names never overlap: one row a layer, names shortened to the axis
(block numbers kept), every n-th written when the rows are too thin for one line of text each, the
selected one always."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QFontMetrics

from paretolab.gui.importance_chart import NAME_WIDTH, ImportanceChart

# module paths as a transformer's are named: long, and alike at both ends
NAMES = [f"model.encoder.layers.{i}.self_attention.output_projection" for i in range(48)]


def written_names(chart: ImportanceChart) -> list[tuple[float, str]]:
    """Each name the left axis writes, with the pixel row it is written at."""
    (ticks,) = chart.plot.getAxis("left")._tickLevels
    vb = chart.plot.plotItem.vb
    return [(vb.mapViewToScene(QPointF(0, value)).y(), text) for value, text in ticks]


def assert_readable(chart: ImportanceChart) -> None:
    metrics = QFontMetrics(chart.font())
    rows = sorted(written_names(chart))
    assert rows, "no layer named"
    assert all(b[0] - a[0] >= metrics.height() for a, b in zip(rows, rows[1:])), rows  # no two names overlap
    assert all(metrics.horizontalAdvance(text) <= NAME_WIDTH for _, text in rows)  # none runs into the bars
    (ticks,) = chart.plot.getAxis("left")._tickLevels
    for value, text in ticks:  # shortened where names differ least: each keeps its block number
        assert f".{chart.order[value].split('.')[3]}." in text, (chart.order[value], text)


def test_many_long_layer_names_do_not_overlap(qtbot):
    chart = ImportanceChart()
    qtbot.addWidget(chart)
    chart.resize(420, 360)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_metric("sensitivity (points lost, pruning)", {n: float(i % 7) for i, n in enumerate(NAMES)})
    assert_readable(chart)
    assert len(written_names(chart)) < len(NAMES)  # 48 rows in ~300 px: every n-th named
    chart.resize(420, 1800)  # room for every name: all written
    qtbot.waitUntil(lambda: len(written_names(chart)) == len(NAMES))
    assert_readable(chart)


def test_the_selected_layer_is_always_named_and_a_click_selects_its_row(qtbot):
    chart = ImportanceChart()
    qtbot.addWidget(chart)
    chart.resize(420, 360)
    chart.show()
    qtbot.waitExposed(chart)
    chart.set_metric("importance (mean |w|)", {n: 100.0 - i for i, n in enumerate(NAMES)})
    unnamed = next(i for i in range(len(NAMES)) if i not in dict((v, t) for v, t in chart.plot.getAxis("left")._tickLevels[0]))
    chart.select(NAMES[unnamed])
    assert unnamed in [v for v, _ in chart.plot.getAxis("left")._tickLevels[0]]
    assert_readable(chart)
    assert chart.plot.getAxis("bottom").labelText == "importance (mean |w|)"
    row = 7  # clicking a bar's row selects its layer
    scene_point = chart.plot.plotItem.vb.mapViewToScene(QPointF(1.0, row))
    with qtbot.waitSignal(chart.layer_selected) as picked:
        qtbot.mouseClick(chart.plot.viewport(), Qt.MouseButton.LeftButton, pos=chart.plot.mapFromScene(scene_point))
    assert picked.args == [chart.order[row]] and chart.selected == chart.order[row]
