"""Python source -> LAmbdaPACK IR, with a type check on the way.

The parser walks the ``ast`` of a decorated function and accepts exactly the
language of docs/language.md; any other construct is a ``CompileError`` that
carries the user's file, line and column and names the construct.

Scopes: integer parameters and matrices are visible everywhere; a loop variable
inside its loop; a scalar (``x = expr``) from its assignment to the end of the
block that assigns it, nested blocks included; a local tile space
(``S = lp.scratch()``, top level only) from its declaration on.  Names are never
rebound: a scalar is assigned once, and a loop variable shadows nothing.

Composition is parsed here and resolved by ``lambdapack.compose``: a call
statement ``f(A, X[i, :], N - 1)`` is a ``ProgramCall`` (whether ``f`` is a
program is known only when the namespace is consulted), ``S = lp.scratch()`` a
``Scratch`` and ``S[:, :, 0] = A`` an ``Alias``.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from dataclasses import dataclass

from . import ir
from .errors import CompileError

_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.FloorDiv: "//", ast.Mod: "%", ast.Pow: "**"}
_CMPOPS = {ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">="}
_FUNC_MODULES = ("lp", "lambdapack", "math")

# Statement kinds that are not part of the language, with the message a user sees.
_UNSUPPORTED_STMTS = {
    ast.While: "while loops are not supported in a LAmbdaPACK program (use for ... in range(...))",
    ast.Return: "return is not supported in a LAmbdaPACK program (results are the tiles it writes)",
    ast.Break: "break is not supported in a LAmbdaPACK program",
    ast.Continue: "continue is not supported in a LAmbdaPACK program (use if)",
    ast.With: "with blocks are not supported in a LAmbdaPACK program",
    ast.Try: "try blocks are not supported in a LAmbdaPACK program",
    ast.FunctionDef: "nested functions are not supported in a LAmbdaPACK program",
    ast.AsyncFunctionDef: "nested functions are not supported in a LAmbdaPACK program",
    ast.ClassDef: "classes are not supported in a LAmbdaPACK program",
    ast.Import: "imports are not supported inside a LAmbdaPACK program",
    ast.ImportFrom: "imports are not supported inside a LAmbdaPACK program",
    ast.Global: "global is not supported in a LAmbdaPACK program",
    ast.Nonlocal: "nonlocal is not supported in a LAmbdaPACK program",
    ast.Raise: "raise is not supported in a LAmbdaPACK program",
    ast.Assert: "assert is not supported in a LAmbdaPACK program",
    ast.Delete: "del is not supported in a LAmbdaPACK program",
    ast.AugAssign: "augmented assignment (x += ...) is not supported: scalars are assigned once",
    ast.AnnAssign: "annotated assignment is not supported in a LAmbdaPACK program",
    ast.AsyncFor: "async for is not supported in a LAmbdaPACK program",
    ast.AsyncWith: "async with is not supported in a LAmbdaPACK program",
    ast.Match: "match statements are not supported in a LAmbdaPACK program",
}


@dataclass(frozen=True)
class ParsedProgram:
    """The IR plus what the parser learned about kernel names."""

    ir: ir.Program
    kernel_names: tuple[str, ...]  # dotted names as written, e.g. "chol" or "kernels.chol"


def source_of(fn) -> tuple[str, str, int]:
    """(source text, file name, first line number) of a function."""
    try:
        lines, first = inspect.getsourcelines(fn)
        # a function defined in a doctest or a notebook cell has no file, but its code names the
        # "file" whose lines linecache serves
        filename = inspect.getsourcefile(fn) or getattr(getattr(fn, "__code__", None), "co_filename", "<unknown>")
    except (OSError, TypeError) as e:
        raise CompileError(
            f"cannot read the source of {getattr(fn, '__qualname__', fn)!r}: {e}. "
            "LAmbdaPACK programs must be defined in a file, or given as text to Program.from_source"
        ) from None
    return "".join(lines), filename, first


def parse(source: str, filename: str = "<string>", firstlineno: int = 1) -> ParsedProgram:
    """Parse the text of one ``def`` (decorators allowed) into IR."""
    dedented = textwrap.dedent(source)
    indent = _indent_width(source, dedented)
    try:
        module = ast.parse(dedented, filename=filename)
    except SyntaxError as e:
        src = ir.SourceInfo(filename, (e.lineno or 1) + firstlineno - 1, (e.offset or 1) - 1 + indent)
        raise CompileError(f"syntax error: {e.msg}", src) from None
    ast.increment_lineno(module, firstlineno - 1)
    defs = [n for n in module.body if isinstance(n, ast.FunctionDef)]
    if len(module.body) != 1 or not defs:
        raise CompileError("a LAmbdaPACK program is a single def", ir.SourceInfo(filename, firstlineno, 0))
    return _Parser(filename, indent).program(defs[0])


def _indent_width(source: str, dedented: str) -> int:
    for a, b in zip(source.splitlines(), dedented.splitlines()):
        if b.strip():
            return len(a) - len(b)
    return 0


class _Parser:
    def __init__(self, filename: str, indent: int):
        self.filename = filename
        self.indent = indent
        self.scopes: list[dict[str, str]] = []  # name -> "int" | "matrix" | "loop" | "scalar"
        self.kernel_names: list[str] = []
        self.depth = 0  # 1 in the program's own body, more inside loops and branches

    # ------------------------------------------------------------------ helpers
    def src(self, node: ast.AST) -> ir.SourceInfo:
        return ir.SourceInfo(self.filename, getattr(node, "lineno", 0), getattr(node, "col_offset", 0) + self.indent)

    def error(self, node: ast.AST, message: str) -> CompileError:
        return CompileError(message, self.src(node))

    def lookup(self, name: str) -> str | None:
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return None

    def declare(self, node: ast.AST, name: str, kind: str) -> None:
        existing = self.lookup(name)
        if existing is not None:
            what = {"int": "an integer parameter", "matrix": "a matrix", "loop": "a loop variable",
                    "scalar": "a scalar"}[existing]
            raise self.error(node, f"'{name}' is already {what}; LAmbdaPACK names are assigned only once")
        self.scopes[-1][name] = kind

    # ------------------------------------------------------------------ program
    def program(self, fn: ast.FunctionDef) -> ParsedProgram:
        args = fn.args
        if args.posonlyargs or args.vararg or args.kwonlyargs or args.kwarg:
            raise self.error(fn, "program parameters must be plain positional parameters")
        if args.defaults:
            raise self.error(args.defaults[0], "program parameters cannot have default values")
        params = []
        self.scopes.append({})
        for a in args.args:
            kind = self._param_kind(a)
            self.declare(a, a.arg, kind)
            params.append(ir.Param(a.arg, kind, self.src(a)))
        body = fn.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            body = body[1:]  # docstring
        stmts = self.block(body)
        self.scopes.pop()
        return ParsedProgram(ir.Program(fn.name, tuple(params), stmts, src=self.src(fn)), tuple(self.kernel_names))

    def _param_kind(self, a: ast.arg) -> str:
        ann = a.annotation
        if ann is None:
            raise self.error(a, f"parameter '{a.arg}' needs a type: lp.Matrix or int")
        if isinstance(ann, ast.Name) and ann.id == "int":
            return "int"
        if (isinstance(ann, ast.Name) and ann.id == "Matrix") or (
                isinstance(ann, ast.Attribute) and ann.attr == "Matrix"):
            return "matrix"
        raise self.error(ann, f"parameter '{a.arg}' has type {ast.unparse(ann)}; use lp.Matrix or int")

    # ------------------------------------------------------------------ statements
    def block(self, body: list[ast.stmt]) -> tuple[ir.ParsedStmt, ...]:
        self.scopes.append({})
        self.depth += 1
        out = []
        for node in body:
            stmt = self.statement(node)
            if stmt is not None:
                out.append(stmt)
        self.depth -= 1
        self.scopes.pop()
        return tuple(out)

    def statement(self, node: ast.stmt) -> ir.ParsedStmt | None:
        if isinstance(node, ast.Pass):
            return None
        if isinstance(node, ast.For):
            return self.for_loop(node)
        if isinstance(node, ast.If):
            cond = self.condition(node.test)
            return ir.If(cond, self.block(node.body), self.block(node.orelse), self.src(node))
        if isinstance(node, ast.Assign):
            return self.assign(node)
        if isinstance(node, ast.Expr):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                raise self.error(node, "strings are not supported in a LAmbdaPACK program "
                                       "(a docstring may only open the program)")
            if self._is_scratch(node.value):
                raise self.error(node, "a scratch tile space needs a name: S = lp.scratch()")
            if isinstance(node.value, ast.Call) and self._is_kernel_call(node.value):
                return self.program_call(node.value, node)
            raise self.error(node, f"expression statement '{ast.unparse(node)}' has no effect in a LAmbdaPACK program")
        message = _UNSUPPORTED_STMTS.get(type(node))
        raise self.error(node, message or f"{type(node).__name__} statements are not supported in a LAmbdaPACK program")

    def for_loop(self, node: ast.For) -> ir.For:
        if node.orelse:
            raise self.error(node, "for ... else is not supported in a LAmbdaPACK program")
        if not isinstance(node.target, ast.Name):
            raise self.error(node.target, "a loop variable must be a single name")
        it = node.iter
        if not (isinstance(it, ast.Call) and isinstance(it.func, ast.Name) and it.func.id == "range"):
            raise self.error(it, "loops must iterate over range(...)")
        if it.keywords or not 1 <= len(it.args) <= 3:
            raise self.error(it, "range takes 1 to 3 positional arguments")
        bounds = [self.expr(a) for a in it.args]
        if len(bounds) == 1:
            start, stop, step = ir.Const(0), bounds[0], ir.Const(1)
        elif len(bounds) == 2:
            start, stop, step = bounds[0], bounds[1], ir.Const(1)
        else:
            start, stop, step = bounds
        if step == ir.Const(0):
            raise self.error(it.args[2], "range() step must not be zero")
        self.scopes.append({})
        self.declare(node.target, node.target.id, "loop")
        body = self.block(node.body)
        self.scopes.pop()
        return ir.For(node.target.id, start, stop, step, body, self.src(node))

    def assign(self, node: ast.Assign) -> ir.ParsedStmt:
        if len(node.targets) != 1:
            raise self.error(node, "chained assignment (a = b = ...) is not supported")
        target, value = node.targets[0], node.value
        if self._is_scratch(value):
            return self.scratch(target, value, node)
        if isinstance(target, ast.Subscript) and self._is_space(value):
            elts = target.slice.elts if isinstance(target.slice, ast.Tuple) else [target.slice]
            if not any(isinstance(e, ast.Slice) for e in elts):
                raise self.error(value, "tiles can only be assigned the result of a kernel call (an alias, which "
                                        "says a region of a tile space is another one, maps axes: S[:, :, 0] = A)")
            return self.alias(target, value, node)
        if self._is_kernel_call(value):
            return self.kernel_call(target, value, node)
        if isinstance(target, ast.Name):
            expr = self.expr(value)
            self.declare(target, target.id, "scalar")
            return ir.Assign(target.id, expr, self.src(node))
        if isinstance(target, ast.Subscript | ast.Tuple):
            raise self.error(value, "tiles can only be assigned the result of a kernel call")
        raise self.error(target, f"cannot assign to '{ast.unparse(target)}'")

    def _is_kernel_call(self, value: ast.expr) -> bool:
        if not isinstance(value, ast.Call):
            return False
        f = value.func
        if isinstance(f, ast.Name):
            return f.id not in ir.EXPR_FUNCS and f.id != "range"
        if isinstance(f, ast.Attribute):
            return not (isinstance(f.value, ast.Name) and f.value.id in _FUNC_MODULES and f.attr in ir.EXPR_FUNCS)
        return False

    # ------------------------------------------------------------------ composition
    @staticmethod
    def _is_scratch(value: ast.expr) -> bool:
        if not isinstance(value, ast.Call):
            return False
        f = value.func
        return (isinstance(f, ast.Name) and f.id == "scratch") or (
            isinstance(f, ast.Attribute) and f.attr == "scratch" and isinstance(f.value, ast.Name)
            and f.value.id in ("lp", "lambdapack"))

    def _is_space(self, value: ast.expr) -> bool:
        """A tile space or a view of one (the right-hand side of an alias)."""
        if isinstance(value, ast.Subscript):
            value = value.value
        return isinstance(value, ast.Name) and self.lookup(value.id) == "matrix"

    def scratch(self, target: ast.expr, call: ast.Call, node: ast.Assign) -> ir.Scratch:
        if not isinstance(target, ast.Name):
            raise self.error(target, "a scratch tile space is declared with a name: S = lp.scratch()")
        if call.args or call.keywords:
            raise self.error(call, "lp.scratch() takes no arguments (a tile space's shape is the tiles it holds)")
        if self.depth != 1:
            raise self.error(node, f"declare scratch tile space '{target.id}' at the top of the program body, not "
                                   "inside a loop or branch (index it by the loop variables instead)")
        self.declare(target, target.id, "matrix")
        return ir.Scratch(target.id, self.src(node))

    def alias(self, target: ast.Subscript, value: ast.expr, node: ast.Assign) -> ir.Alias:
        if self.depth != 1:
            raise self.error(node, "an alias (S[:, :, 0] = A) is a declaration: write it at the top of the "
                                   "program body, not inside a loop or branch")
        lhs = self.view(target, allow_stop=True, what="an alias")
        rhs = self.view(value, allow_stop=False, what="the source of an alias") if isinstance(value, ast.Subscript) \
            else ir.View(value.id, None, self.src(value))
        if not any(not isinstance(p, ir.Slice) for p in lhs.parts):
            raise self.error(target, f"an alias fixes at least one index of '{lhs.matrix}' and maps whole axes, "
                                     f"e.g. {lhs.matrix}[:, :, 0] = A (step 0 of {lhs.matrix} is A)")
        if lhs.matrix == rhs.matrix:
            raise self.error(node, f"'{lhs.matrix}' cannot be an alias of itself")
        return ir.Alias(lhs, rhs, self.src(node))

    def view(self, node: ast.Subscript, allow_stop: bool, what: str) -> ir.View:
        """``X[i, :, k:]``: fixed indices and axes (``start:`` shifts an axis, ``:stop`` bounds it)."""
        if not isinstance(node.value, ast.Name) or self.lookup(node.value.id) != "matrix":
            name = ast.unparse(node.value)
            raise self.error(node.value, f"'{name}' is not a tile space; {what} names a tile space or a view of one")
        elts = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        parts: list[ir.Expr | ir.Slice] = []
        for e in elts:
            if not isinstance(e, ast.Slice):
                parts.append(self.expr(e))
                continue
            if e.step is not None:
                raise self.error(e, "a view cannot have a step: its axes are contiguous")
            if e.upper is not None and not allow_stop:
                raise self.error(e, f"{what} cannot have a stop ({ast.unparse(e)}): the program it is passed to "
                                    "decides which tiles it touches; write start: only")
            parts.append(ir.Slice(None if e.lower is None else self.expr(e.lower),
                                  None if e.upper is None else self.expr(e.upper), self.src(e)))
        return ir.View(node.value.id, tuple(parts), self.src(node))

    def program_call(self, call: ast.Call, node: ast.Expr) -> ir.ProgramCall:
        name = _dotted(call.func)
        if name is None:
            raise self.error(call.func, "a program must be named by a plain or dotted name")
        args = []
        for a in call.args:
            if isinstance(a, ast.Starred):
                raise self.error(a, "*arguments are not supported in a program call")
            args.append(self.call_arg(a))
        keywords = []
        for k in call.keywords:
            if k.arg is None:
                raise self.error(k, "**arguments are not supported in a program call")
            keywords.append((k.arg, self.call_arg(k.value)))
        return ir.ProgramCall(name, tuple(args), tuple(keywords), self.src(node))

    def call_arg(self, a: ast.expr) -> ir.View | ir.Arg:
        if isinstance(a, ast.Name) and self.lookup(a.id) == "matrix":
            return ir.View(a.id, None, self.src(a))
        if isinstance(a, ast.Subscript) and any(isinstance(e, ast.Slice) for e in (
                a.slice.elts if isinstance(a.slice, ast.Tuple) else [a.slice])):
            return self.view(a, allow_stop=False, what="a view passed to a program")
        return self.kernel_arg(a)  # a tile or a float is reported once the callee is known

    def kernel_call(self, target: ast.expr, call: ast.Call, node: ast.Assign) -> ir.KernelCall:
        name = _dotted(call.func)
        if name is None:
            raise self.error(call.func, "a kernel must be named by a plain or dotted name")
        if call.keywords:
            raise self.error(call.keywords[0], "kernel calls take positional arguments only")
        args = tuple(self.kernel_arg(a) for a in call.args)
        targets = target.elts if isinstance(target, ast.Tuple) else [target]
        outputs = []
        for t in targets:
            if not isinstance(t, ast.Subscript):
                raise self.error(t, "kernel results must be stored in tiles, e.g. L[i, j] = chol(...)")
            outputs.append(self.tile_ref(t))
        if name not in self.kernel_names:
            self.kernel_names.append(name)
        return ir.KernelCall(tuple(outputs), name, args, self.src(node))

    def kernel_arg(self, a: ast.expr) -> ir.Arg:
        if isinstance(a, ast.Subscript):
            return self.tile_ref(a)
        if isinstance(a, ast.Constant) and isinstance(a.value, float):
            return ir.FloatConst(a.value, self.src(a))
        if isinstance(a, ast.UnaryOp) and isinstance(a.op, ast.USub) and isinstance(a.operand, ast.Constant) \
                and isinstance(a.operand.value, float):
            return ir.FloatConst(-a.operand.value, self.src(a))
        if isinstance(a, ast.Name) and self.lookup(a.id) == "matrix":
            raise self.error(a, f"pass a tile of '{a.id}', e.g. {a.id}[i, j], not the whole matrix")
        return self.expr(a)

    def tile_ref(self, node: ast.Subscript) -> ir.TileRef:
        if not isinstance(node.value, ast.Name):
            raise self.error(node.value, "only a matrix parameter can be indexed")
        name = node.value.id
        kind = self.lookup(name)
        if kind != "matrix":
            what = "not defined" if kind is None else "not a matrix"
            raise self.error(node.value, f"'{name}' is {what}; only lp.Matrix parameters hold tiles")
        index = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
        if not index:
            raise self.error(node, "a tile index needs at least one component")
        return ir.TileRef(name, tuple(self.expr(e) for e in index), self.src(node))

    # ------------------------------------------------------------------ expressions
    def expr(self, node: ast.expr) -> ir.Expr:
        src = self.src(node)
        if isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int):
                kind = "strings" if isinstance(node.value, str) else f"{type(node.value).__name__} constants"
                raise self.error(node, f"{kind} are not supported in index or bound expressions "
                                       "(they must be integers)")
            return ir.Const(node.value, src)
        if isinstance(node, ast.Name):
            kind = self.lookup(node.id)
            if kind is None:
                raise self.error(node, f"name '{node.id}' is not defined here (only integer parameters, "
                                       "loop variables and scalars assigned earlier can be used)")
            if kind == "matrix":
                raise self.error(node, f"matrix '{node.id}' cannot be used as an integer")
            return ir.Var(node.id, src)
        if isinstance(node, ast.BinOp):
            if isinstance(node.op, ast.Div):
                raise self.error(node, "true division '/' is not supported: indices are integers, use //")
            op = _BINOPS.get(type(node.op))
            if op is None:
                raise self.error(node, f"operator '{ast.unparse(node)}' is not supported in index expressions")
            return ir.BinOp(op, self.expr(node.left), self.expr(node.right), src)
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, ast.USub):
                inner = self.expr(node.operand)
                return ir.Const(-inner.value, src) if isinstance(inner, ir.Const) else ir.Neg(inner, src)
            if isinstance(node.op, ast.UAdd):
                return self.expr(node.operand)
            raise self.error(node, f"operator '{ast.unparse(node)}' is not supported in index expressions")
        if isinstance(node, ast.Call):
            return self.call(node)
        if isinstance(node, ast.Subscript):
            raise self.error(node, "a tile cannot be used as an integer; tiles are passed to kernels only")
        if isinstance(node, ast.Compare | ast.BoolOp):
            raise self.error(node, "a condition cannot be used as an integer")
        raise self.error(node, f"'{ast.unparse(node)}' is not supported in a LAmbdaPACK expression")

    def call(self, node: ast.Call) -> ir.Expr:
        f = node.func
        name = None
        if isinstance(f, ast.Name):
            name = f.id
        elif isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id in _FUNC_MODULES:
            name = f.attr
        if name not in ir.EXPR_FUNCS or name in ("ceil_log2", "floor_log2"):
            raise self.error(node, f"call to '{ast.unparse(f)}' is not allowed in an index expression "
                                   "(allowed: min, max, log2, ceil, floor)")
        if node.keywords:
            raise self.error(node, f"{name}() takes positional arguments only")
        if name in ("min", "max"):
            if len(node.args) < 2:
                raise self.error(node, f"{name}() needs at least two arguments")
            return ir.Call(name, tuple(self.expr(a) for a in node.args), self.src(node))
        if len(node.args) != 1:
            raise self.error(node, f"{name}() takes exactly one argument")
        arg = self.expr(node.args[0])
        if name in ("ceil", "floor"):
            if isinstance(arg, ir.Call) and arg.func == "log2":
                return ir.Call(f"{name}_log2", arg.args, self.src(node))
            return arg  # every other expression is already an integer
        return ir.Call(name, (arg,), self.src(node))

    def condition(self, node: ast.expr) -> ir.Cond:
        src = self.src(node)
        if isinstance(node, ast.Compare):
            parts = []
            left = node.left
            for op, right in zip(node.ops, node.comparators):
                sym = _CMPOPS.get(type(op))
                if sym is None:
                    raise self.error(node, f"comparison '{ast.unparse(node)}' is not supported (use == != < <= > >=)")
                parts.append(ir.Compare(sym, self.expr(left), self.expr(right), src))
                left = right
            return parts[0] if len(parts) == 1 else ir.BoolOp("and", tuple(parts), src)
        if isinstance(node, ast.BoolOp):
            op = "and" if isinstance(node.op, ast.And) else "or"
            return ir.BoolOp(op, tuple(self.condition(v) for v in node.values), src)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ir.Not(self.condition(node.operand), src)
        if isinstance(node, ast.Constant) and isinstance(node.value, bool):
            return ir.BoolConst(node.value, src)
        raise self.error(node, f"'{ast.unparse(node)}' is not a condition (compare integers with == != < <= > >=)")


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None
