"""Graph labels a person can read (issue 28): at Fit a ResNet showed blank boxes and a 300-layer
model a column of bars; names were cut at both ends. Labels are checked as painted: their text,
their pixel size, and the glyphs found in the grabbed image."""

from __future__ import annotations

import warnings

import pytest
import torch
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QImage

from paretolab.core.model.blocks import node_scope
from paretolab.core.model.graph import LayerGraph, LayerNode
from paretolab.core.model.handle import load_model
from paretolab.core.sample import sample_model_path
from paretolab.gui.graph_labels import MIN_TEXT_PX, compact_name
from paretolab.gui.graph_view import NODE_H, GraphView

GRAPH_TAB = (580, 468)  # the Graph tab's size in the main window at 1366x768
GLYPH_ROWS = 6  # rows a 10 px line's capitals and ascenders cover at least


class OcrLike(torch.nn.Module):
    """A CRNN-style recognizer, ~290 ONNX nodes: conv stages of growing depth (no two alike, so no
    '7 × stage' summary), then two different attention layers over the columns, then a head."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        chans = [1, 16, 24, 32, 48, 64, 96, 128]
        stages = []
        for i in range(len(chans) - 1):
            units = [nn.Conv2d(chans[i], chans[i + 1], 3, 1, 1), nn.ReLU()]
            for _ in range(i + 3):
                units += [nn.Conv2d(chans[i + 1], chans[i + 1], 3, 1, 1, groups=chans[i + 1]), nn.Hardswish(),
                          nn.Conv2d(chans[i + 1], chans[i + 1], 1), nn.Sigmoid()]
            stages.append(nn.Sequential(*units))
        self.backbone = nn.Sequential(*stages)
        self.attention = nn.TransformerEncoderLayer(128, 4, 256, dropout=0.0, batch_first=True)
        self.decoder_context = nn.TransformerEncoderLayer(128, 8, 512, dropout=0.0, batch_first=True)
        self.head = nn.Linear(128, 40)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = self.backbone(x).mean(2).transpose(1, 2)
        return self.head(self.decoder_context(self.attention(columns))).log_softmax(-1)


@pytest.fixture(scope="module")
def resnet():
    return load_model(sample_model_path("demo")).layer_graph()  # the demo: a ResNet, 22 layers


@pytest.fixture(scope="module")
def long_graph(tmp_path_factory):
    path = tmp_path_factory.mktemp("ocr") / "ocr.onnx"
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(OcrLike().eval(), (torch.rand(1, 1, 32, 128),), str(path), dynamo=False, opset_version=17)
    graph = load_model(path).layer_graph()
    assert 250 <= len(graph) <= 400
    return graph


def _view(qtbot, graph, size=GRAPH_TAB) -> GraphView:
    view = GraphView()
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    view.set_graph(graph)
    qtbot.waitExposed(view)
    return view


def _painted(view: GraphView) -> QImage:
    """The viewport as painted now; its labels are in view.view.labels.drawn."""
    return view.view.viewport().grab().toImage()


def _glyph_rows(image: QImage, rect: QRectF) -> int:
    """Rows of `rect` holding dark text pixels (text on a plate or on the view's background)."""
    r = rect.toAlignedRect().adjusted(2, 2, -2, -2).intersected(image.rect())  # inside the plate's border
    return sum(any(image.pixelColor(x, y).lightness() < 150 for x in range(r.left(), r.right() + 1))
               for y in range(r.top(), r.bottom() + 1))


def _assert_readable(view: GraphView, image: QImage) -> list:
    drawn = view.view.labels.drawn
    assert drawn, "nothing was labelled"
    for label in drawn:
        assert label.text.strip(" …"), f"an empty label on {label.name}"
        assert label.pixel_size >= MIN_TEXT_PX, f"{label.text!r} drawn at {label.pixel_size} px"
        whole = QRectF(image.rect()).contains(label.rect)  # not cut by the view's edge, as a node half in view is
        assert whole or label.where != "plate", f"the plate {label.text!r} is cut by the view's edge"
        if whole and label.where in ("plate", "beside"):  # dark text on a light ground: its glyphs can be measured
            assert _glyph_rows(image, label.rect) >= GLYPH_ROWS, f"{label.text!r} has no readable glyphs"
    plates = [label.rect for label in drawn if label.where == "plate"]
    for i, a in enumerate(plates):
        assert not any(a.intersects(b) for b in plates[i + 1:]), "two plates overlap"
    return drawn


def test_a_resnet_at_fit_names_its_modules_readably(qtbot, resnet):
    view = _view(qtbot, resnet)
    image = _painted(view)
    assert NODE_H * view.view.transform().m22() < MIN_TEXT_PX + 4  # boxes too small for any text: the bug's case
    drawn = _assert_readable(view, image)
    modules = {label.text for label in drawn if label.kind == "module"}
    assert {"stem", "layers.0", "layers.1", "layers.2"} <= modules
    scopes = {".".join(node_scope(n)[:depth]) for n in resnet for depth in range(1, len(node_scope(n)) + 1)}
    assert modules <= scopes  # each plate names a module of the model
    lone = {label.name for label in drawn if label.kind == "layer"}
    assert "fc" in lone  # a layer outside every module is named on its own


def test_zooming_in_shows_the_layer_names_again(qtbot, resnet):
    view = _view(qtbot, resnet)
    view.view.auto_fit = False
    view.view.scale(2.5, 2.5)
    view.view.centerOn(view.items["layers.1.conv2"])
    image = _painted(view)
    drawn = _assert_readable(view, image)
    assert not [label for label in drawn if label.kind == "module"]
    named = {label.name for label in drawn}
    assert {"layers.1.conv1", "layers.1.conv2", "layers.1.shortcut.0"} <= named
    conv2 = next(label for label in drawn if label.name == "layers.1.conv2")
    assert conv2.text.startswith("layers.1.conv2") and conv2.where == "inside"


def test_clicking_a_layer_at_fit_selects_it(qtbot, resnet):
    view = _view(qtbot, resnet)
    _painted(view)
    item = view.items["layers.0.conv1"]
    spot = view.view.mapFromScene(item.rect().center())
    qtbot.mouseClick(view.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(spot.x(), spot.y()))
    assert [i.name for i in view.scene.selectedItems()] == ["layers.0.conv1"]
    assert "layers.0.conv1" in view.details.text()


def test_a_long_model_at_fit_reads_layer_by_layer(qtbot, long_graph):
    view = _view(qtbot, long_graph)
    drawn = _assert_readable(view, _painted(view))
    names = [label for label in drawn if label.kind == "layer" and label.where == "beside"]
    assert len(names) >= 5  # a deep chain fits its width: every row shows its module path and op
    first = long_graph.nodes[0]
    assert names[0].text == compact_name(first.name, node_scope(first)) == "backbone.0.0/Conv"


def test_the_whole_long_model_reads_as_its_modules(qtbot, long_graph):
    view = _view(qtbot, long_graph)
    view.view.auto_fit = False
    view.view.fitInView(view.scene.itemsBoundingRect(), Qt.AspectRatioMode.KeepAspectRatio)
    drawn = _assert_readable(view, _painted(view))
    assert {"backbone", "attention", "decoder_context"} <= {label.text for label in drawn if label.kind == "module"}


def test_names_too_long_for_their_box_keep_both_ends(qtbot, long_graph):
    view = _view(qtbot, long_graph, size=(260, 468))
    view.view.auto_fit = False
    view.view.resetTransform()
    view.view.scale(0.6, 0.6)  # boxes tall enough for a name, too narrow for most, no room beside them
    view.view.centerOn(view.items[long_graph.nodes[0].name])
    drawn = _assert_readable(view, _painted(view))
    elided = [label for label in drawn if "…" in label.text]
    assert elided
    for label in elided:
        full = compact_name(label.name, node_scope(long_graph.node(label.name)))
        head, tail = label.text.split("\n")[0].split("…")
        assert head and tail and full.startswith(head) and full.endswith(tail), (label.text, full)


def test_a_name_beside_its_box_stops_at_the_next_box_in_the_row(qtbot, resnet):
    view = _view(qtbot, resnet)
    view.view.auto_fit = False
    view.view.scale(2.5, 2.5)
    view.view.centerOn(view.items["layers.1.conv2"])
    _painted(view)
    beside = next(label for label in view.view.labels.drawn if label.name == "layers.1.conv1")
    neighbour = view.view.mapFromScene(view.items["layers.1.shortcut.0"].rect().topLeft())
    assert beside.where == "inside" or beside.rect.right() <= QPointF(neighbour).x()


def test_fit_never_magnifies_a_short_model(qtbot):
    names = ["stem", "block.conv", "head"]
    graph = LayerGraph([LayerNode(n, "Conv", [(1, 8)], [(1, 8)], params=8, macs=8) for n in names],
                       list(zip(names, names[1:])), [], [])
    view = _view(qtbot, graph)
    drawn = _assert_readable(view, _painted(view))
    assert view.view.transform().m22() == 1.0
    assert [label.text for label in drawn] == [f"{n}\nConv" for n in names]  # name and op, whole
    assert view.view.horizontalScrollBar().maximum() == 0  # the whole drawing in view, nothing to pan to


def test_a_layer_selected_at_fit_is_named_beside_its_module(qtbot, resnet):
    view = _view(qtbot, resnet)
    view.select("layers.1.conv2")  # as the Layers table or the search selects it
    drawn = _assert_readable(view, _painted(view))
    tag = next(label for label in drawn if label.name == "layers.1.conv2")
    assert tag.text == "layers.1.conv2" and tag.where == "plate"
    assert {"stem", "layers.0", "layers.1", "layers.2"} <= {label.text for label in drawn if label.kind == "module"}


def test_lone_layers_too_short_for_a_plate_each_share_one(qtbot, resnet):
    view = _view(qtbot, resnet, size=(580, 380))  # rows closer than a plate is tall
    drawn = _assert_readable(view, _painted(view))
    assert not [label for label in drawn if label.name in ("pool", "fc")]
    assert "pool … fc" in {label.text for label in drawn if label.kind == "layers"}
