"""``python -m provisioner.sandbox [--cold-start S] [--memory-mb M] [--lifetime L] [--nice N] -- EXECUTOR ARGS``.

The child side of ``SimulatedLambdaLauncher``: lowers its CPU priority (``nice``),
limits its address space (``RLIMIT_AS``) to the memory cap, keeps BLAS at one
thread, waits out the cold start, imports the executor, then arms a real-time
timer of ``lifetime`` seconds whose signal (SIGALRM, default action) ends the
process at once — Lambda's hard timeout, which does not count the start-up
(Lambda's init phase) — and runs ``python -m executor`` with the given arguments
in this process.  The executor itself is told (``--time-limit``) to stop taking
tasks before the timer fires.
"""

from __future__ import annotations

import argparse
import os
import resource
import signal
import sys
import time

from executor.spec import one_blas_thread


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: python -m provisioner.sandbox [--cold-start S] [--memory-mb M] -- EXECUTOR ARGS")
    split = argv.index("--")
    ap = argparse.ArgumentParser(prog="python -m provisioner.sandbox")
    ap.add_argument("--cold-start", type=float, default=0.0)
    ap.add_argument("--memory-mb", type=int, default=None)
    ap.add_argument("--lifetime", type=float, default=None)
    ap.add_argument("--nice", type=int, default=0)
    a = ap.parse_args(argv[:split])
    if a.nice:
        os.nice(a.nice)
    one_blas_thread(os.environ)
    if a.memory_mb is not None:
        limit = a.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if a.cold_start > 0:
        time.sleep(a.cold_start)
    from executor.__main__ import main as executor_main

    if a.lifetime is not None:
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.setitimer(signal.ITIMER_REAL, a.lifetime)
    return executor_main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
