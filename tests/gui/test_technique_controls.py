"""The Compress panel builds a group of controls for every technique from its description:
low-rank and graph optimization have one, a technique registered in one module gets one, and a
group is disabled with the reason when the open model lacks what the technique needs."""

from __future__ import annotations

import pytest

from dummy_technique import SCALE, SCALE_FUTURE
from paretolab.core.compress.techniques import TECHNIQUES, register
from paretolab.core.model.handle import load_model
from paretolab.core.sample import sample_model_path
from paretolab.gui.settings_panel import SettingsPanel


@pytest.fixture()
def registered():
    before = dict(TECHNIQUES)

    def add(entry):
        register(entry, before="quantize")
        return entry

    yield add
    TECHNIQUES.clear()
    TECHNIQUES.update(before)


@pytest.fixture()
def sample():
    handle = load_model(sample_model_path("onnx"))
    return handle, handle.layer_graph()


def _panel(qtbot) -> SettingsPanel:
    panel = SettingsPanel()
    qtbot.addWidget(panel)
    return panel


def test_low_rank_and_graph_optimization_have_controls(qtbot, sample):
    panel = _panel(qtbot)
    handle, graph = sample
    panel.set_model(graph, None, handle)  # the sample has its PyTorch twin: low-rank is offered
    lowrank, graphopt = panel.technique_groups["lowrank"], panel.technique_groups["graphopt"]
    assert lowrank.enabled.isEnabled() and not lowrank.enabled.isChecked() and panel.recipe()["steps"] == []
    lowrank.enabled.setChecked(True)
    lowrank.controls["rank_ratio"].setValue(0.25)
    graphopt.enabled.setChecked(True)
    graphopt.controls["level"].setCurrentText("extended")
    assert panel.recipe()["steps"] == [
        {"technique": "lowrank", "settings": {"rank_ratio": 0.25, "min_features": 16}},
        {"technique": "graphopt", "settings": {"level": "extended"}},
    ]
    assert panel.run_button.isEnabled()
    panel.set_model(graph, "low-rank needs a PyTorch model here", handle)  # what the model's loader found
    assert not lowrank.enabled.isEnabled() and not lowrank.enabled.isChecked()
    assert lowrank.enabled.toolTip() == "unavailable: low-rank needs a PyTorch model here"
    assert graphopt.enabled.isEnabled()  # graph optimization needs nothing of the model


def test_the_sparsity_slider_stops_where_validation_does(qtbot):
    panel = _panel(qtbot)
    assert panel.sparsity.maximum() == pytest.approx(TECHNIQUES["prune"].setting("sparsity").maximum) == 0.99


def test_a_registered_technique_gets_its_group(qtbot, registered, sample, settings):
    registered(SCALE)
    panel = _panel(qtbot)
    handle, graph = sample
    panel.set_model(graph, None, handle)
    group = panel.technique_groups["scale"]
    assert group.title() == "Output scaling"
    factor = group.controls["factor"]
    assert (factor.minimum(), factor.maximum(), factor.value()) == (0.5, 4.0, 2.0)
    group.enabled.setChecked(True)
    factor.setValue(3.0)
    assert panel.recipe()["steps"] == [{"technique": "scale", "settings": {"factor": 3.0}}]
    assert panel.run_button.isEnabled()
    panel.save(settings)
    again = _panel(qtbot)
    again.restore(settings)
    assert again.technique_groups["scale"].enabled.isChecked() and again.technique_groups["scale"].controls[
        "factor"].value() == 3.0


def test_a_requirement_the_model_lacks_disables_the_group_with_the_reason(qtbot, registered, sample):
    registered(SCALE_FUTURE)
    panel = _panel(qtbot)
    handle, graph = sample
    panel.set_model(graph, None, handle)
    group = panel.technique_groups["scale"]
    assert not group.enabled.isEnabled()
    assert group.enabled.toolTip().startswith("unavailable: output scaling needs ONNX opset 99 or newer, and "
                                              "digits_cnn.onnx uses opset")
    assert panel.recipe()["steps"] == []


def test_explore_tries_a_switched_on_technique_off_and_as_set(qtbot, sample):
    panel = _panel(qtbot)
    handle, graph = sample
    panel.set_model(graph, None, handle)
    assert panel.sweep_overrides() == {}  # the descriptions' values
    exits = panel.technique_groups["early_exit"]
    exits.enabled.setChecked(True)
    exits.controls["exits"].setValue(3)
    assert panel.sweep_overrides() == {"early_exit": (0, 3)}
    panel.technique_groups["distill"].enabled.setChecked(True)  # distillation's sweep dimension is a switch: as declared
    assert panel.sweep_overrides() == {"early_exit": (0, 3)}


def test_quantization_targets_and_calibration_come_from_the_description(qtbot, sample):
    panel = _panel(qtbot)
    handle, graph = sample
    panel.set_model(graph, None, handle)
    target = panel.target
    assert [target.itemData(i) for i in range(target.count())] == list(TECHNIQUES["quantize"].setting("target").choices)
    target.setCurrentIndex(target.findData("ort-int8"))
    assert panel.calibration.isEnabled() and panel.samples.isEnabled()
    assert panel.recipe()["steps"] == [{"technique": "quantize", "settings": {
        "backend": "ort", "precision": "int8", "calibration": "minmax", "samples": 128}}]
    target.setCurrentIndex(target.findData("ort-fp16"))
    assert not panel.calibration.isEnabled() and not panel.samples.isEnabled()
    assert panel.recipe()["steps"] == [{"technique": "quantize", "settings": {"backend": "ort", "precision": "fp16"}}]
