"""The main job: ``npw.cholesky`` on the embedded runtime, checked against numpy, with timings;
then a look at the implicit task graph of a 1M×1M Cholesky (never unrolled).

Run with ``make run`` (or ``python -m numpywren2.client.demo``).
"""

from __future__ import annotations

import os
import random
import time

import numpy as np

import numpywren2 as npw

from ..core.programs import cholesky


def run_cholesky(n: int = 5000, block: int = 1024, executors: int = 2) -> bool:
    rs = np.random.default_rng(0)
    G = rs.standard_normal((n, n))
    X = G @ G.T / n + np.eye(n)
    with npw.runtime(executors=executors):
        t0 = time.perf_counter()
        A = npw.BigMatrix.from_numpy(X, block)
        t1 = time.perf_counter()
        L = npw.cholesky(A)
        t2 = time.perf_counter()
        Ln = L.numpy()
    t3 = time.perf_counter()
    ref = np.linalg.cholesky(X)
    t4 = time.perf_counter()
    err = np.linalg.norm(X - Ln @ Ln.T) / np.linalg.norm(X)
    ok = bool(err < 10 * n * np.finfo(float).eps and np.allclose(Ln, ref))
    gflop = n**3 / 3 / 1e9
    print(f"npw.cholesky, n={n}, block={block} (ragged: {n % block} rows in the last tile row), "
          f"{executors} executor processes, 1 BLAS thread each, embedded runtime (files + SQLite)")
    print(f"  upload {t1 - t0:.2f} s, factor {t2 - t1:.2f} s ({gflop / (t2 - t1):.1f} GFLOP/s), "
          f"download {t3 - t2:.2f} s")
    print(f"  numpy.linalg.cholesky ({os.environ.get('OPENBLAS_NUM_THREADS', 'default')} BLAS thread(s)): "
          f"{t4 - t3:.2f} s ({gflop / (t4 - t3):.1f} GFLOP/s)")
    print(f"  ||X - L L^T|| / ||X|| = {err:.1e}, matches numpy: {'OK' if ok else 'WRONG'}")
    return ok


def show_dag() -> None:
    n, b = 1_000_000, 4096
    grid = -(-n // b)
    t0 = time.perf_counter()
    dag = cholesky.bind(N=grid)
    bind_s = time.perf_counter() - t0
    print(f"implicit DAG of a Cholesky of a {n:,}x{n:,} matrix in {b}x{b} tiles ({grid}x{grid} grid):")
    print(f"  bind (analysis + validation) {bind_s:.2f} s; num_tasks() = {dag.num_tasks():,}; "
          f"starters: {', '.join(map(str, dag.starters()))}")
    rng = random.Random(7)
    for t in [dag.task(2, (0, 5)), *(dag.random_task(rng) for _ in range(2))]:
        t0 = time.perf_counter()
        children = dag.children(t)
        dt = time.perf_counter() - t0
        kids = ", ".join(map(str, children[:3])) + (f", ... ({len(children)} in all)" if len(children) > 3 else "")
        print(f"  {t}: parents [{', '.join(map(str, dag.parents(t)))}]")
        print(f"      children [{kids}] ({dt * 1e6:.0f} us)")


def main() -> None:
    ok = run_cholesky()
    show_dag()
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
