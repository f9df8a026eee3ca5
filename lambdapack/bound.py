"""A program bound to integer parameters: the implicit task graph.

State of a ``BoundProgram`` (all built once, at bind time; none grows with the
parameters):

``stmts``
    the flattened kernel calls (``codegen.FlatStmt``), in program order; a
    task is ``Task(stmt id, loop values)``.
``writers[M]`` / ``readers[M]``
    for each tile space M, the (statement, site) pairs that write / read it.
``inputs``
    tile spaces that no statement writes: their tiles come from the caller.
``_ns``
    the namespace of the generated Python: per tile space ``_writers_M(*index)``
    and ``_readers_M(*index)``; per statement ``_parents_S``, ``_children_S``,
    ``_reads_S``, ``_writes_S``, ``_args_S``, ``_sample_S``, ``_contains_S``, ``_tasks_S`` and
    ``_count_S`` (and ``_bounded_count_S``, which gives up past a number of iterations); and
    the whole program's ``_tasks`` (program order) and ``_count``.

Queries (``parents``, ``children``, ``in_degree``...) dispatch on the task's
statement id to the generated function: no symbolic work, no enumeration of
anything but the loop variables a tile index leaves free.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from . import affine, functions, ir
from .codegen import FlatStmt, Loop, conjuncts, domain_check, flatten, plan, py, range_code, render
from .task import StmtId, Task, make_task
from .validate import validate_bound


class BoundProgram:
    """The implicit DAG of ``program`` for given integer parameters.

    Use ``program.bind(N=...)``; see the module docstring for its state.
    """

    def __init__(self, program, values: dict[str, int], validate: str = "auto"):
        self.program = program
        self.values = dict(values)
        self.stmts: list[FlatStmt] = flatten(program.ir, values)
        self.stmt_ids = [StmtId(s.id, s.label, s.vars) for s in self.stmts]
        self.writers: dict[str, list[tuple[FlatStmt, int]]] = {m: [] for m in program.tile_spaces}
        self.readers: dict[str, list[tuple[FlatStmt, int]]] = {m: [] for m in program.tile_spaces}
        for s in self.stmts:
            for k, w in enumerate(s.writes):
                self.writers[w.matrix].append((s, k))
            for k, r in enumerate(s.reads):
                self.readers[r.matrix].append((s, k))
        self.inputs = tuple(m for m in program.tile_spaces if not self.writers[m])
        self.outputs = tuple(m for m in program.tile_spaces if self.writers[m])
        self.source = _generate(self)
        self._ns: dict = {"_mk": make_task, "_Task": Task, "_inr": functions.in_range, "_len": functions.range_len,
                          "_log2": functions.exact_log2, "_clog2": functions.ceil_log2, "_flog2": functions.floor_log2}
        for sid in self.stmt_ids:
            self._ns[f"S{int(sid)}"] = sid
        exec(compile(self.source, f"<lambdapack {program.name} bound>", "exec"), self._ns)
        g = self._ns
        n = len(self.stmts)
        self._parents = [g[f"_parents_{i}"] for i in range(n)]
        self._children = [g[f"_children_{i}"] for i in range(n)]
        self._reads = [g[f"_reads_{i}"] for i in range(n)]
        self._writes = [g[f"_writes_{i}"] for i in range(n)]
        self._args = [g[f"_args_{i}"] for i in range(n)]
        self._priority = [g[f"_priority_{i}"] for i in range(n)]
        self._stmt_tasks = [g[f"_tasks_{i}"] for i in range(n)]
        self._contains = [g[f"_contains_{i}"] for i in range(n)]
        self._stmt_count = [g[f"_count_{i}"] for i in range(n)]
        self._bounded_count = [g[f"_bounded_count_{i}"] for i in range(n)]  # None past a number of iterations
        self._count_cache: list[int] | None = None
        self._count_methods: list[tuple[str, str]] = []
        if validate not in ("auto", "full", "none"):
            raise ValueError(f"validate must be 'auto', 'full' or 'none', not {validate!r}")
        if validate != "none":
            validate_bound(self, full=validate == "full")

    # ------------------------------------------------------------------ the contract
    def tasks(self) -> Iterator[Task]:
        """Every task, in the order a serial run of the program would execute them."""
        return self._ns["_tasks"]()

    def num_tasks(self) -> int:
        return sum(self.stmt_counts())

    def stmt_counts(self) -> list[int]:
        """Number of tasks of each statement.

        A statement whose loop nest is small (at most ``ENUMERATE_COUNT_LIMIT`` iterations of the
        loops outside its innermost rectangular ones) is counted by running that nest.  A larger one
        is counted from its symbolic count (``lambdapack.symbolic``): a sympy expression in the
        program's parameters, derived once per program and statement and evaluated here, O(1) in the
        parameters for a closed form.  A statement without one (``count_methods()`` says why), or
        whose expression cannot be evaluated at these values, is enumerated in full.
        """
        if self._count_cache is None:
            counts, methods = [], []
            for i, c in enumerate(self._stmt_count):
                n = self._bounded_count[i](ENUMERATE_COUNT_LIMIT)
                if n is not None:
                    counts.append(n)
                    methods.append(("enumeration", "small loop nest"))
                    continue
                sc = _symbolic_count(self.program, i)
                if sc.expr is not None:
                    try:
                        counts.append(sc.evaluate(self.values))
                        methods.append((sc.method, ""))
                        continue
                    except (ArithmeticError, ValueError, TypeError, RecursionError) as exc:
                        why = f"the {sc.method} cannot be evaluated here ({exc})"
                else:
                    why = sc.reason
                counts.append(c())
                methods.append(("enumeration", why))
            self._count_cache, self._count_methods = counts, methods
        return list(self._count_cache)

    def count_methods(self) -> list[tuple[str, str]]:
        """How ``stmt_counts()`` got each statement's count: ``(method, reason)``.

        ``method`` is "closed form", "finite sum" (a closed form summed term by term over a
        loop such as a tree's ``level``) or "enumeration" (``reason`` says why).
        """
        self.stmt_counts()
        return list(self._count_methods)

    def starters(self) -> Iterator[Task]:
        """Tasks with no parents: those of statements that read only input tile spaces."""
        for s in self.stmts:
            if all(r.matrix in self.inputs for r in s.reads):
                yield from self._stmt_tasks[s.id]()

    def contains(self, t) -> bool:
        """Whether ``t`` is a task of this program: a statement id in range, one integer per loop
        variable, each within its loop's bounds (which may depend on outer variables) and step,
        and every enclosing guard true.

        O(loop depth) integer checks, generated from the same loop bounds and guards as the
        enumeration (``tasks()``); nothing is enumerated.  Anything that is not a task
        (wrong types, a negative statement id, a bool) is simply not contained.

        >>> from lambdapack.program import Program, kernel
        >>> src = ["def f(A: lp.Matrix, B: lp.Matrix, N: int):", "    for k in range(N):",
        ...        "        for i in range(k + 1, N, 2):", "            if i != 3:",
        ...        "                B[k, i] = g(A[k, i])"]
        >>> b = Program.from_source(chr(10).join(src), {"g": kernel(lambda a: a)}).bind(N=6)
        >>> [b.contains(t) for t in [(0, (0, 1)), (0, (0, 2)), (0, (0, 3)), (0, (5, 6)), (1, (0, 1)), (0, (0,))]]
        [True, False, False, False, False, False]
        >>> sum(b.contains((0, (k, i))) for k in range(-2, 9) for i in range(-2, 9)) == b.num_tasks()
        True
        """
        try:
            stmt, idx = t
        except (TypeError, ValueError):
            return False
        if not isinstance(stmt, int) or isinstance(stmt, bool) or not 0 <= stmt < len(self.stmts):
            return False
        if not isinstance(idx, tuple | list) or not all(isinstance(v, int) and not isinstance(v, bool) for v in idx):
            return False
        try:
            return self._contains[stmt](tuple(idx))
        except (ArithmeticError, ValueError):  # a bound or guard undefined at these values
            return False

    def parents(self, t: Task) -> list[Task]:
        return self._parents[t[0]](t[1])

    def children(self, t: Task) -> list[Task]:
        return self._children[t[0]](t[1])

    def in_degree(self, t: Task) -> int:
        return len(self._parents[t[0]](t[1]))

    def reads(self, t: Task) -> list[tuple[str, tuple[int, ...]]]:
        return self._reads[t[0]](t[1])

    def writes(self, t: Task) -> list[tuple[str, tuple[int, ...]]]:
        return self._writes[t[0]](t[1])

    def priority(self, t: Task) -> int:
        """Scheduling priority, lower first: the task's place in a serial run (see ``_priority``).

        >>> from lambdapack.program import Program, kernel
        >>> src = ["def f(A: lp.Matrix, B: lp.Matrix, N: int):", "    for k in range(N):",
        ...        "        for i in range(k, N):", "            B[k, i] = g(A[k, i])", "        B[k, N] = g(A[k, 0])"]
        >>> p = Program.from_source(chr(10).join(src), {"g": kernel(lambda a: a)})
        >>> b = p.bind(N=2)
        >>> [str(t) for t in sorted(b.tasks(), key=b.priority)]
        ['g@L4(k=0, i=0)', 'g@L4(k=0, i=1)', 'g@L5(k=0)', 'g@L4(k=1, i=1)', 'g@L5(k=1)']
        """
        return self._priority[t[0]](t[1])

    # ------------------------------------------------------------------ helpers
    def task(self, stmt: int, idx) -> Task:
        """A task whose statement knows its label (for printing)."""
        return Task(self.stmt_ids[stmt], tuple(idx))

    def task_from_json(self, s: str) -> Task:
        t = Task.from_json(s)
        return self.task(t[0], t[1])

    def stmt(self, t: Task) -> FlatStmt:
        return self.stmts[t[0]]

    def writers_of(self, matrix: str, index: tuple[int, ...]) -> list[Task]:
        """Every task that writes tile ``matrix[index]`` (one, for a valid program)."""
        return self._ns[f"_writers_{matrix}"](*index) if self.writers[matrix] else []

    def readers_of(self, matrix: str, index: tuple[int, ...]) -> list[Task]:
        """Every task that reads tile ``matrix[index]``."""
        return self._ns[f"_readers_{matrix}"](*index) if self.readers[matrix] else []

    def stmt_tasks(self, stmt: int) -> Iterator[Task]:
        return self._stmt_tasks[stmt]()

    def kernel_args(self, t: Task) -> list:
        """The kernel's arguments for a task, in order: ``("tile", M, index)`` or a number."""
        return self._args[t[0]](t[1])

    def random_task(self, rng: random.Random, stmt: int | None = None) -> Task:
        """A task drawn at random without enumerating the program.

        The statement is drawn in proportion to its task count, then loop
        variables outermost first, each uniformly from its range (so tasks are
        not exactly uniform within a statement).
        """
        counts = self.stmt_counts()
        if stmt is None:
            if not sum(counts):
                raise ValueError("the program has no tasks")
            stmt = rng.choices(range(len(counts)), weights=counts)[0]
        s = self.stmts[stmt]
        if not counts[stmt]:
            raise ValueError(f"statement {s.label} has no tasks")
        sample = self._ns[f"_sample_{stmt}"]
        for _ in range(10_000):
            idx = sample(rng.randrange)
            if idx is not None:
                return self.task(stmt, idx)
        # a statement whose guards are very selective: fall back to enumeration
        return rng.choice(list(self._stmt_tasks[stmt]()))

    def __repr__(self) -> str:
        vals = ", ".join(f"{k}={v}" for k, v in self.values.items())
        return f"<BoundProgram {self.program.name}({vals}): {len(self.stmts)} statements>"


ENUMERATE_COUNT_LIMIT = 250_000  # loop iterations (outside the innermost rectangular loops) before a statement
# is counted symbolically instead: at 40-80 ns an iteration, an enumeration this long costs 10-20 ms, while a
# program's first symbolic count costs sympy's import (about 0.4 s) and its derivation (0.1 s to seconds)


def _symbolic_count(program, stmt: int):
    """Statement ``stmt``'s symbolic count (derived on first use, then cached on the program)."""
    from . import symbolic  # sympy is imported only when a count needs it: executors never do

    return symbolic.count_statement(program, stmt)


# --------------------------------------------------------------------------- code generation


def _generate(b: BoundProgram) -> str:
    lines: list[str] = []
    for m in b.program.tile_spaces:
        lines += _site_solver(f"_writers_{m}", b.program.arity.get(m, 0), b.writers[m], "writes")
        lines += _site_solver(f"_readers_{m}", b.program.arity.get(m, 0), b.readers[m], "reads")
    for s in b.stmts:
        lines += _stmt_functions(b, s)
    lines += _program_tasks(b)
    return "\n".join(lines) + "\n"


def _site_solver(fname: str, arity: int, sites: list[tuple[FlatStmt, int]], kind: str) -> list[str]:
    """``fname(a0, ..., a{arity-1})``: every task whose site names that tile."""
    if not sites:
        return []
    args = [f"a{i}" for i in range(arity)]
    out = [f"def {fname}({', '.join(args)}):", "    out = []"]
    for s, k in sites:
        ref = (s.writes if kind == "writes" else s.reads)[k]
        out.append(f"    # {s.label} {kind} {ref}")
        leaf = [f"out.append(_mk(_Task, (S{s.id}, ({''.join(f't_{v}, ' for v in s.vars)}))))"]
        out += render(plan(s, ref.index, args), 4, leaf)
    out += ["    return out", ""]
    return out


def _unpack(s: FlatStmt) -> str:
    if not s.vars:
        return "    pass"
    return f"    {', '.join(f's_{v}' for v in s.vars)}, = idx"


def _stmt_functions(b: BoundProgram, s: FlatStmt) -> list[str]:
    names = {v: f"s_{v}" for v in s.vars}
    i = s.id
    out = []

    def tiles(refs):
        return "[" + ", ".join(
            f"({r.matrix!r}, ({''.join(py(e, names) + ', ' for e in r.index)}))" for r in refs) + "]"

    out += [f"def _reads_{i}(idx):", _unpack(s), f"    return {tiles(s.reads)}", ""]
    args = ", ".join(
        f"('tile', {a.matrix!r}, ({''.join(py(e, names) + ', ' for e in a.index)}))" if isinstance(a, ir.TileRef)
        else py(a, names) for a in s.args)
    out += [f"def _args_{i}(idx):", _unpack(s), f"    return [{args}]", ""]
    out += [f"def _writes_{i}(idx):", _unpack(s), f"    return {tiles(s.writes)}", ""]
    out += _priority(s, names)

    def related(fname, refs, table, solver):
        calls = [f"{solver}_{r.matrix}({', '.join(py(e, names) for e in r.index)})"
                 for r in refs if table[r.matrix]]
        body = [f"def {fname}(idx):", _unpack(s)]
        if not calls:
            return body + ["    return []", ""]
        if len(calls) == 1:
            return body + [f"    out = {calls[0]}", "    return list(dict.fromkeys(out)) if len(out) > 1 else out", ""]
        body.append("    out = " + " + ".join(calls))
        return body + ["    return list(dict.fromkeys(out))", ""]

    out += related(f"_parents_{i}", s.reads, b.writers, "_writers")
    out += related(f"_children_{i}", s.writes, b.readers, "_readers")

    # enumeration and counting of this statement alone
    tnames = {v: f"t_{v}" for v in s.vars}
    leaf = [f"yield _mk(_Task, (S{i}, ({''.join(f't_{v}, ' for v in s.vars)})))"]
    out += [f"def _tasks_{i}():", *_nest(s, tnames, leaf, len(s.loops)), "    return", "    yield", ""]
    out += _sampler(s, tnames)
    out += _membership(s, names)
    depth = _closed_form_depth(s)
    count_expr = " * ".join(f"len({range_code(lp, tnames)})" for lp in s.loops[depth:]) or "1"
    tick = ["steps += 1", "if steps > limit:", "    return None"]
    out += [f"def _count_{i}():", "    n = 0", *_nest(s, tnames, [f"n += {count_expr}"], depth), "    return n", ""]
    out += [f"def _bounded_count_{i}(limit):", "    n = 0", "    steps = 0",
            *_nest(s, tnames, [f"n += {count_expr}"], depth, tick), "    return n", ""]
    return out


PRIORITY_FIELDS = (4, 11, 4, 11)  # bits of (position, iteration, position, iteration); 30 bits in all


def _priority(s: FlatStmt, names: dict[str, str]) -> list[str]:
    """``_priority_S(idx)``: the task's place in a serial run of the program, as a small integer.

    The serial order of tasks is the lexicographic order of (position of the outermost
    statement, its loop's iteration number, position in that loop's body, next iteration
    number, ...).  The first four of these, each clipped to its field, make the priority
    (lower runs first): for a right-looking factorization that puts step k's panel before
    its trailing update, and the update's next column first.
    """
    comps = []
    for d, p in enumerate(s.order):
        comps.append(str(p))
        if d < len(s.loops):
            lp = s.loops[d]
            comps.append(f"(({names[lp.var]} - {py(lp.start, names)}) // {py(lp.step, names)})")
    comps = (comps + ["0"] * len(PRIORITY_FIELDS))[:len(PRIORITY_FIELDS)]
    expr = "0"
    for c, bits in zip(comps, PRIORITY_FIELDS):
        expr = f"(({expr}) << {bits}) + min({c}, {(1 << bits) - 1})"
    return [f"def _priority_{s.id}(idx):", _unpack(s), f"    return {expr}", ""]


def _sampler(s: FlatStmt, names: dict[str, str]) -> list[str]:
    """``_sample_S(rr)``: loop values drawn outermost first (``rr`` is ``randrange``), or None.

    A loop variable that a guard pins to outer variables (``if k == 0``) is set
    from the guard instead of drawn, so pinned statements sample quickly.
    """
    out = [f"def _sample_{s.id}(rr):"]
    for d in range(len(s.loops) + 1):
        if d > 0:
            lp = s.loops[d - 1]
            v = names[lp.var]
            outer = frozenset(x.var for x in s.loops[:d - 1])
            pin = _pinned(lp.var, outer, [g for gd, g in s.guards if gd >= d])
            if pin is not None:
                out += [f"    {v} = {py(pin, names)}",
                        f"    if not ({domain_check(lp, v, names)}):", "        return None"]
            else:
                out += [f"    r = {range_code(lp, names)}", "    if not r:", "        return None",
                        f"    {v} = r[rr(len(r))]"]
        conds = [py(g, names) for gd, g in s.guards if gd == d]
        if conds:
            out += [f"    if not ({' and '.join(conds)}):", "        return None"]
    return out + [f"    return ({''.join(names[v] + ', ' for v in s.vars)})", ""]


def _membership(s: FlatStmt, names: dict[str, str]) -> list[str]:
    """``_contains_S(idx)``: whether loop values ``idx`` (a tuple of ints) are a task of statement S.

    The checks mirror ``_tasks_S``: outermost loop first, the guards written at each depth, then
    that loop's range (``domain_check``: start, stop and step, from outer variables only).
    """
    out = [f"def _contains_{s.id}(idx):", f"    if len(idx) != {len(s.vars)}:", "        return False", _unpack(s)]
    for d in range(len(s.loops) + 1):
        conds = [py(g, names) for gd, g in s.guards if gd == d]
        if d < len(s.loops):
            conds.append(domain_check(s.loops[d], names[s.loops[d].var], names))
        for c in conds:
            out += [f"    if not ({c}):", "        return False"]
    return out + ["    return True", ""]


def _pinned(var: str, outer: frozenset[str], guards: list[ir.Cond]) -> ir.Expr | None:
    for g in conjuncts(guards):
        if isinstance(g, ir.Compare) and g.op == "==":
            lin = affine.linearize(affine.simplify(ir.BinOp("-", g.left, g.right)), frozenset((var,)))
            if lin is not None and lin[0].get(var) in (1, -1) and ir.free_vars(lin[1]) <= outer:
                a, rest = lin[0][var], lin[1]
                return affine.simplify(ir.Neg(rest)) if a == 1 else rest
    return None


def _nest(s: FlatStmt, names: dict[str, str], leaf: list[str], depth: int, tick: list[str] = ()) -> list[str]:
    """The statement's first ``depth`` loops with their guards, around ``leaf``; ``tick`` runs in every loop body."""
    out = []
    pad = "    "
    for d in range(depth + 1):
        conds = [py(g, names) for gd, g in s.guards if gd == d]
        if conds:
            out.append(pad + "if " + " and ".join(conds) + ":")
            pad += "    "
        if d < depth:
            out.append(pad + f"for {names[s.loops[d].var]} in {range_code(s.loops[d], names)}:")
            pad += "    "
            out += [pad + line for line in tick]
    return out + [pad + line for line in leaf]


def _closed_form_depth(s: FlatStmt) -> int:
    """Smallest d such that loops d.. are rectangular among themselves and unguarded inside d.

    Their task count is then the product of their lengths; only loops before d
    are enumerated.
    """
    d = len(s.loops)
    while d > 0:
        inner = s.loops[d - 1:]
        inner_vars = {x.var for x in inner}
        bounds = [e for x in inner for e in (x.start, x.stop, x.step)]
        if any(ir.free_vars(e) & inner_vars for e in bounds) or any(gd >= d for gd, _ in s.guards):
            break
        d -= 1
    return d


def _program_tasks(b: BoundProgram) -> list[str]:
    """``_tasks()``: all tasks in serial program order, mirroring the program's loops."""
    out = ["def _tasks():"]
    counter = iter(range(len(b.stmts)))
    env0: dict[str, ir.Expr] = {k: ir.Const(v) for k, v in b.values.items()}

    def walk(body, env, names, pad):
        env = dict(env)
        for s in body:
            if isinstance(s, ir.Assign):
                env[s.name] = affine.simplify(ir.substitute(s.value, env))
            elif isinstance(s, ir.For):
                inner = dict(env)
                inner.pop(s.var, None)
                loop = Loop(s.var, *(affine.simplify(ir.substitute(e, env)) for e in (s.start, s.stop, s.step)))
                names2 = dict(names, **{s.var: f"v_{s.var}"})
                out.append(pad + f"for v_{s.var} in {range_code(loop, names)}:")
                walk(s.body, inner, names2, pad + "    ")
            elif isinstance(s, ir.If):
                cond = affine.simplify(ir.substitute(s.cond, env))
                out.append(pad + f"if {py(cond, names)}:")
                walk(s.body, env, names, pad + "    ")
                out.append(pad + "else:")
                walk(s.orelse, env, names, pad + "    ")
            else:
                st = b.stmts[next(counter)]
                out.append(pad + f"yield _mk(_Task, (S{st.id}, ({''.join(f'v_{v}, ' for v in st.vars)})))")
        out.append(pad + "pass")

    walk(b.program.ir.body, env0, {}, "    ")
    return out + [""]


