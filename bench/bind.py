"""Bind time of Cholesky: the task count by enumeration (before) and from the symbolic count (after), same run.

``bind`` here is ``cholesky.bind(N=...)`` with the default validation ("auto": structural and
sampled above 250,000 tasks, a cost bounded in N) followed by ``num_tasks()``.  "before" replaces
the count by the enumeration of every statement's loop nest (``BoundProgram._stmt_count``, the
code ``num_tasks()`` ran until the symbolic counts); "after" is ``num_tasks()`` as it is now.  The
one-off symbolic derivation (once per program and process) is timed on its own.

    python bench/bind.py [--sizes 1024 2048 4096] [--before 1024 2048]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

from lambdapack import symbolic
from numpywren2.core.programs import cholesky


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--before", type=int, nargs="*", default=[1024, 2048],
                    help="sizes at which the enumeration is timed too (it is O(N^3))")
    args = ap.parse_args()
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    t0 = time.perf_counter()
    symbolic.count_program(cholesky)
    print(f"# symbolic derivation of cholesky's counts (once per process): {time.perf_counter() - t0:.2f} s\n")
    print(f"{'N':>6}{'tasks':>16}{'validate s':>12}{'count before s':>16}{'count after s':>15}"
          f"{'bind before s':>15}{'bind after s':>14}{'ratio':>8}")
    for n in args.sizes:
        t0 = time.perf_counter()
        b = cholesky.bind(N=n)  # validation (its own count is the symbolic one)
        validate_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        fresh = cholesky.bind(N=n, validate="none")
        tasks = fresh.num_tasks()
        after = time.perf_counter() - t0
        before = None
        if n in args.before:
            t0 = time.perf_counter()
            enumerated = sum(c() for c in b._stmt_count)
            before = time.perf_counter() - t0
            assert enumerated == tasks
        bb = f"{validate_s + before:>15.2f}" if before is not None else f"{'-':>15}"
        cb = f"{before:>16.2f}" if before is not None else f"{'-':>16}"
        ratio = f"{(validate_s + before) / (validate_s + after):>8.1f}" if before is not None else f"{'-':>8}"
        print(f"{n:>6}{tasks:>16,}{validate_s:>12.2f}{cb}{after:>15.4f}{bb}{validate_s + after:>14.2f}{ratio}")


if __name__ == "__main__":
    main()
