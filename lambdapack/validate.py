"""Bind-time validation: single assignment, and every read of a written tile space produced.

Two modes:

- exhaustive (``validate="full"``, or "auto" for programs of at most
  ``VALIDATE_FULL_LIMIT`` tasks): every task's writes must have exactly one
  writer (itself) and every read of a written tile space at least one.
- structural + sampled ("auto" above the limit, where enumerating would cost
  seconds):
  * a write site whose index is affine in its loop variables with a linear
    part of full column rank is injective, so it never writes a tile twice;
    others are checked by enumeration when small, else on samples;
  * two write sites of one tile space are disjoint when interval arithmetic
    separates some index component; otherwise the statement with fewer tasks
    is enumerated (when small) and each of its tiles solved for writers;
  * read coverage is checked on the first tasks of every statement and on
    random samples.  The runtime re-checks every task it runs (a task whose
    read has no writer is reported with its source line).
"""

from __future__ import annotations

import itertools
import random

from . import affine, ir
from .codegen import FlatStmt
from .errors import CompileError

INF = affine.INF
VALIDATE_FULL_LIMIT = 250_000  # tasks; larger programs get the structural + sampled check in "auto" mode
VALIDATE_SAMPLES = 2_000  # sampled tasks per statement when the full check is too big


def validate_bound(b, full: bool) -> None:
    counts = b.stmt_counts()
    if full or sum(counts) <= VALIDATE_FULL_LIMIT:
        for s in b.stmts:
            _check_tasks(b, b.stmt_tasks(s.id))
        return
    for sites in b.writers.values():
        for s, k in sites:
            if not _injective(s, s.writes[k]):
                _check_sites(b, s, counts, VALIDATE_FULL_LIMIT, VALIDATE_SAMPLES, writes_only=True)
        for (s1, k1), (s2, k2) in itertools.combinations(sites, 2):
            if _disjoint(s1, s1.writes[k1], s2, s2.writes[k2]):
                continue
            small = s1 if counts[s1.id] <= counts[s2.id] else s2
            _check_sites(b, small, counts, VALIDATE_FULL_LIMIT, VALIDATE_SAMPLES, writes_only=True)
    for s in b.stmts:
        if any(r.matrix in b.outputs for r in s.reads):
            _check_sites(b, s, counts, 200, VALIDATE_SAMPLES, writes_only=False)


def _check_sites(b, s: FlatStmt, counts, limit: int, samples: int, writes_only: bool) -> None:
    if counts[s.id] <= limit:
        _check_tasks(b, b.stmt_tasks(s.id), writes_only)
        return
    _check_tasks(b, itertools.islice(b.stmt_tasks(s.id), limit), writes_only)
    rng = random.Random(1234 + s.id)
    _check_tasks(b, (b.random_task(rng, s.id) for _ in range(samples)), writes_only)


def _check_tasks(b, tasks, writes_only: bool = False) -> None:
    for t in tasks:
        for m, idx in b.writes(t):
            ws = b.writers_of(m, idx)
            if len(ws) > 1 or (ws and ws[0] != t):
                first, second = (ws[0], ws[1]) if len(ws) > 1 else (t, ws[0])
                first, second = b.task(*first), b.task(*second)
                raise CompileError(
                    f"tile {m}[{', '.join(map(str, idx))}] is written by more than one task: {first} and "
                    f"{second}; every tile may be written at most once",
                    b.stmts[first[0]].src, also=(b.stmts[second[0]].src,))
            if not ws:  # the solver failed to find the task itself: a bug, never a user error
                raise AssertionError(f"analysis lost the writer of {m}{idx} ({b.task(*t)})")
        if writes_only:
            continue
        s = b.stmts[t[0]]
        for ref, (m, idx) in zip(s.reads, b.reads(t)):
            if m in b.outputs and not b.writers_of(m, idx):
                lines = sorted({w.src.line for w, _ in b.writers[m]})
                raise CompileError(
                    f"{b.task(*t)} reads {m}[{', '.join(map(str, idx))}], which no task writes ({m} is written "
                    f"by this program at line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))}, "
                    "so it is not an input)", ref.src)


def _injective(s: FlatStmt, ref: ir.TileRef) -> bool:
    unknown = frozenset(s.vars)
    rows = []
    for e in ref.index:
        lin = affine.linearize(e, unknown)
        if lin is None:
            return False
        rows.append([lin[0].get(v, 0) for v in s.vars])
    return not s.vars or affine.rank(rows) == len(s.vars)


def var_intervals(s: FlatStmt) -> dict[str, tuple[float, float]]:
    env: dict[str, tuple[float, float]] = {}
    for lp in s.loops:
        lo, hi = affine.interval(lp.start, env), affine.interval(lp.stop, env)
        step = affine.interval(lp.step, env)
        if step[0] > 0:
            env[lp.var] = (lo[0], hi[1] - 1)
        elif step[1] < 0:
            env[lp.var] = (hi[0] + 1, lo[1])
        else:
            env[lp.var] = (-INF, INF)
    return env


def _disjoint(s1: FlatStmt, r1: ir.TileRef, s2: FlatStmt, r2: ir.TileRef) -> bool:
    if len(r1.index) != len(r2.index):
        return True
    e1, e2 = var_intervals(s1), var_intervals(s2)
    for a, b in zip(r1.index, r2.index):
        (lo1, hi1), (lo2, hi2) = affine.interval(a, e1), affine.interval(b, e2)
        if hi1 < lo2 or hi2 < lo1:
            return True
    return False
