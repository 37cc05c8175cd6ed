"""Early exit: where exits can go, the stitched graph against its parts on real runtimes and a zoo
of architectures, the calibration's budget, and the demo's early-exit variant end to end."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from paretolab.core.compress.exits.exit_graph import Pooling, early_exit_model, probe_model
from paretolab.core.compress.exits.exit_heads import Head, calibrate, confidence, exit_of
from paretolab.core.compress.variant import Recipe
from paretolab.core.errors import ParetoLabError
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.cuts import cut_after, find_cuts, suggest_cuts
from paretolab.core.model.eager import eager_module
from paretolab.core.model.exits import early_exit_info
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline.optimize import optimize
from paretolab.core.sample import demo_split, sample_model_path

sys.path.insert(0, str(Path(__file__).parents[1]))
from zoo_models import ZOO, as_foreign, export  # noqa: E402

EARLY_EXIT = {"technique": "early_exit", "settings": {}}


def _session(path_or_model) -> ort.InferenceSession:
    data = path_or_model.SerializeToString() if isinstance(path_or_model, onnx.ModelProto) else str(path_or_model)
    return ort.InferenceSession(data, providers=["CPUExecutionProvider"])


# -- where exits can go -----------------------------------------------------------------------

def test_cuts_are_the_ends_of_blocks_and_inside_a_skip_connection_carry_it():
    model = onnx.load(str(sample_model_path("demo")))
    cuts = {c.name: c for c in find_cuts(model)}
    assert {"stem", "layers.0", "layers.1"} <= set(cuts) and not cuts["layers.0"].carried
    # inside a residual block the shortcut's input is still needed: it crosses beside the first conv's output
    assert cuts["layers.0.conv1"].carried == (cuts["stem"].tensor,)
    assert [c.name for c in suggest_cuts(list(cuts.values()), 2)] == ["layers.0", "layers.1"]  # block ends first
    with pytest.raises(ParetoLabError, match="no exit can go after 'no.such.layer'.*places that work: stem"):
        cut_after(cuts.values(), "no.such.layer", "demo.onnx")


def test_models_with_several_outputs_or_none_at_the_end_have_no_exits(tmp_path):
    detector = export(ZOO["detector"], tmp_path / "detector.onnx")
    handle = load_model(detector)
    plan = DataPlan.from_spec("random:16", handle)
    with pytest.raises(ParetoLabError, match="early exit needs a model with one output.*detector.onnx has 2"):
        optimize(handle, Recipe.from_dict({"steps": [EARLY_EXIT]}), plan, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").glob("*.onnx"))


# -- the stitched graph equals its parts --------------------------------------------------------

def _random_heads(features: list[np.ndarray], classes: int, seed: int = 0) -> list[Head]:
    rng = np.random.default_rng(seed)
    heads = []
    for f in features:
        width = f.shape[1]
        heads.append(Head(np.zeros(width, np.float32), np.ones(width, np.float32), [
            (rng.normal(0, 1 / math.sqrt(width), (16, width)).astype(np.float32), np.zeros(16, np.float32)),
            (rng.normal(0, 2.0, (classes, 16)).astype(np.float32), np.zeros(classes, np.float32))]))
    return heads


def _parts(probe: onnx.ModelProto, inputs: np.ndarray, exits: int, runtime: str = "ort") -> tuple[np.ndarray, list[np.ndarray]]:
    """The model's final output and each exit's pooled features, run by `runtime`."""
    if runtime == "ort":
        outputs = _session(probe).run(None, {probe.graph.input[0].name: inputs})
    else:
        compiled = _openvino(probe)
        result = compiled({0: inputs})
        outputs = [result[o] for o in compiled.outputs]
    return outputs[0], outputs[-exits:]


def _openvino(model: onnx.ModelProto):  # noqa: ANN202 - an openvino CompiledModel
    import openvino as ov

    core = ov.Core()
    return core.compile_model(core.read_model(model.SerializeToString(), b""), "CPU")


def _expected(final: np.ndarray, features: list[np.ndarray], heads: list[Head], thresholds: list[float]):  # noqa: ANN202
    """What the early-exit model must give: each sample's first confident head, else the model's own output."""
    per_head = [h.logits(f) for h, f in zip(heads, features)]
    where = exit_of([confidence(p, "max-softmax") for p in per_head], thresholds)
    expected = final.copy()
    for i, p in enumerate(per_head):
        expected[where == i] = p[where == i]
    return expected, where


@pytest.mark.parametrize("flow", ["subset", "if"])
@pytest.mark.parametrize(("entry", "form"), [("resnet", "torchscript"), ("resnet", "dynamo"), ("mobilenet", "foreign"),
                                             ("mobilenet", "dynamo")])
def test_the_early_exit_graph_gives_its_parts_outputs_on_onnx_runtime_and_openvino(tmp_path, entry, form, flow):
    """Exit heads with thresholds near their median confidence, so samples leave by every exit: the
    stitched graph must give each sample its head's output (or the model's own, at the end), at
    batch 32 and at batch 1, on ONNX Runtime and on OpenVINO (against the parts each runs)."""
    path = export(ZOO[entry], tmp_path / f"{entry}.onnx", dynamo=form == "dynamo")
    if form == "foreign":  # Constant-node weights, the batch stored as -1
        path = as_foreign(path, tmp_path / f"{entry}_foreign.onnx")
    model = onnx.load(str(path))
    cuts = suggest_cuts(find_cuts(model), 2)
    assert len(cuts) == 2
    x = _varied_images(32)
    first = _session(_probe_raw(model, cuts)).run(None, {model.graph.input[0].name: x[:1]})[1:]
    poolings = [Pooling.of(a, channels_first=True) for a in first]
    probe = probe_model(model, cuts, poolings)
    final, features = _parts(probe, x, len(cuts))
    heads = _random_heads(features, final.shape[1])
    thresholds = [_threshold_in_a_gap(confidence(h.logits(f), "max-softmax")) for h, f in zip(heads, features)]
    stitched = early_exit_model(model, cuts, poolings, heads, thresholds, "max-softmax", flow, macs=[1, 2, 3])
    onnx.checker.check_model(stitched)

    expected, expected_exit = _expected(final, features, heads, thresholds)
    assert set(expected_exit.tolist()) == {0, 1, 2}  # every path is exercised

    session = _session(stitched)
    logits, exits = session.run(None, {"input": x})
    np.testing.assert_array_equal(exits, expected_exit)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    for i in range(4):  # batch 1: one sample, one path
        one, where = session.run(None, {"input": x[i:i + 1]})
        assert where[0] == expected_exit[i]
        np.testing.assert_allclose(one[0], expected[i], rtol=1e-4, atol=1e-4)

    compiled = _openvino(stitched)
    result = compiled({0: x})
    expected, expected_exit = _expected(*_parts(probe, x, len(cuts), "openvino"), heads, thresholds)
    np.testing.assert_array_equal(result[compiled.outputs[1]], expected_exit)
    # OpenVINO's CPU plugin runs fully-connected layers with dynamically quantized activations: ~1 % off
    np.testing.assert_allclose(result[compiled.outputs[0]], expected, rtol=0.02, atol=0.05)
    assert early_exit_info(stitched)["flow"] == flow and early_exit_info(model) is None


def _varied_images(count: int) -> np.ndarray:
    """Noise images of different brightness and contrast, so the samples' features (and exits) differ."""
    rng = np.random.default_rng(1)
    contrast = rng.uniform(0.1, 3.0, (count, 1, 1, 1))
    return (rng.random((count, 3, 32, 32)) * contrast + rng.uniform(-1, 1, (count, 3, 1, 1))).astype(np.float32)


def _threshold_in_a_gap(conf: np.ndarray) -> float:
    """A threshold between two samples' confidences near the median, in a gap wide enough that
    runtimes' rounding (OpenVINO's is ~1e-3 here) cannot move a sample across it."""
    ordered = np.sort(conf)
    middle = len(ordered) // 2
    gaps = [(abs(i - middle), i) for i in range(len(ordered) // 8, 7 * len(ordered) // 8)
            if ordered[i + 1] - ordered[i] > 0.004]
    i = min(gaps)[1]
    return float((ordered[i] + ordered[i + 1]) / 2)


def _probe_raw(model: onnx.ModelProto, cuts) -> onnx.ModelProto:
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(c.tensor) for c in cuts)
    return probe


def _every_exit_right(verified: dict) -> bool:
    """Each sample left where its parts say, but those whose confidence sits on its threshold (float rounding)."""
    return verified["same_exit"] == pytest.approx(1.0 - verified["on_threshold"] / verified["samples"]) and \
        verified["on_threshold"] <= 1


@pytest.fixture(scope="module")
def stitched_resnet(tmp_path_factory):  # noqa: ANN201 - the parts the self-check compares
    """A ResNet with two exits whose thresholds sit in gaps of the heads' confidences, written to a
    file, with its parts: the data, the model's own output, each head's answers and confidences."""
    from paretolab.core.measure.data import ArrayDataset

    folder = tmp_path_factory.mktemp("verify")
    model = onnx.load(str(export(ZOO["resnet"], folder / "resnet.onnx")))
    cuts = suggest_cuts(find_cuts(model), 2)
    x = _varied_images(48)
    first = _session(_probe_raw(model, cuts)).run(None, {model.graph.input[0].name: x[:1]})[1:]
    poolings = [Pooling.of(a, channels_first=True) for a in first]
    final, features = _parts(probe_model(model, cuts, poolings), x, len(cuts))
    heads = _random_heads(features, final.shape[1])
    per_head = [h.logits(f) for h, f in zip(heads, features)]
    conf = [confidence(p, "max-softmax") for p in per_head]
    thresholds = [_threshold_in_a_gap(c) for c in conf]

    def write(graph_thresholds: list[float]) -> Path:
        stitched = early_exit_model(model, cuts, poolings, heads, graph_thresholds, "max-softmax", "subset")
        path = folder / f"stitched-{len(list(folder.iterdir()))}.onnx"
        onnx.save(stitched, str(path))
        return path

    return write, ArrayDataset("varied-images", [x]), final, per_head, conf, thresholds


def test_the_self_check_lets_a_sample_on_its_threshold_go_either_way(stitched_resnet):
    """A sample whose confidence sits within float rounding of its threshold may leave on either
    side of it: the check accepts it (the user never sees "please report this" for rounding)."""
    from paretolab.core.compress.exits.early_exit import ON_THRESHOLD, _verify

    write, data, final, per_head, conf, thresholds = stitched_resnet
    verified = _verify(write(thresholds), data, final, per_head, thresholds, "max-softmax")
    assert verified["same_exit"] == 1.0 and verified["on_threshold"] == 0 and verified["max_abs_diff"] < 1e-4
    # the graph's first threshold a hair above one sample's confidence, its parts' a hair below:
    # that sample (and only it) leaves at the first exit by its parts' account and not by the graph's
    ordered = np.sort(conf[0])
    k = int(np.argmax(np.diff(ordered)[: len(ordered) // 2]))  # a sample in a wide gap, so no other one moves
    sample_conf = float(ordered[k + 1])
    graph = [sample_conf + ON_THRESHOLD / 4, thresholds[1]]
    parts = [sample_conf - ON_THRESHOLD / 4, thresholds[1]]
    verified = _verify(write(graph), data, final, per_head, parts, "max-softmax")
    assert verified["on_threshold"] == 1 and verified["same_exit"] == pytest.approx(1 - 1 / 48)


def test_the_self_check_still_catches_a_wrong_threshold_or_a_wrong_graph(stitched_resnet):
    from paretolab.core.compress.exits.early_exit import _verify

    write, data, final, per_head, conf, thresholds = stitched_resnet
    path = write(thresholds)
    moved = [float(np.quantile(conf[0], 0.9)), thresholds[1]]  # samples far from either threshold change exits
    with pytest.raises(ParetoLabError, match=r"does not match its parts on varied-images \([1-9]\d* of 48 samples left "
                                              r"by another exit"):
        _verify(path, data, final, per_head, moved, "max-softmax")
    swapped = [per_head[1], per_head[0]]  # the graph's heads are not the parts': outputs and exits differ
    with pytest.raises(ParetoLabError, match="does not match its parts"):
        _verify(path, data, final, swapped, thresholds, "max-softmax")
    with pytest.raises(ParetoLabError, match="largest output difference"):  # same exits, another final output
        _verify(path, data, final + 0.5, per_head, thresholds, "max-softmax")


# -- calibration --------------------------------------------------------------------------------

def test_calibration_takes_the_cheapest_thresholds_within_the_budget():
    rng = np.random.default_rng(0)
    n = 1000
    final = rng.random(n) < 0.9  # the model is right on 90 %
    conf = [rng.random(n), rng.random(n)]
    # a head is right where it is confident, wrong elsewhere
    correct = [final & (conf[0] > 0.5), final & (conf[1] > 0.3)]
    for budget in (0.0, 0.005, 0.02):
        result = calibrate(conf, correct, final, shares=[0.3, 0.6], head_costs=[0.01, 0.01], budget=budget)
        assert result.reference - result.score <= budget + 1e-12
        assert result.cost < 1.0  # both heads are free of loss above their confidence line: exits are taken
        where = exit_of(conf, result.thresholds)
        assert np.array_equal(where, result.exit_of)
    never = calibrate([rng.random(n)], [np.zeros(n, bool)], final, shares=[0.5], head_costs=[0.01], budget=0.0)
    assert never.thresholds == [math.inf] and never.cost == 1.0  # a head that is always wrong is never used


# -- the demo's early-exit variant ----------------------------------------------------------------

@pytest.fixture(scope="module")
def demo_variant(tmp_path_factory):
    handle = load_model(sample_model_path("demo"))
    plan = DataPlan.from_spec(None, handle)
    return handle, optimize(handle, Recipe.from_dict({"steps": [EARLY_EXIT]}), plan, tmp_path_factory.mktemp("ee"))


def test_demo_early_exit_variant_costs_less_on_average_within_half_a_point(demo_variant):
    _, v = demo_variant
    assert v.baseline.top1 - v.measured.top1 <= 0.005 + 1e-9  # the budget held on the test split too
    assert v.baseline_selection_score - v.selection_score <= 0.005 + 1e-9  # and where it was calibrated
    assert v.measured.macs < 0.9 * v.baseline.macs  # the average MACs, from where the samples left
    shares = [e["share"] for e in v.exits]
    assert sum(shares) == pytest.approx(1.0) and shares[-1] < 0.6 and len(shares) >= 2
    assert sum(e["samples"] for e in v.exits) == 360
    over = v.metrics["timing"]["over_data"]
    assert over["dataset"].endswith(":test") and over["variant"]["samples"] == 360
    mine = over["variant"]
    assert mine["p50_ms"] <= mine["p90_ms"] <= mine["p99_ms"] and mine["low_ms"] <= mine["mean_ms"] <= mine["high_ms"]
    assert v.measured.latency_ms == mine["mean_ms"] and v.baseline.latency_ms == over["baseline"]["mean_ms"]
    assert v.speedup == pytest.approx(v.baseline.latency_ms / v.measured.latency_ms)
    report = v.reports[0]
    assert report["technique"] == "early_exit" and _every_exit_right(report["verified"])
    assert report["expected_macs_ratio"] < 0.9
    assert "average" in v.latency_text() and "the end:" in v.exits_text()


def test_demo_early_exit_file_gives_the_eager_models_outputs_on_the_whole_test_split(demo_variant):
    """The exported file against the model in PyTorch: the eager backbone, the heads rebuilt from
    the file's weights, the rule applied per sample in Python."""
    handle, v = demo_variant
    model = onnx.load(str(v.artifact))
    info = early_exit_info(model)
    weights = {t.name: torch.from_numpy(onnx.numpy_helper.to_array(t).copy()) for t in model.graph.initializer}
    backbone = eager_module(handle, "test")
    features: dict[str, torch.Tensor] = {}
    for e in info["exits"]:
        backbone.get_submodule(e["label"]).register_forward_hook(
            lambda _m, _i, out, name=e["label"]: features.__setitem__(name, out))
    test = demo_split("test")
    with torch.no_grad():
        final = backbone(torch.from_numpy(test.images))
        expected, where = final.clone(), torch.full((len(final),), len(info["exits"]))
        for i, e in reversed(list(enumerate(info["exits"]))):
            pooled = features[e["label"]].mean((2, 3))
            hidden = torch.relu(pooled @ weights[f"exit{i}/w0"].T + weights[f"exit{i}/b0"])
            logits = hidden @ weights[f"exit{i}/w1"].T + weights[f"exit{i}/b1"]
            leave = torch.softmax(logits, 1).max(1).values >= e["threshold"]
            expected[leave], where[leave] = logits[leave], i
    got, exits = _session(v.artifact).run(None, {"input": test.images})
    assert (exits == where.numpy()).mean() >= 0.997  # a confidence within float error of its threshold may go either way
    same = exits == where.numpy()
    np.testing.assert_allclose(got[same], expected.numpy()[same], rtol=1e-3, atol=1e-4)
    assert (got.argmax(1) == test.labels).mean() == pytest.approx(v.measured.top1)


def test_int8_then_early_exit_on_the_digits(tmp_path):
    """A QDQ int8 model is a graph like any other: exits go on the quantized backbone."""
    handle = load_model(sample_model_path("onnx"))
    recipe = Recipe.from_dict({"steps": [{"technique": "quantize", "settings": {"precision": "int8", "format": "qdq-u8s8"}},
                                         {"technique": "early_exit", "settings": {"exits": 1, "budget": 1.0}}]})
    v = optimize(handle, recipe, DataPlan.from_spec(None, handle), tmp_path)
    kinds = {n.op_type for n in onnx.load(str(v.artifact)).graph.node}
    assert "QuantizeLinear" in kinds and "ScatterND" in kinds
    assert _every_exit_right(v.reports[-1]["verified"])
    assert v.baseline.top1 - v.measured.top1 <= 0.01 + 1e-9


def test_early_exit_then_int8_on_onnx_runtime_but_not_openvino(tmp_path):
    """Exits before ONNX Runtime's quantizer keep their record; OpenVINO's IR would lose it: refused."""
    from paretolab.core.settings import SettingsError

    with pytest.raises(SettingsError, match="cannot follow step 1 \\(early exit 2 exits"):
        Recipe.from_dict({"steps": [EARLY_EXIT, {"technique": "quantize", "settings": {"backend": "openvino"}}]})
    handle = load_model(sample_model_path("onnx"))
    recipe = Recipe.from_dict({"steps": [{"technique": "early_exit", "settings": {"exits": 1, "budget": 1.0}},
                                         {"technique": "quantize", "settings": {"format": "qdq-u8s8"}}]})
    v = optimize(handle, recipe, DataPlan.from_spec(None, handle), tmp_path)
    assert early_exit_info(onnx.load(str(v.artifact))) is not None and len(v.exits) == 2
    assert v.baseline.top1 - v.measured.top1 <= 0.015


def test_a_transformer_whose_layers_cannot_take_an_empty_batch_gets_if_branches(tmp_path):
    """A ViT's attention reshapes with -1, which no runtime can do on zero samples: the exits then
    skip the later layers with If branches, said in a note, and the file still matches its parts."""
    import hf_models
    from paretolab.core.tensors import parse_input_shapes

    handle = load_model(hf_models.write("vit", tmp_path), input_shapes=parse_input_shapes(["1x3x32x32"]))
    recipe = Recipe.from_dict({"steps": [{"technique": "early_exit", "settings": {"exits": 1, "budget": 50}}]})
    v = optimize(handle, recipe, DataPlan.from_spec("random:48", handle), tmp_path / "out")
    report = v.reports[0]
    assert report["flow"] == "if" and "empty batch" in report["notes"][0]
    assert _every_exit_right(report["verified"])
    assert {n.op_type for n in onnx.load(str(v.artifact)).graph.node} >= {"If"}


def test_a_bert_encoders_exits_gather_its_attention_mask_too(tmp_path):
    """In a BERT-style encoder the attention mask crosses every layer beside the hidden states:
    cuts carry it, the exits gather it for the samples still going, and each sample gets its
    first confident head's answer (or the model's own) with padding in the batch."""
    import hf_models
    from paretolab.core.compress.exits.early_exit import _gatherable
    from paretolab.core.measure.data import ArrayDataset
    from paretolab.core.tensors import parse_input_shapes

    handle = load_model(hf_models.write("bert", tmp_path), input_shapes=parse_input_shapes(["1x32"]))
    model = onnx.load(str(handle.onnx_file()))
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 18, (16, 32)).astype(np.int64)
    mask = np.ones((16, 32), np.int64)
    mask[::2, 20:] = 0  # half the batch is padded
    data = ArrayDataset("bert-batch", [ids, mask], None)
    cuts, first = _gatherable(model, find_cuts(model), data)
    layer_ends = [c for c in cuts if c.carried and c.label.endswith(("layer.0", "layer.0.output"))]
    assert layer_ends, "no cut after the first layer carries the mask"
    chosen = sorted({layer_ends[-1], *[c for c in cuts if c.position > layer_ends[-1].position and c.carried][:1]},
                    key=lambda c: c.position)
    poolings = [Pooling.of(first[c.tensor], channels_first=False) for c in chosen]
    probe = probe_model(model, chosen, poolings)
    outputs = _session(probe).run(None, {"input_ids": ids, "attention_mask": mask})
    final, features = outputs[0], outputs[-len(chosen):]
    heads = _random_heads(features, final.shape[1])
    thresholds = [_threshold_in_a_gap(confidence(h.logits(f), "max-softmax")) for h, f in zip(heads, features)]
    stitched = early_exit_model(model, chosen, poolings, heads, thresholds, "max-softmax", "if")
    expected, where = _expected(final, features, heads, thresholds)
    logits, exits = _session(stitched).run(None, {"input_ids": ids, "attention_mask": mask})
    np.testing.assert_array_equal(exits, where)
    np.testing.assert_allclose(logits, expected, rtol=1e-4, atol=1e-4)
    assert len(set(where.tolist())) >= 2  # samples left at an exit and went on past it
