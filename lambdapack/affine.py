"""Symbolic helpers over IR expressions, used only while binding a program.

- ``simplify``: constant folding (parameters are constants once bound).
- ``linearize``: split an expression into an integer-affine part in some
  unknown variables plus a residual that mentions no unknown, or say it is not
  affine in them (``2**level`` with ``level`` unknown, ``i // 2``...).
- ``interval``: a conservative integer interval of an expression, given
  intervals of its variables; used to prove two write sites disjoint.

Nothing here runs per task.
"""

from __future__ import annotations

import math
from fractions import Fraction

from . import functions, ir

INF = math.inf

_FOLD = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "//": lambda a, b: a // b,
    "%": lambda a, b: a % b,
    "**": lambda a, b: a**b,
}
_CALLS = {
    "min": min,
    "max": max,
    "log2": functions.exact_log2,
    "ceil_log2": functions.ceil_log2,
    "floor_log2": functions.floor_log2,
}


def simplify(e):
    """Fold constants in an expression or condition.

    >>> str(simplify(ir.BinOp("+", ir.Var("i"), ir.BinOp("*", ir.Const(2), ir.Const(0)))))
    'i'
    """
    if isinstance(e, ir.BinOp):
        a, b = simplify(e.left), simplify(e.right)
        if isinstance(a, ir.Const) and isinstance(b, ir.Const):
            if e.op in ("//", "%") and b.value == 0:
                raise ValueError(f"division by zero in '{e}'")
            if e.op == "**" and b.value < 0:
                raise ValueError(f"negative exponent in '{e}'")
            return ir.Const(_FOLD[e.op](a.value, b.value), e.src)
        if e.op == "+" and a == ir.Const(0):
            return b
        if e.op in ("+", "-") and b == ir.Const(0):
            return a
        if e.op == "*" and (a == ir.Const(1) or b == ir.Const(1)):
            return b if a == ir.Const(1) else a
        return ir.BinOp(e.op, a, b, e.src)
    if isinstance(e, ir.Neg):
        a = simplify(e.operand)
        return ir.Const(-a.value, e.src) if isinstance(a, ir.Const) else ir.Neg(a, e.src)
    if isinstance(e, ir.Call):
        args = tuple(simplify(a) for a in e.args)
        if all(isinstance(a, ir.Const) for a in args):
            return ir.Const(_CALLS[e.func](*(a.value for a in args)), e.src)
        return ir.Call(e.func, args, e.src)
    if isinstance(e, ir.Compare):
        a, b = simplify(e.left), simplify(e.right)
        if isinstance(a, ir.Const) and isinstance(b, ir.Const):
            return ir.BoolConst(evaluate(ir.Compare(e.op, a, b), {}), e.src)
        return ir.Compare(e.op, a, b, e.src)
    if isinstance(e, ir.Not):
        a = simplify(e.operand)
        return ir.BoolConst(not a.value, e.src) if isinstance(a, ir.BoolConst) else ir.Not(a, e.src)
    if isinstance(e, ir.BoolOp):
        vals = []
        for v in (simplify(v) for v in e.values):
            if isinstance(v, ir.BoolConst):
                if v.value == (e.op == "or"):
                    return v  # short-circuits the whole thing
                continue
            vals.append(v)
        if not vals:
            return ir.BoolConst(e.op == "and", e.src)
        return vals[0] if len(vals) == 1 else ir.BoolOp(e.op, tuple(vals), e.src)
    if isinstance(e, ir.TileRef):
        return ir.TileRef(e.matrix, tuple(simplify(x) for x in e.index), e.src)
    return e


def evaluate(e, env: dict[str, int]):
    """Evaluate an expression or condition with Python semantics (slow path: tests, binding)."""
    if isinstance(e, ir.Const | ir.BoolConst | ir.FloatConst):
        return e.value
    if isinstance(e, ir.Var):
        return env[e.name]
    if isinstance(e, ir.BinOp):
        return _FOLD[e.op](evaluate(e.left, env), evaluate(e.right, env))
    if isinstance(e, ir.Neg):
        return -evaluate(e.operand, env)
    if isinstance(e, ir.Call):
        return _CALLS[e.func](*(evaluate(a, env) for a in e.args))
    if isinstance(e, ir.Compare):
        a, b = evaluate(e.left, env), evaluate(e.right, env)
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[e.op]
    if isinstance(e, ir.Not):
        return not evaluate(e.operand, env)
    if isinstance(e, ir.BoolOp):
        if e.op == "and":
            return all(evaluate(v, env) for v in e.values)
        return any(evaluate(v, env) for v in e.values)
    raise TypeError(f"cannot evaluate {e!r}")


def linearize(e: ir.Expr, unknowns: frozenset[str]) -> tuple[dict[str, int], ir.Expr] | None:
    """``e == sum(coeffs[v] * v) + rest`` with integer coeffs and ``rest`` free of unknowns.

    Returns None when ``e`` is not affine in the unknowns.

    >>> c, r = linearize(ir.BinOp("+", ir.Var("i"), ir.BinOp("**", ir.Const(2), ir.Var("l"))), frozenset("i"))
    >>> c, str(r)
    ({'i': 1}, '2 ** l')
    >>> linearize(ir.BinOp("**", ir.Const(2), ir.Var("l")), frozenset("l")) is None
    True
    """
    if not (ir.free_vars(e) & unknowns):
        return {}, e
    if isinstance(e, ir.Var):
        return {e.name: 1}, ir.Const(0)
    if isinstance(e, ir.Neg):
        inner = linearize(e.operand, unknowns)
        if inner is None:
            return None
        return {v: -c for v, c in inner[0].items()}, simplify(ir.Neg(inner[1]))
    if isinstance(e, ir.BinOp) and e.op in ("+", "-"):
        a, b = linearize(e.left, unknowns), linearize(e.right, unknowns)
        if a is None or b is None:
            return None
        sign = 1 if e.op == "+" else -1
        coeffs = dict(a[0])
        for v, c in b[0].items():
            coeffs[v] = coeffs.get(v, 0) + sign * c
        return {v: c for v, c in coeffs.items() if c}, simplify(ir.BinOp(e.op, a[1], b[1]))
    if isinstance(e, ir.BinOp) and e.op == "*":
        for const, other in ((e.left, e.right), (e.right, e.left)):
            if isinstance(const, ir.Const):
                inner = linearize(other, unknowns)
                if inner is None:
                    return None
                coeffs = {v: c * const.value for v, c in inner[0].items() if c * const.value}
                return coeffs, simplify(ir.BinOp("*", const, inner[1]))
    return None


def solve_rational(rows: list[list[Fraction]], n_unknowns: int) -> list[tuple[int, list[Fraction], list[Fraction]]]:
    """Reduced row echelon form of ``A x = b`` with symbolic right-hand sides.

    ``rows[r]`` holds the coefficients of row r.  Returns, for each pivot
    column p: ``(p, w, g)`` meaning ``x_p = sum_r w[r] * b_r - sum_f g[f] * x_f``
    where f runs over all columns (g is zero on pivot columns).

    >>> sol = solve_rational([[Fraction(1), Fraction(1)], [Fraction(1), Fraction(-1)]], 2)
    >>> [(p, [str(x) for x in w]) for p, w, g in sol]
    [(0, ['1/2', '1/2']), (1, ['1/2', '-1/2'])]
    """
    m = len(rows)
    # augment each row with an identity block that tracks the combination of right-hand sides
    aug = [list(r) + [Fraction(int(i == k)) for k in range(m)] for i, r in enumerate(rows)]
    pivots = []
    r = 0
    for col in range(n_unknowns):
        pr = next((i for i in range(r, m) if aug[i][col] != 0), None)
        if pr is None:
            continue
        aug[r], aug[pr] = aug[pr], aug[r]
        lead = aug[r][col]
        aug[r] = [x / lead for x in aug[r]]
        for i in range(m):
            if i != r and aug[i][col] != 0:
                f = aug[i][col]
                aug[i] = [x - f * y for x, y in zip(aug[i], aug[r])]
        pivots.append((col, r))
        r += 1
    out = []
    for col, row in pivots:
        g = [aug[row][c] if c != col else Fraction(0) for c in range(n_unknowns)]
        out.append((col, aug[row][n_unknowns:], g))
    return out


def consistency_rows(rows: list[list[Fraction]], n_unknowns: int) -> list[list[Fraction]]:
    """Combinations ``w`` of right-hand sides that must vanish (rows that reduce to 0 = w·b)."""
    m = len(rows)
    aug = [list(r) + [Fraction(int(i == k)) for k in range(m)] for i, r in enumerate(rows)]
    r = 0
    for col in range(n_unknowns):
        pr = next((i for i in range(r, m) if aug[i][col] != 0), None)
        if pr is None:
            continue
        aug[r], aug[pr] = aug[pr], aug[r]
        for i in range(m):
            if i != r and aug[i][col] != 0:
                f = aug[i][col] / aug[r][col]
                aug[i] = [x - f * y for x, y in zip(aug[i], aug[r])]
        r += 1
    return [row[n_unknowns:] for row in aug[r:]]


def rank(rows: list[list[int]]) -> int:
    """Rank of an integer matrix (exact).

    >>> rank([[1, 0], [0, 1], [1, 1]]), rank([[1, 2], [2, 4]])
    (2, 1)
    """
    if not rows:
        return 0
    n = len(rows[0])
    return len(solve_rational([[Fraction(x) for x in r] for r in rows], n))


# --------------------------------------------------------------------------- intervals


def interval(e: ir.Expr, env: dict[str, tuple[float, float]]) -> tuple[float, float]:
    """A conservative interval [lo, hi] containing every value of ``e``.

    >>> interval(ir.BinOp("+", ir.Var("l"), ir.Const(1)), {"l": (0, 3)})
    (1, 4)
    """
    if isinstance(e, ir.Const):
        return (e.value, e.value)
    if isinstance(e, ir.Var):
        return env.get(e.name, (-INF, INF))
    if isinstance(e, ir.Neg):
        lo, hi = interval(e.operand, env)
        return (-hi, -lo)
    if isinstance(e, ir.BinOp):
        a, b = interval(e.left, env), interval(e.right, env)
        if e.op == "+":
            return (a[0] + b[0], a[1] + b[1])
        if e.op == "-":
            return (a[0] - b[1], a[1] - b[0])
        if e.op == "*":
            prods = [_mul(x, y) for x in a for y in b]
            return (min(prods), max(prods))
        if e.op == "//" and b[0] > 0:
            qs = [_floordiv(x, y) for x in a for y in b]
            return (min(qs), max(qs))
        if e.op == "%" and b[0] > 0:
            return (0, b[1] - 1)
        if e.op == "**" and a[0] >= 1 and b[0] >= 0:
            return (a[0] ** b[0], a[1] ** b[1] if max(a[1], b[1]) < INF else INF)
        return (-INF, INF)
    if isinstance(e, ir.Call):
        ivs = [interval(x, env) for x in e.args]
        if e.func == "min":
            return (min(i[0] for i in ivs), min(i[1] for i in ivs))
        if e.func == "max":
            return (max(i[0] for i in ivs), max(i[1] for i in ivs))
        lo, hi = ivs[0]
        if lo >= 1:  # the log2 variants are monotone and lie between floor and ceil of log2
            return (functions.floor_log2(int(lo)), INF if hi == INF else functions.ceil_log2(int(hi)))
        return (-INF, INF)
    return (-INF, INF)


def _mul(x: float, y: float) -> float:
    if x == 0 or y == 0:
        return 0
    return x * y


def _floordiv(x: float, y: float) -> float:
    if math.isinf(x) or math.isinf(y):
        return x / y if not math.isinf(y) else 0
    return x // y
