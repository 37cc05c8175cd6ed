"""JobQueue: compute jobs run one after another on worker threads, so they never compete for
the CPU they are timing; quick jobs (opening a model, renaming or deleting a variant, saving a
file) start at once beside them, so the window never waits for a sweep to finish a rename.
The queue reports each change."""

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
        self.running: Job | None = None  # the exclusive job in progress

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
        for job in self.pending():
            if not job.exclusive:
                self._start(job)
            elif self.running is None:
                self.running = job
                self._start(job)

    def _start(self, job: Job) -> None:
        job.start()
        self.started.emit(job)
