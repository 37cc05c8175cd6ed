"""Compression settings: sliders and choices that build a recipe, with a prediction of the
result's size and MACs before anything runs. Settings the model cannot take are disabled,
with the reason as their tooltip."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from paretolab.core.graph import LayerGraph
from paretolab.core.predict import predict
from paretolab.core.units import si, size

QUANTIZATION = {
    "none": None,
    "int8, ONNX Runtime (fastest faithful format)": ("ort", "int8"),
    "int8, OpenVINO (NNCF)": ("openvino", "int8"),
    "FP16, ONNX Runtime": ("ort", "fp16"),
    "FP16, OpenVINO": ("openvino", "fp16"),
    "dynamic int8, ONNX Runtime": ("ort", "dynamic-int8"),
}
DATASETS = {"digits (built-in sample data)": "digits", "random inputs (fidelity only)": "random:64"}


class SettingsPanel(QWidget):
    run_requested = Signal(dict, str)  # recipe document, data spec

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._graph: LayerGraph | None = None
        self._torch_reason: str | None = "open a model first"
        self._forced_unstructured = False

        self.sparsity = QLabeledDoubleSlider(Qt.Orientation.Horizontal, self)
        self.sparsity.setRange(0.0, 0.9)
        self.sparsity.setSingleStep(0.05)
        self.sparsity.setDecimals(2)
        self.sparsity.setValue(0.0)
        self.method = QComboBox(self)
        self.method.addItems(["structured", "unstructured"])

        self.distill = QCheckBox("distill from the original", self)
        self.epochs = QSpinBox(self)
        self.epochs.setRange(1, 200)
        self.epochs.setValue(5)
        self.temperature = QDoubleSpinBox(self)
        self.temperature.setRange(0.5, 20.0)
        self.temperature.setValue(4.0)
        self.alpha = QDoubleSpinBox(self)
        self.alpha.setRange(0.0, 1.0)
        self.alpha.setSingleStep(0.1)
        self.alpha.setValue(0.7)
        self.lr = QDoubleSpinBox(self)
        self.lr.setDecimals(5)
        self.lr.setRange(1e-5, 1.0)
        self.lr.setSingleStep(1e-4)
        self.lr.setValue(1e-3)

        self.quantize = QComboBox(self)
        self.quantize.addItems(list(QUANTIZATION))
        self.data = QComboBox(self)
        self.data.addItems(list(DATASETS))
        self.prediction = QLabel("—", self)
        self.prediction.setWordWrap(True)
        self.run_button = QPushButton("Run", self)
        self.run_button.setToolTip("Build this variant in the background (Ctrl+R)")
        self.run_button.clicked.connect(self.request_run)

        prune = QGroupBox("Pruning", self)
        form = QFormLayout(prune)
        form.addRow("Sparsity", self.sparsity)
        form.addRow("Method", self.method)
        distill = QGroupBox("Distillation", self)
        form = QFormLayout(distill)
        form.addRow(self.distill)
        form.addRow("Epochs", self.epochs)
        form.addRow("Temperature", self.temperature)
        form.addRow("α (soft share)", self.alpha)
        form.addRow("Learning rate", self.lr)
        quant = QGroupBox("Quantization", self)
        form = QFormLayout(quant)
        form.addRow("Precision", self.quantize)
        form.addRow("Data", self.data)

        layout = QVBoxLayout(self)
        for widget in (prune, distill, quant, self.prediction, self.run_button):
            layout.addWidget(widget)
        layout.addStretch(1)

        for signal in (self.sparsity.valueChanged, self.method.currentIndexChanged, self.quantize.currentIndexChanged,
                       self.distill.toggled):
            signal.connect(self._refresh)
        self.set_model(None, "open a model first")

    def set_model(self, graph: LayerGraph | None, torch_reason: str | None) -> None:
        """`torch_reason`: why structured pruning and distillation are unavailable, or None."""
        self._graph, self._torch_reason = graph, torch_reason
        self._refresh()

    def recipe(self) -> dict:
        steps = []
        if self.sparsity.value() > 0:
            steps.append({"technique": "prune", "settings": {"method": self.method.currentText(), "sparsity": round(self.sparsity.value(), 2)}})
        if self.distill.isChecked() and self.distill.isEnabled():
            steps.append({"technique": "distill", "settings": {
                "epochs": self.epochs.value(), "temperature": self.temperature.value(), "alpha": self.alpha.value(), "lr": self.lr.value()}})
        target = QUANTIZATION[self.quantize.currentText()]
        if target is not None:
            steps.append({"technique": "quantize", "settings": {"backend": target[0], "precision": target[1]}})
        return {"steps": steps}

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
        for box, key in ((self.quantize, "quantize"), (self.data, "data")):
            text = value(key, box.currentText(), str)
            if box.findText(text) >= 0:
                box.setCurrentText(text)

    def data_spec(self) -> str:
        return DATASETS[self.data.currentText()]

    def request_run(self) -> None:
        if self.run_button.isEnabled():
            self.run_requested.emit(self.recipe(), DATASETS[self.data.currentText()])

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
        steps = self.recipe()["steps"] if self._graph is not None else []
        self.run_button.setEnabled(bool(steps))
        self.run_button.setToolTip("Build this variant in the background (Ctrl+R)" if steps else
                                   "Nothing to do: set a sparsity, distillation or a precision first")
        self._show_prediction()

    def _show_prediction(self) -> None:
        if self._graph is None:
            self.prediction.setText("—")
            return
        target = QUANTIZATION[self.quantize.currentText()]
        precision = {"int8": "int8", "dynamic-int8": "int8", "fp16": "fp16"}.get(target[1] if target else "", "fp32")
        p = predict(self._graph, sparsity=self.sparsity.value(), structured=self.method.currentText() == "structured", precision=precision)
        g = self._graph
        self.prediction.setText(
            f"Predicted: {si(p.params)} params ({p.params / max(1, g.total_params):.0%}), "
            f"{si(p.macs)} MACs ({(p.macs or 0) / max(1, g.total_macs or 1):.0%}), ~{size(p.size_bytes)}"
        )
