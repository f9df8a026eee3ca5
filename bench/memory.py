"""Executor memory: a Cholesky of more data than any one executor may hold.

The matrix (n = 16384: 2 GiB of float64) is generated tile by tile inside the executors
(``npw.random.spd``), factorized by 2 executor processes each capped at 1 GiB of address
space (``RLIMIT_AS``, as a memory-limited Lambda would be), and checked by a backward error
on a random probe computed tile by tile, so the client never holds the matrix either.
Reported: each executor's peak resident set (``ru_maxrss``) in MiB and in tiles.

    python bench/memory.py [--n 16384] [--block 2048] [--limit-mib 1024]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import numpywren2 as npw


def launch_capped(rt, job: str, n: int, limit: int) -> list[subprocess.Popen]:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2",
               PYTHONPATH=str(Path(__file__).resolve().parent.parent))

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    cmd = [sys.executable, "-m", "executor", "--store", rt.urls["store"], "--queue", rt.urls["queue"],
           "--state", rt.urls["state"], "--job", job, "--idle-timeout", "5"]
    return [subprocess.Popen(cmd, env=env, preexec_fn=cap) for _ in range(n)]


def wait_rss(procs) -> list[float]:
    """Wait for each process; its peak resident set in MiB."""
    out = []
    for p in procs:
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
        out.append(usage.ru_maxrss / 1024)
    return out


def probe(A: npw.BigMatrix, L: npw.BigMatrix) -> float:
    """‖A v − L (Lᵀ v)‖ / (‖A‖_F ‖v‖), one tile at a time."""
    n, b = A.shape[0], A.block_size[0]
    g = A.grid[0]
    v = np.random.default_rng(5).standard_normal(n)
    sl = [slice(i * b, min(n, (i + 1) * b)) for i in range(g)]
    av, ltv, fro = np.zeros(n), np.zeros(n), 0.0
    for i in range(g):
        for j in range(g):
            t = A.get_tile(i, j)
            av[sl[i]] += t @ v[sl[j]]
            fro += float((t * t).sum())
            if j <= i:
                ltv[sl[j]] += L.get_tile(i, j).T @ v[sl[i]]
    llv = np.zeros(n)
    for i in range(g):
        for j in range(i + 1):
            llv[sl[i]] += L.get_tile(i, j) @ ltv[sl[j]]
    return float(np.linalg.norm(av - llv) / (np.sqrt(fro) * np.linalg.norm(v)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--block", type=int, default=2048)
    ap.add_argument("--limit-mib", type=int, default=1024)
    ap.add_argument("--executors", type=int, default=2)
    args = ap.parse_args()
    n, b, limit = args.n, args.block, args.limit_mib << 20
    tile_mib = b * b * 8 / 2**20
    with npw.runtime(executors=0) as rt:
        A = npw.BigMatrix.empty((n, n), b)
        gen = npw.submit(npw.programs.spd, X=A, N=n, B=b, SEED=7, SINGLE=0)
        procs = launch_capped(rt, gen.id, args.executors, limit)
        gen.wait(timeout=3600)
        rss_gen = wait_rss(procs)
        L = npw.BigMatrix.empty((n, n), b)
        t0 = time.perf_counter()
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=A.grid[0])
        procs = launch_capped(rt, job.id, args.executors, limit)
        job.wait(timeout=7200)
        el = time.perf_counter() - t0
        rss = wait_rss(procs)
        err = probe(A, L)
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}")
    print(f"# n = {n}: matrix {n * n * 8 / 2**30:.1f} GiB in {b}x{b} tiles of {tile_mib:.0f} MiB; "
          f"{args.executors} executors, each with RLIMIT_AS = {args.limit_mib} MiB and 1 BLAS thread")
    print(f"cholesky: {el:.1f} s, {n**3 / 3 / el / 1e9:.1f} GFLOP/s, backward error (probe) {err:.1e}")
    print(f"peak RSS per executor, cholesky: {', '.join(f'{r:.0f} MiB ({r / tile_mib:.1f} tiles)' for r in rss)}")
    print(f"peak RSS per executor, generator: {', '.join(f'{r:.0f} MiB' for r in rss_gen)}")
    print(f"exit codes: {[p.returncode for p in procs]}")


if __name__ == "__main__":
    main()
