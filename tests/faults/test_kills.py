"""Item 1 of the faults list: an executor SIGKILLed at each step of the task protocol.

The killed executor kills itself at the step (``kill_at_step.py``, claimed by one process per test); its
leased message reappears when the lease runs out and another executor runs the task again.  The job must
complete with the right answer, count each task once, and leave no scratch tile and no queued message.
The queue lives in a database file of its own, so that the completion is the unfused sequence (complete,
enqueue, acknowledge) and a kill between the enqueue and the acknowledgement is possible.
"""

from __future__ import annotations

import signal
import textwrap
from pathlib import Path

import numpy as np
import pytest
from kill_at_step import STEPS

import lambdapack as lp
import numpywren2 as npw
from provisioner import LocalProcessLauncher, Provisioner, ProvisionerSettings

WAIT = 120.0
HERE = Path(__file__).parent


@lp.kernel
def split(x):
    return 2 * x, 3 * x


@lp.kernel
def add(a, b):
    return a + b


PIPE = lp.Program.from_source(textwrap.dedent("""
    def pipe(X: lp.Matrix, T: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int):
        for i in range(N):
            T[i, 0], Y[i, 0] = split(X[i, 0])
        for i in range(N):
            Z[i, 0] = add(T[i, 0], Y[i, 0])
"""), {"split": split, "add": add}, filename="pipe.py")


class KillsAtStep(LocalProcessLauncher):
    def __init__(self, step: str, **kw):
        super().__init__(**kw)
        self.step = step

    def _command(self, spec, executor_id):
        return [self.python, str(HERE / "kill_at_step.py"), self.step, *spec.cli_args(executor_id)]


@pytest.mark.parametrize("step", STEPS)
def test_an_executor_killed_at_each_protocol_step_loses_nothing(tmp_path, gates, step):
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=f"sqlite://{tmp_path}/queue.db",
                     state=f"sqlite://{tmp_path}/state.db", executors=0) as rt:
        N = 4
        X = npw.BigMatrix.from_numpy(np.arange(1.0, N + 1).reshape(N, 1), (1, 1))
        Y, Z = npw.BigMatrix.empty((N, 1), (1, 1)), npw.BigMatrix.empty((N, 1), (1, 1))
        job = npw.submit(PIPE, X=X, Y=Y, Z=Z, N=N)
        launcher = KillsAtStep(step, max_executors=2)
        settings = ProvisionerSettings(lease=1.0, poll_interval=0.1, idle_timeout=5.0)
        prov = Provisioner(rt.urls, job.id, launcher, settings).start()
        try:
            job.wait(timeout=WAIT)
            [mark] = list(gates.dir.glob(f"killed-{step}-*"))
            victim = int(mark.name.rsplit("-", 1)[1])
            [eid] = [e for e, p in launcher.processes.items() if p.pid == victim]
            assert launcher.processes[eid].wait(timeout=WAIT) == -signal.SIGKILL
            assert np.array_equal(Z.numpy(), 5 * X.numpy())
            assert rt.state.job(job.id)["counters"]["completed"] == job.num_tasks, "each task counted once"
            assert rt.store.list(f"{job.id}/") == [], "no scratch tile left"
            assert job.queue.depth() == 0
        finally:
            prov.stop(stop_executors=True)
