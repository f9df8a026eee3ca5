"""``@lp.program`` and ``@lp.kernel``: the objects a user writes."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any

from . import ir
from .bound import BoundProgram
from .errors import CompileError
from .parser import parse, source_of


class Matrix:
    """Annotation for a tile-space parameter: ``def f(A: lp.Matrix, N: int)``."""


class Kernel:
    """A function over numpy tiles that a program may call.

    ``flops``, if given, is a function of the kernel's arguments (tiles and
    scalars) returning the floating-point operation count, used in statistics.

    The kernel carries the function's ``__module__``, ``__name__``, ``__qualname__``,
    ``__doc__`` and ``__wrapped__`` (``functools.update_wrapper``), so that ``help()``,
    ``inspect`` and doctest's finder treat it as the function it wraps: the examples in a
    kernel's docstring are collected and run like any function's.
    """

    def __init__(self, fn: Callable, flops: Callable | None = None, name: str | None = None):
        functools.update_wrapper(self, fn, updated=())
        self.fn = fn
        self.flops = flops
        self.name = name or fn.__name__

    def __call__(self, *args):
        return self.fn(*args)

    def __repr__(self) -> str:
        return f"<lp.kernel {self.name}>"


def kernel(fn: Callable | None = None, *, flops: Callable | None = None, name: str | None = None):
    """Declare a kernel: ``@lp.kernel`` or ``@lp.kernel(flops=lambda a, b: ...)``."""
    if fn is None:
        return lambda f: Kernel(f, flops, name)
    return Kernel(fn, flops, name)


class Program:
    """A compiled LAmbdaPACK program.

    Attributes
    ----------
    name : str
    params : tuple of str
        Integer parameters, in order.
    matrices : tuple of str
        Tile-space parameters, in order.
    arity : dict
        Length of the index tuple of each tile space used.
    ir : lambdapack.ir.Program
    """

    def __init__(self, source: str, filename: str = "<string>", firstlineno: int = 1,
                 namespace: dict[str, Any] | None = None):
        parsed = parse(source, filename, firstlineno)
        self.source = source
        self.filename = filename
        self.firstlineno = firstlineno
        self.ir = parsed.ir
        self.kernel_names = parsed.kernel_names
        self.namespace = namespace if namespace is not None else {}
        self.name = self.ir.name
        self.params = tuple(p.name for p in self.ir.params if p.kind == "int")
        self.matrices = tuple(p.name for p in self.ir.params if p.kind == "matrix")
        self.arity = _arities(self.ir)
        self._check_known_kernels()

    @classmethod
    def from_function(cls, fn: Callable) -> Program:
        source, filename, first = source_of(fn)
        return cls(source, filename, first, fn.__globals__)

    @classmethod
    def from_source(cls, source: str, namespace: dict[str, Any] | None = None, filename: str = "<string>",
                    firstlineno: int = 1) -> Program:
        """Compile program text; kernel names are looked up in ``namespace``."""
        return cls(source, filename, firstlineno, namespace)

    # ------------------------------------------------------------------ kernels
    def _check_known_kernels(self) -> None:
        for name in self.kernel_names:
            found = _lookup(self.namespace, name)
            if found is not _MISSING and not isinstance(found, Kernel):
                raise CompileError(f"'{name}' is called like a kernel but is {type(found).__name__}; "
                                   "declare kernels with @lp.kernel", self._call_src(name))

    def kernels(self) -> dict[str, Kernel]:
        """Kernel name (as written) -> Kernel, resolved in the program's namespace now."""
        table = {}
        for name in self.kernel_names:
            found = _lookup(self.namespace, name)
            if found is _MISSING:
                raise CompileError(f"kernel '{name}' is not defined (kernels are looked up in the "
                                   "program's module, like any Python name)", self._call_src(name))
            if not isinstance(found, Kernel):
                raise CompileError(f"'{name}' is not a kernel; declare it with @lp.kernel", self._call_src(name))
            table[name] = found
        return table

    def _call_src(self, name: str) -> ir.SourceInfo:
        for call in _calls(self.ir.body):
            if call.kernel == name:
                return call.src
        return self.ir.src

    # ------------------------------------------------------------------ binding
    def bind(self, validate: str = "auto", **values: int) -> BoundProgram:
        """Bind the integer parameters; returns the implicit task graph.

        ``validate``: "auto" (exhaustive up to a size, then structural and
        sampled), "full" (always exhaustive) or "none".
        """
        missing = [p for p in self.params if p not in values]
        extra = [k for k in values if k not in self.params]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unknown {', '.join(extra)}")
            raise TypeError(f"{self.name}.bind(): {'; '.join(parts)} (integer parameters: {', '.join(self.params)})")
        clean = {}
        for k in self.params:
            v = values[k]
            if isinstance(v, bool) or not hasattr(v, "__index__"):
                raise TypeError(f"{self.name}.bind(): {k} must be an integer, not {type(v).__name__}")
            clean[k] = int(v.__index__())
        self.kernels()
        return BoundProgram(self, clean, validate)

    # ------------------------------------------------------------------ description
    def to_json(self) -> str:
        """The program as JSON (its source and where it came from); kernels travel separately."""
        return json.dumps({"name": self.name, "source": self.source, "filename": self.filename,
                           "firstlineno": self.firstlineno})

    @classmethod
    def from_json(cls, s: str, namespace: dict[str, Any] | None = None) -> Program:
        d = json.loads(s)
        return cls(d["source"], d["filename"], d["firstlineno"], namespace)

    def __str__(self) -> str:
        return str(self.ir)

    def __repr__(self) -> str:
        return f"<lp.program {self.name}({', '.join(map(str, self.ir.params))})>"


def program(fn: Callable) -> Program:
    """Decorator: compile a function into a LAmbdaPACK ``Program``."""
    return Program.from_function(fn)


_MISSING = object()


def _lookup(namespace: dict[str, Any], dotted: str):
    head, *rest = dotted.split(".")
    obj = namespace.get(head, _MISSING)
    if obj is _MISSING and isinstance(namespace.get("__builtins__"), dict):
        obj = namespace["__builtins__"].get(head, _MISSING)
    for part in rest:
        if obj is _MISSING:
            break
        obj = getattr(obj, part, _MISSING)
    return obj


def _calls(body):
    for s in body:
        if isinstance(s, ir.KernelCall):
            yield s
        elif isinstance(s, ir.For):
            yield from _calls(s.body)
        elif isinstance(s, ir.If):
            yield from _calls(s.body)
            yield from _calls(s.orelse)


def _arities(p: ir.Program) -> dict[str, int]:
    seen: dict[str, tuple[int, ir.SourceInfo]] = {}
    for call in _calls(p.body):
        for ref in (*call.outputs, *call.reads):
            n = len(ref.index)
            if ref.matrix in seen and seen[ref.matrix][0] != n:
                raise CompileError(
                    f"tile space '{ref.matrix}' is indexed with {n} indices here but with "
                    f"{seen[ref.matrix][0]} elsewhere; use one index length per tile space",
                    ref.src, also=(seen[ref.matrix][1],))
            seen.setdefault(ref.matrix, (n, ref.src))
    return {m: n for m, (n, _) in seen.items()}
