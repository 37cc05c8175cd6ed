"""JobQueue: jobs run one after another on worker threads; the queue reports each change."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from paretolab.jobs.job import Job, JobState


class JobQueue(QObject):
    added = Signal(object)  # Job
    started = Signal(object)
    finished = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.jobs: list[Job] = []
        self.running: Job | None = None

    def submit(self, job: Job) -> Job:
        self.jobs.append(job)
        job.finished.connect(lambda job=job: self._on_finished(job))
        self.added.emit(job)
        self._start_next()
        return job

    def pending(self) -> list[Job]:
        return [j for j in self.jobs if j.state == JobState.WAITING]

    def active(self) -> list[Job]:
        return [j for j in self.jobs if j.state in (JobState.WAITING, JobState.RUNNING)]

    def cancel(self, job: Job) -> None:
        if job.state == JobState.WAITING:  # never started: just drop it
            job.state = JobState.CANCELLED
            job.cancelled.emit()
            job.finished.emit()
        else:
            job.cancel()

    def cancel_all(self) -> None:
        for job in list(self.active()):
            self.cancel(job)

    def _on_finished(self, job: Job) -> None:
        if job is self.running:
            self.running = None
        self.finished.emit(job)
        self._start_next()

    def _start_next(self) -> None:
        if self.running is not None:
            return
        waiting = self.pending()
        if waiting:
            self.running = waiting[0]
            self.running.start()
            self.started.emit(self.running)
