"""``provisioner.DaskLauncher`` against a real Dask cluster: ``dask scheduler`` and ``dask worker`` processes
on loopback, started here and stopped by their process ids."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import numpywren2 as npw
from executor.spec import ExecutorSpec, environment
from provisioner import DaskLauncher

distributed = pytest.importorskip("distributed", reason="the dask extra is not installed (pip install '.[dask]')")

WORKERS = 2


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _address(scheduler_file: Path) -> str | None:
    try:
        return json.loads(scheduler_file.read_text())["address"]
    except (OSError, ValueError, KeyError):  # not written yet, or not whole yet
        return None


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A scheduler and WORKERS single-threaded worker processes declaring ``npw_executor=1`` each."""
    d = tmp_path_factory.mktemp("dask")
    sched_file = d / "scheduler.json"
    dask = str(Path(sys.executable).with_name("dask"))
    env = environment()  # one BLAS thread, this source tree importable: what an executor host needs
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(sched_file)], env=env, stdin=subprocess.DEVNULL,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs = [scheduler]
    try:
        deadline = time.monotonic() + 60
        while (address := _address(sched_file)) is None:
            assert scheduler.poll() is None, "dask scheduler exited at start"
            assert time.monotonic() < deadline, "dask scheduler wrote no scheduler file within 60 s"
            time.sleep(0.05)
        procs.append(subprocess.Popen([dask, "worker", address, "--nworkers", str(WORKERS), "--nthreads", "1",
                                       "--no-dashboard", "--resources", "npw_executor=1",
                                       "--local-directory", str(d)], env=env, stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        with distributed.Client(address) as client:
            client.wait_for_workers(WORKERS, timeout=60)
            # a worker is listed before its resources are: wait until the scheduler reports every executor slot
            deadline = time.monotonic() + 60
            while sum(w.get("resources", {}).get("npw_executor", 0)
                      for w in client.scheduler_info()["workers"].values()) < WORKERS:
                assert time.monotonic() < deadline, "the dask workers' npw_executor resources were not reported in 60 s"
                time.sleep(0.05)
            yield address, client
    finally:
        for p in reversed(procs):
            _stop(p)


def spd(n: int) -> np.ndarray:
    g = np.random.default_rng(3).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def test_cholesky_runs_on_dask_workers(dask_cluster, redis_server, tmp_path):
    _, client = dask_cluster
    url = f"{redis_server.url}?prefix=dask{time.monotonic_ns()}:"
    launcher = DaskLauncher(client, resources={"npw_executor": 1})
    assert launcher.default_max_executors == WORKERS  # the cluster's capacity in executors
    with npw.runtime(store=f"file://{tmp_path}/tiles", queue=url, state=url):
        X = spd(256)
        A, L = npw.BigMatrix.from_numpy(X, 64), npw.BigMatrix.empty((256, 256), 64)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=4, launcher=launcher)
        job.wait(timeout=120)
        Ln = L.numpy()
        assert np.linalg.norm(X - Ln @ Ln.T) / np.linalg.norm(X) <= 10 * 256 * np.finfo(float).eps
        records = job.task_records()
        assert {r["executor"] for r in records} <= set(launcher.futures), "every task ran on a Dask executor"
        assert job.local_executors == []
        # waited for inside the runtime: its close cancels the executors still running, which on a loaded
        # machine were all of them (none had read the job's end yet)
        futures = list(launcher.futures.values())
        try:
            distributed.wait(futures, timeout=60)  # each stops by itself once the job is done
        except distributed.client.FuturesCancelledError:
            pass  # one the provisioner stopped while the job ran (its heartbeat went stale)
    ran = [f for f in futures if not f.cancelled()]
    assert ran and sum(f.result() for f in ran) >= job.num_tasks
    exits = launcher.reap()
    assert sorted(e.executor for e in exits) == sorted(launcher.futures)
    for e in exits:  # finished cleanly, or never started and cancelled by the stop at the job's end
        assert e.returncode == 0 or (e.returncode == -15 and e.killed_by_launcher == "stop"), e
    assert launcher.alive() == set()
    assert client.status == "running", "a client passed in is left open"


def test_an_executor_that_fails_is_reaped_with_its_error(dask_cluster, redis_server, tmp_path):
    _, client = dask_cluster
    url = f"{redis_server.url}?prefix=daskerr{time.monotonic_ns()}:"
    launcher = DaskLauncher(client)
    [eid] = launcher.launch(ExecutorSpec(f"file://{tmp_path}/tiles", url, url, "no-such-job"), 1)
    distributed.wait([launcher.futures[eid]], timeout=60)
    assert launcher.reap() == [distributed_exit(eid, 1)]
    assert isinstance(launcher.error(eid), KeyError)
    assert launcher.reap() == []  # reported once


def test_stop_and_kill_cancel_executors_that_have_not_started(dask_cluster, redis_server, tmp_path):
    address, _ = dask_cluster
    url = f"{redis_server.url}?prefix=daskstop{time.monotonic_ns()}:"
    launcher = DaskLauncher(address, resources={"no_such_resource": 1})  # no worker has it: they stay queued
    assert launcher.default_max_executors == 1
    spec = ExecutorSpec(f"file://{tmp_path}/tiles", url, url, "no-such-job")
    a, b, c = launcher.launch(spec, 3)
    assert launcher.alive({}) == {a, b, c}
    assert launcher.kill(a) and not launcher.kill("x-unknown")
    launcher.stop()  # cancels them: done at once, on the client's side
    exits = {e.executor: e for e in launcher.reap()}
    assert set(exits) == {a, b, c} and all(e.killed_by_launcher == "stop" for e in exits.values())
    assert launcher.alive({}) == set()
    assert launcher.client.status in ("closed", "closing"), "a client made by the launcher is closed"


def distributed_exit(eid: str, code: int):
    from provisioner import ExitedExecutor

    return ExitedExecutor(eid, code, None)


def test_a_standalone_provisioner_launches_on_the_dask_cluster(dask_cluster, redis_server, tmp_path):
    """``python -m provisioner --launcher dask --dask-scheduler ADDRESS`` provisions a job submitted elsewhere
    (``executors=0``): every task runs in an executor on the Dask workers."""
    import signal

    from provisioner.__main__ import main

    address, _ = dask_cluster
    url = f"{redis_server.url}?prefix=daskcli{time.monotonic_ns()}:"
    with npw.runtime(store=f"file://{tmp_path}/tiles", queue=url, state=url, executors=0) as rt:
        X = spd(128)
        A, L = npw.BigMatrix.from_numpy(X, 64), npw.BigMatrix.empty((128, 128), 64)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=2)
        handler = signal.getsignal(signal.SIGTERM)
        try:
            assert main(["--store", rt.urls["store"], "--queue", url, "--state", url, "--job", job.id,
                         "--launcher", "dask", "--dask-scheduler", address, "--dask-resources", "npw_executor=1",
                         "--idle-timeout", "2", "--poll-interval", "0.2"]) == 0
        finally:
            signal.signal(signal.SIGTERM, handler)
        job.wait(timeout=60)
        Ln = L.numpy()
        assert np.linalg.norm(X - Ln @ Ln.T) / np.linalg.norm(X) <= 10 * 128 * np.finfo(float).eps
        assert job.local_executors == []
        executors = {r["executor"] for r in job.task_records()}
        assert executors and all(e.startswith("x-") for e in executors)
