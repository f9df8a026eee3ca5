"""What a program costs: tasks, flops, bytes moved and the critical path, as sympy expressions.

``program.cost(block=b, **params)`` (see ``Program.cost``) returns a ``Cost``:

- per statement (``Cost.stmts``, a ``StmtCost`` each) and in total: the number of tasks, the
  floating-point operations, and the bytes read and written, each as a sympy expression in the
  program's integer parameters and the block size ``b`` (``Cost.exprs``), and as numbers for the
  given parameters (``Cost.values``);
- the critical path: its length in tasks and, with the kernels' flops, in flops.

**Tasks** are the statement counts of ``lambdapack.symbolic`` (closed form, finite sum or
enumeration; ``StmtCost.method``).  **Flops** of a task come from its kernel's ``flops`` formula
(``@lp.kernel(flops=...)``), called with *symbolic tiles*: objects whose ``shape`` is ``(b, b)``
(``size`` ``b**2``) for every tile argument, and the scalar arguments as sympy expressions of the
loop variables and parameters.  This assumes **full tiles**: an edge tile of a matrix whose size
is not a multiple of ``b`` is counted as a whole ``b×b`` tile, so the flops and bytes are upper
bounds for ragged matrices (exact when the block size divides the shape).  A statement's flops are
the sum of its per-task formula over its tasks (the same summation as the count), so a formula
that depends on a scalar argument is summed exactly.  A kernel without a formula counts 0 flops
(``StmtCost.note`` says so).  **Bytes** are tiles read (written) per task × tasks × ``b**2 ×
itemsize`` (reads of input tiles included; nothing is assumed cached).

**Critical path** (``Cost.critical_path``): the longest chain of dependent tasks, in tasks and in
flops (each task weighted by its kernel's flops).  A program may carry a derived closed form
(``Program.critical_path_formula``, expressions in the parameters and ``b``): then
``critical_path.method`` is "closed form" (the tests check each such formula against the longest
path of the unrolled graph).  Otherwise it is computed on the bound program's implicit DAG —
tasks in serial program order, each one's longest chain being one plus its parents' longest —
when the program has at most ``DAG_LIMIT`` tasks ("longest path over the DAG"); above that it is
left unknown (None, "too large to walk").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction

import sympy

from . import ir, symbolic

DAG_LIMIT = 200_000  # tasks: a larger program's critical path without a closed form is not computed
BLOCK = symbolic.symbol("b")


class SymbolicTile:
    """A ``b×b`` tile whose dimensions are sympy symbols, for a kernel's flops formula.

    >>> t = SymbolicTile(BLOCK)
    >>> t.shape, t.size, t.ndim
    ((b, b), b**2, 2)
    """

    def __init__(self, b, itemsize=8):
        self.shape = (b, b)
        self.size = b * b
        self.ndim = 2
        self.itemsize = itemsize
        self.nbytes = b * b * itemsize

    def __len__(self) -> int:
        raise TypeError("a symbolic tile has no integer length; use .shape[0]")


@dataclass
class StmtCost:
    """One statement: expressions (sympy) and numbers for the given parameters."""

    stmt: int
    label: str
    kernel: str
    tasks: object
    flops: object
    bytes_read: object
    bytes_written: object
    method: str  # how the task count was found: "closed form" | "finite sum" | "enumeration"
    flops_per_task: object = None
    note: str = ""
    values: dict = field(default_factory=dict)  # tasks, flops, bytes_read, bytes_written as numbers


@dataclass
class CriticalPath:
    """Length of the longest chain of dependent tasks, in tasks and in flops."""

    tasks: object  # sympy expression (closed form) or int, or None when unknown
    flops: object
    method: str  # "closed form" | "longest path over the DAG" | "unknown"
    values: dict = field(default_factory=dict)  # tasks, flops as numbers
    reason: str = ""


@dataclass
class Cost:
    """``program.cost(...)``: per statement, totals (``exprs`` and ``values``), critical path."""

    params: dict
    stmts: list[StmtCost]
    exprs: dict  # tasks, flops, bytes_read, bytes_written: sympy expressions in the parameters and b
    values: dict  # the same, as numbers for ``params``
    critical_path: CriticalPath

    def __str__(self) -> str:
        head = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [f"cost({head})", f"{'statement':<28}{'tasks':>14}{'flops':>14}{'bytes read':>14}"
                 f"{'bytes written':>15}  count"]
        for s in self.stmts:
            v = s.values
            lines.append(f"{s.label:<28}{v['tasks']:>14,}{v['flops']:>14.4g}{v['bytes_read']:>14.4g}"
                         f"{v['bytes_written']:>15.4g}  {s.method}")
        v = self.values
        lines.append(f"{'total':<28}{v['tasks']:>14,}{v['flops']:>14.4g}{v['bytes_read']:>14.4g}"
                     f"{v['bytes_written']:>15.4g}")
        cp = self.critical_path
        lines.append(f"critical path: {cp.values.get('tasks')} tasks, {cp.values.get('flops')} flops ({cp.method})")
        return "\n".join(lines)


def _number(x):
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else float(x)
    if isinstance(x, sympy.Basic):
        x = sympy.nsimplify(x) if not x.is_Rational else x
        return int(x) if x.is_Integer else float(x)
    return x


def program_cost(program, block: int, itemsize: int = 8, bound=None, **params: int) -> Cost:
    """The cost of ``program`` for integer ``params`` and tiles of ``block × block`` (see the module docstring)."""
    if bound is None:
        bound = program.bind(validate="none", **params)
    values = dict(bound.values)
    env = dict(values, b=int(block))
    syms = {p: symbolic.symbol(p) for p in program.params}
    try:
        stmts = symbolic.symbolic_stmts(program)
    except (ValueError, ZeroDivisionError, ArithmeticError):
        stmts = None
    kernels = program.kernels()
    counts = bound.stmt_counts()
    out = []
    for i, fs in enumerate(bound.stmts):
        s = stmts[i] if stmts is not None else None
        tasks_expr = symbolic.count_statement(program, i).expr
        kernel = kernels.get(fs.kernel)
        per_task, note = _flops_per_task(kernel, s, syms, itemsize) if _is_kernel(kernel) else (None, "")
        if s is not None and per_task is not None:
            flops = symbolic.count_stmt(s, dict(syms), per_task)
        else:
            flops = None
        tile_bytes = BLOCK**2 * itemsize
        n = counts[i]
        sc = symbolic.count_statement(program, i)
        st = StmtCost(i, fs.label, fs.kernel, tasks_expr, flops.expr if flops is not None else None,
                      None if tasks_expr is None else tasks_expr * len(fs.reads) * tile_bytes,
                      None if tasks_expr is None else tasks_expr * len(fs.writes) * tile_bytes,
                      sc.method, per_task, note or sc.reason)
        fl = None
        if flops is not None and flops.expr is not None:
            try:
                fl = _number(flops.value(env))
            except (ArithmeticError, ValueError, TypeError):
                fl = None
        if fl is None:  # sum the per-task formula over the enumerated tasks
            fl = _enumerated_flops(bound, i, per_task, env) if per_task is not None else 0
        b2 = int(block) ** 2 * itemsize
        st.values = {"tasks": n, "flops": fl, "bytes_read": n * len(fs.reads) * b2,
                     "bytes_written": n * len(fs.writes) * b2}
        out.append(st)
    exprs = {}
    for key in ("tasks", "flops", "bytes_read", "bytes_written"):
        parts = [getattr(s, key) for s in out]
        exprs[key] = None if any(p is None for p in parts) else sympy.Add(*parts)
    totals = {key: sum(s.values[key] for s in out) for key in ("tasks", "flops", "bytes_read", "bytes_written")}
    cp = critical_path(program, bound, int(block), itemsize)
    return Cost(dict(values, b=int(block)), out, exprs, totals, cp)


def _is_kernel(k) -> bool:
    """A kernel (``lp.Kernel``: a function with a ``flops`` formula or None); ``program`` imports this module."""
    return k is not None and hasattr(k, "flops") and callable(k)


def _flops_per_task(kernel, s, syms, itemsize):
    """The kernel's flops formula on symbolic tiles: a sympy expression in loop variables, parameters, b."""
    if kernel.flops is None:
        return sympy.Integer(0), f"kernel {kernel.name} has no flops formula: counted as 0"
    if s is None:
        return None, "the program cannot be analysed symbolically"
    loc = dict(syms)
    args = []
    for a in s.args:
        if isinstance(a, ir.TileRef):
            args.append(SymbolicTile(BLOCK, itemsize))
        elif isinstance(a, ir.FloatConst):
            args.append(sympy.Float(a.value))
        else:
            args.append(symbolic.to_sympy(a, loc))
    try:
        return sympy.nsimplify(sympy.sympify(kernel.flops(*args))), ""
    except (TypeError, ValueError, AttributeError, IndexError, ArithmeticError) as exc:
        return None, f"the flops formula of {kernel.name} does not take symbolic tiles ({exc})"


def _enumerated_flops(bound, stmt: int, per_task, env) -> float:
    s = bound.stmts[stmt]
    names = list(s.vars)
    fn = symbolic.compile_expr(per_task, sorted(set(env) | set(names)))
    total = 0
    for t in bound.stmt_tasks(stmt):
        total += fn(**env, **dict(zip(names, t[1])))
    return _number(total)


def critical_path(program, bound, block: int, itemsize: int = 8) -> CriticalPath:
    """The longest chain of dependent tasks of ``bound`` (see the module docstring)."""
    env = dict(bound.values, b=block)
    formula = getattr(program, "critical_path_formula", None)
    if formula is not None:
        tasks_e, flops_e = (sympy.sympify(formula[k], locals=_locals(program)) for k in ("tasks", "flops"))
        vals = {"tasks": _evaluate(tasks_e, env), "flops": _evaluate(flops_e, env)}
        return CriticalPath(tasks_e, flops_e, "closed form", vals)
    n = bound.num_tasks()
    if n > DAG_LIMIT:
        return CriticalPath(None, None, "unknown", {}, f"{n:,} tasks: too large to walk (DAG_LIMIT = {DAG_LIMIT:,})")
    tasks, flops = longest_path(bound, block, itemsize)
    return CriticalPath(tasks, flops, "longest path over the DAG", {"tasks": tasks, "flops": flops})


def _locals(program) -> dict:
    loc = {p: symbolic.symbol(p) for p in program.params}
    loc.update(b=BLOCK, ceil_log2=symbolic.ceil_log2, floor_log2=symbolic.floor_log2)
    return loc


def _evaluate(e, env):
    return _number(symbolic.compile_expr(e, sorted(env))(**env))


def task_flops(program, bound, block: int, itemsize: int = 8):
    """A function ``f(task) -> flops`` from the kernels' formulas on symbolic tiles."""
    stmts = symbolic.symbolic_stmts(program)
    syms = {p: symbolic.symbol(p) for p in program.params}
    kernels = program.kernels()
    env = dict(bound.values, b=block)
    fns = []
    for s in stmts:
        k = kernels.get(s.kernel)
        per, _ = _flops_per_task(k, s, dict(syms), itemsize) if _is_kernel(k) else (sympy.Integer(0), "")
        fns.append((symbolic.compile_expr(per if per is not None else sympy.Integer(0),
                                          sorted(set(env) | set(s.vars))), s.vars))

    def f(t):
        fn, names = fns[t[0]]
        return fn(**env, **dict(zip(names, t[1])))

    return f


def longest_path(bound, block: int, itemsize: int = 8):
    """(tasks, flops) of the longest chain of dependent tasks, walking every task in serial order."""
    f = task_flops(bound.program, bound, block, itemsize)
    depth: dict = {}
    weight: dict = {}
    best_t, best_f = 0, 0
    for t in bound.tasks():
        ps = bound.parents(t)
        d = 1 + max((depth[p] for p in ps), default=0)
        w = f(t) + max((weight[p] for p in ps), default=0)
        depth[t], weight[t] = d, w
        best_t, best_f = max(best_t, d), max(best_f, w)
    return best_t, _number(best_f)


__all__ = ["BLOCK", "Cost", "CriticalPath", "StmtCost", "SymbolicTile", "critical_path", "longest_path",
           "program_cost", "task_flops"]
