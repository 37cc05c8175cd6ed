"""The early-exit settings: how many exits (or after which layers), and the accuracy they may cost."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLineEdit, QSpinBox, QWidget

EXIT_TIP = ("Small heads after chosen layers answer the inputs they are sure of, and the rest of the model runs only "
            "for the others; each head's confidence threshold is set on the validation data so the whole model loses "
            "at most the budget")


class EarlyExitGroup(QGroupBox):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Early exit", parent)
        self.enabled = QCheckBox("answer confident inputs early", self)
        self.enabled.setToolTip(EXIT_TIP)
        self.exits = QSpinBox(self)
        self.exits.setRange(1, 8)
        self.exits.setValue(2)
        self.exits.setToolTip("Exits placed automatically, spread over the model's work, at the ends of its blocks")
        self.after = QLineEdit(self)
        self.after.setPlaceholderText("automatic (right-click layers in the graph)")
        self.after.setToolTip("Layers to put exits after instead; right-click a layer in the graph: Add an early exit")
        self.budget = QDoubleSpinBox(self)
        self.budget.setRange(0.0, 20.0)
        self.budget.setSingleStep(0.1)
        self.budget.setValue(0.5)
        self.budget.setSuffix(" pt")
        self.budget.setToolTip("The accuracy the exits may cost, in points, on the validation split")
        self.confidence = QComboBox(self)
        self.confidence.addItems(["max-softmax", "entropy"])
        self.confidence.setToolTip("How a head's certainty is read: its top probability, or 1 − normalised entropy")
        form = QFormLayout(self)
        form.addRow(self.enabled)
        form.addRow("Exits", self.exits)
        form.addRow("After", self.after)
        form.addRow("Budget", self.budget)
        form.addRow("Confidence", self.confidence)
        self.enabled.toggled.connect(self._refresh)
        self.after.textChanged.connect(self._refresh)
        self._refresh()

    def reset(self) -> None:
        """A new model: exits after the last model's layers mean nothing here."""
        self.after.clear()

    def set_unavailable(self, reason: str | None) -> None:
        """Turn early exit off and disable it with `reason` (a model without class scores, or a
        precision nothing can follow); None offers it again."""
        if reason:
            self.enabled.setChecked(False)
        self.enabled.setEnabled(reason is None)
        self.enabled.setToolTip(EXIT_TIP if reason is None else f"unavailable: {reason}")

    def layers(self) -> list[str]:
        return [n.strip() for n in self.after.text().split(",") if n.strip()]

    def toggle_layer(self, layer: str) -> None:
        """Add or remove an exit after `layer` (and turn early exit on)."""
        names = self.layers()
        self.after.setText(", ".join([n for n in names if n != layer] if layer in names else [*names, layer]))
        self.enabled.setChecked(bool(self.layers()) or self.enabled.isChecked())

    def settings(self) -> dict | None:
        """The step's settings, or None when early exit is off."""
        if not self.enabled.isChecked():
            return None
        where = {"at": self.layers()} if self.layers() else {"exits": self.exits.value()}
        return {**where, "budget": round(self.budget.value(), 2), "confidence": self.confidence.currentText()}

    def save(self, settings) -> None:  # noqa: ANN001 - QSettings
        settings.setValue("compress/early_exit", self.enabled.isChecked())
        settings.setValue("compress/exits", self.exits.value())
        settings.setValue("compress/exit_budget", self.budget.value())

    def restore(self, value) -> None:  # noqa: ANN001 - the settings panel's reader: value(key, default, kind)
        self.enabled.setChecked(value("early_exit", False, bool))
        self.exits.setValue(value("exits", 2, int))
        self.budget.setValue(value("exit_budget", 0.5, float))

    def _refresh(self) -> None:
        on = self.enabled.isChecked()
        for w in (self.after, self.budget, self.confidence):
            w.setEnabled(on)
        self.exits.setEnabled(on and not self.layers())
        self.changed.emit()
