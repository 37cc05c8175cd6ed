"""Sweeps on a Ray cluster: trials are built on any worker, measured on the target, kept at home.

Optuna still searches from the driver (ask/tell), so the study's journal stays the one file a
resumed sweep reads. Each trial's variant is built by a Ray task — pruning, distillation,
calibration: the expensive part — on whichever worker has a CPU free; its file comes back through
the object store and is measured against the original where the numbers count: in this process
by default, or on the nodes that carry the Ray resource the user names (a latency measured on
another machine is another number, so each variant records who built and who measured it).
It is then written into the experiment like a local variant. The model is put in the object
store once; a worker that dies loses only its trial, which Ray runs again up to `retries` times.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paretolab.core.compress.variant import Recipe, Variant
from paretolab.core.errors import ParetoLabError, first_line
from paretolab.core.files import atomic_write
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import ModelHandle
from paretolab.core.pipeline import ray_tasks
from paretolab.core.pipeline.optimize import measure_backend, record_variant
from paretolab.core.pipeline.ray_connect import ClusterError, check_reachable, connect_error, ray_output_to_log
from paretolab.core.pipeline.sweep import SweepResult, SweepSettings, sweep
from paretolab.core.pipeline.trials import Finished
from paretolab.core.progress import Progress
from paretolab.core.store.experiment import Experiment

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterSettings:
    address: str | None = None  # None: a Ray instance on this machine; "auto", "HOST:PORT" or "ray://HOST:10001"
    measure_on: str | None = None  # a Ray custom resource naming the target nodes; None: this process measures
    workers: int | None = None  # trials in flight (and CPUs of a local instance); default: the cluster's CPUs
    retries: int = 2  # times Ray runs a trial again after its worker died


@contextlib.contextmanager
def connect(settings: ClusterSettings) -> Iterator[Any]:
    """The `ray` module, connected: to a new local instance (shut down afterwards), or to the cluster
    at `settings.address`. Every reason it cannot serve is one line, before any trial starts."""
    try:
        import ray
    except ImportError:
        raise ClusterError("Ray is not installed: pip install 'paretolab[ray]' (the same version on every node)") from None
    started = False
    if not ray.is_initialized():
        check_reachable(settings.address)
        failure: Exception | None = None
        with ray_output_to_log() as said:  # Ray's retries warn once a second: into the log file
            try:
                kwargs: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False, "include_dashboard": False}
                if settings.address is None:
                    ray.init(num_cpus=settings.workers or os.cpu_count(), **kwargs)
                else:
                    ray.init(address=settings.address, **kwargs)
            except Exception as exc:  # Ray's own errors: unreachable, version mismatch, token refused...
                failure = exc
        if failure is not None:
            raise ClusterError(connect_error(settings.address, failure, "".join(said))) from None
        started = True
    try:
        _check_resources(ray, settings)
        yield ray
    finally:
        if started:
            with ray_output_to_log():
                ray.shutdown()


def _check_resources(ray: Any, settings: ClusterSettings) -> None:
    resources = ray.cluster_resources()
    if settings.measure_on and resources.get(settings.measure_on, 0) <= 0:
        custom = sorted(k for k in resources if k not in ("CPU", "GPU", "memory", "object_store_memory")
                        and not k.startswith("node:") and not k.startswith("accelerator_type:"))
        raise ClusterError(f"no node of the cluster has the resource '{settings.measure_on}' "
                           f"(custom resources there: {', '.join(custom) or 'none'}); start the target with "
                           f"ray start --resources='{{\"{settings.measure_on}\": 1}}'")
    check = ray.remote(ray_tasks.runtimes_check)  # one check per node: each must import what trials use
    missing = ray.get([check.options(scheduling_strategy=_on_node(node["NodeID"])).remote()
                       for node in ray.nodes() if node["Alive"]])
    for node, lacks in missing:
        if lacks:
            raise ClusterError(f"node {node} cannot build trials: it lacks {', '.join(lacks)}; install paretolab there "
                               "(pip install 'paretolab[ray]')")


def _on_node(node_id: str) -> Any:
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def cluster_description(ray: Any) -> str:
    """"4 CPUs, 0 GPUs on 1 node"."""
    resources = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n["Alive"])
    return f"{resources.get('CPU', 0):.0f} CPUs, {resources.get('GPU', 0):.0f} GPUs on {nodes} node{'s' * (nodes != 1)}"


# -- the runner ------------------------------------------------------------------------------

def cluster_sweep(handle: ModelHandle, data: DataPlan, experiment: Experiment, settings: SweepSettings,
                  cluster: ClusterSettings, *, torch_edits: bool, progress: Progress | None = None,
                  on_variant: Callable[[Variant], None] | None = None) -> SweepResult:
    """The sweep of pipeline/sweep.py with its trials as Ray tasks (see the module's docstring)."""
    return sweep(handle, data, experiment, settings, torch_edits=torch_edits, progress=progress, on_variant=on_variant,
                 runner=RayRunner(cluster))


def sweep_on(cluster: ClusterSettings | None, handle: ModelHandle, data: DataPlan, experiment: Experiment,
             settings: SweepSettings, *, torch_edits: bool, progress: Progress | None = None,
             on_variant: Callable[[Variant], None] | None = None) -> SweepResult:
    """A sweep in this process (`cluster` None) or with its trials on Ray: what the CLI and the app call."""
    if cluster is None:
        return sweep(handle, data, experiment, settings, torch_edits=torch_edits, progress=progress, on_variant=on_variant)
    return cluster_sweep(handle, data, experiment, settings, cluster, torch_edits=torch_edits, progress=progress,
                         on_variant=on_variant)


def _write_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)


class RayRunner:
    """The trials out on the cluster, and how each finished one comes home: the runner of the
    sweep's one trial loop (trials.py) for Ray, a trial per free worker (`workers`, default the
    cluster's CPUs)."""

    def __init__(self, cluster: ClusterSettings) -> None:
        self.cluster = cluster
        self.width = 1  # set once connected
        self.flying: dict[Any, tuple[Any, Recipe, str]] = {}  # Ray reference -> (trial, recipe, its key)
        self.built_on: dict[str, int] = {}

    @contextlib.contextmanager
    def opened(self, handle: ModelHandle, data: DataPlan, experiment: Experiment, progress: Progress,
               fraction: Callable[[], float]) -> Iterator[None]:
        """Connected, with the model and the data plan put in the object store once."""
        with connect(self.cluster) as ray:
            self.ray, self.progress = ray, progress
            self.build = ray.remote(ray_tasks.build).options(max_retries=self.cluster.retries, num_cpus=1)
            self.measure = ray.remote(ray_tasks.measure)
            self.about = cluster_description(ray)
            self.cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
            self.width = self.cluster.workers or self.cpus
            self.model_ref, self.plan_ref = ray.put(ray_tasks.model_payload(handle)), ray.put(data)
            self.handle, self.data, self.experiment = handle, data, experiment
            yield

    def asked(self, number: int) -> None:
        pass  # the status line says what is out

    def building(self) -> set[str]:
        return {key for _, _, key in self.flying.values()}

    def submit(self, trial: Any, recipe: Recipe, key: str) -> None:
        """Build on any worker; with a target resource, measure there as soon as the build exists
        (a whole unit of the resource and no CPU: one measurement per target node at a time)."""
        backend = measure_backend(recipe, None, "cpu")
        ref = self.build.remote(self.model_ref, self.plan_ref, recipe.to_dict(), 1, backend)
        if self.cluster.measure_on:
            ref = self.measure.options(num_cpus=0, resources={self.cluster.measure_on: 1}, max_retries=self.cluster.retries
                                       ).remote(self.model_ref, self.plan_ref, ref, backend)
        self.flying[ref] = (trial, recipe, key)

    def status(self, failed: int) -> str:
        """"cluster 4 CPUs, 0 GPUs on 1 node: 2 running, 1 queued, 0 failed; built so far by node-a: 4,
        node-b: 3" for the Jobs panel."""
        running = min(len(self.flying), self.cpus)
        nodes = ", ".join(f"{host}: {n}" for host, n in sorted(self.built_on.items()))
        return (f"cluster {self.about}: {running} running, {len(self.flying) - running} queued, {failed} failed"
                + (f"; built so far by {nodes}" if nodes else ""))

    def collect(self) -> Iterator[Finished]:
        """The trials that finished within half a second: each measured and saved, or its error."""
        done, _ = self.ray.wait(list(self.flying), num_returns=1, timeout=0.5)
        self.progress.check()
        for ref in done:
            trial, recipe, _ = self.flying.pop(ref)
            try:
                built = self.ray.get(ref)
            except Exception as exc:  # the trial's own error, or its worker died more often than retried
                cause = getattr(exc, "cause", None) or exc
                yield trial, recipe, None, first_line(cause)
                continue
            host = built["built_by"]["host"]
            self.built_on[host] = self.built_on.get(host, 0) + 1
            try:
                yield trial, recipe, self._home(recipe, built), None
            except ParetoLabError as exc:
                yield trial, recipe, None, str(exc)

    def _home(self, recipe: Recipe, built: dict) -> Variant:
        """Write the built file into the experiment under a new name, measure it, save it."""
        backend = measure_backend(recipe, None, "cpu")
        with self.experiment.new_name() as name:
            artifact = self._write(name, built["files"], built["artifact"])
            extra = {"built_by": built["built_by"]}
            if "metrics" not in built:  # measured here, one variant at a time: timings never overlap
                return record_variant(self.handle, recipe, self.data, self.experiment, name, artifact, built["reports"],
                                      backend=backend, progress=Progress(lambda f, m: self.progress.check()), extra=extra)
            variant = Variant(name, recipe, artifact, str(self.handle.path), {**built["metrics"], **extra}, built["reports"])
            self.experiment.save(variant)
            return variant

    def _write(self, name: str, files: dict[str, bytes], artifact: str) -> Path:
        """The variant's files under `name`, the measured one (suffix `artifact`) last."""
        folder = self.experiment.folder
        folder.mkdir(parents=True, exist_ok=True)
        for suffix in sorted(files, key=lambda s: s == artifact):
            atomic_write(folder / f"{name}{suffix}", functools.partial(_write_bytes, data=files[suffix]))
        return folder / f"{name}{artifact}"

    def cancel_all(self, study: Any) -> None:
        from optuna.trial import TrialState

        for ref, (trial, _, _) in list(self.flying.items()):
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
            with contextlib.suppress(Exception):
                study.tell(trial, state=TrialState.FAIL)
        self.flying.clear()

