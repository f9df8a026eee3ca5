"""An executor process with one injected fault, for fault tests and soaks.

Run as ``python -m numpywren2.testing.faulty_executor FAULT <executor arguments>``; ``FAULT`` is one of

``kill:STEP``
    The first process of the job to claim the file ``killer-<job>`` in the directory ``NPW_TEST_GATES``
    SIGKILLs itself at ``STEP`` of the first task that reaches it, after touching ``killed-<STEP>-<pid>``;
    the other processes are ordinary executors.  The steps (``STEPS``):

    ``leased``    a message leased, before its input tiles are read (the executor's ``"start"`` hook);
    ``read``      the inputs read, before the kernel runs;
    ``kernel``    inside the kernel, its result computed and nothing written;
    ``written1``  one of the task's output tiles written, the others not (its first put);
    ``written``   every output written, before the completion (the ``"written"`` hook);
    ``enqueued``  completed and its ready children enqueued, before the acknowledgement (an unfused ledger);
    ``completed`` completed and acknowledged, before its consumed scratch tiles are freed.

``storage:RATE:SEED``
    Every tile store ``get`` and ``put`` of this process (local files or S3) fails first with a transient
    error (``ConnectionResetError``) with probability ``RATE``, and is slowed by up to 20 ms with the same
    probability; the choices come from a generator seeded with ``SEED`` and the process id.

``none``
    An ordinary executor.

``LocalProcessLauncher`` subclasses start executors this way (``FaultyLauncher``).
"""

from __future__ import annotations

import os
import random
import signal
import sys
import time
from pathlib import Path

STEPS = ("leased", "read", "kernel", "written1", "written", "enqueued", "completed")


def _job_of(argv: list[str]) -> str:
    return argv[argv.index("--job") + 1] if "--job" in argv else "job"


def install_kill(step: str, job: str) -> None:
    """Patch this process's executor so that, if it claims the job's killer file, it dies at ``step``."""
    from executor import worker
    from numpywren2.core.backends import base

    if step not in STEPS:
        raise ValueError(f"unknown step {step!r}; one of {', '.join(STEPS)}")
    gates = Path(os.environ["NPW_TEST_GATES"])
    state = {"armed": None, "puts": 0}

    def armed() -> bool:
        if state["armed"] is None:
            try:
                os.close(os.open(gates / f"killer-{job}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
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
        for cls in _store_classes():
            put = cls.put

            def patched_put(self, key, value, put=put):
                n = put(self, key, value)
                state["puts"] += 1
                if state["puts"] == 1:
                    die()
                return n

            cls.put = patched_put
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


def install_storage(rate: float, seed: int) -> None:
    """Transient errors and slow answers on every tile ``get`` and ``put`` of this process."""
    rng = random.Random(seed * 1_000_003 + os.getpid())

    def faulty(fn):
        def call(self, *args):
            if rng.random() < rate:
                time.sleep(rng.random() * 0.02)
            if rng.random() < rate:
                raise ConnectionResetError(f"injected transient storage error ({fn.__name__})")
            return fn(self, *args)
        return call

    for cls in _store_classes():
        cls.get, cls.put = faulty(cls.get), faulty(cls.put)


def _store_classes() -> list[type]:
    from numpywren2.core.backends.local import LocalFileStore

    classes: list[type] = [LocalFileStore]
    try:
        from numpywren2.core.backends.aws import S3TileStore
    except ImportError:  # boto3 not installed: no S3 store to patch
        pass
    else:
        classes.append(S3TileStore)
    return classes


def install(fault: str, argv: list[str]) -> None:
    kind, _, rest = fault.partition(":")
    if kind == "kill":
        install_kill(rest, _job_of(argv))
    elif kind == "storage":
        rate, _, seed = rest.partition(":")
        install_storage(float(rate), int(seed or 0))
    elif kind != "none":
        raise ValueError(f"unknown fault {fault!r}: kill:STEP, storage:RATE:SEED or none")


def main(argv: list[str] | None = None) -> int:
    from executor.__main__ import main as executor_main

    argv = list(sys.argv[1:] if argv is None else argv)
    install(argv[0], argv[1:])
    return executor_main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
