"""Item 8 of the faults list, short form: consecutive small jobs under random faults (seeded).

Each job is a gated two-step fan (its last task waits at a gate of its own) or a Cholesky
factorisation.  While a fan's last task is held at its gate, one fault from the list is injected into
the executor running it or into the queue: SIGKILL, SIGSTOP (the other executor runs the task once its lease runs out,
or the provisioner finds the heartbeat stale and kills the stopped one; one left stopped is continued at
the end and must then exit by itself), every task of the job sent again (duplicates of done and not-done tasks), or
none; then the gate opens.  A Cholesky gets its starter task sent three more times.  After every job:
the answer is right, each task counted once, no scratch tile, no message and no executor process left.
The full form (``bench/soak.py``) runs more jobs with the same faults.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import textwrap

import numpy as np
import pytest
from gates import gated_double_marked

import lambdapack as lp
import numpywren2 as npw
from provisioner import ProvisionerSettings

WAIT = 60.0
FAULTS = ("none", "kill", "stop", "duplicate")
JOBS = int(os.environ.get("NPW_SOAK_JOBS", "20"))


def fan(N: int, gate: int):
    return lp.Program.from_source(textwrap.dedent(f"""
        def soak(X: lp.Matrix, T: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                T[i, 0] = double(X[i, 0], 0)
                Y[i, 0] = double(T[i, 0], (i // {N - 1}) * {gate})
    """), {"double": gated_double_marked}, filename="soak.py")


def spd(n: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def check_clean(rt, job):
    assert rt.state.job(job.id)["counters"]["completed"] == job.num_tasks, "each task counted once"
    assert rt.store.list(f"{job.id}/") == [], "no scratch tile left"
    assert rt.queue(job.id).depth() == 0, "no message left"
    for p in job.local_executors:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, signal.SIGCONT)  # a stopped one must be able to end
        assert p.wait(timeout=WAIT) is not None, "no executor process left"


@pytest.mark.timeout(240)
def test_soak_short(tmp_path, gates):
    rng = random.Random(2026)
    db = f"sqlite://{tmp_path}/state.db"
    settings = ProvisionerSettings(lease=1.0, heartbeat_timeout=1.0, poll_interval=0.1, idle_timeout=2.0,
                                   max_executors=2)
    seen = {f: 0 for f in FAULTS}
    faults = [f for _ in range(JOBS // len(FAULTS) + 1) for f in rng.sample(FAULTS, len(FAULTS))]
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=db, state=db, executors=2,
                     provisioner=settings) as rt:
        for n in range(JOBS):
            if n % 4 == 3:
                A = npw.BigMatrix.from_numpy(spd(48, n), 16)
                L = npw.BigMatrix.empty((48, 48), 16)
                job = npw.submit(npw.programs.cholesky, A=A, L=L, N=3)
                job.queue.send([t.to_json() for t in job.bound.starters()] * 3)
                job.wait(timeout=WAIT)
                Lm = L.numpy()
                assert np.allclose(Lm @ Lm.T, A.numpy()), f"job {n}: wrong answer"
                check_clean(rt, job)
                continue
            N, gate, fault = rng.choice([2, 3, 4]), n + 1, faults.pop()
            X = npw.BigMatrix.from_numpy(rng.random() + np.arange(1.0, N + 1).reshape(N, 1), (1, 1))
            Y = npw.BigMatrix.empty((N, 1), (1, 1))
            job = npw.submit(fan(N, gate), X=X, Y=Y, N=N)
            pid = gates.wait_started(gate, 1, timeout=WAIT)[0]
            if fault == "kill":
                os.kill(pid, signal.SIGKILL)
            elif fault == "stop":
                os.kill(pid, signal.SIGSTOP)
            elif fault == "duplicate":
                job.queue.send([t.to_json() for t in job.bound.tasks()])
            seen[fault] += 1
            gates.open(gate)
            job.wait(timeout=WAIT)
            assert np.array_equal(Y.numpy(), 4 * X.numpy()), f"job {n} ({fault}): wrong answer"
            check_clean(rt, job)
    assert all(seen.values()), f"every fault was injected at least once: {seen}"
