"""Compression settings: sliders and choices that build a recipe, with a prediction of the
result's size and MACs before anything runs. Settings the model cannot take are disabled,
with the reason as their tooltip."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from paretolab.core.compress.insight.predict import predict
from paretolab.core.compress.techniques import QUANT_TARGETS, TECHNIQUES, recipe_steps
from paretolab.core.model.graph import LayerGraph
from paretolab.core.units import si, size
from paretolab.gui.early_exit_group import EarlyExitGroup
from paretolab.gui.technique_group import TechniqueGroup, setting_control
from paretolab.gui.wheel_guard import WheelGuard
from paretolab.jobs.recipe_check import early_exit_unavailable, recipe_problem, technique_unavailable

QUANTIZATION = {"none": None, **{target.label: target for target in QUANT_TARGETS.values()}}
EXPLORE_TIP = ("Search pruning, distillation and quantization settings for the Pareto front "
               "within the time budget; cancel pauses, Explore again resumes")
DATASETS = {"digits (built-in sample data)": "digits", "random inputs (fidelity only)": "random:64"}
CHOOSE_FOLDER = "Image or audio folder…"
CHOOSE_FILE = "Data file…"  # .npz/.npy tensors, or text for models with a tokenizer
# (random:64 is what core's default_data offers for models the digits do not fit)


class SettingsPanel(QWidget):
    run_requested = Signal(dict, str)  # recipe document, data spec
    explore_requested = Signal(float, str)  # time budget in seconds, data spec
    folder_requested = Signal()  # the user chose "Image or audio folder…": the window asks which
    file_requested = Signal()  # the user chose "Data file…": the window asks which

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._graph: LayerGraph | None = None
        self._torch_reason: str | None = "open a model first"
        self._forced_unstructured = False
        self._device_chosen = False  # the user picked a device: keep it across models
        self._handle = None  # the open model (a ModelHandle), for the checks a recipe needs before any work
        self._exit_reason: str | None = "open a model first"  # why the model cannot take early exits
        self._exploring = False  # an Explore is running: a second one waits for it to end

        self.early_exit = EarlyExitGroup(self)
        # Techniques with controls tied to the graph or the data have groups of their own; every other
        # technique gets the group its description builds (low-rank, graph optimization, any registered later).
        own = {"prune": self._pruning, "distill": self._distillation, "quantize": self._quantization,
               "early_exit": lambda: self.early_exit}
        self.technique_groups = {name: TechniqueGroup(entry, self) for name, entry in TECHNIQUES.items() if name not in own}
        groups = [own[name]() if name in own else self.technique_groups[name] for name in TECHNIQUES]
        self._build_actions()
        self._lay_out(*groups)
        for signal in (self.sparsity.valueChanged, self.method.currentIndexChanged, self.quantize.currentIndexChanged,
                       self.distill.toggled, self.early_exit.changed,
                       *(g.changed for g in self.technique_groups.values())):
            signal.connect(self._refresh)
        self.wheel_guard = WheelGuard(self.scroll, self)
        self.wheel_guard.guard(self)
        self.set_model(None, "open a model first")

    def _pruning(self) -> QGroupBox:
        sparsity = TECHNIQUES["prune"].setting("sparsity")  # the bounds validation, the CLI and sweeps use
        self.sparsity = QLabeledDoubleSlider(Qt.Orientation.Horizontal, self)
        self.sparsity.setRange(sparsity.minimum, sparsity.maximum)
        self.sparsity.setSingleStep(sparsity.step)
        self.sparsity.setToolTip(sparsity.help)
        self.sparsity.setDecimals(2)
        self.sparsity.setValue(0.0)
        self.method = QComboBox(self)
        self.method.addItems(["structured", "unstructured"])
        self.overrides = QTableWidget(0, 3, self)
        self.overrides.setHorizontalHeaderLabels(["Layer", "Ratio", "Skip"])
        self.overrides.verticalHeader().setVisible(False)
        self.overrides.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.overrides.setMaximumHeight(150)
        self.overrides.setToolTip("Per-layer pruning: a ratio other than the global sparsity, or skip the layer")
        group = QGroupBox("Pruning", self)
        form = QFormLayout(group)
        form.addRow("Sparsity", self.sparsity)
        form.addRow("Method", self.method)
        form.addRow(self.overrides)
        return group

    def _distillation(self) -> QGroupBox:
        self.distill = QCheckBox("distill from the original", self)
        entry = TECHNIQUES["distill"]
        self.epochs, self.temperature, self.alpha, self.lr = (
            setting_control(entry.setting(name), self) for name in ("epochs", "temperature", "alpha", "lr"))
        self.epochs.setValue(5)  # the panel's default: a few more epochs than a recipe file's
        group = QGroupBox(entry.label, self)
        form = QFormLayout(group)
        form.addRow(self.distill)
        for name in ("epochs", "temperature", "alpha", "lr"):
            form.addRow(entry.setting(name).label, getattr(self, name))
        return group

    def _quantization(self) -> QGroupBox:
        """Precision and calibration, and the data and device variants are measured with."""
        self.quantize = QComboBox(self)
        self.quantize.addItems(list(QUANTIZATION))
        self.calibration = QComboBox(self)
        self.calibration.addItems(["minmax", "entropy", "percentile"])
        self.calibration.setToolTip("ONNX Runtime int8 calibration method")
        self.samples = setting_control(TECHNIQUES["quantize"].setting("samples"), self)
        self.keep_fp32 = QLineEdit(self)
        self.keep_fp32.setPlaceholderText("layers to keep in FP32 (right-click them in the graph)")
        self.keep_fp32.textChanged.connect(self._refresh)
        self.data = QComboBox(self)
        self.data.addItems([*DATASETS, CHOOSE_FILE, CHOOSE_FOLDER])
        self.data.activated.connect(self._data_chosen)
        self._last_data = 0
        self.preprocess = QLineEdit(self)
        self.preprocess.setPlaceholderText("default: shaped to the model's input, ImageNet mean/std")
        self.preprocess.setToolTip("How images become tensors, e.g. size=224,resize=256,mean=0.5/0.5/0.5,std=0.5/0.5/0.5,"
                                   "channels=BGR,layout=NHWC,scale=255; the recipe used shows in each variant's notes")
        self.preprocess.setEnabled(False)
        self.device = QComboBox(self)
        self.device.addItem("cpu")
        self.device.setToolTip("Device the variant is measured on: only those available on this machine are listed")
        self.device.activated.connect(lambda _: setattr(self, "_device_chosen", True))
        group = QGroupBox("Quantization", self)
        form = QFormLayout(group)
        form.addRow("Precision", self.quantize)
        form.addRow("Calibration", self.calibration)
        form.addRow("Samples", self.samples)
        form.addRow("Keep FP32", self.keep_fp32)
        form.addRow("Data", self.data)
        form.addRow("Preprocess", self.preprocess)
        form.addRow("Measure on", self.device)
        return group

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
        """`torch_reason`: why structured pruning and distillation are unavailable, or None.
        Settings that name the last model's layers are reset; early exit is offered only to a
        model with class scores (`handle`, the open ModelHandle, is asked)."""
        self._graph, self._torch_reason, self._handle = graph, torch_reason, handle
        self._exit_reason = early_exit_unavailable(handle) if graph is not None else "open a model first"
        for group in self.technique_groups.values():  # what each technique needs of the model, asked once per model
            group.set_unavailable(self._unavailable(group.entry.name) if graph is not None else "open a model first")
        self.early_exit.reset()
        self.keep_fp32.clear()
        self.overrides.setRowCount(0)
        for node in (graph or []):
            if node.op in ("Conv", "Gemm", "MatMul", "Convolution") and node.weights:
                row = self.overrides.rowCount()
                self.overrides.insertRow(row)
                name = QTableWidgetItem(node.name)
                name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.overrides.setItem(row, 0, name)
                ratio = QDoubleSpinBox(self.overrides)
                ratio.setRange(-0.01, 0.99)
                ratio.setSingleStep(0.05)
                ratio.setSpecialValueText("global")  # -0.01 shows as "global": no override
                ratio.setValue(-0.01)
                ratio.valueChanged.connect(self._refresh)
                self.overrides.setCellWidget(row, 1, ratio)
                skip = QCheckBox(self.overrides)
                skip.toggled.connect(self._refresh)
                self.overrides.setCellWidget(row, 2, skip)
        self.wheel_guard.guard(self.overrides)
        self._refresh()

    def set_data(self, spec: str, preprocess: str | None = None) -> None:
        """Offer `spec` first (the digits only fit models shaped like them; an image folder the
        model was last run with comes back with its recipe)."""
        label = next((label for label, s in DATASETS.items() if s == spec), None)
        if label is not None:
            self.data.setCurrentText(label)
            self._data_chosen(self.data.currentIndex())
        else:
            self.add_data(spec)
            self.preprocess.setText(preprocess or "")

    def set_devices(self, pairs: tuple[tuple[str, str], ...]) -> None:
        """The devices to offer: those any backend has on this machine; the one the user chose,
        else a CUDA GPU when there is one (the fastest), else the CPU."""
        names = list(dict.fromkeys(device for _, device in pairs)) or ["cpu"]
        chosen = self.device.currentText() if self._device_chosen else None
        self.device.clear()
        self.device.addItems(names)
        self.device.setCurrentText(chosen if chosen in names else "cuda" if "cuda" in names else names[0])

    def follow(self, graph_view) -> None:  # noqa: ANN001 - a GraphView
        """Take the graph's right-click choices: layers kept in FP32, exits after layers."""
        graph_view.keep_fp32_toggled.connect(self.toggle_keep_fp32)
        graph_view.exit_toggled.connect(self.early_exit.toggle_layer)

    def toggle_keep_fp32(self, layer: str) -> None:
        """Add or remove a layer from those quantization leaves in floating point."""
        names = self.kept_fp32()
        names = [n for n in names if n != layer] if layer in names else [*names, layer]
        self.keep_fp32.setText(", ".join(names))

    def kept_fp32(self) -> list[str]:
        return [n.strip() for n in self.keep_fp32.text().split(",") if n.strip()]

    def _overrides(self) -> tuple[dict[str, float], list[str]]:
        ratios, skip = {}, []
        for row in range(self.overrides.rowCount()):
            name = self.overrides.item(row, 0).text()
            ratio = self.overrides.cellWidget(row, 1).value()
            if self.overrides.cellWidget(row, 2).isChecked():
                skip.append(name)
            elif ratio >= 0:
                ratios[name] = round(ratio, 2)
        return ratios, skip

    def recipe(self) -> dict:
        ratios, skip = self._overrides()
        prune = None
        if self.sparsity.value() > 0 or ratios:
            prune = {"method": self.method.currentText(), "sparsity": round(self.sparsity.value(), 2)}
            if ratios:
                prune["layer_ratios"] = ratios
            if skip:
                prune["skip"] = skip
        distill = None
        if self.distill.isChecked() and self.distill.isEnabled():
            distill = {"epochs": self.epochs.value(), "temperature": self.temperature.value(), "alpha": self.alpha.value(),
                       "lr": self.lr.value()}
        described = {name: group.settings() for name, group in self.technique_groups.items()}
        return {"steps": recipe_steps(prune=prune, distill=distill, quantize=self._quantize_settings(),
                                      early_exit=self.early_exit.settings(), **described)}

    def ray_cluster(self) -> str | None:
        """Where Explore runs its trials: None here, "local" on a Ray instance started here, or an address."""
        return (self.ray_address.text().strip() or "local") if self.on_ray.isChecked() else None

    def sweep_exits(self) -> tuple[int, ...]:
        """Exit counts Explore tries: none, and the group's count when early exit is on."""
        return (0, self.early_exit.exits.value()) if self.early_exit.enabled.isChecked() else (0,)

    def _quantize_settings(self) -> dict | None:
        target = QUANTIZATION[self.quantize.currentText()]
        if target is None:
            return None
        extra: dict = {}
        if target.precision == "int8":
            extra["samples"] = self.samples.value()
            if target.backend == "ort":
                extra["calibration"] = self.calibration.currentText()
        if self.kept_fp32():
            extra["keep_fp32"] = self.kept_fp32()
        return target.settings(**extra)

    def save(self, settings) -> None:
        """Remember the last settings (QSettings), so the next session starts where this one ended."""
        settings.setValue("compress/sparsity", self.sparsity.value())
        settings.setValue("compress/method", self.method.currentText())
        settings.setValue("compress/distill", self.distill.isChecked())
        settings.setValue("compress/epochs", self.epochs.value())
        settings.setValue("compress/temperature", self.temperature.value())
        settings.setValue("compress/alpha", self.alpha.value())
        settings.setValue("compress/lr", self.lr.value())
        settings.setValue("compress/quantize", self.quantize.currentText())
        settings.setValue("compress/data", self.data.currentText())
        self.early_exit.save(settings)
        for group in self.technique_groups.values():
            group.save(settings)

    def restore(self, settings) -> None:
        def value(key, default, kind):
            raw = settings.value(f"compress/{key}", default)
            try:
                return kind(raw) if kind is not bool else raw in (True, "true", "1", 1)
            except (TypeError, ValueError):  # a hand-edited or old settings file: keep the default
                return default

        self.sparsity.setValue(value("sparsity", 0.0, float))
        self.method.setCurrentText(value("method", "structured", str))
        self.distill.setChecked(value("distill", False, bool))
        self.epochs.setValue(value("epochs", 5, int))
        self.temperature.setValue(value("temperature", 4.0, float))
        self.alpha.setValue(value("alpha", 0.7, float))
        self.lr.setValue(value("lr", 1e-3, float))
        self.early_exit.restore(value)
        for group in self.technique_groups.values():
            group.restore(value)
        for box, key in ((self.quantize, "quantize"), (self.data, "data")):
            text = value(key, box.currentText(), str)
            if box.findText(text) >= 0:
                box.setCurrentText(text)

    def data_spec(self) -> str:
        """The built-in data's spec, or the image folder chosen (its item holds the path)."""
        return self.data.currentData() or DATASETS.get(self.data.currentText(), "digits")

    def preprocess_text(self) -> str | None:
        """The image preprocessing recipe typed, when the data is an image folder."""
        return self.preprocess.text().strip() or None if self._is_folder() else None

    def add_data(self, path: str) -> None:
        """Offer an image folder or a data file (before the "…" choices) and choose it."""
        index = self.data.findData(path)
        if index < 0:
            index = self.data.count() - 2
            kind = "file" if not Path(path).is_dir() else "audio" if any(Path(path).rglob("*.wav")) else "images"
            self.data.insertItem(index, f"{kind}: {path}", path)
        self.data.setCurrentIndex(index)
        self._data_chosen(index)

    def _data_chosen(self, index: int) -> None:
        chosen = self.data.itemText(index)
        if chosen in (CHOOSE_FOLDER, CHOOSE_FILE):
            self.data.setCurrentIndex(self._last_data)  # until one is chosen (cancel keeps the data as it was)
            (self.folder_requested if chosen == CHOOSE_FOLDER else self.file_requested).emit()
        else:
            self._last_data = index
        self.preprocess.setEnabled(self._is_folder())

    def _is_folder(self) -> bool:
        data = self.data.currentData()
        return bool(data) and Path(data).is_dir()

    def set_exploring(self, running: bool) -> None:
        self._exploring = running
        self._refresh()

    def request_run(self) -> None:
        """Ctrl+R too: settings that cannot run still reach the studio, which refuses them in a
        dialog before any work."""
        if self._graph is not None and self.recipe()["steps"]:
            self.run_requested.emit(self.recipe(), self.data_spec())

    def _unavailable(self, name: str) -> str | None:
        """Why the open model cannot take technique `name` (what its description says it needs), or None;
        an editable PyTorch module is asked once per model, when it is opened."""
        entry = TECHNIQUES[name]
        torch = [need for need in entry.needs if need.key == "torch-module"]
        if torch and self._torch_reason:
            return self._torch_reason
        if entry.precheck is None and len(torch) == len(entry.needs):  # nothing else to ask of the model
            return None
        return technique_unavailable(name, self._handle)

    def _order_problem(self, target, exits: dict | None) -> str | None:  # noqa: ANN001 - a QuantTarget or None
        """Why `target` and early exit `exits` cannot stand in one recipe (core's step-order rule)."""
        if target is None or exits is None:
            return None
        return recipe_problem({"steps": recipe_steps(quantize=target.settings(), early_exit=exits)}, None)

    def _offer_precisions(self, ok: bool) -> None:
        """PyTorch precisions need an editable PyTorch model, as structured pruning does; with
        early exit on, precisions nothing can follow (OpenVINO IR, a PyTorch precision) are off."""
        exits = self.early_exit.settings()
        for i, target in enumerate(QUANTIZATION.values()):
            if target is None:
                continue
            reason = (self._torch_reason if target.backend == "torch" and not ok else None) or self._order_problem(target,
                                                                                                                 exits)
            self.quantize.model().item(i).setEnabled(reason is None)
            self.quantize.setItemData(i, None if reason is None else f"unavailable: {reason}", Qt.ItemDataRole.ToolTipRole)
        current = QUANTIZATION[self.quantize.currentText()]
        if not ok and current is not None and current.backend == "torch":
            self.quantize.setCurrentText("none")

    def _refresh(self) -> None:
        structured_ok = self._torch_reason is None
        self.method.model().item(0).setEnabled(structured_ok)
        if not structured_ok and self.method.currentText() == "structured":
            self.method.setCurrentText("unstructured")
            self._forced_unstructured = True
        elif structured_ok and self._forced_unstructured:  # the model changed: give the default back
            self._forced_unstructured = False
            self.method.setCurrentText("structured")
        self.method.setToolTip("" if structured_ok else f"structured pruning is unavailable: {self._torch_reason}")
        self.distill.setEnabled(structured_ok)
        for w in (self.epochs, self.temperature, self.alpha, self.lr):
            w.setEnabled(structured_ok and self.distill.isChecked())
        self.distill.setToolTip("" if structured_ok else f"distillation is unavailable: {self._torch_reason}")
        # early exit: not on a model without class scores, nor after a precision nothing can follow
        exit_defaults = {"exits": self.early_exit.exits.value(), "budget": 0.5, "confidence": "max-softmax"}
        if self._graph is not None:  # before a model opens, the remembered choice stays as it was
            self.early_exit.set_unavailable(self._exit_reason
                                            or self._order_problem(QUANTIZATION[self.quantize.currentText()], exit_defaults))
        self._offer_precisions(structured_ok)
        target = QUANTIZATION[self.quantize.currentText()]
        int8 = target is not None and target.precision == "int8"
        self.samples.setEnabled(int8)
        self.calibration.setEnabled(int8 and target.backend == "ort")
        self.calibration.setToolTip("ONNX Runtime int8 calibration method" if int8 and target.backend == "ort"
                                    else "calibration applies to int8 on ONNX Runtime (NNCF chooses its own)")
        unknown = [n for n in self.kept_fp32() if self._graph is not None and n not in self._graph]
        self.keep_fp32.setStyleSheet("color: #d62728" if unknown else "")
        self.keep_fp32.setToolTip(
            f"no layer named {', '.join(unknown)}" if unknown else "layers quantization leaves in floating point"
        )
        steps = self.recipe()["steps"] if self._graph is not None and not unknown else []
        problem = recipe_problem({"steps": steps}, self._handle) if steps else None
        self.problem.setText(f"Cannot run: {problem}" if problem else "")
        self.problem.setVisible(bool(problem))
        self.run_button.setEnabled(bool(steps) and problem is None)
        self.run_button.setToolTip(f"Cannot run: {problem}" if problem else
                                   "Build this variant in the background (Ctrl+R)" if steps else
                                   "Fix the layer names in Keep FP32 first" if unknown else
                                   "Nothing to do: set a sparsity, distillation, a precision or early exit first")
        self.explore_button.setEnabled(self._graph is not None and not self._exploring)
        self.explore_button.setToolTip("Explore is running: cancel it in Jobs to start another" if self._exploring else
                                       EXPLORE_TIP if self._graph is not None else "Open a model first")
        self._show_prediction()

    def _show_prediction(self) -> None:
        if self._graph is None:
            self.prediction.setText("—")
            return
        target = QUANTIZATION[self.quantize.currentText()]
        precision = {"int8": "int8", "dynamic-int8": "int8", "fp16": "fp16"}.get(target.precision if target else "", "fp32")
        p = predict(self._graph, sparsity=self.sparsity.value(), structured=self.method.currentText() == "structured",
                    precision=precision, backend=target.backend if target else "ort")
        g = self._graph
        on_disk = size(p.size_bytes) if p.size_high <= 1.05 * p.size_low else f"{size(p.size_low)}–{size(p.size_high)}"
        self.prediction.setText(
            f"Predicted: {si(p.params)} params ({p.params / max(1, g.total_params):.0%}), "
            f"{si(p.macs)} MACs ({(p.macs or 0) / max(1, g.total_macs or 1):.0%}), ~{on_disk}"
        )
        self.prediction.setToolTip("An estimate before anything runs; int8 size depends on the format chosen after measuring "
                                   "(QOperator or QDQ). Every variant's own file is measured.")
