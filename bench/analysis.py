"""Benchmark of the implicit-DAG analysis: cost per edge of children(t) + in_degree(child).

For each program it binds (timing analysis + validation), draws random tasks
without enumerating the program, and times ``children(t)`` followed by
``in_degree(c)`` for every child ``c``; the time per edge is that total divided
by the number of children.  Target: median <= 10 us per edge.

Reference measured in the same run: the explicit (unrolled) graph that a
scheduler such as Dask materialises — built here for a smaller instance of each
program from tasks()/reads()/writes() — with its build time and memory per task,
and the time of the same query as dict lookups.

    python bench/analysis.py [--samples 5000] [--seed 0]
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import time
import tracemalloc
from collections import defaultdict

from numpywren2.core.programs import cholesky, gemm, tsqr


def per_edge_times(bound, samples: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    out = []
    clock = time.perf_counter
    for _ in range(samples):
        t = bound.random_task(rng)
        t0 = clock()
        kids = bound.children(t)
        for c in kids:
            bound.in_degree(c)
        dt = clock() - t0
        if kids:
            out.append(dt / len(kids))
    return out


def explicit_graph(bound):
    """Unrolled graph as dicts (children lists and in-degrees): the reference."""
    writer = {}
    for t in bound.tasks():
        for w in bound.writes(t):
            writer[w] = t
    children = defaultdict(list)
    indeg = {}
    for t in bound.tasks():
        ps = {writer[r] for r in bound.reads(t) if r in writer}
        indeg[t] = len(ps)
        for p in ps:
            children[p].append(t)
    return children, indeg


def measure_explicit(bound, samples: int, seed: int):
    gc.collect()
    tracemalloc.start()
    t0 = time.perf_counter()
    children, indeg = explicit_graph(bound)
    build = time.perf_counter() - t0
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    tasks = list(indeg)
    rng = random.Random(seed)
    per = []
    for _ in range(samples):
        t = tasks[rng.randrange(len(tasks))]
        t0 = time.perf_counter()
        kids = children.get(t, [])
        for c in kids:
            indeg[c]
        dt = time.perf_counter() - t0
        if kids:
            per.append(dt / len(kids))
    return len(tasks), build, mem / len(tasks), statistics.median(per)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    cases = [
        ("cholesky N=256", lambda: cholesky.bind(N=256), lambda: cholesky.bind(N=48)),
        ("gemm 64x64x64", lambda: gemm.bind(M=64, N=64, K=64), lambda: gemm.bind(M=16, N=16, K=16)),
        ("tsqr 1024 blocks", lambda: tsqr.bind(N=1024), lambda: tsqr.bind(N=1024)),
    ]
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# {args.samples} random tasks per program, seed {args.seed}; times per edge = "
          "(children(t) + in_degree of each child) / #children\n")
    head = (f"{'program':<18}{'tasks':>11}{'bind s':>8}{'bound KiB':>10}{'median us/edge':>16}{'p90 us/edge':>13}"
            f" | {'explicit ref: tasks':>20}{'build s':>9}{'B/task':>8}{'us/edge':>9}")
    print(head)
    print("-" * len(head))
    for name, make, make_small in cases:
        gc.collect()
        t0 = time.perf_counter()
        bound = make()
        bind_s = time.perf_counter() - t0
        del bound
        gc.collect()
        tracemalloc.start()
        bound = make()  # again, to measure its memory (tracing slows the bind down)
        mem = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        per = sorted(per_edge_times(bound, args.samples, args.seed))
        med, p90 = statistics.median(per) * 1e6, per[int(0.9 * len(per))] * 1e6
        n_ref, build, bytes_per, ref_edge = measure_explicit(make_small(), args.samples, args.seed)
        print(f"{name:<18}{bound.num_tasks():>11,}{bind_s:>8.2f}{mem / 1024:>10.0f}{med:>16.2f}{p90:>13.2f}"
              f" | {n_ref:>20,}{build:>9.2f}{bytes_per:>8.0f}{ref_edge * 1e6:>9.2f}")


if __name__ == "__main__":
    main()
