"""Composition, resolved when a program is compiled: calls inlined, scratch spaces named, aliases split.

A program as parsed may hold three statements that the analysis never sees:

``f(A, T[i, :, :], N - k)`` (``ir.ProgramCall``)
    The callee's (already resolved) body is inlined in place.  Its integer
    parameters become the caller's integer expressions; its tile-space
    parameters become the caller's tile spaces or views of them (a fixed index
    ``T[i, ...]`` or a shifted axis ``A[k:, ...]``: index ``a`` of the callee is
    ``k + a`` of the caller); its loop variables and scalars are renamed where
    they would clash with a name visible at the call; its kernel names stay
    as written unless the caller means another kernel by the same name (then
    ``callee.kernel``).  A condition that the call's constant arguments decide
    (``if TRANS == 0`` with ``TRANS=0``) keeps only the branch taken.
``S = lp.scratch()`` (``ir.Scratch``)
    A local tile space.  Inlined, it gets a fresh name in the caller
    (``callee_S``, then ``callee_S_2``...) and the call site's enclosing loop
    variables as leading indices, so two calls -- two call sites, or two
    iterations of a loop around one -- never share scratch tiles.
``S[:, :, 0] = A`` (``ir.Alias``)
    Tile ``S[i, j, 0]`` *is* ``A[i, j]``.  Every read of ``S`` whose index may
    fall in the region becomes ``if <index in region>: ...A... else: ...S...``
    (the conditions a hand-written program would state), decided by interval
    arithmetic over the enclosing loops and ``if`` conditions: a read that
    cannot fall in it is left alone, one that always does reads ``A`` only.
    A write into the region is an error (at compile time when it always
    lands there, else when the program is bound: ``check_alias_writes``).

The result (``Resolved``) is an ordinary program: ``For``, ``If``, ``Assign``
and ``KernelCall`` only, with ``scratch`` listing its local tile spaces, so
binding, code generation and validation treat it like any other.  Source
positions of inlined statements are the callee's, with the call sites in
``SourceInfo.via``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from . import affine, ir
from .codegen import plan, py, render
from .errors import CompileError

INF = affine.INF
Interval = tuple[float, float]


@dataclass(frozen=True)
class AliasCheck:
    """An alias region whose writes are checked at bind time: ``matrix[parts]`` is ``text``'s source."""

    matrix: str
    parts: tuple[ir.Expr | ir.Slice, ...]  # in terms of integer parameters only
    text: str  # the alias as written, for messages
    src: ir.SourceInfo

    def to_data(self) -> dict:
        return {"matrix": self.matrix, "parts": ir.to_data(self.parts), "text": self.text,
                "src": ir.to_data(self.src)}

    @classmethod
    def from_data(cls, d: dict) -> AliasCheck:
        return cls(d["matrix"], ir.from_data(d["parts"]), d["text"], ir._src_from_data(d["src"]))


@dataclass(frozen=True)
class Resolved:
    ir: ir.Program  # only For / If / Assign / KernelCall; ``scratch`` lists the local tile spaces
    kernels: dict[str, tuple[Any, str]]  # kernel name in the IR -> (namespace, name as written there)
    checks: tuple[AliasCheck, ...]


MISSING = object()


def lookup(namespace, dotted: str):
    """A (dotted) name in a namespace, like Python's global lookup; ``MISSING`` if absent."""
    head, *rest = dotted.split(".")
    obj = namespace.get(head, MISSING)
    if obj is MISSING:
        builtins = namespace.get("__builtins__")
        if isinstance(builtins, dict):
            obj = builtins.get(head, MISSING)
    for part in rest:
        if obj is MISSING:
            break
        obj = getattr(obj, part, MISSING)
    return obj


def resolve(parsed: ir.Program, kernel_names: tuple[str, ...], namespace,
            find_program: Callable[[str, ir.SourceInfo], Any]) -> Resolved:
    """Inline the calls of a parsed program, name its scratch spaces and split its aliased reads.

    ``find_program(name, src)`` returns the compiled callee (a ``lambdapack.Program``)
    or raises ``CompileError``.
    """
    return _Resolver(parsed, kernel_names, namespace, find_program).run()


# --------------------------------------------------------------------------- inlining


class _Resolver:
    def __init__(self, parsed: ir.Program, kernel_names, namespace, find_program):
        self.parsed = parsed
        self.namespace = namespace
        self.find_program = find_program
        self.ints = {p.name for p in parsed.params if p.kind == "int"}
        self.spaces = [p.name for p in parsed.params if p.kind == "matrix"]
        self.scratch: list[str] = []
        self.aliases: list[ir.Alias] = []
        self.checks: list[AliasCheck] = []
        self.names: set[str] = {p.name for p in parsed.params} | _bound_names(parsed.body)
        self.scalars: set[str] = _scalar_names(parsed.body)
        self.kernels: dict[str, tuple[Any, str]] = {k: (namespace, k) for k in kernel_names}
        for s in parsed.body:
            if isinstance(s, ir.Scratch):
                self.scratch.append(s.name)
                self.spaces.append(s.name)
            elif isinstance(s, ir.Alias):
                self.aliases.append(s)

    def run(self) -> Resolved:
        body = self.block(self.parsed.body, ())
        program = ir.Program(self.parsed.name, self.parsed.params, body, tuple(self.scratch), src=self.parsed.src)
        if self.aliases:
            program = _AliasSplitter(self, program).run()
        _check_scratch_written(program, self.parsed)
        return Resolved(program, self.kernels, tuple(self.checks))

    # ------------------------------------------------------------------ the caller's own statements
    def block(self, body, loops: tuple[str, ...]) -> tuple[ir.Stmt, ...]:
        out: list[ir.Stmt] = []
        for s in body:
            if isinstance(s, ir.Scratch | ir.Alias):
                continue
            if isinstance(s, ir.For):
                out.append(replace(s, body=self.block(s.body, (*loops, s.var))))
            elif isinstance(s, ir.If):
                out.append(replace(s, body=self.block(s.body, loops), orelse=self.block(s.orelse, loops)))
            elif isinstance(s, ir.ProgramCall):
                out.extend(self.inline(s, loops))
            else:
                out.append(s)
        return tuple(out)

    # ------------------------------------------------------------------ one call
    def inline(self, call: ir.ProgramCall, loops: tuple[str, ...]) -> tuple[ir.Stmt, ...]:
        callee = self.find_program(call.program, call.src)
        bound = self.bind_arguments(callee, call)
        spaces: dict[str, ir.View] = {}
        env: dict[str, ir.Expr] = {}
        for p in callee.ir.params:
            if p.kind == "int":
                env[p.name] = bound[p.name]
            else:
                spaces[p.name] = bound[p.name]
        for s in callee.ir.scratch:
            name = _fresh(f"{callee.name}_{s}", self.names, first=2)  # the second call's is callee_S_2
            self.names.add(name)
            self.scratch.append(name)
            self.spaces.append(name)
            n = callee.arity.get(s, 0)
            if loops:
                spaces[s] = ir.View(name, (*(ir.Var(v) for v in loops), *(ir.Slice() for _ in range(n))))
            else:
                spaces[s] = ir.View(name)
        kernels = self.kernel_names_for(callee)
        visible = self.ints | set(loops) | set(self.spaces) | self.scalars
        body = _Inliner(self, callee, call, spaces, kernels).block(callee.ir.body, env, visible)
        generated = {spaces[s].matrix for s in callee.ir.scratch}
        for check in callee.alias_checks:
            inherited = self.inherit_check(check, spaces, env, generated)
            if inherited is not None:
                self.checks.append(inherited)
        return body

    def bind_arguments(self, callee, call: ir.ProgramCall) -> dict[str, ir.View | ir.Expr]:
        params = callee.ir.params
        signature = ", ".join(p.name for p in params)
        if len(call.args) > len(params):
            raise CompileError(f"{callee.name}() takes {len(params)} arguments ({signature}), "
                               f"{len(call.args)} given", call.src)
        given: dict[str, tuple[Any, ir.SourceInfo]] = {}
        for p, a in zip(params, call.args):
            given[p.name] = (a, getattr(a, "src", call.src))
        names = {p.name for p in params}
        for k, a in call.keywords:
            if k not in names:
                raise CompileError(f"{callee.name}() has no parameter '{k}' (its parameters: {signature})", call.src)
            if k in given:
                raise CompileError(f"{callee.name}() got parameter '{k}' twice", call.src)
            given[k] = (a, getattr(a, "src", call.src))
        missing = [p.name for p in params if p.name not in given]
        if missing:
            raise CompileError(f"{callee.name}() is missing {', '.join(missing)} (its parameters: {signature})",
                               call.src)
        out: dict[str, ir.View | ir.Expr] = {}
        for p in params:
            a, src = given[p.name]
            src = src if src.line else call.src
            if p.kind == "matrix":
                if isinstance(a, ir.TileRef):
                    axes = ", ".join(":" for _ in a.index)
                    raise CompileError(f"{callee.name}'s parameter {p.name} is a tile space: pass a tile space or a "
                                       f"view of one (e.g. {a.matrix} or {a.matrix}[{axes}]), not the tile {a}", src)
                if not isinstance(a, ir.View):
                    raise CompileError(f"{callee.name}'s parameter {p.name} is a tile space, not the number {a}", src)
                want = callee.arity.get(p.name)
                if a.axes is not None and want is not None and a.axes != want:
                    raise CompileError(f"{callee.name} indexes {p.name} with {want} indices, but the view {a} "
                                       f"leaves {_axes(a.axes)} free", src)
            else:
                if isinstance(a, ir.View):
                    raise CompileError(f"{callee.name}'s parameter {p.name} is an integer, not the tile space {a}",
                                       src)
                if isinstance(a, ir.TileRef | ir.FloatConst):
                    what = "a tile" if isinstance(a, ir.TileRef) else "a float"
                    raise CompileError(f"{callee.name}'s parameter {p.name} is an integer, not {what} ({a})", src)
            out[p.name] = a
        return out

    def kernel_names_for(self, callee) -> dict[str, str]:
        """Callee kernel name -> name in this program (renamed when the caller means another kernel)."""
        out = {}
        for name, ref in callee.kernel_refs.items():
            mine = self.kernels.get(name)
            if mine is None or _same_kernel(mine, ref):
                self.kernels.setdefault(name, ref)
                out[name] = name
                continue
            new = f"{callee.name}.{name}"
            n = 2
            while new in self.kernels and not _same_kernel(self.kernels[new], ref):
                new, n = f"{callee.name}{n}.{name}", n + 1
            self.kernels.setdefault(new, ref)
            out[name] = new
        return out

    def inherit_check(self, check: AliasCheck, spaces: dict[str, ir.View], env,
                      generated: set[str]) -> AliasCheck | None:
        """A callee's alias in this program's terms, when the region does not move with the call.

        That is the case for a tile space passed whole, and for the callee's own scratch (whose
        leading indices, the call's loop variables, take every value).  A view with fixed
        indices or offsets is checked where it is declared only.
        """
        view = spaces[check.matrix]
        parts = tuple(ir.Slice(_sub(p.start, env), _sub(p.stop, env), p.src) if isinstance(p, ir.Slice)
                      else affine.simplify(ir.substitute(p, env)) for p in check.parts)
        if view.parts is not None:
            if view.matrix not in generated:
                return None
            parts = tuple(ir.Slice() for q in view.parts if not isinstance(q, ir.Slice)) + parts
        free = frozenset().union(*(_part_vars(p) for p in parts))
        if not free <= self.ints:
            return None
        return AliasCheck(view.matrix, parts, check.text, check.src)


class _Inliner:
    """Copies a callee's body into the caller: names renamed, spaces mapped, positions marked as inlined."""

    def __init__(self, outer: _Resolver, callee, call: ir.ProgramCall, spaces, kernels):
        self.outer, self.callee, self.call = outer, callee, call
        self.spaces, self.kernels = spaces, kernels

    def src(self, src: ir.SourceInfo) -> ir.SourceInfo:
        return src.inlined_at(self.call.src)

    def sub(self, e, env):
        """``e`` with the callee's names replaced, constants folded (``1 - TRANS`` with TRANS=0 is 1)."""
        try:
            return affine.simplify(ir.substitute(e, env))
        except ValueError as err:  # e.g. a division by a zero argument
            raise CompileError(f"in {self.callee.name}: {err} with the arguments of this call", self.call.src) \
                from None

    def block(self, body, env: dict[str, ir.Expr], visible: set[str]) -> tuple[ir.Stmt, ...]:
        env, visible = dict(env), set(visible)
        out: list[ir.Stmt] = []
        for s in body:
            if isinstance(s, ir.Assign):
                name = _fresh(s.name, self.outer.names | visible)
                self.outer.names.add(name)
                self.outer.scalars.add(name)
                out.append(ir.Assign(name, self.sub(s.value, env), self.src(s.src)))
                env[s.name] = ir.Var(name)
                visible.add(name)
            elif isinstance(s, ir.For):
                var = _fresh(s.var, visible)
                self.outer.names.add(var)
                inner = dict(env, **{s.var: ir.Var(var)})
                out.append(ir.For(var, self.sub(s.start, env), self.sub(s.stop, env), self.sub(s.step, env),
                                  self.block(s.body, inner, visible | {var}), self.src(s.src)))
            elif isinstance(s, ir.If):
                cond = self.sub(s.cond, env)
                if isinstance(cond, ir.BoolConst):  # decided by the call's constant arguments
                    out.extend(self.block(s.body if cond.value else s.orelse, env, visible))
                    continue
                out.append(ir.If(cond, self.block(s.body, env, visible), self.block(s.orelse, env, visible),
                                 self.src(s.src)))
            else:
                outs = tuple(self.ref(r, env) for r in s.outputs)
                args = tuple(self.ref(a, env) if isinstance(a, ir.TileRef) else self.sub(a, env) for a in s.args)
                out.append(ir.KernelCall(outs, self.kernels[s.kernel], args, self.src(s.src)))
        return tuple(out)

    def ref(self, r: ir.TileRef, env) -> ir.TileRef:
        index = tuple(self.sub(e, env) for e in r.index)
        return through_view(self.spaces[r.matrix], index, self.src(r.src), self.callee.name)


def through_view(view: ir.View, index: tuple[ir.Expr, ...], src: ir.SourceInfo, who: str) -> ir.TileRef:
    """Tile ``index`` of a view, as a tile of the viewed space.

    >>> v = ir.View("A", (ir.Var("i"), ir.Slice(ir.Var("k")), ir.Slice()))
    >>> str(through_view(v, (ir.Const(0), ir.Var("j")), ir.NOWHERE, "f"))
    'A[i, k, j]'
    """
    if view.parts is None:
        return ir.TileRef(view.matrix, index, src)
    if len(index) != view.axes:
        raise CompileError(f"{who} indexes the view {view} with {len(index)} indices, but it has "
                           f"{_axes(view.axes)}", src)
    axes = iter(index)
    out = []
    for p in view.parts:
        if isinstance(p, ir.Slice):
            e = next(axes)
            out.append(e if p.start is None else affine.simplify(ir.BinOp("+", p.start, e)))
        else:
            out.append(p)
    return ir.TileRef(view.matrix, tuple(out), src)


# --------------------------------------------------------------------------- aliases


class _AliasSplitter:
    """Rewrites the reads of aliased tile spaces into the cases of a hand-written program."""

    def __init__(self, outer: _Resolver, program: ir.Program):
        self.outer = outer
        self.program = program
        self.by_target: dict[str, list[ir.Alias]] = {}
        for a in outer.aliases:
            self.by_target.setdefault(a.target.matrix, []).append(a)
        self.arity = _arities_loose(program.body)
        self.sym = _Symbols({}, {})  # of the statement being expanded
        self.check_declarations()

    def check_declarations(self) -> None:
        for a in self.outer.aliases:
            n = len(a.target.parts)
            have = self.arity.get(a.target.matrix)
            if have is not None and have != n:
                raise CompileError(f"the alias {a} gives {a.target.matrix} {n} indices, but it is indexed with "
                                   f"{have} elsewhere", a.src)
            free = a.target.axes
            src_axes = a.source.axes if a.source.parts is not None else self.arity.get(a.source.matrix)
            if src_axes is not None and src_axes != free:
                raise CompileError(f"the alias {a} maps {_axes(free)} of {a.target.matrix} onto {_axes(src_axes)} "
                                   f"of {a.source.matrix}; the counts must agree", a.src)
            for p in a.target.parts:
                if not _part_vars(p) <= self.outer.ints:
                    raise CompileError(f"the region of alias {a} may use integer parameters only", a.src)
        # no cycles: S is A, A is S
        graph = {a.target.matrix: {b.source.matrix for b in self.by_target[a.target.matrix]}
                 for a in self.outer.aliases}
        for start in graph:
            stack, seen = [start], set()
            while stack:
                m = stack.pop()
                for nxt in graph.get(m, ()):
                    if nxt == start:
                        raise CompileError(f"aliases of {start} lead back to {start}", self.by_target[start][0].src)
                    if nxt not in seen:
                        seen.add(nxt)
                        stack.append(nxt)
        for a in self.outer.aliases:
            self.outer.checks.append(AliasCheck(a.target.matrix, a.target.parts, str(a), a.src))

    def run(self) -> ir.Program:
        return replace(self.program, body=self.block(self.program.body, {}, _Symbols({}, {})))

    def block(self, body, env: dict[str, Interval], sym: _Symbols) -> tuple[ir.Stmt, ...]:
        env, sym = dict(env), _Symbols(dict(sym.stops), dict(sym.values))
        out: list[ir.Stmt] = []
        for s in body:
            if isinstance(s, ir.Assign):
                env[s.name] = affine.interval(s.value, env)
                sym.values[s.name] = s.value
                out.append(s)
            elif isinstance(s, ir.For):
                inner = dict(env)
                inner[s.var] = _loop_interval(s, env)
                stops = dict(sym.stops)
                stops.pop(s.var, None)
                if isinstance(s.step, ir.Const) and s.step.value > 0:
                    stops[s.var] = s.stop
                out.append(replace(s, body=self.block(s.body, inner, _Symbols(stops, sym.values))))
            elif isinstance(s, ir.If):
                out.append(replace(s, body=self.block(s.body, refine(env, s.cond), sym),
                                   orelse=self.block(s.orelse, refine(env, ir.Not(s.cond)), sym)))
            else:
                self.sym = sym
                self.check_writes(s, env)
                out.append(self.expand(s, env, 0))
        return tuple(out)

    def match(self, a: ir.Alias, ref: ir.TileRef, env) -> tuple[str, ir.Cond | None]:
        """("never" | "always" | "maybe", the conditions still to test) for ``ref`` in ``a``'s region."""
        if len(ref.index) != len(a.target.parts):
            raise CompileError(f"{ref.matrix} is indexed with {len(ref.index)} indices here, but the alias {a} "
                               f"gives it {len(a.target.parts)}", ref.src, also=(a.src,))
        tests = [ir.Compare("==", e, p) for e, p in zip(ref.index, a.target.parts) if not isinstance(p, ir.Slice)]
        for e, p in zip(ref.index, a.target.parts):  # the fixed indices first: "k == 0 and j < N"
            if isinstance(p, ir.Slice):
                tests += ([ir.Compare(">=", e, p.start)] if p.start is not None else []) + \
                         ([ir.Compare("<", e, p.stop)] if p.stop is not None else [])
        conds = []
        for t in tests:
            verdict = decide(t, env, self.sym)
            if verdict is False:
                return "never", None
            if verdict is None:
                conds.append(t)
        if not conds:
            return "always", None
        return "maybe", conds[0] if len(conds) == 1 else ir.BoolOp("and", tuple(conds))

    def replacement(self, a: ir.Alias, ref: ir.TileRef) -> ir.TileRef:
        axes = []
        for e, p in zip(ref.index, a.target.parts):
            if isinstance(p, ir.Slice):
                axes.append(e if p.start is None else affine.simplify(ir.BinOp("-", e, p.start)))
        return through_view(a.source, tuple(axes), ref.src, f"the alias {a}")

    def expand(self, call: ir.KernelCall, env, start: int) -> ir.Stmt:
        args = list(call.args)
        for pos in range(start, len(args)):
            r = args[pos]
            if not (isinstance(r, ir.TileRef) and r.matrix in self.by_target):
                continue
            cases: list[tuple[ir.Cond | None, ir.TileRef, bool]] = []  # (condition, tile read, replaced?)
            for a in self.by_target[r.matrix]:
                verdict, cond = self.match(a, r, env)
                if verdict == "never":
                    continue
                cases.append((cond, self.replacement(a, r), True))
                if verdict == "always":
                    break
            else:
                cases.append((None, r, False))
            if len(cases) == 1 and not cases[0][2]:
                continue
            return self.chain(call, args, pos, cases, env)
        return call

    def chain(self, call, args, pos, cases, env) -> ir.Stmt:
        cond, ref, replaced = cases[0]
        new = replace(call, args=(*args[:pos], ref, *args[pos + 1:]))
        nxt = pos if replaced else pos + 1  # a replacement may itself be aliased
        if cond is None:
            return self.expand(new, env, nxt)
        then = self.expand(new, refine(env, cond), nxt)
        other = self.chain(call, args, pos, cases[1:], refine(env, ir.Not(cond)))
        return ir.If(cond, (then,), (other,), call.src)

    def check_writes(self, call: ir.KernelCall, env) -> None:
        for w in call.outputs:
            for a in self.by_target.get(w.matrix, ()):
                verdict, _ = self.match(a, w, env)
                if verdict == "always":
                    raise CompileError(f"{w} is in the region of the alias {a}: that tile is "
                                       f"{self.replacement(a, w)}, so no task may write it", w.src, also=(a.src,))


def check_alias_writes(bound, checks: tuple[AliasCheck, ...]) -> None:
    """Bind time: no task writes a tile that an alias says is another space's."""
    for check in checks:
        parts = [p if isinstance(p, ir.Slice) else
                 ir.Const(affine.evaluate(p, bound.values)) for p in check.parts]
        bounds = {p: (None if p.start is None else affine.evaluate(p.start, bound.values),
                      None if p.stop is None else affine.evaluate(p.stop, bound.values))
                  for p in parts if isinstance(p, ir.Slice)}
        for s in bound.stmts:
            for k, w in enumerate(s.writes):
                if w.matrix != check.matrix or len(w.index) != len(parts):
                    continue
                idx = _first_write_in(bound, s, w, parts, bounds)
                if idx is not None:
                    t = bound.task(s.id, idx)
                    m, tile = bound.writes(t)[k]
                    raise CompileError(
                        f"{t} writes {m}[{', '.join(map(str, tile))}], which the alias '{check.text}' says is a "
                        "tile of another space: no task may write it (its readers read the other space)",
                        s.src, also=(check.src,))


def _first_write_in(bound, s, w: ir.TileRef, parts, bounds) -> tuple[int, ...] | None:
    """Loop values of the first task of ``s`` whose write ``w`` lands in the region, solved like a DAG query."""
    fixed = [(e, p) for e, p in zip(w.index, parts) if not isinstance(p, ir.Slice)]
    names = {v: f"t_{v}" for v in s.vars}
    conds = []
    for e, p in zip(w.index, parts):
        if isinstance(p, ir.Slice):
            lo, hi = bounds[p]
            conds += ([f"{py(e, names)} >= {lo}"] if lo is not None else []) + \
                     ([f"{py(e, names)} < {hi}"] if hi is not None else [])
    leaf = [f"if {' and '.join(conds) or 'True'}:", f"    return ({''.join(f't_{v}, ' for v in s.vars)})"]
    steps = plan(s, tuple(e for e, _ in fixed), [str(p.value) for _, p in fixed])
    code = "\n".join(["def _hit():", *render(steps, 4, leaf), "    return None"])
    ns = dict(bound._ns)
    exec(compile(code, f"<lambdapack {bound.program.name} alias check>", "exec"), ns)
    try:
        return ns["_hit"]()
    finally:
        ns.clear()  # the function and its globals form a cycle: free it now


# --------------------------------------------------------------------------- intervals


def _loop_interval(s: ir.For, env) -> Interval:
    lo, hi = affine.interval(s.start, env), affine.interval(s.stop, env)
    step = affine.interval(s.step, env)
    if step[0] > 0:
        return (lo[0], hi[1] - 1)
    if step[1] < 0:
        return (hi[0] + 1, lo[1])
    return (-INF, INF)


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
_NEGATE = {"<": ">=", "<=": ">", ">": "<=", ">=": "<", "==": "!=", "!=": "=="}


def refine(env: dict[str, Interval], cond: ir.Cond) -> dict[str, Interval]:
    """Variable intervals narrowed by a condition known to hold (comparisons of a variable only).

    >>> refine({"k": (0, 9)}, ir.Not(ir.Compare("==", ir.Var("k"), ir.Const(0))))["k"]
    (1, 9)
    """
    env = dict(env)
    if isinstance(cond, ir.Not) and isinstance(cond.operand, ir.Compare):
        c = cond.operand
        cond = ir.Compare(_NEGATE[c.op], c.left, c.right)
    elif isinstance(cond, ir.Not) and isinstance(cond.operand, ir.Not):
        cond = cond.operand.operand
    parts = cond.values if isinstance(cond, ir.BoolOp) and cond.op == "and" else (cond,)
    for c in parts:
        if not isinstance(c, ir.Compare):
            continue
        for var, op, other in ((c.left, c.op, c.right), (c.right, _FLIP[c.op], c.left)):
            if not isinstance(var, ir.Var):
                continue
            lo, hi = env.get(var.name, (-INF, INF))
            olo, ohi = affine.interval(other, env)
            if op == "==":
                lo, hi = max(lo, olo), min(hi, ohi)
            elif op == "<":
                hi = min(hi, ohi - 1)
            elif op == "<=":
                hi = min(hi, ohi)
            elif op == ">":
                lo = max(lo, olo + 1)
            elif op == ">=":
                lo = max(lo, olo)
            elif olo == ohi:  # !=
                lo, hi = (lo + 1 if lo == olo else lo), (hi - 1 if hi == olo else hi)
            env[var.name] = (lo, hi)
    return env


@dataclass(frozen=True)
class _Symbols:
    stops: dict[str, ir.Expr]  # loop variable of an increasing loop -> its stop
    values: dict[str, ir.Expr]  # scalar -> its value


def decide(c: ir.Compare, env, sym: _Symbols | None = None) -> bool | None:
    """True / False when the comparison holds / fails for every value in ``env``'s intervals, else None.

    ``sym`` knows the stop of each increasing loop and the value of each scalar, so that
    ``k < N`` is known for ``k in range(min(M, N))``.

    >>> decide(ir.Compare("==", ir.Var("k"), ir.Const(0)), {"k": (1, 5)})
    False
    >>> k_loop = _Symbols({"k": ir.Var("K")}, {"K": ir.Call("min", (ir.Var("M"), ir.Var("N")))})
    >>> decide(ir.Compare(">=", ir.Var("k"), ir.Var("N")), {}, k_loop)
    False
    """
    if c.op == "==" and c.left == c.right:
        return True
    if sym and c.op in (">=", "<") and isinstance(c.left, ir.Var) and c.left.name in sym.stops \
            and _at_most(sym.stops[c.left.name], c.right, sym.values):
        return c.op == "<"  # v < stop <= right
    (a0, a1), (b0, b1) = affine.interval(c.left, env), affine.interval(c.right, env)
    if c.op == "==":
        if a1 < b0 or b1 < a0:
            return False
        return True if a0 == a1 == b0 == b1 else None
    if c.op == ">=":
        return True if a0 >= b1 else False if a1 < b0 else None
    if c.op == "<":
        return True if a1 < b0 else False if a0 >= b1 else None
    return None


# --------------------------------------------------------------------------- small helpers


def _at_most(a: ir.Expr, b: ir.Expr, sym: dict[str, ir.Expr], depth: int = 0) -> bool:
    """Whether ``a <= b`` is evident: equal, ``min(..., b, ...)``, or a scalar whose value is."""
    if a == b:
        return True
    if depth > 8:
        return False
    if isinstance(a, ir.Var) and a.name in sym:
        return _at_most(sym[a.name], b, sym, depth + 1)
    if isinstance(a, ir.Call) and a.func == "min":
        return any(_at_most(x, b, sym, depth + 1) for x in a.args)
    if isinstance(b, ir.Call) and b.func == "max":
        return any(_at_most(a, x, sym, depth + 1) for x in b.args)
    return False


def _axes(n: int | None) -> str:
    return f"{n} axis" if n == 1 else f"{n} axes"


def _sub(e, env):
    return None if e is None else ir.substitute(e, env)


def _part_vars(p) -> frozenset[str]:
    if isinstance(p, ir.Slice):
        return frozenset().union(*(ir.free_vars(x) for x in (p.start, p.stop) if x is not None))
    return ir.free_vars(p)


def _fresh(base: str, taken: set[str], first: int = 1) -> str:
    if base not in taken:
        return base
    n = first
    while f"{base}_{n}" in taken:
        n += 1
    return f"{base}_{n}"


def _same_kernel(a: tuple[Any, str], b: tuple[Any, str]) -> bool:
    if a[0] is b[0] and a[1] == b[1]:
        return True
    x, y = lookup(a[0], a[1]), lookup(b[0], b[1])
    return x is not MISSING and x is y


def _bound_names(body) -> set[str]:
    out: set[str] = set()
    for s in body:
        if isinstance(s, ir.For):
            out.add(s.var)
            out |= _bound_names(s.body)
        elif isinstance(s, ir.If):
            out |= _bound_names(s.body) | _bound_names(s.orelse)
        elif isinstance(s, ir.Assign | ir.Scratch):
            out.add(s.name)
    return out


def _scalar_names(body) -> set[str]:
    out: set[str] = set()
    for s in body:
        if isinstance(s, ir.For):
            out |= _scalar_names(s.body)
        elif isinstance(s, ir.If):
            out |= _scalar_names(s.body) | _scalar_names(s.orelse)
        elif isinstance(s, ir.Assign):
            out.add(s.name)
    return out


def _refs(body):
    for s in body:
        if isinstance(s, ir.KernelCall):
            yield from s.outputs
            yield from s.reads
        elif isinstance(s, ir.For):
            yield from _refs(s.body)
        elif isinstance(s, ir.If):
            yield from _refs(s.body)
            yield from _refs(s.orelse)


def _arities_loose(body) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in _refs(body):
        out.setdefault(r.matrix, len(r.index))
    return out


def _check_scratch_written(program: ir.Program, parsed: ir.Program) -> None:
    written = {w.matrix for s in _calls(program.body) for w in s.outputs}
    read = {}
    for s in _calls(program.body):
        for r in s.reads:
            read.setdefault(r.matrix, r.src)
    decl = {s.name: s.src for s in parsed.body if isinstance(s, ir.Scratch)}
    for name in program.scratch:
        if name in read and name not in written:
            raise CompileError(f"scratch tile space '{name}' is read but no statement writes it",
                               read[name], also=(decl[name],) if name in decl else ())


def _calls(body):
    for s in body:
        if isinstance(s, ir.KernelCall):
            yield s
        elif isinstance(s, ir.For):
            yield from _calls(s.body)
        elif isinstance(s, ir.If):
            yield from _calls(s.body)
            yield from _calls(s.orelse)
