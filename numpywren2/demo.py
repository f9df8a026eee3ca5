"""The main job (until the runtime lands): the implicit DAG of a 1M×1M Cholesky, and a small
Cholesky run through the serial reference interpreter, checked against numpy.

Run with ``make run`` (or ``python -m numpywren2.demo``).
"""

from __future__ import annotations

import random
import time

import numpy as np

from . import reference
from .programs import cholesky


def main() -> None:
    n, b = 1_000_000, 4096
    grid = -(-n // b)
    t0 = time.perf_counter()
    dag = cholesky.bind(N=grid)
    bind_s = time.perf_counter() - t0
    print(f"Cholesky of a {n:,}x{n:,} matrix in {b}x{b} tiles: a {grid}x{grid} grid")
    print(f"  bind (analysis + validation): {bind_s:.2f} s;  num_tasks() = {dag.num_tasks():,}")
    print(f"  starters: {', '.join(map(str, dag.starters()))}")
    rng = random.Random(7)
    samples = [dag.task(0, (0,)), dag.task(2, (0, 5)), *(dag.random_task(rng) for _ in range(3))]
    for t in samples:
        t0 = time.perf_counter()
        children = dag.children(t)
        dt = time.perf_counter() - t0
        kids = ", ".join(map(str, children[:4])) + (f", ... ({len(children)} in all)" if len(children) > 4 else "")
        print(f"  {t}: reads {', '.join(f'{m}{list(i)}' for m, i in dag.reads(t))}")
        print(f"      parents  [{', '.join(map(str, dag.parents(t)))}]")
        print(f"      children [{kids}]  ({dt * 1e6:.0f} us)")

    size, block = 1000, 256  # ragged: 1000 is not a multiple of 256
    rs = np.random.default_rng(0)
    G = rs.standard_normal((size, size))
    X = G @ G.T + size * np.eye(size)
    t0 = time.perf_counter()
    L = reference.cholesky(X, block)
    dt = time.perf_counter() - t0
    err = np.linalg.norm(X - L @ L.T) / np.linalg.norm(X)
    ok = err < 50 * size * np.finfo(float).eps and np.allclose(L, np.linalg.cholesky(X))
    print(f"serial reference Cholesky, n={size}, block={block}: {dt:.2f} s, "
          f"||X - L L^T|| / ||X|| = {err:.1e}  {'OK' if ok else 'WRONG'}")
    if not ok:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
