"""Item 2 of the faults list: an executor that is stopped (SIGSTOP) or hung is lost, not waited for.

- The provisioner treats an executor whose heartbeat has not been live for ``heartbeat_timeout`` as lost:
  a local one is killed by its process id and replaced (here the only executor allowed is stopped while
  its task waits at a gate, so without the replacement the job would never end).
- On the embedded (SQLite) backend a process stopped while it holds the database's write lock would stop
  every writer; the provisioner names the holder (``StateStore.write_lock``) and kills it after
  ``lock_timeout`` without a commit.  The executor here stops itself inside its completion transaction.
- A stopped executor that the provisioner cannot kill (not its own) is replaced all the same; once
  continued after the job ended, its late write and completion change nothing.

Every step waits for an event (a gate's mark, a file, a process state, the job's end), not for time.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from gates import gated_double

import lambdapack as lp
import numpywren2 as npw
from provisioner import LocalProcessLauncher, Provisioner, ProvisionerSettings

WAIT = 120.0
HERE = Path(__file__).parent


def fan_job(N: int, gate: int):
    """N independent tasks ``Y[i] = 2 X[i]``, each waiting at ``gate``."""
    program = lp.Program.from_source(textwrap.dedent(f"""
        def fan(X: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = double(X[i, 0], 0.0, {gate})
    """), {"double": gated_double}, filename="fan.py")
    X = npw.BigMatrix.from_numpy(np.arange(1.0, N + 1).reshape(N, 1), (1, 1))
    Y = npw.BigMatrix.empty((N, 1), (1, 1))
    return npw.submit(program, X=X, Y=Y, N=N), X, Y


def settings(**kw) -> ProvisionerSettings:
    base = {"lease": 2.0, "poll_interval": 0.1, "timeline_interval": 0.5, "idle_timeout": 5.0}
    return ProvisionerSettings(**{**base, **kw})


def process_state(pid: int) -> str:
    """The one-letter state of a process (``T``: stopped), from /proc."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT} s"
        time.sleep(0.01)


def check_result(rt, job, X, Y):
    assert np.array_equal(Y.numpy(), 2 * X.numpy())
    assert rt.state.job(job.id)["counters"]["completed"] == job.num_tasks


@pytest.fixture
def redis_runtime(tmp_path, redis_server):
    url = f"{redis_server.url}?prefix=t{uuid.uuid4().hex[:8]}:"
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=url, state=url, executors=0) as r:
        yield r


@pytest.fixture
def embedded_runtime(tmp_path):
    db = f"sqlite://{tmp_path}/state.db"
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=db, state=db, executors=0) as r:
        yield r


def test_a_stopped_executor_is_killed_by_pid_and_replaced(redis_runtime, gates):
    rt = redis_runtime
    job, X, Y = fan_job(3, gate=1)
    launcher = LocalProcessLauncher(max_executors=1)
    prov = Provisioner(rt.urls, job.id, launcher, settings(heartbeat_timeout=1.0)).start()
    try:
        [pid] = gates.wait_started(1, 1)  # the only executor runs its first task
        first = launcher.executor_of_pid(pid)
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: process_state(pid) == "T", "the stop")
        gates.open(1)  # the stopped one cannot pass; its replacement will
        job.wait(timeout=WAIT)
        assert prov.lost == [(first, "stale")], "the stopped executor was given up on for its stale heartbeat"
        assert not Path(f"/proc/{pid}").exists() or process_state(pid) == "Z", "and killed"
        assert len(launcher.launched) >= 2, "a replacement ran the job"
        check_result(rt, job, X, Y)
    finally:
        prov.stop(stop_executors=True)


class StopsHoldingTheLock(LocalProcessLauncher):
    """Executors whose first (by a file claimed once) stops itself holding the SQLite write lock."""

    def _command(self, spec, executor_id):
        return [self.python, str(HERE / "stop_holding_lock.py"), *spec.cli_args(executor_id)]


def test_an_executor_stopped_holding_the_embedded_write_lock_is_killed(embedded_runtime, gates):
    rt = embedded_runtime
    job, X, Y = fan_job(4, gate=0)
    launcher = StopsHoldingTheLock(max_executors=2)
    # heartbeats wait for the lock as well: only the lock rule can name the culprit here
    prov = Provisioner(rt.urls, job.id, launcher, settings(lock_timeout=1.0, heartbeat_timeout=600.0)).start()
    try:
        wait_for(lambda: list(gates.dir.glob("stopped-*")), "a stop inside a transaction")
        pid = int(next(gates.dir.glob("stopped-*")).name.split("-")[1])
        wait_for(lambda: process_state(pid) == "T", "the stop")
        assert rt.state.write_lock()[0] == pid, "the stopped process holds the write lock"
        job.wait(timeout=WAIT)
        eid = launcher.executor_of_pid(pid)
        assert prov.lost == [(eid, "lock")]
        check_result(rt, job, X, Y)
        assert rt.state.write_lock() is None
    finally:
        prov.stop(stop_executors=True)


def test_a_stopped_executor_resumed_after_the_job_changes_nothing(redis_runtime, gates):
    """The stopped executor is not the provisioner's (started by hand): it is replaced, not killed; continued
    after the job's end, it writes its tile again and completes its task a second time, to no effect."""
    rt = redis_runtime
    job, X, Y = fan_job(3, gate=1)
    spec = Provisioner(rt.urls, job.id, LocalProcessLauncher(max_executors=1), settings()).spec
    stale = subprocess.Popen([sys.executable, "-m", "executor", *spec.cli_args("x-by-hand")])
    prov = None
    try:
        [pid] = gates.wait_started(1, 1)
        assert pid == stale.pid
        os.kill(pid, signal.SIGSTOP)
        wait_for(lambda: process_state(pid) == "T", "the stop")
        # its heartbeat runs out (a few seconds): the provisioner stops counting it and launches one
        wait_for(lambda: not any(e["live"] for e in rt.state.executors(job.id)), "a stale heartbeat")
        launcher = LocalProcessLauncher(max_executors=1)
        prov = Provisioner(rt.urls, job.id, launcher, settings()).start()
        gates.open(1)
        job.wait(timeout=WAIT)
        assert len(launcher.launched) >= 1 and prov.lost == []
        done = rt.state.job(job.id)["counters"]
        os.kill(pid, signal.SIGCONT)
        assert stale.wait(timeout=WAIT) == 0, "the late executor finished its task and stopped cleanly"
        check_result(rt, job, X, Y)
        after = rt.state.job(job.id)["counters"]
        assert after["completed"] == done["completed"] == job.num_tasks, "its late completion counted nothing"
        assert rt.queue(job.id).depth() == 0, "nothing was enqueued on the ended job's queue"
    finally:
        if stale.poll() is None:
            os.kill(stale.pid, signal.SIGCONT)
            stale.kill()
        if prov is not None:
            prov.stop(stop_executors=True)
