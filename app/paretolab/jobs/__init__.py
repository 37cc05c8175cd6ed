"""The only bridge between core and Qt: core calls run on worker threads, and their
progress, results and errors come back to the GUI thread as signals."""

from paretolab.jobs.job import Job, JobState
from paretolab.jobs.model_jobs import LoadedModel, load_model_job

__all__ = ["Job", "JobState", "LoadedModel", "load_model_job"]
