"""Closed-form task counts: each statement's loop nest summed symbolically with sympy, once per program.

``count_program(program)`` flattens the program with its integer parameters left symbolic and,
for every statement, sums 1 over its loop nest and guards, innermost loop first.  The summand is
kept as a list of *pieces*, ``(conditions, weight)``, meaning ``weight`` where every condition
holds and 0 elsewhere; a condition is ``e >= 0``, ``e == 0`` (``e`` an integer expression) or an
opaque relation (``%`` tests, comparisons of non-linear terms).  Summing a piece over a loop
variable ``v`` of ``range(start, stop, step)``:

1. A step of -1 is the range reversed; a step ``s`` other than +-1 (constant, or ``2 ** (level +
   1)`` whose sign sympy knows) substitutes ``v = start + s t``, ``0 <= t <= ceil((stop - start) /
   s) - 1``.
2. Conditions linear in ``v`` become bounds on it (``i + 2**level < N`` gives ``i <= N - 1 -
   2**level``); ``v == e`` pins ``v`` (no sum); ``!=`` was already split into ``1 - [==]``, and a
   disjunction into disjoint cases ``[A] + [not A and B]``.
3. With several lower bounds ``L_1..`` and upper bounds ``U_1..``, the piece splits into one piece
   per choice of the largest lower and smallest upper bound, each with the conditions that make
   that choice (ties broken by position) and ``U_j >= L_i``; its weight is the closed-form sum
   ``sum(w, (v, L_i, U_j))`` (sympy's summation of a polynomial: Faulhaber), exact because the
   range is non-empty there.  The new conditions are linear in the outer variables when the bounds
   are, and become their bounds in turn.
4. Anything else (a weight that is not a polynomial in ``v``, a condition not linear in it, a
   bound with a floor) keeps that sum as an unevaluated ``Sum`` over the loop's own range with the
   conditions inside: a *finite sum*, evaluated numerically at bind time, one term per value of
   that loop (the binary-tree loops over ``level``: O(depth)).

After the outermost loop the conditions mention only parameters: the statement's count is
``sum(Piecewise((w, conditions), (0, True)))`` over its pieces, a sympy expression in the
parameters.  ``StmtCount.method`` says what it is: ``"closed form"`` (no ``Sum`` left), ``"finite
sum"`` (some ``Sum`` is evaluated term by term at bind) or ``"enumeration"`` (the statement could not
be summed at all, e.g. a step of unknown sign; ``reason`` says why) — then ``BoundProgram`` counts
its tasks by enumerating the loop nest, as before.

Evaluation compiles each count once into a Python function of the parameters (``Sum`` as a loop),
in exact integer and rational arithmetic.  Nothing here runs per task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import sympy

from . import functions, ir
from .codegen import FlatStmt, flatten

# --------------------------------------------------------------------------- integer functions


class ceil_log2(sympy.Function):  # noqa: N801 - named like the IR function it stands for
    """``ceil(log2(x))`` of a positive integer (what the program's ``ceil(log2(x))`` compiles to)."""

    is_integer = True

    @classmethod
    def eval(cls, x):
        if x.is_Integer and x > 0:
            return sympy.Integer(functions.ceil_log2(int(x)))
        return None


class floor_log2(sympy.Function):  # noqa: N801
    """``floor(log2(x))`` of a positive integer."""

    is_integer = True

    @classmethod
    def eval(cls, x):
        if x.is_Integer and x > 0:
            return sympy.Integer(functions.floor_log2(int(x)))
        return None


class exact_log2(sympy.Function):  # noqa: N801
    """``log2(x)`` of a power of two (an error otherwise, as in the program)."""

    is_integer = True

    @classmethod
    def eval(cls, x):
        if x.is_Integer and x > 0:
            return sympy.Integer(functions.exact_log2(int(x)))
        return None


class indicator(sympy.Function):  # noqa: N801
    """1 where the condition holds, else 0: inside a ``Sum`` (unlike ``Piecewise``, sympy never folds it out)."""

    is_integer = True

    @classmethod
    def eval(cls, cond):
        if cond is sympy.true:
            return sympy.Integer(1)
        if cond is sympy.false:
            return sympy.Integer(0)
        return None


def symbol(name: str) -> sympy.Symbol:
    """The sympy symbol of a parameter or loop variable (an integer)."""
    return sympy.Symbol(name, integer=True)


def to_sympy(e, syms: dict[str, sympy.Symbol]):
    """An IR expression or condition as sympy (``//`` is ``floor``, ``%`` is ``Mod``, as Python's).

    >>> N, k = symbol("N"), symbol("k")
    >>> to_sympy(ir.BinOp("-", ir.Var("N"), ir.BinOp("//", ir.Var("k"), ir.Const(2))), {"N": N, "k": k})
    N - floor(k/2)
    """
    if isinstance(e, ir.Const):
        return sympy.Integer(e.value)
    if isinstance(e, ir.Var):
        if e.name not in syms:
            syms[e.name] = symbol(e.name)
        return syms[e.name]
    if isinstance(e, ir.Neg):
        return -to_sympy(e.operand, syms)
    if isinstance(e, ir.BinOp):
        a, b = to_sympy(e.left, syms), to_sympy(e.right, syms)
        if e.op == "+":
            return a + b
        if e.op == "-":
            return a - b
        if e.op == "*":
            return a * b
        if e.op == "//":
            return sympy.floor(a / b)
        if e.op == "%":
            return sympy.Mod(a, b)
        return a**b
    if isinstance(e, ir.Call):
        args = [to_sympy(a, syms) for a in e.args]
        funcs = {"min": sympy.Min, "max": sympy.Max, "log2": exact_log2, "ceil_log2": ceil_log2,
                 "floor_log2": floor_log2}
        return funcs[e.func](*args)
    if isinstance(e, ir.Compare):
        a, b = to_sympy(e.left, syms), to_sympy(e.right, syms)
        rel = {"==": sympy.Eq, "!=": sympy.Ne, "<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge}[e.op]
        return rel(a, b, evaluate=False)
    if isinstance(e, ir.BoolConst):
        return sympy.true if e.value else sympy.false
    if isinstance(e, ir.Not):
        return sympy.Not(to_sympy(e.operand, syms))
    if isinstance(e, ir.BoolOp):
        return (sympy.And if e.op == "and" else sympy.Or)(*(to_sympy(v, syms) for v in e.values))
    raise TypeError(f"not an integer expression: {e!r}")


# --------------------------------------------------------------------------- conditions

# An atomic condition: ("ge", e) for e >= 0, ("eq", e) for e == 0, ("rel", r) for an opaque relation.
_NEG = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", "<=": ">", ">": "<="}


def _atoms(c, syms, negate: bool = False) -> list[list[tuple[list, int]]]:
    """A condition as disjoint weighted conjunctions: ``[c] == sum(sign * prod(atoms))``.

    Returns a list of ``(atoms, sign)``.
    """
    if isinstance(c, ir.Not):
        return _atoms(c.operand, syms, not negate)
    if isinstance(c, ir.BoolConst):
        return [([], 1)] if c.value != negate else []
    if isinstance(c, ir.Compare):
        op = _NEG[c.op] if negate else c.op
        a, b = to_sympy(c.left, syms), to_sympy(c.right, syms)
        d = sympy.expand(a - b)
        if op == "!=":
            return [([], 1), ([("eq", d)], -1)]
        return [([_atom(op, d)], 1)]
    if isinstance(c, ir.BoolOp):
        op = c.op if not negate else {"and": "or", "or": "and"}[c.op]
        if op == "and":
            out = [([], 1)]
            for v in c.values:
                parts = _atoms(v, syms, negate)
                out = [(a1 + a2, s1 * s2) for a1, s1 in out for a2, s2 in parts]
            return out
        # a or b or ... = a + (not a) b + (not a)(not b) c ...
        out = []
        prefix = [([], 1)]
        for v in c.values:
            here = _atoms(v, syms, negate)
            out += [(a1 + a2, s1 * s2) for a1, s1 in prefix for a2, s2 in here]
            notv = _atoms(v, syms, not negate)
            prefix = [(a1 + a2, s1 * s2) for a1, s1 in prefix for a2, s2 in notv]
        return out
    raise TypeError(f"not a condition: {c!r}")


def _atom(op: str, d):
    """``d op 0`` (integers) as a "ge" or "eq" atom, or an opaque relation."""
    if op == "==":
        return ("eq", d)
    if op == ">=":
        return ("ge", d)
    if op == ">":
        return ("ge", d - 1)
    if op == "<=":
        return ("ge", -d)
    return ("ge", -d - 1)  # <


def _relation(atom):
    kind, e = atom
    if kind == "ge":
        return sympy.Ge(e, 0)
    if kind == "eq":
        return sympy.Eq(e, 0)
    return e


def _decided(atom) -> bool | None:
    """True/False when the atom is a constant relation, else None."""
    kind, e = atom
    if kind == "rel":
        r = e
        if r in (sympy.true, sympy.false):
            return bool(r)
        return None
    if not e.free_symbols:
        if not e.is_number:
            return None
        return bool(e >= 0) if kind == "ge" else bool(e == 0)
    return None


# --------------------------------------------------------------------------- summation


class UnsupportedError(Exception):
    """The loop nest cannot be summed (the statement is then counted by enumeration)."""


@dataclass
class StmtCount:
    """The task count of one statement as a sympy expression in the program's parameters.

    ``method``: "closed form", "finite sum" (a ``Sum`` evaluated term by term at bind) or
    "enumeration" (``expr`` is None; ``reason`` says why).
    """

    stmt: int
    label: str
    expr: object
    method: str
    reason: str = ""
    _fn: object = None

    def value(self, values: dict[str, int]):
        """The expression's exact value (int or Fraction) for these values of its symbols."""
        if self.expr is None:
            raise ValueError(f"{self.label}: no closed form ({self.reason})")
        if self._fn is None:
            self._fn = compile_expr(self.expr, sorted(values))
        return self._fn(**values)

    def evaluate(self, values: dict[str, int]) -> int:
        """The count for these parameter values (a ``ValueError`` where it is undefined)."""
        out = self.value(values)
        if isinstance(out, Fraction):
            if out.denominator != 1:
                raise ArithmeticError(f"{self.label}: the count evaluated to {out}, not an integer")
            out = out.numerator
        return int(out)


def _linear(e, x):
    """``(c, r)`` with ``e == c*x + r``, ``c`` free of ``x``, or None."""
    if x not in e.free_symbols:
        return sympy.Integer(0), e
    e = sympy.expand(e)
    c = e.coeff(x, 1)
    r = e.coeff(x, 0)
    if x in c.free_symbols or x in r.free_symbols or sympy.expand(c * x + r - e) != 0:
        return None
    return c, r


def _sign(c) -> int | None:
    if c.is_positive:
        return 1
    if c.is_negative:
        return -1
    return None


def _is_poly(w, x) -> bool:
    if x not in w.free_symbols:
        return True
    try:
        return sympy.Poly(w, x).degree() >= 0 and all(x not in c.free_symbols for c in sympy.Poly(w, x).coeffs())
    except sympy.PolynomialError:
        return False


def _sum_piece(conds: list, w, x, lo, hi) -> list[tuple[list, object]]:
    """Sum one piece over ``lo <= x <= hi`` (inclusive bounds without ``x``); returns pieces."""
    inner, outer = [], []
    for a in conds:
        (inner if x in _free(a) else outer).append(a)
    lowers, uppers, pin = [lo], [hi], None
    opaque = []
    for kind, e in inner:
        lin = None if kind == "rel" else _linear(e, x)
        sgn = None if lin is None else _sign(lin[0])
        if lin is None or sgn is None:
            opaque.append((kind, e))
            continue
        c, r = lin
        if kind == "eq":
            if c in (1, -1) and pin is None:
                pin = -r / c
            else:  # a second pin, or one with a divisibility condition: tested term by term
                opaque.append((kind, e))
        elif c == 1:
            lowers.append(-r)
        elif c == -1:
            uppers.append(r)
        elif sgn > 0:
            lowers.append(sympy.ceiling(-r / c))
        else:
            uppers.append(sympy.floor(r / -c))
    if pin is not None:  # x == pin: no sum; the pin must lie in the range and satisfy the rest
        w2 = w.subs(x, pin)
        rest = [(k, e.subs(x, pin)) for k, e in opaque]
        extra = [("ge", pin - b) for b in lowers] + [("ge", b - pin) for b in uppers]
        return [(outer + extra + rest, w2)]
    rounded = any(b.has(sympy.floor, sympy.ceiling) for b in lowers[1:] + uppers[1:])
    if not opaque and x not in w.free_symbols and rounded:  # w times the number of integers in the bounds
        lowers, uppers = list(dict.fromkeys(lowers)), list(dict.fromkeys(uppers))
        n = sympy.Min(*uppers) - sympy.Max(*lowers) + 1
        return [(outer, w * sympy.Max(0, n))]
    if opaque or not _is_poly(w, x) or rounded:
        body = w
        for a in inner:
            body = body * indicator(_relation(a))
        return [(outer, sympy.Sum(body, (x, lo, hi)))]
    lowers = list(dict.fromkeys(lowers))
    uppers = list(dict.fromkeys(uppers))
    out = []
    for i, li in enumerate(lowers):
        ci = [("ge", li - lk - (1 if k < i else 0)) for k, lk in enumerate(lowers) if k != i]
        if any(_decided(a) is False for a in ci):
            continue
        for j, uj in enumerate(uppers):
            cj = [("ge", uk - uj - (1 if k < j else 0)) for k, uk in enumerate(uppers) if k != j]
            if any(_decided(a) is False for a in cj):
                continue
            nonempty = ("ge", uj - li)
            if _decided(nonempty) is False:
                continue
            new = [a for a in ci + cj + [nonempty] if _decided(a) is not True]
            if x not in w.free_symbols:
                total = w * (uj - li + 1)
            else:
                total = sympy.summation(w, (x, li, uj))
            if total.has(sympy.Sum) and not w.has(sympy.Sum):
                raise UnsupportedError(f"sympy found no closed form of a sum over {x}")
            out.append((outer + new, sympy.expand(total)))
    return out


def _free(atom) -> set:
    return atom[1].free_symbols


def count_stmt(s: FlatStmt, syms: dict[str, sympy.Symbol], weight=None) -> StmtCount:
    """The closed-form count of one statement (parameters symbolic in ``s``).

    With ``weight`` (a sympy expression in the loop variables and parameters), the sum of
    ``weight`` over the statement's tasks instead (``program.cost()`` sums flops this way).
    """
    try:
        return _count(s, syms, sympy.Integer(1) if weight is None else sympy.sympify(weight))
    except (UnsupportedError, TypeError, ValueError, ZeroDivisionError, sympy.PolynomialError,
            NotImplementedError, RecursionError) as exc:
        return StmtCount(s.id, s.label, None, "enumeration", str(exc) or type(exc).__name__)


MAX_PIECES = 4096


def _count(s: FlatStmt, syms, weight) -> StmtCount:
    loops = list(s.loops)
    lsyms = [to_sympy(ir.Var(lp.var), syms) for lp in loops]
    # every guard, as weighted conjunctions of atoms, placed at the innermost loop it mentions
    pieces: list[tuple[list, object]] = [([], weight)]
    for _, g in s.guards:
        parts = _atoms(g, syms)
        pieces = [(a1 + a2, w * sg) for a1, w in pieces for a2, sg in parts]
    for d in reversed(range(len(loops))):
        lp, x = loops[d], lsyms[d]
        start, stop, step = (to_sympy(e, syms) for e in (lp.start, lp.stop, lp.step))
        if step == 1:
            var, lo, hi, sub = x, start, stop - 1, None
        elif step == -1:
            var, lo, hi, sub = x, stop + 1, start, None
        else:
            sgn = _sign(step)
            if sgn is None:
                raise UnsupportedError(f"the step of loop {lp.var} ({lp.step}) has no known sign")
            t = sympy.Symbol(f"_t_{lp.var}", integer=True)
            n = sympy.ceiling((stop - start) / step)
            var, lo, hi, sub = t, sympy.Integer(0), n - 1, start + step * t
        out = []
        for conds, w in pieces:
            if sub is not None:
                conds = [(k, sympy.expand(e.subs(x, sub)) if k != "rel" else e.subs(x, sub)) for k, e in conds]
                w = w.subs(x, sub)
            out += _sum_piece(conds, w, var, lo, hi)
            if len(out) > MAX_PIECES:
                raise UnsupportedError("too many cases")
        pieces = _prune(out)
    expr = sympy.Integer(0)
    for conds, w in pieces:
        if any(_decided(a) is False for a in conds):
            continue
        rels = [_relation(a) for a in conds if _decided(a) is not True]
        expr += sympy.Piecewise((w, sympy.And(*rels)), (0, True)) if rels else w
    method = "finite sum" if expr.has(sympy.Sum) else "closed form"
    return StmtCount(s.id, s.label, expr, method)


def _prune(pieces):
    """Drop pieces that are empty or decided false, keep the strongest of parallel bounds, merge equal cases."""
    merged: dict = {}
    for conds, w in pieces:
        if w == 0 or any(_decided(a) is False for a in conds):
            continue
        strongest: dict = {}
        others = []
        for a in dict.fromkeys(conds):
            if _decided(a) is True:
                continue
            if a[0] == "ge":
                c = a[1].as_coeff_Add()
                key, k = (c[1], c[0]) if c[0].is_Number else (a[1], sympy.Integer(0))
                if key in strongest:
                    strongest[key] = min(strongest[key], k)
                else:
                    strongest[key] = k
            else:
                others.append(a)
        kept = tuple(sorted([("ge", key + k) for key, k in strongest.items()] + others, key=str))
        merged[kept] = merged.get(kept, 0) + w
    # (expand would fold a Piecewise inside a Sum out of it, past the variable it depends on)
    return [(list(c), w if w.has(sympy.Sum) else sympy.expand(w)) for c, w in merged.items() if w != 0]


# --------------------------------------------------------------------------- the program


def symbolic_stmts(program) -> list[FlatStmt]:
    """The program's statements with its integer parameters left symbolic (same ids as when bound)."""
    return flatten(program.ir, {})


def count_statement(program, stmt: int) -> StmtCount:
    """The symbolic count of statement ``stmt`` of ``program`` (derived once, cached on the program)."""
    cache = program.__dict__.setdefault("_symbolic_counts", {})
    if stmt not in cache:
        stmts = cache.get("stmts")
        if stmts is None:
            try:
                stmts = cache["stmts"] = symbolic_stmts(program)
            except (ValueError, ZeroDivisionError, ArithmeticError) as exc:
                stmts = cache["stmts"] = str(exc)
        if isinstance(stmts, str):
            return StmtCount(stmt, f"s{stmt}", None, "enumeration", f"the program cannot be flattened ({stmts})")
        syms = {p: symbol(p) for p in program.params}
        cache[stmt] = count_stmt(stmts[stmt], syms)
    return cache[stmt]


def count_program(program) -> list[StmtCount]:
    """Symbolic counts of every statement of ``program`` (each cached on the program)."""
    n = len(symbolic_stmts(program))
    return [count_statement(program, i) for i in range(n)]


# --------------------------------------------------------------------------- evaluation


def _pow(a, b):
    if isinstance(b, int) and b < 0:
        return Fraction(1, a ** -b)
    return a**b


_RUNTIME = {"_floor": math.floor, "_ceil": math.ceil, "_pow": _pow, "_F": Fraction, "_min": min, "_max": max,
            "_clog2": functions.ceil_log2, "_flog2": functions.floor_log2, "_log2": functions.exact_log2,
            "_mod": lambda a, b: a % b}


def compile_expr(expr, params: list[str]):
    """A Python function ``f(**params)`` computing ``expr`` exactly (``Sum`` as a loop)."""
    code = _py(expr)
    args = ", ".join(params)
    fn = eval(f"lambda {args}: {code}" if params else f"lambda: {code}", dict(_RUNTIME))
    return fn


def _py(e) -> str:
    if isinstance(e, sympy.Integer):
        return f"({int(e)})"
    if isinstance(e, sympy.Rational):
        return f"_F({e.p}, {e.q})"
    if isinstance(e, sympy.Symbol):
        return e.name
    if isinstance(e, sympy.Add):
        return "(" + " + ".join(_py(a) for a in e.args) + ")"
    if isinstance(e, sympy.Mul):
        return "(" + " * ".join(_py(a) for a in e.args) + ")"
    if isinstance(e, sympy.Pow):
        return f"_pow({_py(e.base)}, {_py(e.exp)})"
    if isinstance(e, sympy.floor):
        return f"_floor({_py(e.args[0])})"
    if isinstance(e, sympy.ceiling):
        return f"_ceil({_py(e.args[0])})"
    if isinstance(e, sympy.Min):
        return f"_min({', '.join(_py(a) for a in e.args)})"
    if isinstance(e, sympy.Max):
        return f"_max({', '.join(_py(a) for a in e.args)})"
    if isinstance(e, sympy.Mod):
        return f"_mod({_py(e.args[0])}, {_py(e.args[1])})"
    if isinstance(e, ceil_log2):
        return f"_clog2({_py(e.args[0])})"
    if isinstance(e, floor_log2):
        return f"_flog2({_py(e.args[0])})"
    if isinstance(e, exact_log2):
        return f"_log2({_py(e.args[0])})"
    if isinstance(e, indicator):
        return f"(1 if {_py(e.args[0])} else 0)"
    if isinstance(e, sympy.Piecewise):
        out = "0"
        for val, cond in reversed(e.args):
            out = _py(val) if cond == sympy.true else f"({_py(val)} if {_py(cond)} else {out})"
        return out
    if isinstance(e, sympy.And):
        return "(" + " and ".join(_py(a) for a in e.args) + ")"
    if isinstance(e, sympy.Or):
        return "(" + " or ".join(_py(a) for a in e.args) + ")"
    if isinstance(e, sympy.Not):
        return f"(not {_py(e.args[0])})"
    if isinstance(e, sympy.core.relational.Relational):
        return f"({_py(e.lhs)} {e.rel_op} {_py(e.rhs)})"
    if e is sympy.true or e is sympy.false:
        return repr(bool(e))
    if isinstance(e, sympy.Sum):
        loops = " ".join(f"for {v.name} in range(_floor({_py(lo)}), _floor({_py(hi)}) + 1)"
                         for v, lo, hi in reversed(e.limits))  # the first limit is the innermost
        return f"sum({_py(e.function)} {loops})"
    raise TypeError(f"cannot evaluate {e!r} ({type(e).__name__})")


__all__ = ["StmtCount", "compile_expr", "count_program", "count_statement", "count_stmt", "symbol", "to_sympy"]

