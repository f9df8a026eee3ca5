"""Gates: kernels that wait for an event the test controls, so that a test decides when tasks are leased.

A gated task first leaves a mark (``started-<gate>-<pid>-<n>`` in the gate directory, naming the
executor process that runs it), then blocks until the test opens its gate (creates ``open-<gate>``).
The kernels here (``gated_double``, ``gated_add``) are shipped by value, like any user kernel.
Executors find the directory in ``NPW_TEST_GATES``, which the ``gates`` fixture sets before any
executor is launched (executors inherit the environment).  Gate 0 is always open.  A gate left
closed by a failing test fails its task after ``PATIENCE`` seconds, and the fixture opens every gate
at teardown, so no executor outlives its test waiting.  Used by ``tests/`` (as ``gates``) and by the soak
(``numpywren2.testing.soak``, ``bench/soak.py``).
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import lambdapack as lp

ENV = "NPW_TEST_GATES"
PATIENCE = 300.0


def pass_gate(gate: int) -> None:
    """Mark this task as started, then block until ``gate`` is open (0: no gate)."""
    gate = int(gate)
    if gate <= 0:
        return
    d = Path(os.environ[ENV])
    (d / f"started-{gate}-{os.getpid()}-{uuid.uuid4().hex[:8]}").touch()
    deadline = time.monotonic() + PATIENCE
    while not ((d / f"open-{gate}").exists() or (d / "open-all").exists()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"test gate {gate} was never opened")
        time.sleep(0.005)


@lp.kernel
def gated_double(x, seconds, gate):
    """``2 x``, once ``gate`` is open, after ``seconds`` of sleep (a task that takes some time)."""
    pass_gate(gate)
    time.sleep(seconds)
    return 2 * x


@lp.kernel
def gated_double_marked(x, gate):
    """``2 x`` once ``gate`` is open, leaving a ``passed-<gate>-<pid>-<n>`` mark when it has passed the gate."""
    pass_gate(gate)
    if int(gate) > 0:
        (Path(os.environ[ENV]) / f"passed-{int(gate)}-{os.getpid()}-{uuid.uuid4().hex[:8]}").touch()
    return 2 * x


@lp.kernel
def gated_add(a, b, seconds, gate):
    pass_gate(gate)
    time.sleep(seconds)
    return a + b


class Gates:
    """The test's side: open gates, and see which tasks have reached one."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)

    def open(self, gate: int) -> None:
        (self.dir / f"open-{gate}").touch()

    def open_all(self) -> None:
        (self.dir / "open-all").touch()

    def started(self, gate: int) -> list[int]:
        """The process ids of the tasks that have reached ``gate`` (one entry per task run)."""
        return [int(p.name.split("-")[2]) for p in self.dir.glob(f"started-{gate}-*")]

    def passed(self, gate: int) -> list[int]:
        """The process ids of the ``gated_double_marked`` tasks that have passed ``gate``."""
        return [int(p.name.split("-")[2]) for p in self.dir.glob(f"passed-{gate}-*")]

    def wait_started(self, gate: int, n: int = 1, timeout: float = 120.0) -> list[int]:
        """Block until at least ``n`` tasks have reached ``gate``; their process ids."""
        deadline = time.monotonic() + timeout
        while len(pids := self.started(gate)) < n:
            assert time.monotonic() < deadline, f"fewer than {n} tasks reached gate {gate} within {timeout} s"
            time.sleep(0.01)
        return pids
