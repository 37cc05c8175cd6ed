"""Jobs: each with its progress, current step, elapsed time, ETA and a cancel button; the
selected (or running) job's log below."""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QHeaderView,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from paretolab.jobs.job import Job, JobState
from paretolab.jobs.queue import JobQueue


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes, secs = divmod(int(round(seconds)), 60)
    return f"{minutes}:{secs:02d}"


class JobsPanel(QWidget):
    COLUMNS = ("Job", "State", "Progress", "Step", "Elapsed", "ETA", "")

    def __init__(self, queue: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.queue = queue
        self.rows: list[Job] = []
        self.table = QTableWidget(0, len(self.COLUMNS), self)
        self.table.setHorizontalHeaderLabels(self.COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)  # Cancel stays in view in a laptop's dock
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Fixed)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        header.setMinimumSectionSize(40)
        self.table.setColumnWidth(2, 80)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long titles keep their start and end
        self.table.itemSelectionChanged.connect(self._show_log)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(2000)
        splitter = QSplitter(Qt.Orientation.Vertical, self)
        splitter.addWidget(self.table)
        splitter.addWidget(self.log)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        queue.added.connect(self._add)
        self._clock = QTimer(self)  # elapsed/ETA tick once a second, not on every progress message
        self._clock.setInterval(1000)
        self._clock.timeout.connect(self._tick)
        self._clock.start()

    def _add(self, job: Job) -> None:
        row = self.table.rowCount()
        self.rows.append(job)
        self.table.insertRow(row)
        for col, text in enumerate((job.title, job.state.value, "", "", "", "", "")):
            if col not in (2, 6):
                self.table.setItem(row, col, _item(text))
        bar = QProgressBar(self.table)
        bar.setRange(0, 1000)
        self.table.setCellWidget(row, 2, bar)
        cancel = QPushButton("Cancel", self.table)
        cancel.clicked.connect(lambda _=False, job=job: self.queue.cancel(job))
        self.table.setCellWidget(row, 6, cancel)
        job.progressed.connect(lambda fraction, message, job=job: self._progress(job, fraction, message))
        job.finished.connect(lambda job=job: self._update(job))
        self.table.resizeColumnToContents(0)
        self.table.setColumnWidth(0, min(self.table.columnWidth(0), 240))

    def forget(self, jobs: list[Job]) -> None:
        """Take finished jobs off the list (and the queue's), e.g. failed opens once a later open worked."""
        for job in jobs:
            if job in self.rows and job.state not in (JobState.WAITING, JobState.RUNNING):
                self.table.removeRow(self._row(job))
                self.rows.remove(job)
                if job in self.queue.jobs:
                    self.queue.jobs.remove(job)

    def _row(self, job: Job) -> int:
        return self.rows.index(job)

    def _progress(self, job: Job, fraction: float, message: str) -> None:
        row = self._row(job)
        self.table.cellWidget(row, 2).setValue(int(fraction * 1000))
        self.table.item(row, 3).setText(message)
        if self._log_job() is job:
            self.log.appendPlainText(message)

    def _update(self, job: Job) -> None:
        row = self._row(job)
        self.table.item(row, 1).setText(job.state.value)
        self.table.item(row, 4).setText(_clock(job.elapsed()))
        self.table.item(row, 5).setText("")
        if job.state == JobState.DONE:
            self.table.cellWidget(row, 2).setValue(1000)
        if job.state == JobState.FAILED:
            self.table.item(row, 3).setText(str(job.error))
        self.table.cellWidget(row, 6).setEnabled(False)
        if self._log_job() is job:
            self._show_log()

    def _tick(self) -> None:
        for row, job in enumerate(self.rows):
            if job.state == JobState.RUNNING:
                self.table.item(row, 1).setText(job.state.value)
                self.table.item(row, 4).setText(_clock(job.elapsed()))
                self.table.item(row, 5).setText(_clock(job.eta()))

    def _log_job(self) -> Job | None:
        rows = self.table.selectionModel().selectedRows()
        if rows:
            return self.rows[rows[0].row()]
        return self.queue.running

    def _show_log(self) -> None:
        job = self._log_job()
        self.log.setPlainText("\n".join(job.log) if job else "")


def _item(text: str) -> QTableWidgetItem:
    item = QTableWidgetItem(text)
    item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
    return item
