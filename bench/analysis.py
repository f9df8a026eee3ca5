"""Benchmark of the implicit-DAG analysis: cost per edge of children(t) + in_degree(child).

For each program it binds (timing analysis + validation), draws random tasks
without enumerating the program, and times ``children(t)`` followed by
``in_degree(c)`` for every child ``c``; the time per edge is that total divided
by the number of children.  Target: median <= 10 us per edge.

Reference measured in the same run: the explicit (unrolled) graph that a
scheduler such as Dask materialises — built here for a smaller instance of each
program from tasks()/reads()/writes() — with its build time and memory per task,
and the time of the same query as dict lookups.

Each built-in program is written with composition (calls, local scratch, aliases);
``--compare`` also times the same program as it was written by hand before
(``tests/handwritten_programs.py``), in the same run, so that the two costs per edge
can be set side by side.

    python bench/analysis.py [--samples 5000] [--seed 0] [--compare]
    python bench/analysis.py --count-tables [PROGRAM ...]   # docs/analysis.md's closed-form tables
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import sys
import time
import tracemalloc
from collections import defaultdict

from numpywren2.core import programs


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


CASES = [  # name, program, parameters, smaller parameters for the explicit reference
    ("cholesky N=256", "cholesky", {"N": 256}, {"N": 48}),
    ("gemm 64x64x64", "gemm", {"M": 64, "N": 64, "K": 64}, {"M": 16, "N": 16, "K": 16}),
    ("tsqr 1024 blocks", "tsqr", {"N": 1024}, {"N": 1024}),
    ("posv N=128 C=8", "posv", {"N": 128, "C": 8, "BS": 1}, {"N": 32, "C": 8, "BS": 1}),
    ("qr 48x32", "qr_factor", {"M": 48, "N": 32, "C": 0}, {"M": 16, "N": 12, "C": 0}),
    ("qr form Q 48x32", "qr_form_q", {"M": 48, "N": 32, "ROWS": 48, "BS": 1, "QC": 32, "QCOLS": 32, "SINGLE": 0},
     {"M": 16, "N": 12, "ROWS": 16, "BS": 1, "QC": 12, "QCOLS": 12, "SINGLE": 0}),
    ("lstsq 48x32 C=4", "qr_lstsq", {"M": 48, "N": 32, "C": 4, "BS": 1}, {"M": 16, "N": 12, "C": 4, "BS": 1}),
]


def bind_and_size(program, values: dict) -> tuple:
    """(bound program, bind seconds, bytes it holds)."""
    gc.collect()
    t0 = time.perf_counter()
    bound = program.bind(**values)
    bind_s = time.perf_counter() - t0
    del bound
    gc.collect()
    tracemalloc.start()
    bound = program.bind(**values)  # again, to measure its memory (tracing slows the bind down)
    mem = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return bound, bind_s, mem


def interleaved_per_edge(bounds: list, samples: int, seed: int, rounds: int = 20) -> list[list[float]]:
    """Per-edge times of several bound programs, measured in alternating rounds (same tasks for each).

    On a machine whose speed varies (other jobs), alternating short rounds gives every
    program the same conditions, so their ratio is meaningful even when the absolute
    numbers move.
    """
    out: list[list[float]] = [[] for _ in bounds]
    per_round = max(1, samples // rounds)
    for r in range(rounds):
        for i, b in enumerate(bounds):
            out[i] += per_edge_times(b, per_round, seed * 1000 + r)
    return [sorted(x) for x in out]


INLINE_CHARS = 160  # a longer closed form is shown by its length


def count_table(p) -> list[str]:
    """Markdown of ``p``'s symbolic task counts, one row per statement (docs/analysis.md)."""
    import sympy

    from lambdapack import symbolic

    rows, closed, sums = [], 0, 0
    for c in symbolic.count_program(p):
        if c.expr is None:
            text = f"enumerated ({c.reason})"
        elif c.method == "finite sum":
            sums += 1
            over = []
            for node in sympy.preorder_traversal(c.expr):
                if isinstance(node, sympy.Sum):
                    over += [str(lim[0]) for lim in node.limits if str(lim[0]) not in over]
            text = "finite sum over " + ", ".join(over)
        else:
            closed += 1
            e = str(c.expr)
            text = f"`{e}`" if len(e) <= INLINE_CHARS else f"closed form ({len(e)} characters)"
        rows.append(f"| {c.label} | {text} |")
    n = len(rows)
    rest = n - closed - sums
    tail = (f", {sums} as finite sums" if sums else "") + (f", {rest} enumerated" if rest else "")
    head = f"**{p.name}**({', '.join(p.params)}): {closed} of {n} statements in closed form{tail}."
    return [head, "", "| statement | count |", "|---|---|", *rows, ""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count-tables", nargs="*", metavar="PROGRAM",
                    help="print the symbolic count tables of these built-in programs (none named: all) and exit")
    ap.add_argument("--samples", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--compare", action="store_true",
                    help="also time the hand-written programs of tests/handwritten_programs.py")
    args = ap.parse_args()
    if args.count_tables is not None:
        for name in args.count_tables or sorted(programs.__all__):
            p = getattr(programs, name)
            if hasattr(p, "bind") and hasattr(p, "params"):
                print("\n".join(count_table(p)))
        return
    variants = [("", programs)]
    if args.compare:
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
        import handwritten_programs

        variants.append((" (by hand)", handwritten_programs))

    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"# {args.samples} random tasks per program, seed {args.seed}; times per edge = "
          "(children(t) + in_degree of each child) / #children\n")
    head = (f"{'program':<28}{'tasks':>11}{'bind s':>8}{'bound KiB':>10}{'median us/edge':>16}{'p90 us/edge':>13}"
            f" | {'explicit ref: tasks':>20}{'build s':>9}{'B/task':>8}{'us/edge':>9}")
    print(head)
    print("-" * len(head))
    for name, attr, values, small in CASES:
        rows = [bind_and_size(getattr(module, attr), values) for _, module in variants]
        times = interleaved_per_edge([r[0] for r in rows], args.samples, args.seed)
        for (suffix, module), (bound, bind_s, mem), per in zip(variants, rows, times):
            med, p90 = statistics.median(per) * 1e6, per[int(0.9 * len(per))] * 1e6
            n_ref, build, bytes_per, ref_edge = measure_explicit(getattr(module, attr).bind(**small), args.samples,
                                                                 args.seed)
            print(f"{name + suffix:<28}{bound.num_tasks():>11,}{bind_s:>8.2f}{mem / 1024:>10.0f}{med:>16.2f}"
                  f"{p90:>13.2f} | {n_ref:>20,}{build:>9.2f}{bytes_per:>8.0f}{ref_edge * 1e6:>9.2f}")
        if len(times) == 2:
            ratio = statistics.median(times[0]) / statistics.median(times[1])
            print(f"{'':<28}{'median composed / by hand:':>29}{ratio:>16.2f}")


if __name__ == "__main__":
    main()
