"""A technique's controls, built from its description in the registry: a switch that adds its
step (or, for a technique with an `off` value such as sparsity 0 or precision "none", that value),
and one control per setting with the bounds, default, unit, label and help it declares. Every
technique's group is built here, so a technique registered anywhere gets one without the panel
knowing it."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QGroupBox, QWidget

from paretolab.core.compress.technique_spec import Technique
from paretolab.gui.setting_controls import LayerTable, changed_signal, control_value, set_value, setting_control

__all__ = ["TechniqueGroup", "setting_control", "settings_object"]


def settings_object(entry: Technique, step: dict) -> Any:
    """A light stand-in for the technique's settings (its described defaults and `step`), for the
    description's own questions (which requirement applies, which backend) without loading its class."""
    return SimpleNamespace(**({s.name: s.default for s in entry.fields} | step))


class TechniqueGroup(QGroupBox):
    """One technique's group: off until its switch is checked (or its `off` setting moves); disabled
    with the reason when the open model lacks what the technique needs."""

    changed = Signal()

    def __init__(self, entry: Technique, parent: QWidget | None = None) -> None:
        super().__init__(entry.label or entry.name, parent)
        self.entry = entry
        self.enabled: QCheckBox | None = None
        self.controls: dict[str, Any] = {}
        self._reason: str | None = None  # why the open model cannot take it at all
        self._forced: dict[str, Any] = {}  # a choice set aside because it became unavailable: given back later
        form = QFormLayout(self)
        if entry.switched:
            self.enabled = QCheckBox(entry.switch or f"apply {entry.in_words}", self)
            self.enabled.setToolTip(entry.help)
            self.enabled.toggled.connect(self._refresh)
            form.addRow(self.enabled)
        for setting in entry.fields:
            if not setting.gui or (setting.default is None and setting.start is None):
                continue
            control = setting_control(setting, self)
            self.controls[setting.name] = control
            if setting.kind in ("bool", "per_layer"):
                form.addRow(control)
            else:
                form.addRow(setting.label, control)
            changed_signal(control).connect(self._refresh)
        self._refresh()

    def __getattr__(self, name: str) -> Any:  # a setting's control by the setting's name: group.budget
        controls = self.__dict__.get("controls", {})
        if name in controls:
            return controls[name]
        raise AttributeError(name)

    def _refresh(self, *_: Any) -> None:
        values = self.values()
        on = self.is_on() if self.enabled is not None else self._reason is None
        for name, control in self.controls.items():
            control.setEnabled(on and self.entry.setting(name).applies_to(values))
        self.changed.emit()

    def is_on(self) -> bool:
        if self.enabled is not None:
            return self.enabled.isChecked() and self.enabled.isEnabled()
        values = self.values()
        return self._reason is None and any(
            (s.off is not None and values.get(s.name) != s.off) or (s.kind == "per_layer" and any(values.get(s.name)))
            for s in self.entry.fields if s.name in self.controls)

    def values(self) -> dict:
        """The values set, by setting (a per-layer table gives its layers' values and those skipped)."""
        values: dict = {}
        for name, control in self.controls.items():
            setting = self.entry.setting(name)
            value = control_value(setting, control)
            if setting.kind == "per_layer":
                values[name], skipped = value
                values[setting.skip] = skipped
            else:
                values[name] = value
        return values

    def settings(self, force: bool = False) -> dict | None:
        """The step's settings, or None when the technique is off (`force`: as if it were on)."""
        if not (force or self.is_on()):
            return None
        return self.entry.step_settings(self.values())

    def set_unavailable(self, reason: str | None) -> None:
        """Turn the technique off and disable it with `reason`; None offers it again."""
        self._reason = reason
        if self.enabled is not None:
            if reason:
                self.enabled.setChecked(False)
            self.enabled.setEnabled(reason is None)
            self.enabled.setToolTip(self.entry.help if reason is None else f"unavailable: {reason}")
        else:
            self.setToolTip("" if reason is None else f"unavailable: {reason}")
        self._refresh()

    def offer(self, why: Callable[[dict], str | None]) -> None:
        """Disable each choice the step could not take (`why`: its settings with that choice -> the
        reason, or None); a chosen one that became unavailable is set aside (the `off` value, else
        the first one left) and given back once it is offered again."""
        for name, control in self.controls.items():
            setting = self.entry.setting(name)
            if setting.kind != "choice" or not isinstance(control, QComboBox):
                continue
            reasons = []
            for i, value in enumerate(setting.choices):
                values = self._as_if_on(self.values() | {name: value})
                reason = None if values is None else why(self.entry.step_settings(values))
                reasons.append(reason)
                control.model().item(i).setEnabled(reason is None)
                control.setItemData(i, None if reason is None else f"unavailable: {reason}", Qt.ItemDataRole.ToolTipRole)
            current = control.currentIndex()
            given_back = self._forced.get(name)
            if reasons[current] is not None:
                self._forced[name] = setting.choices[current]
                index = setting.choices.index(setting.off) if setting.off is not None else next(
                    (i for i, r in enumerate(reasons) if r is None), current)
                control.setCurrentIndex(index)
            elif given_back is not None and reasons[setting.choices.index(given_back)] is None:
                del self._forced[name]
                control.setCurrentIndex(setting.choices.index(given_back))
            problems = [r for r in reasons if r]
            control.setToolTip(setting.help if not problems else
                               f"{setting.help}; {setting.choices[reasons.index(problems[0])]} is unavailable: {problems[0]}")

    def _as_if_on(self, values: dict) -> dict | None:
        """`values` with each setting at its `off` value moved to its default (sparsity 0 -> 0.5), so a
        choice is judged as the step would take it; None when the step stays off (precision "none")."""
        for setting in self.entry.fields:
            if setting.off is not None and values.get(setting.name) == setting.off:
                if setting.default == setting.off:
                    return None
                values = values | {setting.name: setting.default}
        return values

    def set_layers(self, graph: Any) -> None:  # a LayerGraph or None
        """A new model: per-layer tables list its layers; layers picked for the last model are cleared."""
        for name, control in self.controls.items():
            setting = self.entry.setting(name)
            if isinstance(control, LayerTable):
                control.set_layers(graph)
            elif setting.picked_by:
                control.clear()

    def toggle_layer(self, name: str, layer: str) -> None:
        """Add or remove `layer` from the names setting `name` (picked in the graph); a switch turns on."""
        control = self.controls[name]
        names = control_value(self.entry.setting(name), control)
        names = [n for n in names if n != layer] if layer in names else [*names, layer]
        control.setText(", ".join(names))
        if self.enabled is not None and names:
            self.enabled.setChecked(True)

    def save(self, store: Any) -> None:  # QSettings
        if self.enabled is not None:
            store.setValue(f"compress/{self.entry.name}", self.enabled.isChecked())
        for name, control in self.controls.items():
            setting = self.entry.setting(name)
            if setting.kind != "per_layer":
                value = control_value(setting, control)
                store.setValue(f"compress/{self.entry.name}.{name}", ", ".join(value) if setting.kind == "names" else value)

    def restore(self, value: Any) -> None:  # the panel's reader: value(key, default, kind)
        for name, control in self.controls.items():
            setting = self.entry.setting(name)
            if setting.kind == "per_layer":
                continue
            kind = {"float": float, "int": int, "bool": bool}.get(setting.kind, str)
            default = control_value(setting, control)
            set_value(setting, control, value(f"{self.entry.name}.{name}",
                                              ", ".join(default) if setting.kind == "names" else default, kind))
        if self.enabled is not None:
            self.enabled.setChecked(value(self.entry.name, False, bool))
