"""GUI fixtures, with napari's habit: a test that leaves a worker thread or a window
behind fails, because leaked threads are what makes Qt suites crash and hang."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QSettings, QThreadPool
from PySide6.QtWidgets import QApplication

from paretolab.core.sample import sample_model_path
from paretolab.gui.main_window import MainWindow


@pytest.fixture(autouse=True)
def no_leaked_threads_or_windows(qapp):
    before = set(QApplication.topLevelWidgets())
    yield
    assert QThreadPool.globalInstance().waitForDone(20_000), "a worker thread is still running"
    QApplication.processEvents()
    leaked = [w for w in QApplication.topLevelWidgets() if w not in before and w.isVisible()]
    assert not leaked, f"widgets left open: {leaked}"


@pytest.fixture()
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


class FakePrompts:
    """Answers the window's questions the way a test decides, and records what it was told."""

    def __init__(self, confirm: bool = True, text: str | None = None) -> None:
        self.confirm_answer, self.text_answer = confirm, text
        self.errors: list[tuple[str, str]] = []
        self.infos: list[tuple[str, str]] = []
        self.questions: list[str] = []
        self.choice: str | None = None  # the start of the option ask_choice picks
        self.path: str | None = None  # what save_path answers
        self.offered: list[list[str]] = []  # the options of each ask_choice
        self.filters: list[str] = []  # the file filter of each save_path

    def error(self, title: str, message: str) -> None:
        self.errors.append((title, message))

    def confirm(self, title: str, message: str, accept: str) -> bool:
        self.questions.append(message)
        return self.confirm_answer

    def ask_text(self, title: str, message: str, default: str = "") -> str | None:
        self.questions.append(message)
        return self.text_answer

    def open_model_path(self, start_dir: str) -> str | None:
        return self.text_answer

    def choose_folder(self, title: str) -> str | None:
        return self.path

    def open_model_folder(self, start_dir: str) -> str | None:
        return self.path

    def choose_data_file(self, title: str) -> str | None:
        return self.path

    def info(self, title: str, message: str) -> None:
        self.infos.append((title, message))

    def ask_choice(self, title: str, message: str, options: list[str]) -> str | None:
        self.questions.append(message)
        self.offered.append(list(options))
        return next((o for o in options if self.choice and o.startswith(self.choice)), None)

    def save_path(self, title: str, start: str, file_filter: str = "") -> str | None:
        self.filters.append(file_filter)
        return self.path


@pytest.fixture()
def window(qtbot, settings, tmp_path):
    win = MainWindow(settings=settings, experiments_root=tmp_path / "variants")
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()


def open_and_wait(qtbot, window, path, **kwargs):
    """Open `path` and wait for the window to finish every job it chains (trust, shape)."""
    window.open_model(path, **kwargs)
    qtbot.waitUntil(lambda: window.job is None, timeout=60_000)


@pytest.fixture()
def studio_window(qtbot, window):
    """The window on the built-in sample, answering questions like a user who says yes."""
    window.prompts = FakePrompts()
    open_and_wait(qtbot, window, sample_model_path())
    return window
