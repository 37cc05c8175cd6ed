"""Quantization keeps the fastest *faithful* form, judged per output kind on the user's data: a
detector form that loses its detections (class channels crossed: cosine still ~1, boxes in pixels
dominate) is not kept; on random inputs the per-kind measures pick the best available while the
verdict stays unknown. YOLOv5 rows (objectness) and YOLOv8 rows (no objectness) are told apart."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from paretolab.core.compress.quantization.fastest_faithful import pick_fastest_faithful
from paretolab.core.measure.data import ArrayDataset, random_inputs
from paretolab.core.measure.output_kinds import (
    declared_kind,
    detection_layout,
    detector_classes,
    guess_kinds,
    parse_output_kinds,
)
from paretolab.core.measure.output_meters import DetectionMeter, detection_parts
from paretolab.core.model.handle import load_model
from paretolab.core.progress import silent


class YoloV5(nn.Module):
    """[b, cells, 5 + C] rows: boxes (cx, cy, w, h) in pixels, objectness, then class scores, all in 0..1."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU())
        self.box = nn.Conv2d(16, 4, 1)
        self.obj = nn.Conv2d(16, 1, 1)
        self.cls = nn.Conv2d(16, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x)
        boxes = torch.sigmoid(self.box(f)) * 32.0
        obj = torch.sigmoid(self.obj(f) + 4.0)  # confident everywhere: the class decides
        scores = torch.sigmoid(self.cls(f) * 20.0)
        return torch.cat([boxes, obj, scores], 1).flatten(2).transpose(1, 2)


def _images(count: int, rng: np.random.Generator) -> np.ndarray:
    images = np.full((count, 3, 32, 32), 0.1, np.float32)
    for img in images:
        for _ in range(3):
            y, x, h, w = rng.integers(0, 20), rng.integers(0, 20), rng.integers(6, 12), rng.integers(6, 12)
            img[:, y:y + h, x:x + w] = rng.uniform(0.5, 1.0, (3, 1, 1))
    return images


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    """The detector, a faithful copy, and a copy whose class channels are crossed (every detection
    labelled with another class: none matches, nothing collapses)."""
    root = tmp_path_factory.mktemp("fastest")
    torch.manual_seed(0)
    path = root / "yolo.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(YoloV5().eval(), (torch.rand(2, 3, 32, 32),), str(path), input_names=["images"],
                          output_names=["output0"], dynamic_axes={"images": {0: "batch"}}, dynamo=False)
    good = root / "good.onnx"
    shutil.copyfile(path, good)
    crossed = root / "crossed.onnx"
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        if init.name.startswith("cls."):
            array = numpy_helper.to_array(init)
            init.CopyFrom(numpy_helper.from_array(np.roll(array, 1, axis=0).copy(), init.name))
    onnx.save(model, str(crossed))
    return path, good, crossed


def _pick(path, good, crossed, data, tmp_path, kinds=None):
    handle = load_model(path)
    # the crossed form is the most portable: with equal timings it would win any tie
    built = {"qdq-s8s8": crossed, "qop-u8s8": good}
    return pick_fastest_faithful(handle, built, "ort", 0.98, data, tmp_path / "out.onnx", 1, silent(), [],
                                 output_kinds=kinds)


def test_a_detector_form_that_loses_its_detections_is_not_kept_on_real_data(detector, tmp_path):
    path, good, crossed = detector
    data = ArrayDataset("images.npz", [_images(24, np.random.default_rng(0))])
    outcome = _pick(path, good, crossed, data, tmp_path)
    by_name = {c.name: c for c in outcome.candidates}
    lost, kept = by_name["qdq-s8s8"], by_name["qop-u8s8"]
    assert lost.cosine > 0.9  # one cosine over the output cannot see it
    assert not lost.passes and lost.verdict == "broken" and "recall" in lost.quality_text, lost
    assert lost.quality is not None and lost.quality < 0.5
    assert kept.passes and kept.chosen and kept.verdict == "faithful" and kept.judged_on == "real data"
    assert outcome.chosen == "ort-int8-qop-u8s8"
    assert (tmp_path / "out.onnx").read_bytes() == good.read_bytes()


def test_on_random_inputs_the_per_kind_measures_pick_and_the_verdict_stays_unknown(detector, tmp_path):
    path, good, crossed = detector
    handle = load_model(path)
    data = random_inputs(handle.inputs, 16)
    outcome = _pick(path, good, crossed, data, tmp_path, parse_output_kinds("output0=detection-v5"))
    kept = next(c for c in outcome.candidates if c.chosen)
    assert all(c.judged_on == "random inputs" for c in outcome.candidates)
    assert kept.verdict == "unknown" and kept.name == "qop-u8s8", outcome.candidates
    assert any("unknown (random inputs)" in n and "--data" in n for n in outcome.notes)


def _rows(classes: int, objectness: bool, rng: np.random.Generator) -> np.ndarray:
    """[1, 64, 4 (+1) + C] rows: a few confident cells of class 1, the rest near zero."""
    width = 4 + int(objectness) + classes
    rows = np.zeros((1, 64, width), np.float32)
    rows[0, :, :2] = rng.uniform(4, 28, (64, 2))
    rows[0, :, 2:4] = 6.0
    start = 5 if objectness else 4
    rows[0, :8, start + 1] = 0.9  # class 1 in the first 8 cells
    if objectness:
        rows[0, :, 4] = 0.1  # low objectness everywhere: a v5 reading keeps nothing (0.9 x 0.1 < 0.25)
    return rows


def test_yolov5_and_yolov8_row_layouts_are_told_apart_by_override_metadata_and_width():
    rng = np.random.default_rng(0)
    v5, v8 = _rows(3, True, rng), _rows(3, False, rng)
    assert detection_layout(v5) == "objectness" and detection_layout(v8) == "objectness"  # width alone: v5
    assert detection_layout(v8, classes=3) == "rows" and detection_layout(v5, classes=3) == "objectness"
    assert detection_layout(v8, "detection-v8") == "rows" and detection_layout(v8, "detection-v5") == "objectness"
    assert detection_layout((1, 8400, 84)) == "rows" and detection_layout((1, 8400, 85)) == "objectness"
    assert detection_layout((1, 84, 8400)) == "channels-first"
    assert detector_classes({"names": "{0: 'person', 1: 'car', 2: 'dog'}"}) == 3
    assert detector_classes({"names": "__import__('os')"}) is None and detector_classes({"nc": "80"}) == 80

    # read as v8 rows, the first 8 cells are class-1 detections; read as v5, column 4 is objectness
    assert detection_parts(v8, layout="rows")[1].shape[-1] == 3
    assert detection_parts(v5, layout="objectness")[1].shape[-1] == 3
    for rows, layout in ((v8, "rows"), (v5, "objectness")):
        meter = DetectionMeter(layout=layout)
        meter.add(rows, rows)
        found = meter.result()
        assert found["reference_detections"] == (8 if layout == "rows" else 0), (layout, found)
    wrong = DetectionMeter(layout="objectness")  # v8 rows misread as v5: class 0's column taken for objectness
    wrong.add(v8, v8)
    assert wrong.result()["reference_detections"] == 0
    assert parse_output_kinds("output0=detection-v8") == {"output0": "detection-v8"}
    assert guess_kinds(["output0"], [v5]) == ["detection"] and guess_kinds(["output0"], [v5], {"output0": "detection-v8"}) \
        == ["detection"]
    lm = np.zeros((2, 32, 300), np.float32)  # a language model's logits are shaped like [b, 4+C, N] too
    assert guess_kinds(["logits"], [lm]) == ["regression"] and declared_kind("logits", ("batch", 32, 300)) == "regression"
    assert guess_kinds(["output0"], [lm]) == ["detection"]
