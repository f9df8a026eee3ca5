"""Item 7 of the faults list: a job outlives the client that submitted it.

``npw.submit(..., detach=True)`` runs the job's provisioner as a process of its own; ``npw.jobs()`` lists
the runtime's jobs and ``npw.attach(job_id)`` follows one (``wait``, ``stats``, ``cancel``).  A job whose
client and provisioner are both gone (here the provisioner process is SIGKILLed, with no client waiting)
is marked abandoned by one of its executors once ``NPW_ABANDON_S`` passes without a timeline sample: its
executors stop and its scratch tiles are deleted.  Every step waits for an event (a gate's mark, a status).
"""

from __future__ import annotations

import os
import signal
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from gates import gated_double_marked

import lambdapack as lp
import numpywren2 as npw
from provisioner import ProvisionerSettings

WAIT = 120.0
SAMPLE_S, ABANDON_S = 0.05, 3.0  # the abandonment test's timeline interval and NPW_ABANDON_S


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT} s"
        time.sleep(0.01)


def two_step_fan(N: int, gated: int):
    """``T[i] = 2 X[i]`` (T: the job's scratch space), then ``Y[i] = 2 T[i]``, which waits at gate
    ``i // gated`` (0: none)."""
    program = lp.Program.from_source(textwrap.dedent(f"""
        def fan2(X: lp.Matrix, T: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                T[i, 0] = double(X[i, 0], 0)
                Y[i, 0] = double(T[i, 0], i // {gated})
    """), {"double": gated_double_marked}, filename="fan2.py")
    X = npw.BigMatrix.from_numpy(np.arange(1.0, N + 1).reshape(N, 1), (1, 1), name="fan2-X")
    Y = npw.BigMatrix.empty((N, 1), (1, 1), name="fan2-Y")
    return program, X, Y


@pytest.fixture
def rt(tmp_path):
    db = f"sqlite://{tmp_path}/state.db"
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=db, state=db, executors=2) as r:
        yield r


def test_a_detached_job_is_listed_and_attached_to(rt, gates):
    program, X, Y = two_step_fan(3, gated=2)  # Y[2] waits at gate 1
    job = npw.submit(program, X=X, Y=Y, N=3, detach=True)
    assert job.provisioner is None and job.provisioner_process is not None
    assert os.getsid(job.provisioner_process.pid) != os.getsid(0), "its own session: not tied to this process"
    gates.wait_started(1)
    [info] = [j for j in npw.jobs(rt) if j.id == job.id]
    assert (info.program, info.status, info.num_tasks, info.detached) == ("fan2", "running", 6, True)
    assert 0 < info.progress < 1 and info.age >= 0 and set(info.backends) == {"store", "queue", "state"}
    other = npw.attach(job.id, rt)  # as another process would
    gates.open(1)
    other.wait(timeout=WAIT)
    assert np.array_equal(Y.numpy(), 4 * X.numpy())
    assert other.stats()["tasks"] == 6
    assert job.provisioner_process.wait(timeout=WAIT) == 0
    assert [j.status for j in npw.jobs(rt) if j.id == job.id] == ["done"]
    with pytest.raises(KeyError):
        npw.attach("no-such-job", rt)


def test_attach_can_cancel(rt, gates):
    program, X, Y = two_step_fan(2, gated=1)
    job = npw.submit(program, X=X, Y=Y, N=2, detach=True)
    gates.wait_started(1)
    npw.attach(job.id, rt).cancel()
    assert rt.state.status(job.id) == "cancelled"
    assert job.provisioner_process.wait(timeout=WAIT) == 1, "the provisioner saw the job end"


def test_a_job_whose_client_and_provisioner_are_gone_is_abandoned_and_cleaned(rt, gates, monkeypatch):
    """The provisioner samples the timeline every ``SAMPLE_S`` (not the default 1 s) and a job is abandoned after
    ``ABANDON_S`` without one, 60 samples: while the provisioner lives the job is not (before: 1 s without a
    sample abandoned it, about one sample; a sample late under load, or skipped while an executor held SQLite's
    write lock, abandoned the job before the kill, and its scratch tiles were gone before the test looked)."""
    monkeypatch.setenv("NPW_ABANDON_S", str(ABANDON_S))  # inherited by the provisioner process and its executors
    program, X, Y = two_step_fan(2, gated=1)
    job = npw.submit(program, X=X, Y=Y, N=2, detach=True,
                     settings=ProvisionerSettings(idle_timeout=60.0, timeline_interval=SAMPLE_S))
    [blocked] = gates.wait_started(1)  # Y[1] is inside its kernel; T[1] is a scratch tile in the store
    assert rt.store.list(f"{job.id}/"), "scratch tiles exist"
    os.kill(job.provisioner_process.pid, signal.SIGKILL)  # no client waits either
    job.provisioner_process.wait()
    wait_for(lambda: rt.state.status(job.id) == "abandoned", "an executor marking the job abandoned")
    [info] = [j for j in npw.jobs(rt) if j.id == job.id]
    assert info.status == "abandoned"
    with pytest.raises(npw.JobFailedError, match="abandoned: its provisioner has written no timeline sample"):
        npw.attach(job.id, rt).wait(timeout=WAIT)
    gates.open(1)  # the blocked task returns into an ended job: it discards its output and stops
    wait_for(lambda: not Path(f"/proc/{blocked}").exists() or "Z" in Path(f"/proc/{blocked}/stat").read_text()
             .rsplit(")", 1)[1].split()[0], "the blocked executor's exit")
    wait_for(lambda: all(e["exited"] or not e["live"] for e in rt.state.executors(job.id)), "every executor's exit")
    assert rt.store.list(f"{job.id}/") == [], "its scratch tiles were deleted"
    assert rt.queue(job.id).depth() == 0
