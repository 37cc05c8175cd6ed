"""Sweeps on Ray: trials built by workers, measured at home (or on the named target), a killed
worker costing nothing but a retry, cancel and resume, and every bad cluster in one line."""

from __future__ import annotations

import contextlib
import os
import shutil
import threading
import time

import psutil
import pytest
import ray

from paretolab.core.errors import Cancelled
from paretolab.core.measure.plan import DataPlan
from paretolab.core.model.handle import load_model
from paretolab.core.pipeline import cluster as cluster_module
from paretolab.core.pipeline.cluster import ClusterError, ClusterSettings, cluster_sweep, connect
from paretolab.core.pipeline.ray_connect import connect_error
from paretolab.core.pipeline.sweep import SweepSettings
from paretolab.core.progress import Progress
from paretolab.core.sample import sample_model_path
from paretolab.core.store.experiment import Experiment

SPACE = SweepSettings(budget_s=300, sparsities=(0.0, 0.5), quantize=("none", "ort-fp16"), distill_epochs=2)


@pytest.fixture(scope="module")
def sample():
    return load_model(sample_model_path())


def _kill_the_first_trial_worker(killed: list[int], after_s: float = 0.3) -> None:
    """Watch for a Ray worker building a trial; SIGKILL it mid-trial, once."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for process in psutil.process_iter(["cmdline"]):
            command = process.info["cmdline"] or []
            if command and command[0].startswith("ray::build"):
                time.sleep(after_s)
                try:
                    process.kill()
                except psutil.NoSuchProcess:
                    continue  # it finished first: wait for the next one
                killed.append(process.pid)
                return
        time.sleep(0.02)


def test_a_cluster_sweep_survives_a_killed_worker_and_measures_at_home(sample, tmp_path):
    experiment = Experiment.for_model(sample, tmp_path)
    killed: list[int] = []
    killer = threading.Thread(target=_kill_the_first_trial_worker, args=(killed,), daemon=True)
    killer.start()
    seen = []
    result = cluster_sweep(sample, DataPlan.from_spec("digits", sample), experiment, SPACE, ClusterSettings(workers=2),
                           torch_edits=True, on_variant=seen.append)
    killer.join(timeout=5)
    assert killed, "no trial worker was seen to kill"
    stored = {v.name: v for v in experiment.variants()}
    assert {v.name for v in seen} == set(stored)  # every finished trial is in the experiment
    # the killed trial was run again by Ray (or, past its retries, reported): nothing silently lost
    assert result.exhausted and len(stored) == 8 or result.failed
    for v in stored.values():
        assert v.metrics["measured_by"]["pid"] == os.getpid()  # latencies measured in the driver's process
        assert v.metrics["built_by"]["pid"] not in (os.getpid(), killed[0])  # built on workers, never the dead one
    assert not ray.is_initialized()  # the local instance it started is shut down

    resumed = cluster_sweep(sample, DataPlan.from_spec("digits", sample), experiment, SPACE, ClusterSettings(workers=2),
                            torch_edits=True)
    assert resumed.exhausted and resumed.variants == []  # a resume never re-runs a measured setting


def test_measured_on_the_named_target_and_cancel_keeps_finished_trials(sample, tmp_path):
    ray.init(num_cpus=2, resources={"target_xeon": 1}, include_dashboard=False, log_to_driver=False)
    try:
        experiment = Experiment.for_model(sample, tmp_path)
        two = SweepSettings(budget_s=300, trials=2, sparsities=(0.0,), quantize=("none", "ort-fp16"))
        plan = DataPlan.from_spec("digits", sample)
        plan.output_kinds = {"logits": "regression"}  # --output-kind: it travels with the plan to every worker
        result = cluster_sweep(sample, plan, experiment, two, ClusterSettings(measure_on="target_xeon"),
                               torch_edits=False)
        assert result.variants
        for v in result.variants:
            assert v.metrics["measured_by"]["pid"] != os.getpid()  # a worker holding the resource measured it
            assert v.measured.latency_ms > 0 and v.measured.top1 > 0.9
            assert [f["kind"] for f in v.metrics["fidelity"]] == ["regression"]  # judged as the user said, there

        progress = Progress()
        progress.cancel()
        with pytest.raises(Cancelled):
            cluster_sweep(sample, DataPlan.from_spec("digits", sample), Experiment.for_model(sample, tmp_path / "c"),
                          SPACE, ClusterSettings(), torch_edits=True, progress=progress)
        assert ray.is_initialized()  # a cluster the caller connected to stays up
    finally:
        ray.shutdown()


def test_bad_clusters_are_one_line_before_any_trial(sample, tmp_path, monkeypatch):
    with (pytest.raises(ClusterError, match=r"cannot reach the Ray cluster at ray://127.0.0.1:9 \(.*ray start --head"),
          connect(ClusterSettings(address="ray://127.0.0.1:9"))):
        pass
    with pytest.raises(ClusterError, match="no node of the cluster has the resource 'target_xeon'.*ray start --resources"):
        cluster_sweep(sample, DataPlan.from_spec("digits", sample), Experiment.for_model(sample, tmp_path), SPACE,
                      ClusterSettings(workers=1, measure_on="target_xeon"), torch_edits=False)
    assert not list(tmp_path.rglob("*.onnx"))  # nothing started, nothing written
    assert "install the same on both" in connect_error(
        "auto", RuntimeError("Version mismatch: The cluster was started with Ray 2.9 but this is 2.60"))

    class NodeWithout:
        def remote(self, *_):
            return self

        def options(self, **_):
            return self

        def cluster_resources(self):
            return {"CPU": 2}

        def nodes(self):
            return [{"NodeID": "n1", "Alive": True}]

        def get(self, _refs):
            return [("gpu-box-3", ["openvino"])]

    monkeypatch.setattr(cluster_module, "_on_node", lambda node: None)
    with pytest.raises(ClusterError, match="node gpu-box-3 cannot build trials: it lacks openvino"):
        cluster_module._check_resources(NodeWithout(), ClusterSettings())

    import builtins

    real_import = builtins.__import__
    monkeypatch.setattr(builtins, "__import__",
                        lambda name, *a, **k: (_ for _ in ()).throw(ImportError(name)) if name == "ray" else real_import(
                            name, *a, **k))
    with pytest.raises(ClusterError, match=r"Ray is not installed: pip install 'paretolab\[ray\]'"), \
            connect(ClusterSettings()):
        pass


@pytest.mark.parametrize(("address", "says"), [
    ("host:99999", "--ray host:99999: port out of range"),
    (":abc", "--ray :abc: port could not be cast to integer value"),
    ("127.0.0.1", "--ray 127.0.0.1: no port; give HOST:PORT"),
    (":6379", "--ray :6379: no host"),
    ("http://127.0.0.1:6379", "--ray http://127.0.0.1:6379: give HOST:PORT"),
])
def test_bad_ray_addresses_are_one_line(address, says):
    with pytest.raises(ClusterError) as caught, connect(ClusterSettings(address=address)):
        pass
    assert str(caught.value).startswith(says) and "\n" not in str(caught.value)


def test_a_port_that_accepts_and_stays_silent_fails_in_one_line_within_the_time_box():
    import socket

    accepted = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
        start = time.monotonic()
        with pytest.raises(ClusterError) as caught, connect(ClusterSettings(address=f"127.0.0.1:{port}")):
            pass
        took = time.monotonic() - start
    for conn, _ in accepted:
        conn.close()
    assert accepted, "the probe never connected"
    assert str(caught.value).startswith(f"127.0.0.1:{port} is not a Ray cluster (no answer within 5 s)")
    assert took < 30  # Ray itself waited > 240 s on such a port
    assert not ray.is_initialized()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture()
def token_cluster(tmp_path):
    """A `ray start --head` cluster with token authentication on a loopback port, in its own session
    and temp folder (not /tmp/ray, so no other ray.init() on this machine finds it); stopped by
    killing that session only (`ray stop` would stop every Ray on the machine)."""
    import signal
    import subprocess
    import sys
    import tempfile
    from pathlib import Path

    from paretolab.core.pipeline.ray_connect import check_reachable

    folder = Path(tempfile.mkdtemp(prefix="plr-", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    (folder / "token").write_text(os.urandom(16).hex())
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(folder / "token"), HOME=str(folder))
    ray_cli = Path(sys.executable).with_name("ray")
    log = (folder / "head.log").open("wb")
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--block", f"--port={port}", "--num-cpus=1", "--resources={\"target\": 1}",
         "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={folder / 't'}"],
        env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                check_reachable(f"127.0.0.1:{port}")
                break
            except ClusterError:
                if head.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"`ray start --head` did not come up here: {(folder / 'head.log').read_text()[-300:]}")
                time.sleep(1)
        yield port, folder / "token", folder
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            head.wait(timeout=30)
        time.sleep(2)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)  # the GCS, raylet and agents share its session
        head.wait(timeout=30)
        log.close()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_a_cluster_with_token_authentication_is_joined_or_named_in_one_line(token_cluster, tmp_path):
    import subprocess
    import sys

    port, token, home = token_cluster
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    base.update(HOME=str(home / "driver"), PARETOLAB_LOG_DIR=str(tmp_path / "log"))
    command = [sys.executable, "-m", "paretolab", "sweep", str(sample_model_path()), "--ray", f"127.0.0.1:{port}",
               "--measure-on", "target", "--budget", "60s", "--trials", "1", "--out", str(tmp_path / "exp")]
    start = time.monotonic()
    refused = subprocess.run(command, env=base, capture_output=True, text=True, timeout=300)
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.count("\n") == 1, refused.stderr  # none of Ray's InvalidAuthToken warnings
    assert "uses token authentication; set RAY_AUTH_MODE=token" in refused.stderr and "RAY_AUTH_TOKEN" in refused.stderr
    assert time.monotonic() - start < 120
    assert "InvalidAuthToken" in (tmp_path / "log" / "paretolab.log").read_text()  # Ray's words went to the log

    joined = subprocess.run(command, env=base | {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)},
                            capture_output=True, text=True, timeout=300)
    assert joined.returncode == 0, joined.stderr
    assert "1 trial" in joined.stdout
    assert joined.stderr.splitlines() == [line for line in joined.stderr.splitlines() if line.startswith("v1: ")]
