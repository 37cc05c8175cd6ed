"""The only bridge between core and Qt: core calls run on worker threads, and their
progress, results and errors come back to the GUI thread as signals. Jobs import the engine
inside the functions they run, so importing them (and the GUI) loads neither torch nor a runtime."""

from paretolab.jobs.job import Job, JobState
from paretolab.jobs.model_jobs import load_model_job

__all__ = ["Job", "JobState", "load_model_job"]
