"""Compression settings: sliders and choices that build a recipe, with a prediction of the
result's size and MACs before anything runs. Every technique's group is built from its
description (technique_group.py); settings the model cannot take are disabled, with the reason
as their tooltip."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from paretolab.core.compress.insight.predict import predict
from paretolab.core.compress.technique_spec import Technique
from paretolab.core.compress.technique_sweep import dimensions
from paretolab.core.compress.techniques import TECHNIQUES, recipe_steps
from paretolab.core.errors import ParetoLabError
from paretolab.core.model.graph import LayerGraph
from paretolab.core.units import si, size
from paretolab.gui.data_group import CHOOSE_FILE, CHOOSE_FOLDER, DATASETS, DataGroup
from paretolab.gui.technique_group import TechniqueGroup, settings_object
from paretolab.gui.wheel_guard import WheelGuard
from paretolab.jobs.recipe_check import recipe_problem, technique_unavailable

__all__ = ["SettingsPanel", "CHOOSE_FILE", "CHOOSE_FOLDER", "DATASETS"]

EXPLORE_TIP = ("Search pruning, distillation and quantization settings for the Pareto front "
               "within the time budget; cancel pauses, Explore again resumes")
TORCH = "torch-module"  # the requirement asked once per model, when it is opened (the loader knows)
PREDICTED_PRECISION = {"int8": "int8", "dynamic-int8": "int8", "fp16": "fp16"}  # what the size prediction knows


class SettingsPanel(QWidget):
    run_requested = Signal(dict, str)  # recipe document, data spec
    explore_requested = Signal(float, str)  # time budget in seconds, data spec
    folder_requested = Signal()  # the user chose "Image or audio folder…": the window asks which
    file_requested = Signal()  # the user chose "Data file…": the window asks which

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._graph: LayerGraph | None = None
        self._torch_reason: str | None = "open a model first"
        self._handle = None  # the open model (a ModelHandle), for the checks a recipe needs before any work
        self._reasons: dict[str, str | None] = {}  # why the open model cannot take each technique at all
        self._exploring = False  # an Explore is running: a second one waits for it to end
        self._refreshing = False
        # one group per technique, built from its description, in recipe order
        self.technique_groups = {name: TechniqueGroup(entry, self) for name, entry in TECHNIQUES.items()}
        for group in self.technique_groups.values():  # each setting's control by its name: panel.sparsity, panel.lr
            for name, control in group.controls.items():
                if not hasattr(self, name):
                    setattr(self, name, control)
        self.measurement = DataGroup(self)
        self.data, self.preprocess, self.device = self.measurement.data, self.measurement.preprocess, self.measurement.device
        self.measurement.folder_requested.connect(self.folder_requested)
        self.measurement.file_requested.connect(self.file_requested)
        self._build_actions()
        self._lay_out(*self.technique_groups.values(), self.measurement)
        for group in self.technique_groups.values():
            group.changed.connect(self._refresh)
        self.wheel_guard = WheelGuard(self.scroll, self)
        self.wheel_guard.guard(self)
        self.set_model(None, "open a model first")

    def _build_actions(self) -> None:
        """The prediction, Run and Explore: pinned below the scrolling settings."""
        self.prediction = QLabel("—", self)
        self.prediction.setWordWrap(True)
        self.problem = QLabel("", self)  # why these settings cannot run on this model, before any work
        self.problem.setWordWrap(True)
        self.problem.setStyleSheet("color: #d62728")
        self.problem.setVisible(False)
        self.run_button = QPushButton("Run", self)
        self.run_button.setToolTip("Build this variant in the background (Ctrl+R)")
        self.run_button.clicked.connect(self.request_run)
        self.explore_minutes = QSpinBox(self)
        self.explore_minutes.setRange(1, 24 * 60)
        self.explore_minutes.setValue(10)
        self.explore_minutes.setSuffix(" min")
        self.explore_minutes.setToolTip("Time budget for Explore")
        self.on_ray = QCheckBox("on Ray", self)
        self.on_ray.setToolTip("Run Explore's trials as Ray tasks (the ray extra): built on the cluster's workers, "
                               "measured here")
        self.ray_address = QLineEdit(self)
        self.ray_address.setPlaceholderText("this machine (or ray://host:10001, auto)")
        self.ray_address.setToolTip("The Ray cluster to join; empty: a Ray instance started on this machine")
        self.on_ray.toggled.connect(self.ray_address.setEnabled)
        self.ray_address.setEnabled(False)
        self.explore_button = QPushButton("Explore…", self)
        self.explore_button.clicked.connect(
            lambda: self.explore_requested.emit(60.0 * self.explore_minutes.value(), self.data_spec())
        )

    def _lay_out(self, *groups: QGroupBox) -> None:
        """The settings scroll; the prediction, Run and Explore stay pinned below them, so the
        panel fits a 768-pixel screen and Run is never off-screen."""
        body = QWidget(self)
        column = QVBoxLayout(body)
        column.setContentsMargins(0, 0, 8, 0)
        for group in groups:
            column.addWidget(group)
        column.addStretch(1)
        self.scroll = QScrollArea(self)
        self.scroll.setWidget(body)
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setMinimumSize(280, 120)
        for box in body.findChildren(QComboBox):  # long choices must not force the panel wider than a laptop allows
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(10)
            box.setMinimumWidth(80)  # Qt keeps the minimum size hint it cached before the policy changed (~470 px)
        explore = QHBoxLayout()
        explore.addWidget(self.explore_button, 1)
        explore.addWidget(self.explore_minutes)
        layout = QVBoxLayout(self)
        layout.addWidget(self.scroll, 1)
        layout.addWidget(self.prediction)
        layout.addWidget(self.problem)
        layout.addWidget(self.run_button)
        layout.addLayout(explore)
        cluster = QHBoxLayout()
        cluster.addWidget(self.on_ray)
        cluster.addWidget(self.ray_address, 1)
        layout.addLayout(cluster)

    def set_model(self, graph: LayerGraph | None, torch_reason: str | None, handle=None) -> None:  # noqa: ANN001
        """`torch_reason`: why the model offers no editable PyTorch module (structured pruning,
        distillation), or None. Settings that name the last model's layers are reset; what else each
        technique needs of the model (class scores for early exit) is asked of `handle`, the open ModelHandle."""
        self._graph, self._torch_reason, self._handle = graph, torch_reason, handle
        self._refreshing = True  # one refresh once every group knows the model
        for name, group in self.technique_groups.items():  # what each technique needs of the model, asked once per model
            self._reasons[name] = self._unavailable(group.entry) if graph is not None else "open a model first"
            group.set_layers(graph)
            group.set_unavailable(self._reasons[name])
        self._refreshing = False
        self.wheel_guard.guard(self)
        self._refresh()

    def set_data(self, spec: str, preprocess: str | None = None) -> None:
        self.measurement.set_data(spec, preprocess)

    def set_devices(self, pairs: tuple[tuple[str, str], ...]) -> None:
        self.measurement.set_devices(pairs)

    def data_spec(self) -> str:
        return self.measurement.data_spec()

    def preprocess_text(self) -> str | None:
        return self.measurement.preprocess_text()

    def add_data(self, path: str) -> None:
        self.measurement.add_data(path)

    def follow(self, graph_view) -> None:  # noqa: ANN001 - a GraphView
        """Take the graph's right-click choices into the settings that name layers picked there
        (layers kept in FP32, exits after layers): each setting names the graph's signal."""
        for group in self.technique_groups.values():
            for name in group.controls:
                signal = group.entry.setting(name).picked_by
                if signal:
                    getattr(graph_view, signal).connect(lambda layer, g=group, n=name: g.toggle_layer(n, layer))

    def recipe(self) -> dict:
        return {"steps": recipe_steps(**{name: group.settings() for name, group in self.technique_groups.items()})}

    def ray_cluster(self) -> str | None:
        """Where Explore runs its trials: None here, "local" on a Ray instance started here, or an address."""
        return (self.ray_address.text().strip() or "local") if self.on_ray.isChecked() else None

    def sweep_overrides(self) -> dict[str, tuple]:
        """What Explore tries beyond its defaults: a technique switched on here is tried off and as set
        (early exit: 0 and the group's exit count), on the dimensions its description gates it by."""
        overrides = {}
        for entry, dim in dimensions():
            group = self.technique_groups[entry.name]
            if group.enabled is not None and group.is_on() and dim.gate and dim.setting in group.controls:
                overrides[dim.param] = (dim.off, group.values()[dim.setting])
        return overrides

    def save(self, settings) -> None:  # noqa: ANN001 - QSettings
        """Remember the last settings, so the next session starts where this one ended."""
        settings.setValue("compress/data", self.data.currentText())
        for group in self.technique_groups.values():
            group.save(settings)

    def restore(self, settings) -> None:  # noqa: ANN001 - QSettings
        def value(key, default, kind):  # noqa: ANN001, ANN202
            raw = settings.value(f"compress/{key}", default)
            try:
                return kind(raw) if kind is not bool else raw in (True, "true", "1", 1)
            except (TypeError, ValueError):  # a hand-edited or old settings file: keep the default
                return default

        for group in self.technique_groups.values():
            group.restore(value)
        text = value("data", self.data.currentText(), str)
        if self.data.findText(text) >= 0:
            self.data.setCurrentText(text)

    def set_exploring(self, running: bool) -> None:
        self._exploring = running
        self._refresh()

    def request_run(self) -> None:
        """Ctrl+R too: settings that cannot run still reach the studio, which refuses them in a
        dialog before any work."""
        if self._graph is not None and self.recipe()["steps"]:
            self.run_requested.emit(self.recipe(), self.data_spec())

    def _unavailable(self, entry: Technique) -> str | None:
        """Why the open model cannot take the technique at all, whatever its settings (what its
        description says it always needs), or None; an editable PyTorch module is asked once per model."""
        always = [need for need in entry.needs if need.when is None]
        if any(need.key == TORCH for need in always) and self._torch_reason:
            return self._torch_reason
        if entry.precheck is None and all(need.key == TORCH for need in always):  # nothing else to ask of the model
            return None
        return technique_unavailable(entry.name, self._handle)

    def _why(self, entry: Technique, step: dict, others: list[dict]) -> str | None:
        """Why the step `step` (settings) cannot be taken: a requirement its settings bring (structured
        pruning, a PyTorch precision need an editable module), or the steps after it refuse to follow it."""
        settings = settings_object(entry, step)
        for need in entry.needs:
            if need.when is not None and need.applies(settings):
                if need.key == TORCH:
                    if self._torch_reason:
                        return self._torch_reason
                elif self._handle is not None:
                    try:
                        need.refuse(self._handle, None, entry.words_for(settings))
                    except ParetoLabError as exc:
                        return str(exc)
        if self._graph is None or not others:
            return None
        return recipe_problem({"steps": self._in_order([*others, {"technique": entry.name, "settings": step}])}, None)

    def _refresh(self) -> None:
        if self._refreshing:
            return
        self._refreshing = True
        try:
            self._offer()
        finally:
            self._refreshing = False
        steps = self.recipe()["steps"] if self._graph is not None else []
        unknown = self._unknown_layers()
        problem = recipe_problem({"steps": steps}, self._handle) if steps and not unknown else None
        self.problem.setText(f"Cannot run: {problem}" if problem else "")
        self.problem.setVisible(bool(problem))
        self.run_button.setEnabled(bool(steps) and problem is None and not unknown)
        self.run_button.setToolTip(f"Cannot run: {problem}" if problem else
                                   f"Fix the layer names first, no layer named {', '.join(unknown)}" if unknown else
                                   "Build this variant in the background (Ctrl+R)" if steps else
                                   "Nothing to do: set a sparsity, distillation, a precision or early exit first")
        self.explore_button.setEnabled(self._graph is not None and not self._exploring)
        self.explore_button.setToolTip("Explore is running: cancel it in Jobs to start another" if self._exploring else
                                       EXPLORE_TIP if self._graph is not None else "Open a model first")
        self._show_prediction(steps)

    def _offer(self) -> None:
        """Each group as the model and the other steps allow: a technique a later step refuses to
        follow is off with the reason (early exit after OpenVINO IR), and each choice the step could
        not take is disabled with its reason (a PyTorch precision on an ONNX-only model)."""
        for name, group in self.technique_groups.items():
            others = [s for s in self.recipe()["steps"] if s["technique"] != name]
            if group.enabled is not None and self._graph is not None and self._reasons.get(name) is None:
                step = {"technique": name, "settings": group.settings(force=True)}
                group.set_unavailable(recipe_problem({"steps": self._in_order([*others, step])}, None) if others else None)
            group.offer(lambda step, entry=group.entry, others=others: self._why(entry, step, others))

    @staticmethod
    def _in_order(steps: list[dict]) -> list[dict]:
        order = list(TECHNIQUES)
        return sorted(steps, key=lambda s: order.index(s["technique"]))

    def _unknown_layers(self) -> list[str]:
        """Layer names typed that the open model does not have ("Keep FP32: nope"), marked in red where typed."""
        unknown_all = []
        for group in self.technique_groups.values():
            for name, control in group.controls.items():
                if group.entry.setting(name).kind != "names":
                    continue
                typed = [n.strip() for n in control.text().split(",") if n.strip()]
                unknown = [n for n in typed if self._graph is not None and n not in self._graph]
                control.setStyleSheet("color: #d62728" if unknown else "")
                control.setToolTip(f"no layer named {', '.join(unknown)}" if unknown else group.entry.setting(name).help)
                unknown_all += [f"{group.entry.setting(name).label}: {n}" for n in unknown]
        return unknown_all

    def _show_prediction(self, steps: list[dict]) -> None:
        """Size and MACs predicted from the recipe: its sparsity and its precision (as the steps'
        descriptions answer them)."""
        if self._graph is None:
            self.prediction.setText("—")
            return
        sparsity, structured, precision, backend = 0.0, False, "fp32", "ort"
        for step in steps:
            entry, settings = TECHNIQUES[step["technique"]], step["settings"]
            sparsity = settings.get("sparsity", sparsity)
            structured = settings.get("method", "structured" if structured else "") == "structured"
            if entry.precision is not None:
                stand_in = settings_object(entry, settings)
                precision = PREDICTED_PRECISION.get(entry.precision(stand_in) or "", "fp32")
                backend = entry.backend(stand_in) if entry.backend is not None else backend
        p = predict(self._graph, sparsity=sparsity, structured=structured, precision=precision, backend=backend)
        g = self._graph
        on_disk = size(p.size_bytes) if p.size_high <= 1.05 * p.size_low else f"{size(p.size_low)}–{size(p.size_high)}"
        self.prediction.setText(
            f"Predicted: {si(p.params)} params ({p.params / max(1, g.total_params):.0%}), "
            f"{si(p.macs)} MACs ({(p.macs or 0) / max(1, g.total_macs or 1):.0%}), ~{on_disk}"
        )
        self.prediction.setToolTip("An estimate before anything runs; int8 size depends on the format chosen after measuring "
                                   "(QOperator or QDQ). Every variant's own file is measured.")
