"""Do a bound program's tiles fit inside given grids?  Answered from the loop bounds, not by enumeration.

``check_extents(b, extents)`` takes a bound program and, for some of its tile spaces, the number
of tiles along each index (``{"A": (4, 4), "L": (4, 4)}``).  It reports the first task (in
program order of the statements) that reads or writes a tile of one of those spaces outside
``0 <= index[c] < extent[c]``, or that no such task exists.  It is exact in both directions:
a violation is always a concrete task of the program (checked against its loop ranges and
guards), and a program is accepted only when every access is proved inside the grid, except
for the documented last case of step 3.

Each reference ``M[e_0, ..., e_r]`` of a statement gives two one-sided questions per index,
``e_c <= extent_c - 1`` and ``-e_c <= 0``; for ``x`` one of them and ``B`` its bound:

1. **Bound** ``sup x`` over the statement's tasks, eliminating the loop variables innermost
   first.  ``x`` is held as a *piecewise-linear* expression: nested ``min``/``max`` of integer
   linear combinations of *atoms* (loop variables, or non-linear sub-expressions such as
   ``2 ** level`` or ``ceil(log2(M - k))``, kept opaque but canonical so that ``2**level -
   2**level`` cancels).  Where ``x`` is monotone in the variable ``v`` being eliminated, its
   supremum is ``x`` at an end of v's range (``range(start, stop)`` gives ``start`` and
   ``stop - 1``), which is exact for affine indices in triangular nests; ``max`` distributes,
   ``min`` and sums are bounded part by part, and anything else falls back to interval
   arithmetic.  The ranges are first tightened by the statement's guards: every conjunct of
   the enclosing ``if`` conditions (negations pushed inward) that is linear in its innermost
   variable becomes a bound on it (``i + 2**level < M`` gives ``i <= M - 1 - 2**level``,
   ``k == 0`` pins ``k``), and a disjunction whose other branches are refuted by those bounds
   (``k != 0 or j >= N`` once ``k`` is pinned to 0) becomes a conjunct in turn.  All bounds hold
   for every task, so ``sup x <= B`` proves the access safe.  This costs a few symbolic
   operations per reference, whatever the loop sizes (Cholesky at N = 4096: milliseconds).
2. **Witness.**  Otherwise the partial suprema ``F_d`` (``sup x`` over the loops inside depth
   ``d``, a function of the outer loop values) guide a depth-first search outermost first:
   at depth ``d`` only values of the loop variable (in its real range, with its step) with
   ``F_{d+1} > B`` can lead to a violation, tried nearest to the bound first; guards prune as
   soon as their variables are known, and a leaf is a real task with ``x > B``.  A search that
   scanned every candidate at every depth without finding a leaf is a proof as well.
3. **Fallback.**  A search that ran out of its budget (``SEARCH_BUDGET`` evaluations) or had to
   sample a range longer than ``SCAN_LIMIT`` decides nothing: the statement is then enumerated
   if it has at most ``ENUMERATE_LIMIT`` tasks, else the access is accepted unchecked and listed
   in ``ExtentReport.unchecked`` (the runtime still fails such a task when it reads a missing tile).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from . import affine, functions, ir
from .codegen import FlatStmt, conjuncts, py
from .task import Task

SEARCH_BUDGET = 200_000  # function evaluations per one-sided question in the witness search
SCAN_LIMIT = 4_096  # a loop range longer than this is sampled in the search (which then proves nothing)
SAMPLES = 64  # values tried in a sampled range, besides its ends
ENUMERATE_LIMIT = 200_000  # tasks: a statement this small is enumerated when steps 1 and 2 decide nothing

INF = math.inf


# ============================================================================ results


@dataclass(frozen=True)
class OutOfGrid:
    """A task that touches a tile outside its tile space's grid."""

    matrix: str
    tile: tuple[int, ...]
    extent: tuple[int, ...]
    task: Task
    access: str  # "reads" | "writes"
    ref: ir.TileRef
    stmt: FlatStmt

    def __str__(self) -> str:
        tile = f"{self.matrix}[{', '.join(map(str, self.tile))}]"
        grid = "×".join(map(str, self.extent))
        return (f"task {self.task} {self.access} tile {tile}, outside the {grid} tile grid of {self.matrix} "
                f"(at {self.ref.src}: {self.ref} in '{self.stmt.kernel}(...)')")


@dataclass
class ExtentReport:
    """What ``check_extents`` found: the first violation (or None) and the accesses left unchecked."""

    violation: OutOfGrid | None = None
    unchecked: list[tuple[str, str]] = field(default_factory=list)  # (statement label, reference)
    proved: int = 0  # one-sided questions settled by the bound alone (step 1)
    searched: int = 0  # ... by the witness search (step 2)
    enumerated: int = 0  # statements enumerated (step 3)


def check_extents(b, extents: Mapping[str, Sequence[int]]) -> ExtentReport:
    """Check every access of ``b``'s statements to the tile spaces in ``extents``.

    Parameters
    ----------
    b : BoundProgram
    extents : mapping
        Tile space name -> number of tiles along each index.  A reference whose number of indices
        differs from ``len(extents[name])`` is a ``ValueError`` (before anything else is checked).

    Returns
    -------
    ExtentReport

    >>> from lambdapack.program import Program, kernel
    >>> src = ["def f(A: lp.Matrix, B: lp.Matrix, N: int):", "    for i in range(N):",
    ...        "        for j in range(i + 1):", "            B[i, j] = g(A[i, j])"]
    >>> p = Program.from_source(chr(10).join(src), {"g": kernel(lambda a: a)}, filename="f.py")
    >>> print(check_extents(p.bind(N=3), {"A": (3, 3), "B": (3, 3)}).violation)
    None
    >>> print(check_extents(p.bind(N=4), {"A": (3, 3)}).violation)
    task g@L4(i=3, j=0) reads tile A[3, 0], outside the 3×3 tile grid of A (at f.py:4:25: A[i, j] in 'g(...)')
    """
    report = ExtentReport()
    ext = {m: tuple(int(x) for x in e) for m, e in extents.items()}
    for s in b.stmts:
        for ref in (*s.reads, *s.writes):
            if ref.matrix in ext and len(ref.index) != len(ext[ref.matrix]):
                raise ValueError(f"{ref.src}: {ref} has {len(ref.index)} indices, but {ref.matrix} has "
                                 f"{len(ext[ref.matrix])} ({s.label})")
    for s in b.stmts:
        sites = [(access, k, ref) for access, refs in (("reads", s.reads), ("writes", s.writes))
                 for k, ref in enumerate(refs) if ref.matrix in ext]
        if not sites:
            continue
        try:
            nest = _Nest(s)
        except (ValueError, ZeroDivisionError, OverflowError):
            nest = None
        if nest is not None and nest.empty:
            continue
        undecided = []
        for access, k, ref in sites:
            for c, e in enumerate(ref.index):
                for sign, bound in ((1, ext[ref.matrix][c] - 1), (-1, 0)):
                    outcome, vals = _question(nest, e, sign, bound) if nest else ("undecided", None)
                    if outcome == "proved":
                        report.proved += 1
                    elif outcome == "searched":
                        report.searched += 1
                    elif outcome == "witness":
                        report.violation = _violation(b, s, access, k, ref, ext, vals)
                        return report
                    else:
                        undecided.append((access, k, ref))
        if undecided:
            found, complete = _enumerate(b, s, undecided, ext)
            if found is not None:
                report.violation = found
                return report
            if complete:
                report.enumerated += 1
            else:
                report.unchecked += [(s.label, str(ref)) for _, _, ref in dict.fromkeys(undecided)]
    return report


def _violation(b, s: FlatStmt, access: str, k: int, ref: ir.TileRef, ext, vals) -> OutOfGrid:
    task = b.task(s.id, vals)
    m, idx = (b.reads(task) if access == "reads" else b.writes(task))[k]
    return OutOfGrid(m, tuple(idx), ext[m], task, access, ref, s)


def _outside(idx, extent) -> bool:
    return any(not 0 <= i < n for i, n in zip(idx, extent))


def _enumerate(b, s: FlatStmt, sites, ext) -> tuple[OutOfGrid | None, bool]:
    """Step 3: every task of a small statement; (first violation, whether the enumeration was complete)."""
    n = 0
    for t in b.stmt_tasks(s.id):
        n += 1
        if n > ENUMERATE_LIMIT:
            return None, False
        for access, k, ref in sites:
            m, idx = (b.reads(t) if access == "reads" else b.writes(t))[k]
            if _outside(idx, ext[m]):
                return _violation(b, s, access, k, ref, ext, t[1]), True
    return None, True


# ============================================================================ piecewise-linear expressions
#
# Lin(terms, const) is sum(c * atom) + const, an atom being an ir.Var or a canonical non-linear ir node;
# MinMax(op, args) is min(...) or max(...) of such expressions; UNBOUNDED is +infinity (a supremum that
# could not be bounded).  Only suprema are computed, so UNBOUNDED is only ever added, maxed or minned.


class Lin:
    __slots__ = ("const", "terms")

    def __init__(self, terms: dict, const: int):
        self.terms = terms
        self.const = const

    def __repr__(self) -> str:
        return f"Lin({to_ir(self)})"


class MinMax:
    __slots__ = ("args", "op")

    def __init__(self, op: str, args: tuple):
        self.op = op
        self.args = args

    def __repr__(self) -> str:
        return f"MinMax({to_ir(self)})"


class _Unbounded:
    def __repr__(self) -> str:
        return "UNBOUNDED"


UNBOUNDED = _Unbounded()


def const(c: int) -> Lin:
    return Lin({}, c)


def _is_const(p) -> bool:
    return isinstance(p, Lin) and not p.terms


def add(p, q):
    if p is UNBOUNDED or q is UNBOUNDED:
        return UNBOUNDED
    if isinstance(p, MinMax):
        return minmax(p.op, [add(a, q) for a in p.args])
    if isinstance(q, MinMax):
        return minmax(q.op, [add(p, a) for a in q.args])
    terms = dict(p.terms)
    for a, c in q.terms.items():
        c2 = terms.get(a, 0) + c
        if c2:
            terms[a] = c2
        else:
            terms.pop(a, None)
    return Lin(terms, p.const + q.const)


def neg(p):
    return scale(p, -1)


def scale(p, c: int):
    if p is UNBOUNDED:
        if c > 0:
            return UNBOUNDED
        raise ValueError("cannot negate an unbounded supremum")
    if c == 0:
        return const(0)
    if isinstance(p, MinMax):
        op = p.op if c > 0 else _FLIP[p.op]
        return minmax(op, [scale(a, c) for a in p.args])
    return Lin({a: k * c for a, k in p.terms.items()}, p.const * c)


_FLIP = {"min": "max", "max": "min"}
MAX_ARGS = 64  # a min/max with more arguments becomes an opaque atom


def minmax(op: str, args):
    flat = []
    for a in args:
        if a is UNBOUNDED:
            if op == "max":
                return UNBOUNDED
            continue  # min(+inf, x) = x
        if isinstance(a, MinMax) and a.op == op:
            flat += a.args
        else:
            flat.append(a)
    if not flat:
        return UNBOUNDED
    best: dict = {}  # linear arguments that differ by a constant: only the dominant one matters
    others: dict = {}
    for a in flat:
        if isinstance(a, Lin):
            key = frozenset(a.terms.items())
            old = best.get(key)
            if old is None or (a.const > old.const if op == "max" else a.const < old.const):
                best[key] = a
        else:
            others.setdefault(str(to_ir(a)), a)
    out = [*best.values(), *others.values()]
    if len(out) == 1:
        return out[0]
    if len(out) > MAX_ARGS:
        return _atom(ir.Call(op, tuple(to_ir(a) for a in out)))
    return MinMax(op, tuple(out))


def _atom(node) -> Lin:
    return Lin({node: 1}, 0)


def pl(e: ir.Expr):
    """The piecewise-linear form of an integer IR expression (constants folded, atoms canonical).

    >>> str(to_ir(pl(ir.BinOp("-", ir.BinOp("+", ir.Var("i"), ir.Var("j")), ir.Var("i")))))
    'j'
    """
    if isinstance(e, ir.Const):
        return const(e.value)
    if isinstance(e, ir.Var):
        return _atom(ir.Var(e.name))
    if isinstance(e, ir.Neg):
        return neg(pl(e.operand))
    if isinstance(e, ir.BinOp):
        a, b = pl(e.left), pl(e.right)
        if e.op == "+":
            return add(a, b)
        if e.op == "-":
            return add(a, neg(b))
        if e.op == "*":
            if _is_const(a):
                return scale(b, a.const)
            if _is_const(b):
                return scale(a, b.const)
        if _is_const(a) and _is_const(b):
            return const(affine.evaluate(ir.BinOp(e.op, ir.Const(a.const), ir.Const(b.const)), {}))
        if e.op == "//" and _is_const(b) and b.const > 0 and isinstance(a, MinMax):
            return minmax(a.op, [pl(ir.BinOp("//", to_ir(x), ir.Const(b.const))) for x in a.args])
        if e.op == "**" and _is_const(a) and a.const > 1 and isinstance(b, MinMax):
            return minmax(b.op, [pl(ir.BinOp("**", ir.Const(a.const), to_ir(x))) for x in b.args])
        return _atom(ir.BinOp(e.op, to_ir(a), to_ir(b)))
    if isinstance(e, ir.Call):
        args = [pl(a) for a in e.args]
        if e.func in ("min", "max"):
            return minmax(e.func, args)
        if all(_is_const(a) for a in args):
            return const(affine.evaluate(ir.Call(e.func, tuple(ir.Const(a.const) for a in args)), {}))
        return _atom(ir.Call(e.func, tuple(to_ir(a) for a in args)))
    raise TypeError(f"not an integer expression: {e!r}")


def to_ir(p) -> ir.Expr:
    if p is UNBOUNDED:
        raise ValueError("an unbounded supremum has no expression")
    if isinstance(p, MinMax):
        return ir.Call(p.op, tuple(to_ir(a) for a in p.args))
    expr = None
    for a, c in sorted(p.terms.items(), key=lambda kv: str(kv[0])):
        term = a if abs(c) == 1 else ir.BinOp("*", ir.Const(abs(c)), a)
        if expr is None:
            expr = term if c > 0 else ir.Neg(term)
        else:
            expr = ir.BinOp("+" if c > 0 else "-", expr, term)
    if expr is None:
        return ir.Const(p.const)
    if p.const:
        expr = ir.BinOp("+" if p.const > 0 else "-", expr, ir.Const(abs(p.const)))
    return expr


def free(p) -> frozenset[str]:
    if p is UNBOUNDED:
        return frozenset()
    if isinstance(p, MinMax):
        return frozenset().union(*(free(a) for a in p.args))
    return frozenset().union(*(ir.free_vars(a) for a in p.terms))


def subst(p, v: str, q):
    """``p`` with the variable ``v`` replaced by ``q``."""
    if p is UNBOUNDED or v not in free(p):
        return p
    if isinstance(p, MinMax):
        return minmax(p.op, [subst(a, v, q) for a in p.args])
    out = const(p.const)
    for a, c in p.terms.items():
        if isinstance(a, ir.Var) and a.name == v:
            out = add(out, scale(q, c))
        elif v in ir.free_vars(a):
            out = add(out, scale(pl(ir.substitute(a, {v: to_ir(q)})), c))
        else:
            out = add(out, Lin({a: c}, 0))
    return out


# ---------------------------------------------------------------------------- monotonicity


def _comb(a, b):
    """Monotonicity of a sum: 1 non-decreasing, -1 non-increasing, 0 constant, None unknown."""
    if a is None or b is None:
        return None
    if a == 0:
        return b
    if b == 0 or a == b:
        return a
    return None


def _neg_mono(m):
    return None if m is None else -m


def mono_ir(e: ir.Expr, v: str):
    """Monotonicity of an IR expression in ``v`` (syntactic, sound)."""
    if v not in ir.free_vars(e):
        return 0
    if isinstance(e, ir.Var):
        return 1
    if isinstance(e, ir.Neg):
        return _neg_mono(mono_ir(e.operand, v))
    if isinstance(e, ir.BinOp):
        if e.op == "+":
            return _comb(mono_ir(e.left, v), mono_ir(e.right, v))
        if e.op == "-":
            return _comb(mono_ir(e.left, v), _neg_mono(mono_ir(e.right, v)))
        if e.op == "*":
            for c, other in ((e.left, e.right), (e.right, e.left)):
                if isinstance(c, ir.Const):
                    m = mono_ir(other, v)
                    return None if m is None else m * (c.value > 0) - m * (c.value < 0)
            return None
        if e.op == "//" and isinstance(e.right, ir.Const) and e.right.value > 0:
            return mono_ir(e.left, v)
        if e.op == "**" and isinstance(e.left, ir.Const) and e.left.value >= 1:
            return mono_ir(e.right, v) if e.left.value > 1 else 0
        return None
    if isinstance(e, ir.Call):
        if e.func in ("min", "max"):
            m = 0
            for a in e.args:
                m = _comb(m, mono_ir(a, v))
            return m
        return mono_ir(e.args[0], v)  # log2, ceil_log2, floor_log2: non-decreasing
    return None


def mono(p, v: str):
    if p is UNBOUNDED:
        return 0
    if isinstance(p, MinMax):
        m = 0
        for a in p.args:
            m = _comb(m, mono(a, v))
        return m
    m = 0
    for a, c in p.terms.items():
        ma = mono_ir(a, v)
        m = _comb(m, ma if ma is None or c > 0 else -ma)
    return m


# ---------------------------------------------------------------------------- suprema and intervals


def sup(p, v: str, lo, hi, ivs: dict):
    """An upper bound of ``max(p for v in [lo, hi])`` as an expression of the other variables.

    Exact where ``p`` is monotone in ``v`` and the range is not empty; ``ivs`` (numeric intervals
    of every variable) bound what is neither monotone nor a min/max.
    """
    if p is UNBOUNDED or v not in free(p):
        return p
    m = mono(p, v)
    if m == 1:
        return subst(p, v, hi)
    if m == -1:
        return subst(p, v, lo)
    if isinstance(p, MinMax):  # max(sup) is exact; min(sup of each) bounds sup(min)
        return minmax(p.op, [sup(a, v, lo, hi, ivs) for a in p.args])
    out = Lin({a: c for a, c in p.terms.items() if v not in ir.free_vars(a)}, p.const)
    for a, c in p.terms.items():
        if v not in ir.free_vars(a):
            continue
        t = Lin({a: c}, 0)
        mt = mono(t, v)
        if mt == 1:
            out = add(out, subst(t, v, hi))
        elif mt == -1:
            out = add(out, subst(t, v, lo))
        else:
            lo_a, hi_a = interval(a, ivs)
            bound = c * hi_a if c > 0 else c * lo_a
            if math.isinf(bound) or math.isnan(bound):
                return UNBOUNDED
            out = add(out, const(int(bound)))
    return out


def interval(e: ir.Expr, ivs: dict) -> tuple[float, float]:
    """A sound numeric interval of ``e`` given intervals of its variables (exact when they are all fixed)."""
    fv = ir.free_vars(e)
    if all(v in ivs and ivs[v][0] == ivs[v][1] for v in fv):
        try:
            x = affine.evaluate(e, {v: int(ivs[v][0]) for v in fv})
            return (x, x)
        except (ValueError, ZeroDivisionError, OverflowError):
            return (-INF, INF)
    if isinstance(e, ir.Var):
        return ivs.get(e.name, (-INF, INF))
    if isinstance(e, ir.Neg):
        lo, hi = interval(e.operand, ivs)
        return (-hi, -lo)
    if isinstance(e, ir.Call):
        parts = [interval(a, ivs) for a in e.args]
        if e.func in ("min", "max"):
            f = min if e.func == "min" else max
            return (f(x[0] for x in parts), f(x[1] for x in parts))
        lo, hi = parts[0]
        if lo < 1:
            return (-INF, INF)
        f = functions.floor_log2 if e.func == "floor_log2" else functions.ceil_log2
        return (functions.floor_log2(int(lo)) if e.func == "log2" else f(int(lo)), INF if hi == INF else f(int(hi)))
    if isinstance(e, ir.BinOp):
        a, b = interval(e.left, ivs), interval(e.right, ivs)
        if e.op == "**":
            if not (a[0] >= 1 and b[0] >= 0):
                return (-INF, INF)
            big = max(a[1], b[1]) == INF or b[1] > 4096
            return (a[0] ** int(b[0]), INF if big else int(a[1]) ** int(b[1]))
        return affine.interval(ir.BinOp(e.op, ir.Var("_a"), ir.Var("_b")), {"_a": a, "_b": b})
    return affine.interval(e, ivs)


# ============================================================================ the loop nest of a statement


_NEGATE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", "<=": ">", ">": "<="}


def _normalize(c, negate: bool = False):
    """Push negations down to comparisons (De Morgan)."""
    if isinstance(c, ir.Not):
        return _normalize(c.operand, not negate)
    if isinstance(c, ir.BoolConst):
        return ir.BoolConst(c.value != negate)
    if isinstance(c, ir.Compare):
        return ir.Compare(_NEGATE[c.op], c.left, c.right) if negate else c
    if isinstance(c, ir.BoolOp):
        op = {"and": "or", "or": "and"}[c.op] if negate else c.op
        return ir.BoolOp(op, tuple(_normalize(v, negate) for v in c.values))
    raise TypeError(f"not a condition: {c!r}")


class _Nest:
    """A statement's loops with ranges tightened by its guards (see the module docstring, step 1).

    ``lo[d]``, ``hi[d]``: piecewise-linear bounds of loop variable d in terms of the outer ones
    (None when the sign of the step is unknown); ``ivs``: numeric intervals of every variable;
    ``empty``: the guards are unsatisfiable (the statement has no tasks).
    """

    def __init__(self, s: FlatStmt):
        self.s = s
        self.vars = list(s.vars)
        self.pos = {v: d for d, v in enumerate(self.vars)}
        self.empty = False
        self.lo: list = []
        self.hi: list = []
        self.ivs: dict[str, tuple[float, float]] = {}
        for lp in s.loops:
            self._base_range(lp)
        self.pins: dict[str, object] = {}
        todo = conjuncts([_normalize(g) for _, g in s.guards])
        try:
            self._tighten(todo)
        except (ValueError, ZeroDivisionError, OverflowError):
            pass  # tightening is optional: the untightened ranges are still sound
        self._evaluators: dict = {}

    # ------------------------------------------------------------------ ranges
    def _base_range(self, lp) -> None:
        start, stop = pl(lp.start), pl(lp.stop)
        sign = None
        if isinstance(lp.step, ir.Const):
            sign = (lp.step.value > 0) - (lp.step.value < 0)
        else:
            s_lo, s_hi = interval(lp.step, self.ivs)
            sign = 1 if s_lo > 0 else -1 if s_hi < 0 else None
        if sign == 1:
            lo, hi = start, add(stop, const(-1))
        elif sign == -1:
            lo, hi = add(stop, const(1)), start
        else:
            lo = hi = None
        self.lo.append(lo)
        self.hi.append(hi)
        self.ivs[lp.var] = self._interval_of(lo, hi)

    def _interval_of(self, lo, hi) -> tuple[float, float]:
        if lo is None or hi is None:
            return (-INF, INF)
        a = interval(to_ir(lo), self.ivs)[0] if lo is not UNBOUNDED else -INF
        b = interval(to_ir(hi), self.ivs)[1] if hi is not UNBOUNDED else INF
        return (a, b)

    def _recompute_intervals(self) -> None:
        self.ivs = {}
        for v, lo, hi in zip(self.vars, self.lo, self.hi):
            self.ivs[v] = self._interval_of(lo, hi)
            if self.ivs[v][0] > self.ivs[v][1]:
                self.empty = True

    # ------------------------------------------------------------------ guards
    def _tighten(self, todo: list) -> None:
        pending = list(todo)
        for _ in range(2 * len(pending) + 2):
            changed = False
            rest = []
            for c in pending:
                if isinstance(c, ir.BoolConst):
                    if not c.value:
                        self.empty = True
                    continue
                if isinstance(c, ir.Compare):
                    truth = self._truth(c)
                    if truth is False:
                        self.empty = True
                    elif truth is None:
                        changed |= self._bound_from(c)
                    continue
                if isinstance(c, ir.BoolOp) and c.op == "and":
                    rest += conjuncts([c])
                    changed = True
                    continue
                # a disjunction: drop the branches the current bounds refute
                alive = [d for d in c.values if self._truth(d) is not False]
                if not alive:
                    self.empty = True
                elif any(self._truth(d) is True for d in alive):
                    changed = True  # always true: no information, drop it
                elif len(alive) == 1:
                    rest += conjuncts([alive[0]])
                    changed = True
                else:
                    rest.append(ir.BoolOp("or", tuple(alive)) if len(alive) < len(c.values) else c)
            self._recompute_intervals()
            pending = rest
            if self.empty or not changed:
                return

    def _with_pins(self, p):
        for v in reversed(self.vars):
            if v in self.pins:
                p = subst(p, v, self.pins[v])
        return p

    def _truth(self, c) -> bool | None:
        """True/False when the current bounds decide the condition for every task, else None."""
        if isinstance(c, ir.BoolConst):
            return c.value
        if isinstance(c, ir.BoolOp):
            vals = [self._truth(v) for v in c.values]
            if c.op == "and":
                return False if False in vals else True if all(v is True for v in vals) else None
            return True if True in vals else False if all(v is False for v in vals) else None
        try:
            p = self._with_pins(pl(ir.BinOp("-", c.left, c.right)))
            if _is_const(p):
                lo = hi = p.const
            else:
                lo, hi = interval(to_ir(p), self.ivs)
        except (ValueError, ZeroDivisionError, OverflowError):
            return None
        op = c.op
        if op == "==":
            return True if lo == hi == 0 else False if lo > 0 or hi < 0 else None
        if op == "!=":
            return False if lo == hi == 0 else True if lo > 0 or hi < 0 else None
        if op == "<":
            return True if hi < 0 else False if lo >= 0 else None
        if op == "<=":
            return True if hi <= 0 else False if lo > 0 else None
        if op == ">":
            return True if lo > 0 else False if hi <= 0 else None
        return True if lo >= 0 else False if hi < 0 else None  # >=

    def _bound_from(self, c: ir.Compare) -> bool:
        """Turn ``a*v + rest OP 0``, v the innermost variable of the comparison, into a bound on v."""
        if c.op == "!=":
            return False
        p = pl(ir.BinOp("-", c.left, c.right))
        if not isinstance(p, Lin):
            return False
        vs = [v for v in self.vars if v in free(p)]
        if not vs:
            return False
        v = max(vs, key=self.pos.__getitem__)
        d = self.pos[v]
        var = ir.Var(v)
        if any(v in ir.free_vars(a) for a in p.terms if a != var) or self.lo[d] is None:
            return False
        a = p.terms[var]
        rest = Lin({t: k for t, k in p.terms.items() if t != var}, p.const)
        # a*v + rest OP 0 with OP in <, <=, >, >=, ==  ->  "<= 0" and/or ">= 0" forms
        forms = {"<": [("<=", add(rest, const(1)))], "<=": [("<=", rest)], ">": [(">=", add(rest, const(-1)))],
                 ">=": [(">=", rest)], "==": [("<=", rest), (">=", rest)]}[c.op]
        changed = False
        for op, r in forms:
            if a < 0:  # a*v + r <= 0  <=>  (-a)*v + (-r) >= 0
                op, r = ("<=" if op == ">=" else ">="), neg(r)
            k = abs(a)
            if op == "<=":  # k*v <= -r  ->  v <= floor(-r / k)
                bound = neg(r) if k == 1 else pl(ir.BinOp("//", to_ir(neg(r)), ir.Const(k)))
                self.hi[d] = minmax("min", [self.hi[d], bound])
            else:  # k*v >= -r  ->  v >= ceil(-r / k) = -floor(r / k)
                bound = neg(r) if k == 1 else neg(pl(ir.BinOp("//", to_ir(r), ir.Const(k))))
                self.lo[d] = minmax("max", [self.lo[d], bound])
            changed = True
        if c.op == "==" and a in (1, -1) and v not in self.pins:
            self.pins[v] = neg(rest) if a == 1 else rest
        return changed

    # ------------------------------------------------------------------ evaluation
    def compile(self, p, depth: int):
        """A Python function of the first ``depth`` loop values computing ``p`` (+inf if unbounded)."""
        if p is UNBOUNDED:
            return lambda *_: INF
        return _compile(to_ir(p), self.vars[:depth])

    def evaluators(self):
        if not self._evaluators:
            s = self.s
            ev = self._evaluators
            ev["start"] = [_compile(lp.start, self.vars[:d]) for d, lp in enumerate(s.loops)]
            ev["stop"] = [_compile(lp.stop, self.vars[:d]) for d, lp in enumerate(s.loops)]
            ev["step"] = [_compile(lp.step, self.vars[:d]) for d, lp in enumerate(s.loops)]
            ev["lo"] = [None if lo is None else self.compile(lo, d) for d, lo in enumerate(self.lo)]
            ev["hi"] = [None if hi is None else self.compile(hi, d) for d, hi in enumerate(self.hi)]
            ev["guards"] = [[_compile(g, self.vars[:gd]) for gd2, g in s.guards if gd2 == gd]
                            for gd in range(len(s.loops) + 1)]
        return self._evaluators


_NS = {"_log2": functions.exact_log2, "_clog2": functions.ceil_log2, "_flog2": functions.floor_log2,
       "_inr": functions.in_range, "min": min, "max": max}


def _compile(e, variables: Sequence[str]):
    names = {v: f"v{i}" for i, v in enumerate(variables)}
    return eval(f"lambda {', '.join(names.values())}: {py(e, names)}", dict(_NS))


# ============================================================================ one question


def _question(nest: _Nest, e: ir.Expr, sign: int, bound: int):
    """Is ``sign * e <= bound`` for every task?  ("proved" | "searched", None), ("witness", loop values),
    or ("undecided", None)."""
    n = len(nest.vars)
    try:
        x = pl(e) if sign > 0 else neg(pl(e))
    except (ValueError, ZeroDivisionError, OverflowError):
        return "undecided", None
    try:
        F = [None] * (n + 1)
        F[n] = x
        for d in reversed(range(n)):
            v = nest.vars[d]
            if nest.lo[d] is None:
                F[d] = UNBOUNDED if v in free(F[d + 1]) else F[d + 1]
            else:
                F[d] = sup(F[d + 1], v, nest.lo[d], nest.hi[d], nest.ivs)
    except (ValueError, ZeroDivisionError, OverflowError):
        F = None
    if F is not None and _is_const(F[0]) and F[0].const <= bound:
        return "proved", None
    return _search(nest, x, F, bound)


def _search(nest: _Nest, x, F, bound: int):
    """Step 2: depth-first search for a task with ``x > bound``, guided by the partial suprema ``F``."""
    n = len(nest.vars)
    try:
        ev = nest.evaluators()
        fs = [nest.compile(F[d], d) if F is not None else (lambda *_: INF) for d in range(n + 1)]
        fs[n] = nest.compile(x, n)
    except (ValueError, ZeroDivisionError, OverflowError, SyntaxError):
        return "undecided", None
    budget = [SEARCH_BUDGET]
    complete = [True]

    def call(f, vals):
        budget[0] -= 1
        try:
            return f(*vals)
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return None

    def guards_hold(d, vals) -> bool:
        for g in ev["guards"][d]:
            ok = call(g, vals)
            if ok is None:
                complete[0] = False
                return False
            if not ok:
                return False
        return True

    def dfs(d: int, vals: tuple):
        if budget[0] <= 0:
            complete[0] = False
            return None
        if not guards_hold(d, vals):
            return None
        if d == n:
            value = call(fs[n], vals)
            if value is None:
                complete[0] = False
                return None
            return vals if value > bound else None
        start, stop, step = (call(ev[k][d], vals) for k in ("start", "stop", "step"))
        if start is None or stop is None or not step:
            complete[0] = False
            return None
        r = range(start, stop, step)
        lo = call(ev["lo"][d], vals) if ev["lo"][d] is not None else None
        hi = call(ev["hi"][d], vals) if ev["hi"][d] is not None else None
        r = _clip(r, lo, hi)
        if len(r) > SCAN_LIMIT:
            complete[0] = False
            picks = sorted({0, len(r) - 1, *(len(r) * i // SAMPLES for i in range(1, SAMPLES))})
            values = [r[i] for i in picks]
        else:
            values = r
        scored = []
        for value in values:
            f = call(fs[d + 1], vals + (value,))
            if f is None:
                complete[0] = False
                f = INF
            if f > bound:
                scored.append((f, value))
            if budget[0] <= 0:
                complete[0] = False
                break
        scored.sort(key=lambda fv: fv[0])  # nearest to the bound first: the first tile outside
        for _, value in scored:
            found = dfs(d + 1, vals + (value,))
            if found is not None:
                return found
        return None

    found = dfs(0, ())
    if found is not None:
        return "witness", found
    return ("searched", None) if complete[0] else ("undecided", None)


def _clip(r: range, lo, hi) -> range:
    """The values of ``r`` within ``[lo, hi]`` (None: no bound), as a range."""
    if not r:
        return r
    step = r.step
    i0, i1 = 0, len(r)
    if step > 0:
        if lo is not None:
            i0 = max(i0, -((r.start - lo) // step))  # ceil((lo - start) / step)
        if hi is not None:
            i1 = min(i1, (hi - r.start) // step + 1)
    else:
        if hi is not None:
            i0 = max(i0, -((hi - r.start) // -step))  # ceil((start - hi) / -step)
        if lo is not None:
            i1 = min(i1, (r.start - lo) // -step + 1)
    return r[i0:max(i0, i1)]


__all__ = ["ENUMERATE_LIMIT", "SEARCH_BUDGET", "ExtentReport", "OutOfGrid", "check_extents"]
