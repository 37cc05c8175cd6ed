"""A technique's controls, built from its description in the registry: a switch that adds its
step, and one control per setting with the bounds, default, unit, label and help it declares.
A technique registered anywhere gets its group without the panel knowing it."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox, QWidget

from paretolab.core.compress.technique_spec import Setting, Technique

INT_LIMIT = 2**31 - 1  # a QSpinBox's largest value


def setting_control(setting: Setting, parent: QWidget) -> QWidget:
    """The control for one setting, set to its default, its help as the tooltip."""
    control: Any
    if setting.kind == "float":
        control = QDoubleSpinBox(parent)
        control.setDecimals(setting.decimals)
        control.setRange(setting.minimum if setting.minimum is not None else -1e9,
                         setting.maximum if setting.maximum is not None else 1e9)
        control.setSingleStep(setting.step or 10 ** -setting.decimals)
        control.setValue(setting.default)
    elif setting.kind == "int":
        control = QSpinBox(parent)
        control.setRange(int(setting.minimum) if setting.minimum is not None else -INT_LIMIT,
                         int(setting.maximum) if setting.maximum is not None else INT_LIMIT)
        control.setValue(setting.default)
    elif setting.kind == "bool":
        control = QCheckBox(setting.label, parent)
        control.setChecked(bool(setting.default))
    elif setting.kind == "choice":
        control = QComboBox(parent)
        control.addItems(list(setting.choices))
        control.setCurrentText(setting.default)
    else:  # names
        control = QLineEdit(", ".join(setting.default or ()), parent)
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
        return control.currentText()
    return [n.strip() for n in control.text().split(",") if n.strip()]


def _set_value(setting: Setting, control: Any, value: Any) -> None:
    if setting.kind in ("float", "int"):
        control.setValue(value)
    elif setting.kind == "bool":
        control.setChecked(value)
    elif setting.kind == "choice":
        if control.findText(str(value)) >= 0:
            control.setCurrentText(str(value))
    else:
        control.setText(str(value))


def _changed_signal(control: Any) -> Any:
    for name in ("valueChanged", "toggled", "currentIndexChanged", "textChanged"):
        if hasattr(control, name):
            return getattr(control, name)
    raise TypeError(f"no change signal on {type(control).__name__}")


class TechniqueGroup(QGroupBox):
    """One technique's group: off until its switch is checked; disabled with the reason when the
    open model lacks what the technique needs."""

    changed = Signal()

    def __init__(self, entry: Technique, parent: QWidget | None = None) -> None:
        super().__init__(entry.label or entry.name, parent)
        self.entry = entry
        self.enabled = QCheckBox(f"apply {entry.in_words}", self)
        self.enabled.setToolTip(entry.help)
        self.controls: dict[str, Any] = {}
        form = QFormLayout(self)
        form.addRow(self.enabled)
        for setting in entry.fields:
            if not setting.gui or setting.default is None:
                continue
            control = setting_control(setting, self)
            self.controls[setting.name] = control
            if setting.kind == "bool":
                form.addRow(control)
            else:
                form.addRow(setting.label, control)
            _changed_signal(control).connect(lambda *_: self.changed.emit())
        self.enabled.toggled.connect(self._refresh)
        self._refresh()

    def _refresh(self) -> None:
        for control in self.controls.values():
            control.setEnabled(self.enabled.isChecked() and self.enabled.isEnabled())
        self.changed.emit()

    def set_unavailable(self, reason: str | None) -> None:
        """Turn the technique off and disable it with `reason`; None offers it again."""
        if reason:
            self.enabled.setChecked(False)
        self.enabled.setEnabled(reason is None)
        self.enabled.setToolTip(self.entry.help if reason is None else f"unavailable: {reason}")
        self._refresh()

    def settings(self) -> dict | None:
        """The step's settings, or None when the technique is off."""
        if not (self.enabled.isChecked() and self.enabled.isEnabled()):
            return None
        return {name: control_value(self.entry.setting(name), control) for name, control in self.controls.items()}

    def save(self, store: Any) -> None:  # QSettings
        store.setValue(f"compress/{self.entry.name}", self.enabled.isChecked())
        for name, control in self.controls.items():
            setting = self.entry.setting(name)
            value = control_value(setting, control)
            store.setValue(f"compress/{self.entry.name}.{name}", ", ".join(value) if setting.kind == "names" else value)

    def restore(self, value: Any) -> None:  # the panel's reader: value(key, default, kind)
        for name, control in self.controls.items():
            setting = self.entry.setting(name)
            kind = {"float": float, "int": int, "bool": bool}.get(setting.kind, str)
            default = control_value(setting, control)
            _set_value(setting, control, value(f"{self.entry.name}.{name}",
                                               ", ".join(default) if setting.kind == "names" else default, kind))
        self.enabled.setChecked(value(self.entry.name, False, bool))
