"""One control per described setting: a spin box, slider, list, switch, line of layer names or a
per-layer table, set up with the bounds, default, unit, label and help the description declares,
and read back as the value a recipe takes."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QHeaderView,
    QLineEdit,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QWidget,
)
from superqt import QLabeledDoubleSlider

from paretolab.core.compress.technique_spec import Setting

INT_LIMIT = 2**31 - 1  # a QSpinBox's largest value
WEIGHTED_OPS = ("Conv", "Gemm", "MatMul", "Convolution")  # layers a per-layer table lists


class LayerTable(QTableWidget):
    """A per-layer setting: a value other than the group's for some layers, or the layer skipped."""

    changed = Signal()

    def __init__(self, setting: Setting, parent: QWidget | None = None) -> None:
        super().__init__(0, 3, parent)
        self.setting = setting
        self.setHorizontalHeaderLabels(["Layer", "Ratio", "Skip"])
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setMaximumHeight(150)

    def set_layers(self, graph: Any) -> None:  # a LayerGraph or None
        self.setRowCount(0)
        low, high = self.setting.minimum or 0.0, self.setting.maximum or 1.0
        for node in (graph or []):
            if node.op in WEIGHTED_OPS and node.weights:
                row = self.rowCount()
                self.insertRow(row)
                name = QTableWidgetItem(node.name)
                name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
                self.setItem(row, 0, name)
                ratio = QDoubleSpinBox(self)
                ratio.setRange(low - 0.01, high)
                ratio.setSingleStep(self.setting.step or 0.05)
                ratio.setSpecialValueText("global")  # below the minimum shows as "global": no override
                ratio.setValue(low - 0.01)
                ratio.valueChanged.connect(lambda *_: self.changed.emit())
                self.setCellWidget(row, 1, ratio)
                skip = QCheckBox(self)
                skip.toggled.connect(lambda *_: self.changed.emit())
                self.setCellWidget(row, 2, skip)

    def value(self) -> tuple[dict[str, float], list[str]]:
        """The layers' own values, and the layers skipped."""
        ratios, skip = {}, []
        low = self.setting.minimum or 0.0
        for row in range(self.rowCount()):
            name = self.item(row, 0).text()
            ratio = self.cellWidget(row, 1).value()
            if self.cellWidget(row, 2).isChecked():
                skip.append(name)
            elif ratio >= low:
                ratios[name] = round(ratio, self.setting.decimals)
        return ratios, skip


def setting_control(setting: Setting, parent: QWidget) -> QWidget:
    """The control for one setting, set to where it starts, its help as the tooltip."""
    control: Any
    start = setting.start if setting.start is not None else setting.default
    if setting.kind == "float" and setting.control == "slider":
        control = QLabeledDoubleSlider(Qt.Orientation.Horizontal, parent)
        control.setRange(setting.minimum, setting.maximum)
        control.setSingleStep(setting.step)
        control.setDecimals(setting.decimals)
        control.setValue(start)
    elif setting.kind == "float":
        control = QDoubleSpinBox(parent)
        control.setDecimals(setting.decimals)
        control.setRange(setting.minimum if setting.minimum is not None else -1e9,
                         setting.maximum if setting.maximum is not None else 1e9)
        control.setSingleStep(setting.step or 10 ** -setting.decimals)
        control.setValue(start)
    elif setting.kind == "int":
        control = QSpinBox(parent)
        control.setRange(int(setting.minimum) if setting.minimum is not None else -INT_LIMIT,
                         int(setting.maximum) if setting.maximum is not None else INT_LIMIT)
        control.setValue(start)
    elif setting.kind == "bool":
        control = QCheckBox(setting.label, parent)
        control.setChecked(bool(start))
    elif setting.kind == "choice":
        control = QComboBox(parent)
        for value, label in zip(setting.choices, setting.labels or setting.choices, strict=True):
            control.addItem(label, value)
        control.setCurrentIndex(setting.choices.index(start))
    elif setting.kind == "per_layer":
        control = LayerTable(setting, parent)
    else:  # names
        control = QLineEdit(", ".join(start or ()), parent)
        control.setPlaceholderText("layer names, comma-separated")
    if setting.unit and hasattr(control, "setSuffix"):
        control.setSuffix(f" {setting.unit}")
    control.setToolTip(setting.help)
    return control


def control_value(setting: Setting, control: Any) -> Any:
    if setting.kind == "float":
        return round(control.value(), setting.decimals)
    if setting.kind == "int":
        return control.value()
    if setting.kind == "bool":
        return control.isChecked()
    if setting.kind == "choice":
        return control.currentData()
    if setting.kind == "per_layer":
        return control.value()
    return [n.strip() for n in control.text().split(",") if n.strip()]


def set_value(setting: Setting, control: Any, value: Any) -> None:
    """Show `value` (one the control cannot take, from an old settings file, is ignored)."""
    if setting.kind in ("float", "int"):
        control.setValue(value)
    elif setting.kind == "bool":
        control.setChecked(value)
    elif setting.kind == "choice":
        index = control.findData(value)
        index = index if index >= 0 else control.findText(str(value))  # older files kept the label
        if index >= 0:
            control.setCurrentIndex(index)
    elif setting.kind == "names":
        control.setText(", ".join(value) if isinstance(value, list | tuple) else str(value))


def changed_signal(control: Any) -> Any:
    for name in ("changed", "valueChanged", "toggled", "currentIndexChanged", "textChanged"):
        if hasattr(control, name):
            return getattr(control, name)
    raise TypeError(f"no change signal on {type(control).__name__}")
