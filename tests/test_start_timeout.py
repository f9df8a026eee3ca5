"""``ProvisionerSettings.start_timeout``: an executor that never heart-beats is a failed start.

The provisioner's clock is injected, so a deadline passes when the test moves the clock, not after
a wait.  The executors that never start are either ids of a launcher that starts nothing (as a Lambda
event that is never delivered) or real local processes that block before they reach the state store.
"""

from __future__ import annotations

import signal
import sys
import textwrap
import warnings

import numpy as np
import pytest
from gates import gated_double

import lambdapack as lp
import numpywren2 as npw
from provisioner import Launcher, LocalProcessLauncher, Provisioner, ProvisionerSettings, SimulatedLambdaLauncher


class Clock:
    """A monotonic clock that moves only when told."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class NeverStarts(Launcher):
    """Returns ids and starts nothing: its executors never heart-beat (e.g. lost asynchronous invocations)."""

    default_max_executors = 2

    def launch(self, spec, n):
        ids = [f"x-never-{len(self.launched) + i}" for i in range(n)]
        for eid in ids:
            self.launched[eid] = 0.0
        return ids


class BlocksBeforeStarting(LocalProcessLauncher):
    """Real processes that never become executors: each waits for a signal before doing anything."""

    def _command(self, spec, executor_id):
        return [self.python, "-c", "import signal; signal.pause()"]


@pytest.fixture
def rt():
    with npw.runtime(executors=0) as r:  # no provisioner of the client: the test builds its own
        yield r


def fan_job(N: int = 4):
    """A job of N independent tasks, all ready at once; no executor runs it here."""
    program = lp.Program.from_source(textwrap.dedent("""
        def fan(X: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = double(X[i, 0], 0.0, 0)
    """), {"double": gated_double}, filename="fan.py")
    X = npw.BigMatrix.from_numpy(np.ones((N, 1)), (1, 1))
    Y = npw.BigMatrix.empty((N, 1), (1, 1))
    return npw.submit(program, X=X, Y=Y, N=N)


def provisioner(rt, job, launcher, clock, **settings) -> Provisioner:
    s = ProvisionerSettings(start_timeout=10.0, max_failed_starts=5, timeline_interval=0.01, **settings)
    return Provisioner(rt.urls, job.id, launcher, s, clock=clock)


def test_an_executor_that_never_heart_beats_is_abandoned_and_replaced(rt):
    job = fan_job(4)
    clock, launcher = Clock(), NeverStarts()
    prov = provisioner(rt, job, launcher, clock)
    assert prov.start_timeout == 10.0, "the settings' start_timeout reaches the provisioner"
    assert prov.step()
    first = sorted(launcher.launched)
    assert len(first) == 2 and prov.failed_starts == []  # 4 ready tasks, at most 2 executors
    clock.now += 9.9  # before the deadline: still starting, nothing more launched
    assert prov.step()
    assert sorted(launcher.launched) == first and prov.failed_starts == []
    assert launcher.alive({}) == set(first)
    clock.now += 0.1  # start_timeout after the launch: both failed to start, and are replaced at once
    assert prov.step()
    assert sorted(prov.failed_starts) == first
    assert launcher.abandoned == set(first)
    replacements = set(launcher.launched) - set(first)
    assert len(replacements) == 2 and launcher.alive({}) == replacements
    last = job.timeline()[-1]
    assert (last["executors"], last["started"], last["launched"], last["ready"]) == (2, 0, 4, 4)
    assert job.status() == "running"


def test_repeated_failed_starts_fail_the_job_with_a_message_that_says_so(rt):
    job = fan_job(4)
    clock, launcher = Clock(), NeverStarts()
    prov = provisioner(rt, job, launcher, clock)
    prov.step()
    for _ in range(2):  # 2, then 4 failed starts: below max_failed_starts (5)
        clock.now += 10
        assert prov.step()
    assert len(prov.failed_starts) == 4 and job.status() == "running"
    clock.now += 10  # 6 in a row, no task done
    prov.step()
    assert job.status() == "failed"
    with pytest.raises(npw.JobFailedError, match=r"6 executors in a row did not heart-beat within start_timeout "
                                                 r"\(10 s\) of their launch while no task completed"):
        job.wait(timeout=5)


def test_an_executor_that_heart_beats_in_time_has_started(rt):
    job = fan_job(4)
    clock, launcher = Clock(), NeverStarts()
    prov = provisioner(rt, job, launcher, clock)
    prov.step()
    early, late = sorted(launcher.launched)
    rt.state.heartbeat(job.id, early, ttl=600)  # what an executor does first when it runs
    clock.now += 10
    prov.step()
    assert prov.failed_starts == [late] and launcher.abandoned == {late}
    assert early in launcher.alive({e["executor"]: e for e in rt.state.executors(job.id)})
    last = job.timeline()[-1]
    assert last["started"] == 1 and last["executors"] == 2  # the started one and late's replacement
    clock.now += 1000  # an executor that has started is never abandoned later
    rt.state.heartbeat(job.id, early, ttl=600)
    prov.step()
    assert early not in prov.failed_starts


def test_a_local_process_that_never_starts_is_killed_and_counted_once(rt):
    job = fan_job(2)
    clock, launcher = Clock(), BlocksBeforeStarting(max_executors=1)
    prov = provisioner(rt, job, launcher, clock)
    try:
        prov.step()
        [stuck] = list(launcher.processes)
        assert launcher.processes[stuck].poll() is None
        clock.now += 10
        prov.step()
        assert prov.failed_starts == [stuck]
        assert launcher.processes[stuck].returncode == -signal.SIGKILL
        assert stuck not in launcher.alive()
        [replacement] = set(launcher.processes) - {stuck}
        assert launcher.processes[replacement].poll() is None
        prov.step()  # the kill is reaped as the launcher's own ("start_timeout"), not as a second failure
        assert prov.failed_in_a_row == 1
    finally:
        launcher.stop()


def test_start_timeout_settings_and_the_launchers_deprecated_one(rt):
    job = fan_job(1)
    with pytest.warns(DeprecationWarning, match=r"start_timeout= is deprecated, use "
                                                r"ProvisionerSettings\(start_timeout=\.\.\.\) instead"):
        old = NeverStarts(start_timeout=3.0)
    assert Provisioner(rt.urls, job.id, old, ProvisionerSettings(start_timeout=20.0)).start_timeout == 3.0
    assert Provisioner(rt.urls, job.id, NeverStarts(), ProvisionerSettings(start_timeout=20.0)).start_timeout == 20
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning without the deprecated argument
        LocalProcessLauncher(python=sys.executable)
    with pytest.raises(ValueError, match=r"start_timeout \(2.0 s\) must exceed the launcher's cold start"):
        Provisioner(rt.urls, job.id, SimulatedLambdaLauncher(cold_start=5.0), ProvisionerSettings(start_timeout=2.0))
    with pytest.raises(ValueError, match="start_timeout"):
        ProvisionerSettings(start_timeout=0)
