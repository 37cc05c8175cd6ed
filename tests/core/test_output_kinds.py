"""Verdicts users can trust: each output judged by its kind, random inputs never called faithful,
broken variants kept off the front and out of the report's headline.

A small zoo built here (a YOLO-style detector, a CTC recognizer, an embedder, a VAD-like model):
a variant known to be broken (the detector's class scores zeroed in the ONNX file, the embedder
made constant) is flagged broken and kept off the front; an FP16 variant is faithful on real
inputs (a .npz built here) and "unknown (random inputs)" on random ones."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from torch import nn

from paretolab.core.compress.variant import Recipe, Variant
from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.evaluate import evaluate
from paretolab.core.measure.output_kinds import guess_kinds, parse_output_kinds, score_threshold
from paretolab.core.measure.output_meters import ctc_greedy, edit_distance, match_detections
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.pipeline.scorecard import scorecard
from paretolab.core.progress import Progress
from paretolab.core.store.pareto import Point, pareto_front
from paretolab.core.store.report import write_report

FP16 = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"backend": "ort", "precision": "fp16"}}]})
SAMPLES = 24


class Detector(nn.Module):
    """YOLOv8-style: one [b, 4 + classes, cells] output, boxes (cx, cy, w, h) in pixels beside class scores in 0..1."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU())
        self.box = nn.Conv2d(16, 4, 1)
        self.cls = nn.Conv2d(16, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = self.backbone(x)
        boxes = torch.sigmoid(self.box(f)) * 32.0
        scores = torch.sigmoid((self.cls(f) - 0.265) * 100.0)  # the bright boxes' cells above 0.25, not the background
        return torch.cat([boxes, scores], 1).flatten(2)


class Recognizer(nn.Module):
    """A CTC text recognizer: a strip of text in, [T, b, C] log-probabilities out (time first)."""

    def __init__(self, classes: int = 12) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 16, 3, 1, 1), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 16)))
        self.head = nn.Conv2d(16, classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.conv(x)).squeeze(2) * 5.0  # [b, C, T]
        return torch.log_softmax(logits.permute(2, 0, 1), -1)


class Embedder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16, 32), nn.ReLU(), nn.Linear(32, 8))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.net(x), dim=1)


class Vad(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x) * 3.0)


MODELS = {  # name: (module, input name, input shape per sample, output name)
    "detector": (Detector, "images", (3, 32, 32), "output0"),
    "recognizer": (Recognizer, "strip", (1, 8, 64), "log_probs"),
    "embedder": (Embedder, "x", (16,), "embedding"),
    "vad": (Vad, "audio", (64,), "prob"),
}


def _realistic(name: str, rng: np.random.Generator) -> np.ndarray:
    """Inputs shaped like what each model is made for: dark images with bright boxes, strips of
    'glyphs', clustered feature vectors, speech-like bursts in quiet audio."""
    if name == "detector":
        images = np.full((SAMPLES, 3, 32, 32), 0.1, np.float32)
        for img in images:
            for _ in range(3):
                y, x, h, w = rng.integers(0, 20), rng.integers(0, 20), rng.integers(6, 12), rng.integers(6, 12)
                img[:, y:y + h, x:x + w] = rng.uniform(0.5, 1.0, (3, 1, 1))
        return images
    if name == "recognizer":
        strips = np.zeros((SAMPLES, 1, 8, 64), np.float32)
        for s in strips:
            for start in range(0, 64, 8):
                s[0, :, start:start + rng.integers(2, 7)] = rng.uniform(0.3, 1.0)
        return strips
    if name == "embedder":
        centres = rng.standard_normal((4, 16)) * 3
        return (centres[rng.integers(0, 4, SAMPLES)] + 0.3 * rng.standard_normal((SAMPLES, 16))).astype(np.float32)
    audio = 0.01 * rng.standard_normal((SAMPLES, 64))
    audio[::2] += np.sin(np.linspace(0, 20, 64)) * rng.uniform(0.5, 1.0, (SAMPLES // 2, 1))
    return audio.astype(np.float32)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    root = tmp_path_factory.mktemp("kinds")
    made = {}
    rng = np.random.default_rng(0)
    for name, (build, input_name, shape, output) in MODELS.items():
        torch.manual_seed(0)
        path = root / f"{name}.onnx"
        with warnings.catch_warnings():  # the TorchScript exporter's deprecation notices
            warnings.simplefilter("ignore")
            torch.onnx.export(build().eval(), (torch.rand(2, *shape),), str(path), input_names=[input_name],
                              output_names=[output], dynamic_axes={input_name: {0: "batch"}}, dynamo=False)
        data = root / f"{name}.npz"
        np.savez(data, **{input_name: _realistic(name, rng)})
        made[name] = (path, data)
    return made


def _open(path: Path):
    return load_model(path)


def _broken_copy(path: Path, out: Path, edit) -> Path:
    """The model with its initializers edited: a variant known to be broken."""
    model = onnx.load(str(path))
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        changed = edit(init.name, array)
        if changed is not None:
            init.CopyFrom(numpy_helper.from_array(changed.astype(array.dtype), init.name))
    onnx.save(model, str(out))
    return out


def _zero_scores(name: str, array: np.ndarray) -> np.ndarray | None:
    """The class head's weights to 0 and its bias to -1e4: every class score sigmoid(-4e4) = 0, boxes untouched."""
    if name.startswith("cls."):
        return np.full_like(array, -1e4) if name.endswith("bias") else np.zeros_like(array)
    return None


def _constant(name: str, array: np.ndarray) -> np.ndarray | None:
    return np.zeros_like(array) if name == "net.0.weight" else None


# -- units --------------------------------------------------------------------------------------

def test_kinds_are_guessed_from_names_and_shapes_and_can_be_overridden():
    rng = np.random.default_rng(0)
    unit = rng.standard_normal((4, 8))
    unit /= np.linalg.norm(unit, axis=1, keepdims=True)
    names = ["output0", "logits", "emb", "features", "log_probs", "mask", "boxes", "scores"]
    arrays = [rng.random((4, 84, 840)), rng.standard_normal((4, 10)), rng.standard_normal((4, 8)), unit,
              rng.standard_normal((4, 20, 12)), rng.random((4, 1, 16, 16)), rng.random((4, 50, 4)),
              rng.random((4, 50, 3))]
    assert guess_kinds(names, arrays) == ["detection", "classification", "embedding", "embedding", "sequence",
                                          "regression", "regression", "detection"]
    assert guess_kinds(["out"], [unit]) == ["embedding"]  # unit-length rows are never scored as class agreement
    assert guess_kinds(["logits"], [arrays[1]], {"logits": "embedding"}) == ["embedding"]
    assert parse_output_kinds(["boxes=detection,emb=embeddings", "seq=ctc"]) == {
        "boxes": "detection", "emb": "embedding", "seq": "sequence"}
    with pytest.raises(ParetoLabError, match=r"--output-kind 'boxes=yolo': write OUTPUT=KIND"):
        parse_output_kinds("boxes=yolo")


def test_detections_match_per_class_at_iou_and_strings_decode_greedily():
    ref = (np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32), np.array([0, 1]), np.array([0.9, 0.8]))
    shifted = (np.array([[1, 1, 11, 11], [20, 20, 30, 30]], np.float32), np.array([0, 2]), np.array([0.9, 0.8]))
    assert match_detections(ref, ref) == 2
    assert match_detections(shifted, ref) == 1  # the second box changed class
    log_probs = np.log(np.eye(4)[[[1, 1, 0, 2, 2, 0, 2]]] + 1e-6)
    assert ctc_greedy(log_probs) == [(1, 2, 2)]
    assert edit_distance((1, 2, 3), (1, 3)) == 1


def test_a_detector_is_judged_at_its_own_score_threshold_when_its_file_names_one(zoo, tmp_path):
    assert score_threshold({"conf": "0.4"}) == 0.4 and score_threshold({"conf": "high", "names": "{0: 'cat'}"}) == 0.25
    path, data = zoo["detector"]
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, {"score_threshold": "0.6"})
    strict = tmp_path / "strict.onnx"
    onnx.save(model, str(strict))
    handle = _open(strict)
    dataset = DataPlan.from_spec(str(data), handle).test
    found = {name: evaluate(h, dataset, reference=h).fidelity[0].details for name, h in
             (("default", _open(path)), ("own", handle))}
    assert found["own"]["score_threshold"] == 0.6 and found["default"]["score_threshold"] == 0.25
    assert 0 < found["own"]["reference_detections"] < found["default"]["reference_detections"]


def test_unknown_output_kind_names_the_outputs(zoo):
    path, data = zoo["vad"]
    handle = _open(path)
    dataset = DataPlan.from_spec(str(data), handle).test
    with pytest.raises(ParetoLabError, match="'probs', which is not an output of vad.onnx; its outputs are prob"):
        evaluate(handle, dataset, reference=handle, output_kinds={"probs": "regression"})


# -- the zoo: faithful on real data, unknown on random data, broken flagged and off the front ----

@pytest.mark.parametrize("name", list(MODELS))
def test_a_good_variant_is_faithful_on_real_data_and_unknown_on_random_inputs(zoo, tmp_path, name):
    path, data = zoo[name]
    original = _open(path)
    variant = optimize(original, FP16, DataPlan.from_spec(str(data), original), tmp_path, "v1")
    m = variant.measured
    kind = variant.metrics["fidelity"][0]["kind"]
    assert kind == {"detector": "detection", "recognizer": "sequence", "embedder": "embedding", "vad": "regression"}[name]
    assert m.verdict == "faithful", m.verdict_text()
    assert m.fidelity_text().endswith("faithful") and not m.broken
    if name == "embedder":
        assert m.agreement is None  # an embedding is never scored as class agreement

    made = original.like(variant.artifact)
    on_random = evaluate(made, DataPlan.from_spec("random:16", original).test, reference=original)
    assert on_random.verdict == "unknown" and on_random.verdict_why == "unknown (random inputs)"
    assert on_random.cosine > 0.99  # the numbers stay, as information


def _broken_variant(original, broken_path: Path, data: str, folder: Path) -> Variant:
    made = original.like(broken_path)
    metrics = scorecard(original, made, DataPlan.from_spec(data, original), backend="ort")
    return Variant("v9", FP16, broken_path, str(original.path), metrics)


@pytest.mark.parametrize("data", ["real", "random"])
def test_a_detector_with_dead_scores_is_broken_though_its_cosine_is_perfect(zoo, tmp_path, data):
    path, npz = zoo["detector"]
    original = _open(path)
    broken = _broken_copy(path, tmp_path / "dead_scores.onnx", _zero_scores)
    variant = _broken_variant(original, broken, str(npz) if data == "real" else "random:16", tmp_path)
    m = variant.measured
    assert m.cosine > 0.9  # boxes in pixels hide the dead scores from one cosine over the output
    assert m.broken and "output0 (detection): class scores collapsed" in m.verdict_why, m.verdict_text()
    if data == "real":
        assert variant.metrics["fidelity"][0]["details"]["recall"] == 0.0

    good = optimize(original, FP16, DataPlan.from_spec(str(npz), original), tmp_path, "v1")
    points = [Point(v.name, v.measured.latency_ms, v.selection_score, v.measured.broken) for v in (good, variant)]
    points[1] = Point("v9", 1e-6, 1.0, True)  # even the fastest and best-scoring point stays off when broken
    assert [p.key for p in pareto_front(points)] == ["v1"]

    html_path, json_path, _ = write_report([good, variant], tmp_path / "report", "detector")
    text = html_path.read_text()
    headline = text.split("<section class='headline'>", 1)[1].split("</section>", 1)[0]
    chosen, left_out = headline.split("Broken or collapsed, left out of this choice:")
    assert "v9" not in chosen and "<b>v1</b>" in chosen and left_out.lstrip().startswith("v9")
    assert "⚠ BROKEN</b> v9" in text
    numbers = json.loads(json_path.read_text())
    assert "v9" not in numbers["pareto_front"]


def test_an_embedder_made_constant_is_broken_on_any_data(zoo, tmp_path):
    path, npz = zoo["embedder"]
    original = _open(path)
    broken = _broken_copy(path, tmp_path / "constant.onnx", _constant)
    for data in (str(npz), "random:16"):
        m = _broken_variant(original, broken, data, tmp_path).measured
        assert m.broken and "the same for every input" in m.verdict_why, m.verdict_text()
        assert m.agreement is None


@pytest.mark.parametrize("name", list(MODELS))
def test_early_exit_refuses_a_model_that_is_not_a_classifier_before_any_work(zoo, tmp_path, name):
    path, data = zoo[name]
    original = _open(path)
    # Steps before the exits would take minutes: the refusal comes before the first of them.
    exits = Recipe.from_dict({"steps": [{"technique": "prune", "settings": {"sparsity": 0.5, "method": "unstructured"}},
                                        {"technique": "graphopt"},
                                        {"technique": "early_exit", "settings": {"exits": 1}}]})
    refusal = r"early exit needs a classifier; .+ (is judged an? \w+ output|not \[batch, classes\] class scores)"
    steps: list[str] = []
    progress = Progress(lambda fraction, message: steps.append(message))
    with pytest.raises(ParetoLabError, match=refusal) as caught:
        optimize(original, exits, DataPlan.from_spec(str(data), original), tmp_path, "v1", progress=progress)
    assert "\n" not in str(caught.value)
    assert steps == [] and not list(tmp_path.glob("v1*"))
