"""Every question and message the GUI puts to the user, in one replaceable object.

Errors use non-blocking dialogs (open(), not exec()), so the app keeps running and tests
can read them. Questions that need an answer block; tests replace them with fixed answers.
"""

from __future__ import annotations

import re

from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QFileDialog, QInputDialog, QLabel, QMessageBox, QWidget

from paretolab.core.model.formats import FILE_DIALOG_FILTER, SUPPORTED

DATA_FILE_FILTER = "Data (*.npz *.npy *.txt *.jsonl *.csv *.tsv *.wav);;All files (*)"
DIALOG_WIDTH = 560  # a question's width: long explanations wrap instead of widening the dialog past the screen


def gui_words(text: str) -> str:
    """Core's messages name the CLI's flag; in a dialog that asks for the shape itself, say it the GUI's way."""
    flag = r"(give (?:a concrete shape |another length |one )?)with --input-shape(?: (?!e\.g\.)[^\s,]+)?"
    text = re.sub(flag, r"\1below", text)
    text = text.replace("(--input-shape)", "(Run > Set input shapes…)").replace("--input-shape ", "")
    return text.replace("--input-shape", "Run > Set input shapes…")


class Prompts:
    def __init__(self, parent: QWidget) -> None:
        self.parent = parent

    def error(self, title: str, message: str) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Warning, title, message, QMessageBox.StandardButton.Ok, self.parent)
        box.setObjectName("error-dialog")
        box.open()
        return box

    def info(self, title: str, message: str) -> QMessageBox:
        box = QMessageBox(QMessageBox.Icon.Information, title, message, QMessageBox.StandardButton.Ok, self.parent)
        box.setObjectName("info-dialog")
        box.open()
        return box

    def ask_choice(self, title: str, message: str, options: list[str]) -> str | None:
        choice, ok = QInputDialog.getItem(self.parent, title, message, options, 0, False)
        return choice if ok else None

    def save_path(self, title: str, start: str, file_filter: str = "") -> str | None:
        path, _ = QFileDialog.getSaveFileName(self.parent, title, start, file_filter)
        return path or None

    def confirm(self, title: str, message: str, accept: str) -> bool:
        box = QMessageBox(QMessageBox.Icon.Question, title, message, QMessageBox.StandardButton.Cancel, self.parent)
        yes = box.addButton(accept, QMessageBox.ButtonRole.AcceptRole)
        box.setDefaultButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return box.clickedButton() is yes

    def text_dialog(self, title: str, message: str, default: str = "") -> QInputDialog:
        """A one-line question whose explanation wraps: sized to its content, never wider than the screen."""
        dialog = QInputDialog(self.parent)
        dialog.setInputMode(QInputDialog.InputMode.TextInput)
        dialog.setWindowTitle(title)
        dialog.setLabelText(message)
        dialog.setTextValue(default)
        for label in dialog.findChildren(QLabel):
            label.setWordWrap(True)
        screen = self.parent.screen() or QGuiApplication.primaryScreen()
        room = screen.availableGeometry() if screen is not None else None
        width = DIALOG_WIDTH if room is None else min(DIALOG_WIDTH, room.width() - 40)
        dialog.setMinimumWidth(min(320, width))
        dialog.setMaximumWidth(width if room is None else room.width() - 20)
        dialog.resize(width, dialog.heightForWidth(width) if dialog.hasHeightForWidth() else dialog.sizeHint().height())
        return dialog

    def ask_text(self, title: str, message: str, default: str = "") -> str | None:
        dialog = self.text_dialog(title, message, default)
        ok = dialog.exec() == QInputDialog.DialogCode.Accepted
        text = dialog.textValue().strip()
        dialog.deleteLater()
        return text if ok and text else None

    def open_model_path(self, start_dir: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, f"Open a model — {SUPPORTED}", start_dir, FILE_DIALOG_FILTER)
        return path or None

    def choose_data_file(self, title: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, "", DATA_FILE_FILTER)
        return path or None

    def open_model_folder(self, start_dir: str) -> str | None:
        """A model that is a folder: a Hugging Face model (config.json beside its weights), an OpenVINO or Triton folder."""
        path = QFileDialog.getExistingDirectory(self.parent, "Open a model folder (Hugging Face: config.json and weights)",
                                                start_dir)
        return path or None

    def choose_folder(self, title: str) -> str | None:
        path = QFileDialog.getExistingDirectory(self.parent, title)
        return path or None
