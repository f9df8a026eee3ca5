"""``@lp.program`` and ``@lp.kernel``: the objects a user writes."""

from __future__ import annotations

import collections
import functools
import inspect
import json
import math
from collections.abc import Callable
from typing import Any

from . import compose, ir
from .bound import BoundProgram
from .errors import CompileError
from .parser import parse, source_of


class Matrix:
    """Annotation for a tile-space parameter: ``def f(A: lp.Matrix, N: int)``."""


def scratch() -> Matrix:
    """Declare a local scratch tile space in a program body: ``S = lp.scratch()``.

    The declaration is read by the compiler, never run.  A scratch space is not a
    parameter: the job owns its tiles (and deletes them when it ends), and each call
    of the program from another program gets its own.

    Examples
    --------
    >>> import lambdapack as lp
    >>> src = chr(10).join(["def f(A: lp.Matrix, B: lp.Matrix, N: int):", "    T = lp.scratch()",
    ...                  "    for i in range(N):", "        T[i] = k(A[i])", "        B[i] = k(T[i])"])
    >>> lp.Program.from_source(src, {"k": lp.kernel(lambda a: a)}).scratch
    ('T',)
    """
    return Matrix()


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

    def count_flops(self, *args) -> float | None:
        """The flop count of a call with these arguments (the tiles actually passed), or None.

        None when the kernel has no formula, or when its formula fails or gives something that is not
        a finite number ≥ 0 for these arguments: a statistic must never fail a task.
        """
        if self.flops is None:
            return None
        try:
            value = float(self.flops(*args))
        except Exception:
            return None
        return value if math.isfinite(value) and value >= 0 else None

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
    scratch : tuple of str
        Local tile spaces: the program's own (``S = lp.scratch()``) and those of the
        programs it calls, renamed per call.
    tile_spaces : tuple of str
        ``matrices + scratch``: every tile space the bound program reads or writes.
    arity : dict
        Length of the index tuple of each tile space used.
    ir : lambdapack.ir.Program
        The compiled program: calls inlined, aliases resolved (``str(program)`` prints it).
    parsed : lambdapack.ir.Program or None
        The program as written (None for a program read back from JSON).
    critical_path_formula : dict or None
        A derived closed form of the critical path, ``{"tasks": ..., "flops": ...}``: sympy
        expressions (or their text) in the integer parameters and the block size ``b``
        (``ceil_log2`` and ``floor_log2`` may be used), for ``cost()``; None (the default) has the
        critical path computed on the DAG.
    """

    critical_path_formula: dict | None = None

    def __init__(self, source: str, filename: str = "<string>", firstlineno: int = 1,
                 namespace: dict[str, Any] | None = None):
        parsed = parse(source, filename, firstlineno)
        self.source = source
        self.filename = filename
        self.firstlineno = firstlineno
        self.namespace = namespace if namespace is not None else {}
        self.parsed = parsed.ir
        resolved = compose.resolve(parsed.ir, parsed.kernel_names, self.namespace, self._find_program)
        self._setup(resolved.ir, resolved.kernels, resolved.checks)

    def _setup(self, program: ir.Program, kernel_refs: dict[str, tuple[Any, str]],
               alias_checks: tuple[compose.AliasCheck, ...]) -> None:
        self.ir = program
        self.kernel_refs = kernel_refs
        self.kernel_names = tuple(kernel_refs)
        self.alias_checks = alias_checks
        self.name = program.name
        self.params = tuple(p.name for p in program.params if p.kind == "int")
        self.matrices = tuple(p.name for p in program.params if p.kind == "matrix")
        self.scratch = program.scratch
        self.tile_spaces = self.matrices + self.scratch
        self.arity = _arities(program)
        self._check_known_kernels()

    def _find_program(self, name: str, src: ir.SourceInfo) -> Program:
        found = compose.lookup(self.namespace, name)
        if isinstance(found, Program):
            return found
        if found is compose.MISSING:
            raise CompileError(f"program '{name}' is not defined (a program called from another one must be "
                               "defined or imported before it)", src)
        if isinstance(found, Kernel):
            raise CompileError(f"a kernel call must store its result in tiles: X[i, j] = {name}(...)", src)
        raise CompileError(f"'{name}' is called like a program but is {type(found).__name__}; only @lp.program "
                           "programs can be called (kernels store their results: X[i, j] = kernel(...))", src)

    @classmethod
    def from_function(cls, fn: Callable) -> Program:
        source, filename, first = source_of(fn)
        namespace = fn.__globals__
        if fn.__closure__:  # programs and kernels defined in an enclosing function
            nonlocals = inspect.getclosurevars(fn).nonlocals
            if nonlocals:
                namespace = collections.ChainMap(nonlocals, fn.__globals__)
        return cls(source, filename, first, namespace)

    @classmethod
    def from_source(cls, source: str, namespace: dict[str, Any] | None = None, filename: str = "<string>",
                    firstlineno: int = 1) -> Program:
        """Compile program text; kernel names are looked up in ``namespace``."""
        return cls(source, filename, firstlineno, namespace)

    # ------------------------------------------------------------------ kernels
    def _check_known_kernels(self) -> None:
        for name, (namespace, written) in self.kernel_refs.items():
            found = compose.lookup(namespace, written)
            if found is not compose.MISSING and not isinstance(found, Kernel):
                if isinstance(found, Program):
                    raise CompileError(f"'{name}' is a program: call it as a statement, {name}(A, ..., N), "
                                       "without assigning tiles", self._call_src(name))
                raise CompileError(f"'{name}' is called like a kernel but is {type(found).__name__}; "
                                   "declare kernels with @lp.kernel", self._call_src(name))

    def kernels(self) -> dict[str, Kernel]:
        """Kernel name (as the compiled program spells it) -> Kernel, resolved now.

        A kernel of a called program is looked up in that program's module, like any
        Python name; it keeps its name unless the caller means another kernel by it
        (then it is ``callee.name``).
        """
        table = {}
        for name, (namespace, written) in self.kernel_refs.items():
            found = compose.lookup(namespace, written)
            if found is compose.MISSING:
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
        bound = BoundProgram(self, clean, validate)
        if validate != "none" and self.alias_checks:
            compose.check_alias_writes(bound, self.alias_checks)
        return bound

    # ------------------------------------------------------------------ analysis
    def cost(self, block: int, itemsize: int = 8, **values: int):
        """Tasks, flops, bytes read and written, and the critical path, for tiles of ``block × block``.

        Returns a ``lambdapack.cost.Cost``: per statement and in total, sympy expressions in the
        integer parameters and the block size ``b`` (``.exprs``) and their numbers for ``values``
        (``.values``); ``.critical_path`` in tasks and flops.  Flops come from the kernels'
        ``flops`` formulas applied to full ``b×b`` tiles (see ``lambdapack.cost``).

        >>> src = ["def f(A: lp.Matrix, B: lp.Matrix, N: int):", "    for i in range(N):",
        ...        "        for j in range(i + 1):", "            B[i, j] = g(A[i, j])"]
        >>> p = Program.from_source(chr(10).join(src), {"g": kernel(lambda a: a, flops=lambda a: 2 * a.size)})
        >>> c = p.cost(block=4, N=3)
        >>> c.stmts[0].tasks, c.stmts[0].flops
        (Piecewise((N**2/2 + N/2, N >= 1), (0, True)), Piecewise((N**2*b**2 + N*b**2, N >= 1), (0, True)))
        >>> c.values["tasks"], c.values["flops"], c.values["bytes_read"], c.critical_path.values
        (6, 192, 768, {'tasks': 1, 'flops': 32})
        """
        from .cost import program_cost

        return program_cost(self, block, itemsize, **values)

    # ------------------------------------------------------------------ description
    def to_json(self) -> str:
        """The compiled program as JSON (calls inlined, aliases resolved); kernels travel separately."""
        return json.dumps({"name": self.name, "filename": self.filename, "ir": ir.to_data(self.ir),
                           "alias_checks": [c.to_data() for c in self.alias_checks]}, separators=(",", ":"))

    @classmethod
    def from_json(cls, s: str, namespace: dict[str, Any] | None = None) -> Program:
        """The program ``to_json`` wrote; its kernel names are looked up in ``namespace``."""
        d = json.loads(s)
        namespace = namespace if namespace is not None else {}
        if "ir" not in d:  # the source-only form
            return cls(d["source"], d["filename"], d["firstlineno"], namespace)
        program = ir.from_data(d["ir"])
        self = cls.__new__(cls)
        self.source, self.filename, self.firstlineno = None, d["filename"], program.src.line
        self.namespace, self.parsed = namespace, None
        names = dict.fromkeys(c.kernel for c in _calls(program.body))
        self._setup(program, {n: (namespace, n) for n in names},
                    tuple(compose.AliasCheck.from_data(c) for c in d.get("alias_checks", ())))
        return self

    def __str__(self) -> str:
        return str(self.ir)

    def __repr__(self) -> str:
        return f"<lp.program {self.name}({', '.join(map(str, self.ir.params))})>"


def program(fn: Callable) -> Program:
    """Decorator: compile a function into a LAmbdaPACK ``Program``."""
    return Program.from_function(fn)


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
