"""Bind-time code generation: IR -> straight-line Python for every DAG query.

A bound program's statements are first *flattened*: each kernel call becomes a
``FlatStmt`` with its loop nest, its guard (the conjunction of enclosing ``if``
conditions, each at the loop depth where it was written) and its tile reads and
writes, with integer parameters substituted and scalars inlined.

For every tile space M, and every pair (site that names a tile of M, statement
that reads or writes M), ``plan`` solves "index at the site == index written or
read by the statement" for the statement's loop variables:

1. an equation affine in exactly one unknown solves it (with a divisibility
   check when the coefficient is not +-1);
2. otherwise exact rational elimination over the equations that are affine in
   the unknowns solves every pivot that no unknown free variable remains in;
3. otherwise the outermost unknown loop variable is enumerated over its range
   (whose bounds only involve outer variables, so they are known).

After each step every check whose variables are all known is emitted (domain
of a solved variable, guards, equations not consumed by a step), so dead
branches are cut as early as possible.  The plan is rendered as nested Python
``if``/``for`` blocks and compiled once with ``exec``; a query then costs a few
integer operations and no symbolic work.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from . import affine, ir


@dataclass(frozen=True)
class Loop:
    var: str
    start: ir.Expr
    stop: ir.Expr
    step: ir.Expr


@dataclass(frozen=True)
class FlatStmt:
    """One kernel call with everything needed to enumerate and solve its tasks."""

    id: int
    kernel: str
    label: str  # e.g. "syrk@L7"
    src: ir.SourceInfo
    loops: tuple[Loop, ...]
    guards: tuple[tuple[int, ir.Cond], ...]  # (loop depth at which it applies, condition)
    writes: tuple[ir.TileRef, ...]
    reads: tuple[ir.TileRef, ...]
    args: tuple[ir.Arg, ...]
    # position of the enclosing statement in the program body, then in each loop's body (an ``if``
    # counts as one statement, a scalar assignment as none): with the loops' iteration numbers
    # this orders tasks serially
    order: tuple[int, ...] = ()

    @property
    def vars(self) -> tuple[str, ...]:
        return tuple(lp.var for lp in self.loops)


# --------------------------------------------------------------------------- flattening


def flatten(program: ir.Program, values: dict[str, int]) -> list[FlatStmt]:
    """Statements in program order, with parameters bound and scalars inlined."""
    env: dict[str, ir.Expr] = {k: ir.Const(v) for k, v in values.items()}
    out: list[FlatStmt] = []

    def walk(body, env, loops, guards, order, pos=None):
        env = dict(env)
        p = -1
        for s in body:
            if not isinstance(s, ir.Assign):  # a scalar is no task: it takes no place in the serial order
                p += 1
            here = order + (p if pos is None else pos,)
            if isinstance(s, ir.Assign):
                env[s.name] = affine.simplify(ir.substitute(s.value, env))
            elif isinstance(s, ir.For):
                loop = Loop(s.var, *(affine.simplify(ir.substitute(e, env)) for e in (s.start, s.stop, s.step)))
                inner = dict(env)
                inner.pop(s.var, None)
                walk(s.body, inner, loops + (loop,), guards, here)
            elif isinstance(s, ir.If):
                cond = affine.simplify(ir.substitute(s.cond, env))
                depth = len(loops)
                walk(s.body, env, loops, guards + ((depth, cond),), order, here[-1])
                walk(s.orelse, env, loops, guards + ((depth, affine.simplify(ir.Not(cond))),), order, here[-1])
            else:
                sid = len(out)
                guards_ = tuple(g for g in guards if g[1] != ir.BoolConst(True))
                writes = tuple(affine.simplify(ir.substitute(t, env)) for t in s.outputs)
                args = tuple(affine.simplify(ir.substitute(a, env)) for a in s.args)
                reads = tuple(a for a in args if isinstance(a, ir.TileRef))
                out.append(FlatStmt(sid, s.kernel, label(s, program.src.filename), s.src,
                                    loops, guards_, writes, reads, args, here))

    walk(program.body, env, (), (), ())
    return out


def label(call: ir.KernelCall, filename: str) -> str:
    """``kernel@L<line>``; an inlined statement also names the call it came through, ``chol@L40>cholesky.py:L18``.

    The call is the one in the program being bound (the outermost), the line the statement's own;
    its file is named when it is not the program's.
    """
    kernel = call.kernel.rsplit(".", 1)[-1]
    src = call.src
    where = f"L{src.line}"
    if src.filename != filename:
        where = f"{src.filename.replace(chr(92), '/').rsplit('/', 1)[-1]}:{where}"
    if src.via:
        return f"{kernel}@L{src.via[-1].line}>{where}"
    return f"{kernel}@{where}"


# --------------------------------------------------------------------------- expressions -> Python

_PYFUNC = {"min": "min", "max": "max", "log2": "_log2", "ceil_log2": "_clog2", "floor_log2": "_flog2"}


def py(e, names: dict[str, str]) -> str:
    """Python source for an expression or condition, variables renamed by ``names``.

    >>> py(ir.BinOp("+", ir.Var("i"), ir.Const(1)), {"i": "t_i"})
    '(t_i + 1)'
    """
    if isinstance(e, ir.Const | ir.FloatConst):
        return f"({e.value!r})" if e.value < 0 else repr(e.value)
    if isinstance(e, ir.BoolConst):
        return repr(e.value)
    if isinstance(e, ir.Var):
        return names[e.name]
    if isinstance(e, ir.BinOp | ir.Compare):
        return f"({py(e.left, names)} {e.op} {py(e.right, names)})"
    if isinstance(e, ir.Neg):
        return f"(-{py(e.operand, names)})"
    if isinstance(e, ir.Not):
        return f"(not {py(e.operand, names)})"
    if isinstance(e, ir.Call):
        return f"{_PYFUNC[e.func]}({', '.join(py(a, names) for a in e.args)})"
    if isinstance(e, ir.BoolOp):
        return "(" + f" {e.op} ".join(py(v, names) for v in e.values) + ")"
    raise TypeError(f"cannot generate code for {e!r}")


def domain_check(loop: Loop, v: str, names: dict[str, str]) -> str:
    """Python condition: ``v`` is one of ``range(start, stop, step)``."""
    lo, hi = py(loop.start, names), py(loop.stop, names)
    if isinstance(loop.step, ir.Const):
        s = loop.step.value
        if s == 1:
            return f"{lo} <= {v} < {hi}"
        if s > 0:
            return f"{lo} <= {v} < {hi} and ({v} - {lo}) % {s} == 0"
        return f"{hi} < {v} <= {lo} and ({lo} - {v}) % {-s} == 0"
    return f"_inr({v}, {lo}, {hi}, {py(loop.step, names)})"


def range_code(loop: Loop, names: dict[str, str]) -> str:
    lo, hi = py(loop.start, names), py(loop.stop, names)
    if loop.step == ir.Const(1):
        return f"range({lo}, {hi})"
    return f"range({lo}, {hi}, {py(loop.step, names)})"


# --------------------------------------------------------------------------- solving


def plan(target: FlatStmt, index: tuple[ir.Expr, ...], rhs: list[str]) -> list[tuple]:
    """Steps that find every task of ``target`` with ``index(task) == rhs``.

    ``rhs`` are Python expressions (already-computed locals).  Steps are
    ``("check", cond)``, ``("set", var, code)``, ``("setdiv", var, numer, d)``
    and ``("for", var, range_code)``; ``var`` names are target loop variables,
    rendered as ``t_<name>``.
    """
    names = {v: f"t_{v}" for v in target.vars}
    loops = {lp.var: lp for lp in target.loops}
    order = list(target.vars)  # outermost first
    known: set[str] = set()
    steps: list[tuple] = []
    eqs = {i: e for i, e in enumerate(index)}  # equations not consumed yet: e == rhs[i]
    rhs = list(rhs)
    guards = []
    for g in conjuncts(c for _, c in target.guards):
        if isinstance(g, ir.Compare) and g.op == "==":  # an equality guard solves like an index
            eqs[len(rhs)] = affine.simplify(ir.BinOp("-", g.left, g.right))
            rhs.append("0")
        else:
            guards.append(g)
    domain_pending = set(order)  # solved variables whose range membership is unchecked

    def emit_ready():
        for i in sorted(eqs):
            if ir.free_vars(eqs[i]) <= known:
                steps.append(("check", f"{py(eqs.pop(i), names)} == {rhs[i]}"))
        for v in [v for v in order if v in domain_pending and v in known]:
            lp = loops[v]
            if (ir.free_vars(lp.start) | ir.free_vars(lp.stop) | ir.free_vars(lp.step)) <= known:
                domain_pending.discard(v)
                steps.append(("check", domain_check(lp, names[v], names)))
        for g in list(guards):
            if ir.free_vars(g) <= known:
                guards.remove(g)
                steps.append(("check", py(g, names)))

    emit_ready()
    while len(known) < len(order):
        unknown = frozenset(order) - known
        if _solve_single(eqs, unknown, rhs, names, steps, known) or \
                _solve_elimination(eqs, unknown, order, rhs, names, steps, known):
            emit_ready()
            continue
        v = next(v for v in order if v not in known)
        steps.append(("for", names[v], range_code(loops[v], names)))
        domain_pending.discard(v)
        known.add(v)
        emit_ready()
    assert not eqs and not guards and not domain_pending
    return steps


def conjuncts(conds) -> list[ir.Cond]:
    """Split a conjunction into its parts.

    >>> k_is_0 = ir.Compare("==", ir.Var("k"), ir.Const(0))
    >>> [str(c) for c in conjuncts([ir.BoolOp("and", (ir.BoolConst(True), k_is_0))])]
    ['True', 'k == 0']
    """
    out = []
    for c in conds:
        if isinstance(c, ir.BoolOp) and c.op == "and":
            out += conjuncts(c.values)
        else:
            out.append(c)
    return out


def _solve_single(eqs, unknown, rhs, names, steps, known) -> bool:
    """Use an equation affine in exactly one unknown (and consume it)."""
    for i in sorted(eqs):
        unk = ir.free_vars(eqs[i]) & unknown
        if len(unk) != 1:
            continue
        lin = affine.linearize(eqs[i], unk)
        if lin is None:
            continue
        (v, a), = lin[0].items()
        rest = lin[1]
        diff = rhs[i] if rest == ir.Const(0) else f"({rhs[i]} - {py(rest, names)})"
        del eqs[i]
        if a == 1:
            steps.append(("set", names[v], diff))
        elif a == -1:
            steps.append(("set", names[v], f"(-{diff})"))
        else:
            steps.append(("setdiv", names[v], diff, a))
        known.add(v)
        return True
    return False


def _solve_elimination(eqs, unknown, order, rhs, names, steps, known) -> bool:
    """Exact elimination over the equations affine in the unknowns."""
    cols = [v for v in reversed(order) if v in unknown]  # innermost first: they become pivots
    rows, rests, idxs = [], [], []
    for i in sorted(eqs):
        if not ir.free_vars(eqs[i]) & unknown:
            continue
        lin = affine.linearize(eqs[i], unknown)
        if lin is None:
            continue
        rows.append([Fraction(lin[0].get(v, 0)) for v in cols])
        rests.append(lin[1])
        idxs.append(i)
    if not rows:
        return False
    solved = False
    for p, w, g in affine.solve_rational(rows, len(cols)):
        if any(g):
            continue
        d = math.lcm(*(x.denominator for x in w))
        terms = []
        for wr, i, rest in zip(w, idxs, rests):
            if wr:
                b = rhs[i] if rest == ir.Const(0) else f"({rhs[i]} - {py(rest, names)})"
                terms.append(f"{int(wr * d)} * {b}")
        numer = " + ".join(terms) or "0"
        v = cols[p]
        steps.append(("setdiv", names[v], f"({numer})", d) if d != 1 else ("set", names[v], f"({numer})"))
        known.add(v)
        solved = True
    return solved


def render(steps: list[tuple], indent: int, leaf: list[str]) -> list[str]:
    """Nested Python for a plan; ``leaf`` lines run once per solution."""
    out = []
    pad = " " * indent
    checks: list[str] = []

    def flush():
        nonlocal pad
        if checks:
            out.append(pad + "if " + " and ".join(f"({c})" for c in checks) + ":")
            pad += "    "
            checks.clear()

    for step in steps:
        kind = step[0]
        if kind == "check":
            checks.append(step[1])
            continue
        flush()
        if kind == "set":
            out.append(pad + f"{step[1]} = {step[2]}")
        elif kind == "setdiv":
            out.append(pad + f"_n = {step[2]}")
            out.append(pad + f"if _n % {step[3]} == 0:")
            pad += "    "
            out.append(pad + f"{step[1]} = _n // {step[3]}")
        else:
            out.append(pad + f"for {step[1]} in {step[2]}:")
            pad += "    "
    flush()
    out += [pad + line for line in leaf]
    return out
