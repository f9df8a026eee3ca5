"""Item 3 of the faults list: a task time limit (``ProvisionerSettings.task_timeout``, per runtime).

A kernel that runs past it is abandoned (its executor stops renewing the lease and exits), run again
elsewhere, and after ``task_attempts`` overruns the job fails naming the task: ``wait()`` returns.
The kernels block on a gate the test controls (tests/gates.py), never on a sleep.
"""

from __future__ import annotations

import json
import textwrap
import time

import numpy as np
import pytest
from gates import gated_double

import lambdapack as lp
import numpywren2 as npw
from executor.spec import EXIT_TASK_TIMEOUT
from provisioner import ProvisionerSettings

WAIT = 120.0


def gated_fan(N: int):
    """``Y[i] = 2 X[i]`` for i < N, task i waiting at gate i (gate 0 is always open)."""
    program = lp.Program.from_source(textwrap.dedent("""
        def fan(X: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = double(X[i, 0], 0.0, i)
    """), {"double": gated_double}, filename="fan.py")
    X = npw.BigMatrix.from_numpy(np.arange(1.0, N + 1).reshape(N, 1), (1, 1))
    Y = npw.BigMatrix.empty((N, 1), (1, 1))
    return program, X, Y


def settings(**kw) -> ProvisionerSettings:
    base = {"lease": 1.0, "poll_interval": 0.1, "idle_timeout": 5.0, "task_timeout": 1.0}
    return ProvisionerSettings(**{**base, **kw})


def timeouts(rt, job) -> list[dict]:
    return [json.loads(r) for r in rt.state.records(job.id, "timeouts")]


def test_a_kernel_that_never_returns_fails_the_job_naming_the_task(tmp_path, gates):
    with npw.runtime(executors=2, provisioner=settings(task_attempts=2)) as rt:
        program, X, Y = gated_fan(2)  # task 1 waits at gate 1, which is never opened
        job = npw.submit(program, X=X, Y=Y, N=2)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError, match=r"task double@L4\(i=1\) \(line 4 of fan.py\) failed: .*ran past "
                                               r"the task time limit \(task_timeout = 1 s\) on 2 of 2 attempts"):
            job.wait(timeout=WAIT)
        assert time.monotonic() - t0 < WAIT, "wait() returned"
        runs = gates.started(1)
        assert len(runs) == 2 and len(set(runs)) == 2, "the task ran twice, in two executor processes"
        overruns = timeouts(rt, job)
        assert len(overruns) == 2 and len({t["task"] for t in overruns}) == 1
        assert len({t["executor"] for t in overruns}) == 2
        assert rt.state.job(job.id)["counters"]["tasks_timed_out"] == 2


def test_a_task_that_overran_once_is_run_again_and_the_job_completes(tmp_path, gates):
    with npw.runtime(executors=1, provisioner=settings(task_attempts=3)) as rt:
        program, X, Y = gated_fan(2)
        job = npw.submit(program, X=X, Y=Y, N=2)
        deadline = time.monotonic() + WAIT
        while not timeouts(rt, job):  # the first run of task 1 overran: its executor gave it up
            assert time.monotonic() < deadline, "no overrun was recorded"
            time.sleep(0.01)
        gates.open(1)  # the next run returns
        job.wait(timeout=WAIT)
        assert np.array_equal(Y.numpy(), 2 * X.numpy())
        assert len(timeouts(rt, job)) == 1
        codes = [p.returncode for p in job.provisioner.launcher.processes.values() if p.poll() is not None]
        assert EXIT_TASK_TIMEOUT in codes, "the executor that gave the task up exited with EXIT_TASK_TIMEOUT"
