"""``python -m provisioner.sandbox [--cold-start S] [--memory-mb M] -- EXECUTOR ARGS``.

The child side of ``SimulatedLambdaLauncher``: limits this process's address space
(``RLIMIT_AS``) to the memory cap, keeps BLAS at one thread, waits out the cold
start, then runs ``python -m executor`` with the given arguments in this process.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import time


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        raise SystemExit("usage: python -m provisioner.sandbox [--cold-start S] [--memory-mb M] -- EXECUTOR ARGS")
    split = argv.index("--")
    ap = argparse.ArgumentParser(prog="python -m provisioner.sandbox")
    ap.add_argument("--cold-start", type=float, default=0.0)
    ap.add_argument("--memory-mb", type=int, default=None)
    a = ap.parse_args(argv[:split])
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = "1"
    if a.memory_mb is not None:
        limit = a.memory_mb * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    if a.cold_start > 0:
        time.sleep(a.cold_start)
    from executor.__main__ import main as executor_main

    return executor_main(argv[split + 1:])


if __name__ == "__main__":
    sys.exit(main())
