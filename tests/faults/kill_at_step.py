"""An executor that SIGKILLs itself at one step of the task protocol, once per test.

Run as ``python kill_at_step.py STEP <executor arguments>``.  The first process to claim the file
``killer`` in the gate directory (``NPW_TEST_GATES``) kills itself at ``STEP`` of its first task that
reaches it, after touching ``killed-<STEP>-<pid>``; the others are ordinary executors.  The steps:

``leased``    a message leased, before its input tiles are read (the executor's ``"start"`` hook);
``read``      the inputs read, before the kernel runs;
``kernel``    inside the kernel, its result computed and nothing written;
``written1``  one of the task's two output tiles written, the other not;
``written``   every output written, before the completion (the ``"written"`` hook);
``enqueued``  completed and its ready children enqueued, before the acknowledgement (an unfused ledger);
``completed`` completed and acknowledged, before its consumed scratch tiles are freed.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from executor import worker
from executor.__main__ import main
from numpywren2.core.backends import base, local

STEPS = ("leased", "read", "kernel", "written1", "written", "enqueued", "completed")


def install(step: str) -> None:
    gates = Path(os.environ["NPW_TEST_GATES"])
    state = {"armed": None, "puts": 0}

    def armed() -> bool:
        if state["armed"] is None:
            try:
                os.close(os.open(gates / "killer", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                state["armed"] = True
            except FileExistsError:
                state["armed"] = False
        return state["armed"]

    def die(*_):
        if armed():
            (gates / f"killed-{step}-{os.getpid()}").touch()
            os.kill(os.getpid(), signal.SIGKILL)

    init = worker.Executor.__init__

    def patched_init(self, *args, **kw):
        hooks = dict(kw.pop("hooks", None) or {})
        if step in ("leased", "written"):
            hooks["start" if step == "leased" else "written"] = die
        init(self, *args, hooks=hooks, **kw)
        if step in ("read", "kernel"):
            for name, k in list(self.kernels.items()):
                self.kernels[name] = wrap_kernel(k, before=step == "read")

    def wrap_kernel(k, before: bool):
        def run(*a):
            if before:
                die()
            out = k(*a)
            if not before:
                die()
            return out
        return run

    worker.Executor.__init__ = patched_init

    if step == "written1":
        put = local.LocalFileStore.put

        def patched_put(self, key, value):  # an executor's first task writes two tiles (see the test)
            n = put(self, key, value)
            state["puts"] += 1
            if state["puts"] == 1:
                die()
            return n

        local.LocalFileStore.put = patched_put
    if step == "enqueued":
        finish = base.Ledger.finish_many

        def patched_finish(self, job, items, counters=None, claim=0, lease=30.0):
            ack = self.queue.ack
            self.queue.ack = lambda r: (die(), ack(r))[1]
            try:
                return finish(self, job, items, counters, claim, lease)
            finally:
                self.queue.ack = ack

        base.Ledger.finish_many = patched_finish
    if step == "completed":
        free = worker.Executor._free_consumed

        def patched_free(self, ran):
            die()
            return free(self, ran)

        worker.Executor._free_consumed = patched_free


if __name__ == "__main__":
    install(sys.argv[1])
    sys.exit(main(sys.argv[2:]))
