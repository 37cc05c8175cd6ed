"""A wheel turned over a spin box, slider or list while scrolling a panel must scroll the panel,
not change the value under the pointer (Samples 128 → 138 unnoticed): values take the wheel only
once the user clicked into them."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QAbstractSlider, QAbstractSpinBox, QApplication, QComboBox, QScrollArea, QScrollBar, QWidget

GUARDED = (QAbstractSpinBox, QAbstractSlider, QComboBox)


class WheelGuard(QObject):
    def __init__(self, scroll: QScrollArea | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scroll = scroll  # where an unfocused control's wheel goes instead

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt's name
        if event.type() != QEvent.Type.Wheel or not isinstance(watched, QWidget) or watched.hasFocus():
            return False
        if self.scroll is not None:
            QApplication.sendEvent(self.scroll.verticalScrollBar(), event)
        return True

    def guard(self, root: QWidget) -> None:
        """Every value control under `root` (again for controls added later; a filter is installed once)."""
        for widget in root.findChildren(QWidget):
            if isinstance(widget, GUARDED) and not isinstance(widget, QScrollBar) and not widget.property("wheel_guarded"):
                widget.setFocusPolicy(Qt.FocusPolicy.StrongFocus)  # the wheel no longer gives focus
                widget.installEventFilter(self)
                widget.setProperty("wheel_guarded", True)
