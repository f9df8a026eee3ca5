"""The LAmbdaPACK intermediate representation, in one place.

Every node is a small frozen dataclass; ``str(node)`` prints it back as the
source it came from (up to parentheses and spacing).  Source positions are kept
in ``SourceInfo`` fields that take no part in equality, so two programs that say
the same thing compare equal wherever they were written.

Expressions (integer valued)
    ``Const(value)``, ``Var(name)``, ``BinOp(op, left, right)`` with op in
    ``+ - * // % **``, ``Neg(operand)``, ``Call(func, args)`` with func in
    ``min max log2 ceil floor``.
Conditions
    ``Compare(op, left, right)`` with op in ``== != < <= > >=``,
    ``BoolOp(op, values)`` with op in ``and or``, ``Not(operand)``,
    ``BoolConst(value)``.
Statements
    ``For(var, start, stop, step, body)``, ``If(cond, body, orelse)``,
    ``Assign(name, value)`` (an integer scalar), and ``KernelCall(outputs,
    kernel, args)`` whose outputs are ``TileRef(matrix, index)`` and whose
    args are tile references, integer expressions or ``FloatConst``.
Program
    ``Program(name, params, body, scratch)`` with ``Param(name, kind)``, kind
    being ``"matrix"`` or ``"int"``, and ``scratch`` the names of the local
    tile spaces (``S = lp.scratch()``).

Composition (only in a program as parsed; ``lambdapack.compose`` resolves them
at compile time, so what is bound holds none of them)
    ``Scratch(name)`` declares a local tile space; ``View(matrix, parts)`` is
    a tile space (``parts`` None) or a view of one, each part an integer
    expression (a fixed index) or a ``Slice(start, stop)`` (an axis, shifted
    by ``start``); ``ProgramCall(program, args, keywords)`` calls another
    program with views and integer expressions; ``Alias(target, source)``
    says that a region of a tile space *is* another one (``S[:, :, 0] = A``).

A ``SourceInfo`` of a statement inlined from another program keeps the
callee's file and line, and in ``via`` the call sites it was inlined through,
innermost first.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class SourceInfo:
    """Where a node was written: file name, 1-based line, 0-based column.

    ``via`` lists the program calls a statement was inlined through, innermost
    first (empty for a statement of the program itself).
    """

    filename: str = "<unknown>"
    line: int = 0
    col: int = 0
    via: tuple[SourceInfo, ...] = ()

    def __str__(self) -> str:
        return f"{self.filename}:{self.line}:{self.col + 1}"

    def inlined_at(self, call: SourceInfo) -> SourceInfo:
        """This position, seen through one more call (``call`` and the calls it was itself inlined through)."""
        return SourceInfo(self.filename, self.line, self.col, (*self.via, call, *call.via))


NOWHERE = SourceInfo()


# --------------------------------------------------------------------------- expressions

# Binding strength used when printing, higher binds tighter (Python's own order).
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "//": 2, "%": 2, "neg": 3, "**": 4}


@dataclass(frozen=True)
class Const:
    value: int
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return str(self.value)


@dataclass(frozen=True)
class Var:
    name: str
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class BinOp:
    op: str
    left: Expr
    right: Expr
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        p = _PRECEDENCE[self.op]
        left, right = _paren(self.left, p), _paren(self.right, p)
        # a - (b - c) and a // (b * c) need the parentheses on the right; ** is right-associative
        if self.op == "**":
            left = f"({self.left})" if _prec(self.left) <= p else str(self.left)
            right = str(self.right) if _prec(self.right) >= p else f"({self.right})"
        elif _prec(self.right) == p:
            right = f"({self.right})"
        return f"{left} {self.op} {right}"


@dataclass(frozen=True)
class Neg:
    operand: Expr
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return f"-{_paren(self.operand, _PRECEDENCE['neg'])}"


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        args = ", ".join(map(str, self.args))
        if self.func in ("ceil_log2", "floor_log2"):
            return f"{self.func[:-5]}(log2({args}))"
        return f"{self.func}({args})"


Expr = Const | Var | BinOp | Neg | Call
# Functions an expression may call; ceil_log2/floor_log2 are what ceil(log2(x)) and
# floor(log2(x)) compile to, so that all index arithmetic stays in integers.
EXPR_FUNCS = ("min", "max", "log2", "ceil", "floor", "ceil_log2", "floor_log2")


def _prec(e: Expr) -> int:
    if isinstance(e, BinOp):
        return _PRECEDENCE[e.op]
    if isinstance(e, Neg):
        return _PRECEDENCE["neg"]
    if isinstance(e, Const) and e.value < 0:
        return _PRECEDENCE["neg"]
    return 10


def _paren(e: Expr, p: int) -> str:
    return f"({e})" if _prec(e) < p else str(e)


# --------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Compare:
    op: str
    left: Expr
    right: Expr
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.left} {self.op} {self.right}"


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" | "or"
    values: tuple[Cond, ...]
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        parts = []
        for v in self.values:
            inner = str(v)
            parts.append(f"({inner})" if isinstance(v, BoolOp) else inner)
        return f" {self.op} ".join(parts)


@dataclass(frozen=True)
class Not:
    operand: Cond
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        inner = str(self.operand)
        return f"not ({inner})" if isinstance(self.operand, BoolOp | Compare) else f"not {inner}"


@dataclass(frozen=True)
class BoolConst:
    value: bool
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return str(self.value)


Cond = Compare | BoolOp | Not | BoolConst


# --------------------------------------------------------------------------- statements


@dataclass(frozen=True)
class TileRef:
    matrix: str
    index: tuple[Expr, ...]
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.matrix}[{', '.join(map(str, self.index))}]"


@dataclass(frozen=True)
class FloatConst:
    value: float
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return repr(self.value)


Arg = TileRef | FloatConst | Const | Var | BinOp | Neg | Call


@dataclass(frozen=True)
class KernelCall:
    outputs: tuple[TileRef, ...]
    kernel: str
    args: tuple[Arg, ...]
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    @property
    def reads(self) -> tuple[TileRef, ...]:
        return tuple(a for a in self.args if isinstance(a, TileRef))

    def lines(self, indent: int) -> list[str]:
        outs = ", ".join(map(str, self.outputs))
        return [" " * indent + f"{outs} = {self.kernel}({', '.join(map(str, self.args))})"]


@dataclass(frozen=True)
class Assign:
    name: str
    value: Expr
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def lines(self, indent: int) -> list[str]:
        return [" " * indent + f"{self.name} = {self.value}"]


@dataclass(frozen=True)
class For:
    var: str
    start: Expr
    stop: Expr
    step: Expr
    body: tuple[Stmt, ...]
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def lines(self, indent: int) -> list[str]:
        if self.step == Const(1):
            bounds = f"{self.stop}" if self.start == Const(0) else f"{self.start}, {self.stop}"
        else:
            bounds = f"{self.start}, {self.stop}, {self.step}"
        head = " " * indent + f"for {self.var} in range({bounds}):"
        return [head, *_block_lines(self.body, indent + 4)]


@dataclass(frozen=True)
class If:
    cond: Cond
    body: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def lines(self, indent: int, keyword: str = "if") -> list[str]:
        out = [" " * indent + f"{keyword} {self.cond}:", *_block_lines(self.body, indent + 4)]
        if len(self.orelse) == 1 and isinstance(self.orelse[0], If):
            out += self.orelse[0].lines(indent, "elif")
        elif self.orelse:
            out += [" " * indent + "else:", *_block_lines(self.orelse, indent + 4)]
        return out


@dataclass(frozen=True)
class Slice:
    """An axis of a view: ``start:`` shifts it (index i of the view is start + i), ``:stop`` bounds it."""

    start: Expr | None = None
    stop: Expr | None = None
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{'' if self.start is None else self.start}:{'' if self.stop is None else self.stop}"


@dataclass(frozen=True)
class View:
    """A tile space (``parts`` None) or a view of one: ``T[i, j, :, :]``, ``A[k:, k:]``."""

    matrix: str
    parts: tuple[Expr | Slice, ...] | None = None
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    @property
    def axes(self) -> int | None:
        """Number of axes the view leaves free (None for a whole tile space)."""
        return None if self.parts is None else sum(isinstance(p, Slice) for p in self.parts)

    def __str__(self) -> str:
        return self.matrix if self.parts is None else f"{self.matrix}[{', '.join(map(str, self.parts))}]"


@dataclass(frozen=True)
class ProgramCall:
    """``cholesky(A, L, N - k)``: the body of another program, inlined when this one is compiled."""

    program: str
    args: tuple[View | TileRef | Expr, ...]
    keywords: tuple[tuple[str, View | TileRef | Expr], ...] = ()
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def lines(self, indent: int) -> list[str]:
        args = [*map(str, self.args), *(f"{k}={v}" for k, v in self.keywords)]
        return [" " * indent + f"{self.program}({', '.join(args)})"]


@dataclass(frozen=True)
class Scratch:
    """``S = lp.scratch()``: a tile space local to the program (never a parameter)."""

    name: str
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def lines(self, indent: int) -> list[str]:
        return [" " * indent + f"{self.name} = lp.scratch()"]


@dataclass(frozen=True)
class Alias:
    """``S[:, :, 0] = A``: that region of S is A (reads of it are reads of A; no task writes it)."""

    target: View
    source: View
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def lines(self, indent: int) -> list[str]:
        return [" " * indent + f"{self.target} = {self.source}"]


Stmt = For | If | Assign | KernelCall
ParsedStmt = Stmt | ProgramCall | Scratch | Alias


def _block_lines(body: tuple[Stmt, ...], indent: int) -> list[str]:
    if not body:
        return [" " * indent + "pass"]
    return [line for s in body for line in s.lines(indent)]


for _cls in (KernelCall, Assign, For, If, ProgramCall, Scratch, Alias):
    _cls.__str__ = lambda self: "\n".join(self.lines(0))  # type: ignore[method-assign]


@dataclass(frozen=True)
class Param:
    name: str
    kind: str  # "matrix" | "int"
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.name}: {'lp.Matrix' if self.kind == 'matrix' else 'int'}"


@dataclass(frozen=True)
class Program:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    scratch: tuple[str, ...] = ()  # local tile spaces
    src: SourceInfo = field(default=NOWHERE, compare=False, repr=False)

    def __str__(self) -> str:
        head = f"@lp.program\ndef {self.name}({', '.join(map(str, self.params))}):"
        decls = [f"    {name} = lp.scratch()" for name in self.scratch]
        body = _block_lines(self.body, 4) if self.body or not decls else []
        return "\n".join([head, *decls, *body])


# --------------------------------------------------------------------------- small helpers


def free_vars(node: Expr | Cond) -> frozenset[str]:
    """Names an expression or condition mentions.

    >>> sorted(free_vars(BinOp("+", Var("i"), BinOp("*", Const(2), Var("k")))))
    ['i', 'k']
    """
    if isinstance(node, Var):
        return frozenset((node.name,))
    if isinstance(node, Const | BoolConst | FloatConst):
        return frozenset()
    if isinstance(node, BinOp | Compare):
        return free_vars(node.left) | free_vars(node.right)
    if isinstance(node, Neg | Not):
        return free_vars(node.operand)
    if isinstance(node, Call):
        return frozenset().union(*(free_vars(a) for a in node.args))
    if isinstance(node, BoolOp):
        return frozenset().union(*(free_vars(v) for v in node.values))
    raise TypeError(f"not an expression: {node!r}")


def substitute(node, env: dict[str, Expr]):
    """Replace variables by expressions (used to inline scalars and bind parameters).

    >>> str(substitute(BinOp("+", Var("i"), Var("N")), {"N": Const(8)}))
    'i + 8'
    """
    if isinstance(node, Var):
        return env.get(node.name, node)
    if isinstance(node, Const | BoolConst | FloatConst):
        return node
    if isinstance(node, BinOp | Compare):
        return type(node)(node.op, substitute(node.left, env), substitute(node.right, env), node.src)
    if isinstance(node, Neg | Not):
        return type(node)(substitute(node.operand, env), node.src)
    if isinstance(node, Call):
        return Call(node.func, tuple(substitute(a, env) for a in node.args), node.src)
    if isinstance(node, BoolOp):
        return BoolOp(node.op, tuple(substitute(v, env) for v in node.values), node.src)
    if isinstance(node, TileRef):
        return TileRef(node.matrix, tuple(substitute(e, env) for e in node.index), node.src)
    raise TypeError(f"not an expression: {node!r}")


# --------------------------------------------------------------------------- data (JSON) form

_NODES = {cls.__name__: cls for cls in (
    Const, Var, BinOp, Neg, Call, Compare, BoolOp, Not, BoolConst, TileRef, FloatConst, KernelCall, Assign, For,
    If, Param, Program, Slice, View, ProgramCall, Scratch, Alias)}


# Positions of expressions serve parse errors only: a compiled program's JSON leaves them out.
_NO_SRC = (Const, Var, BinOp, Neg, Call, Compare, BoolOp, Not, BoolConst, FloatConst, Slice)


def to_data(node):
    """A node as JSON-ready data: ``{"node": class name, field: value...}``, source positions included.

    >>> to_data(BinOp("+", Var("i"), Const(1)))["node"]
    'BinOp'
    >>> from_data(to_data(BinOp("+", Var("i"), Const(1)))) == BinOp("+", Var("i"), Const(1))
    True
    """
    if isinstance(node, SourceInfo):
        return [node.filename, node.line, node.col, [to_data(v) for v in node.via]]
    if isinstance(node, tuple):
        return [to_data(x) for x in node]
    if type(node).__name__ in _NODES and not isinstance(node, type):
        out = {"node": type(node).__name__}
        for f in fields(node):
            value = getattr(node, f.name)
            if f.name == "src" and (value == NOWHERE or isinstance(node, _NO_SRC)):
                continue
            out[f.name] = to_data(value)
        return out
    return node  # str, int, float, bool, None


def from_data(data):
    """The node ``to_data`` described (tuples come back as tuples)."""
    if isinstance(data, dict):
        cls = _NODES[data["node"]]
        kwargs = {}
        for f in fields(cls):
            if f.name not in data:
                continue
            value = data[f.name]
            if f.name == "src":
                kwargs[f.name] = _src_from_data(value)
            else:
                kwargs[f.name] = from_data(value)
        return cls(**kwargs)
    if isinstance(data, list):
        return tuple(from_data(x) for x in data)
    return data


def _src_from_data(d) -> SourceInfo:
    filename, line, col, via = d
    return SourceInfo(filename, line, col, tuple(_src_from_data(v) for v in via))
