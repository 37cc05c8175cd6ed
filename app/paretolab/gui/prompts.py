"""Every question and message the GUI puts to the user, in one replaceable object.

Errors use non-blocking dialogs (open(), not exec()), so the app keeps running and tests
can read them. Questions that need an answer block; tests replace them with fixed answers.
"""

from __future__ import annotations

from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox, QWidget

from paretolab.core.model.formats import FILE_DIALOG_FILTER, SUPPORTED

DATA_FILE_FILTER = "Data (*.npz *.npy *.txt *.jsonl *.csv *.tsv *.wav);;All files (*)"


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

    def ask_text(self, title: str, message: str, default: str = "") -> str | None:
        text, ok = QInputDialog.getText(self.parent, title, message, text=default)
        return text.strip() if ok and text.strip() else None

    def open_model_path(self, start_dir: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, f"Open a model — {SUPPORTED}", start_dir, FILE_DIALOG_FILTER)
        return path or None

    def choose_data_file(self, title: str) -> str | None:
        path, _ = QFileDialog.getOpenFileName(self.parent, title, "", DATA_FILE_FILTER)
        return path or None

    def choose_folder(self, title: str) -> str | None:
        path = QFileDialog.getExistingDirectory(self.parent, title)
        return path or None
