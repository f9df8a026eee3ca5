"""The parser and type checker: what is accepted, how it prints, and the errors users see."""

from __future__ import annotations

import importlib.util
import textwrap

import pytest

import lambdapack as lp
from lambdapack import ir


@lp.kernel
def k1(*tiles):
    return tiles[0] if tiles else None


NS = {"k1": k1}


def compile_src(src: str) -> lp.Program:
    return lp.Program.from_source(textwrap.dedent(src), NS, filename="<test>")


def compile_error(src: str) -> lp.CompileError:
    with pytest.raises(lp.CompileError) as info:
        compile_src(src)
    return info.value


def test_program_exposes_params_and_matrices():
    p = compile_src("""
        def f(A: lp.Matrix, N: int, B: lp.Matrix, M: int):
            for i in range(N):
                B[i] = k1(A[i, 0])
    """)
    assert p.params == ("N", "M")
    assert p.matrices == ("A", "B")
    assert p.arity == {"A": 2, "B": 1}


def test_full_language_parses_and_prints_back_identically():
    src = """
        def full(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, N: int, M: int):
            \"\"\"Docstrings are allowed first.\"\"\"
            depth = ceil(log2(N))
            half = N // 2
            for level in range(depth):
                for i in range(0, N, 2 ** (level + 1)):
                    if i + 2 ** level < N and not (level == 0 or i >= half):
                        B[i, level + 1], C[i, level] = k1(A[i, 0], A[i + 2 ** level, 0], 2.5, level, -1.0)
                    elif max(i, 1) == min(i, M) or i % 3 != 1:
                        B[i, level + 1] = k1(A[i, 0])
                    else:
                        pass
            for j in range(N - 1, -1, -1):
                x = j * 2 - half
                if floor(log2(j + 1)) <= x and True:
                    C[j, depth + 7] = k1(B[j, 0], -x)
    """
    p = compile_src(src)
    printed = str(p)
    assert "for i in range(0, N, 2 ** (level + 1)):" in printed
    assert "depth = ceil(log2(N))" in printed
    assert "elif max(i, 1) == min(i, M) or i % 3 != 1:" in printed
    again = lp.Program.from_source(printed, NS)
    assert again.ir == p.ir  # printing loses nothing (source positions are not compared)


def test_kernel_call_parts():
    p = compile_src("""
        def f(A: lp.Matrix, Q: lp.Matrix, R: lp.Matrix, N: int):
            for i in range(N):
                Q[i, 0], R[i] = k1(A[i, 0], 0.5, i + 1)
    """)
    call = p.ir.body[0].body[0]
    assert isinstance(call, ir.KernelCall)
    assert [o.matrix for o in call.outputs] == ["Q", "R"]
    assert call.reads == (ir.TileRef("A", (ir.Var("i"), ir.Const(0))),)
    assert call.args[1] == ir.FloatConst(0.5)
    assert str(call.args[2]) == "i + 1"


@pytest.mark.parametrize("body, message", [
    ("while N > 0:\n        A[0] = k1()", "while loops are not supported in a LAmbdaPACK program"),
    ("return 1", "return is not supported"),
    ("for i in range(N):\n        break", "break is not supported"),
    ("for i in [1, 2]:\n        A[i] = k1()", "loops must iterate over range(...)"),
    ("for i in range(N):\n        A[i] = k1()\n    else:\n        pass", "for ... else"),
    ("x = 1\n    x = 2", "'x' is already a scalar"),
    ("x = 1\n    x += 1", "augmented assignment"),
    ("for N in range(3):\n        pass", "'N' is already an integer parameter"),
    ("A[0] = k1(B[0])", "'B' is not defined"),
    ("A[0] = k1(A)", "pass a tile of 'A'"),
    ("A[0] = 3", "tiles can only be assigned the result of a kernel call"),
    ("A[y] = k1()", "name 'y' is not defined here"),
    ("A[N / 2] = k1()", "true division '/' is not supported"),
    ("A[abs(N)] = k1()", "call to 'abs' is not allowed"),
    ("A['x'] = k1()", "strings are not supported"),
    ("A[1.5] = k1()", "float constants are not supported"),
    ("k1(A[0])", "a kernel call must store its result in tiles"),
    ("x = k1(A[0])", "kernel results must be stored in tiles"),
    ("A[0:2] = k1()", "is not supported in a LAmbdaPACK expression"),
    ("if N:\n        A[0] = k1()", "is not a condition"),
    ("pass\n    'a string'", "strings are not supported in a LAmbdaPACK program"),
    ("A[0] = k1(x=A[1])", "kernel calls take positional arguments only"),
    ("A[0], A[0, 1] = k1()", "indexed with 2 indices here but with 1 elsewhere"),
    ("A[A[0]] = k1()", "a tile cannot be used as an integer"),
    ("for i in range(0, N, 0):\n        A[i] = k1()", "step must not be zero"),
    ("import os", "imports are not supported"),
    ("with N:\n        pass", "with blocks are not supported"),
    ("A[N is N] = k1()", "a condition cannot be used as an integer"),
    ("if N is 1:\n        A[0] = k1()", "comparison 'N is 1' is not supported"),
])
def test_compile_errors_name_the_construct_and_position(body, message):
    src = f"def f(A: lp.Matrix, N: int):\n    {body}\n"
    err = compile_error(src)
    assert message in err.message
    assert err.filename == "<test>"
    assert err.line is not None and 2 <= err.line <= 5
    assert err.col is not None and err.col >= 4


def test_parameter_errors():
    assert "needs a type" in compile_error("def f(A, N: int):\n    pass\n").message
    assert "use lp.Matrix or int" in compile_error("def f(A: float):\n    pass\n").message
    assert "default values" in compile_error("def f(N: int = 3):\n    pass\n").message
    assert "plain positional" in compile_error("def f(*A: int):\n    pass\n").message


def test_error_points_at_the_users_file_line_and_column(tmp_path):
    path = tmp_path / "user_program.py"
    path.write_text(textwrap.dedent("""\
        import lambdapack as lp


        class Holder:
            @staticmethod
            def make():
                @lp.program
                def bad(A: lp.Matrix, N: int):
                    for i in range(N):
                        while i < N:
                            A[i] = f(A[i])
                return bad
        """))
    spec = importlib.util.spec_from_file_location("user_program", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with pytest.raises(lp.CompileError) as info:
        mod.Holder.make()
    err = info.value
    assert err.filename == str(path)
    assert (err.line, err.col) == (10, 16)
    text = str(err)
    assert text.startswith(f"{path}:10:17: while loops are not supported in a LAmbdaPACK program")
    assert "while i < N:" in text and "^" in text


def test_kernel_resolution():
    not_kernel = {"k1": len}
    with pytest.raises(lp.CompileError, match=r"declare kernels with @lp\.kernel"):
        lp.Program.from_source("def f(A: lp.Matrix):\n    A[0] = k1()\n", not_kernel)
    p = lp.Program.from_source("def f(A: lp.Matrix, N: int):\n    A[0] = later()\n", {})
    with pytest.raises(lp.CompileError, match="kernel 'later' is not defined") as info:
        p.bind(N=1)
    assert info.value.line == 2


def test_kernels_resolve_from_module_globals_like_python():
    # kernels defined after the program are found at bind time
    ns: dict = {}
    exec(compile("import lambdapack as lp\n", "<m>", "exec"), ns)
    p = lp.Program.from_source("def f(A: lp.Matrix, B: lp.Matrix, N: int):\n"
                               "    for i in range(N):\n        B[i] = mykern.inner(A[i])\n", ns)

    class Box:
        inner = k1

    ns["mykern"] = Box
    assert p.kernels() == {"mykern.inner": k1}


def test_bind_checks_its_arguments():
    p = compile_src("def f(A: lp.Matrix, B: lp.Matrix, N: int):\n    for i in range(N):\n        B[i] = k1(A[i])\n")
    with pytest.raises(TypeError, match="missing N"):
        p.bind()
    with pytest.raises(TypeError, match="unknown Q"):
        p.bind(N=2, Q=1)
    with pytest.raises(TypeError, match="must be an integer"):
        p.bind(N=2.0)
    with pytest.raises(TypeError, match="must be an integer"):
        p.bind(N=True)


def test_program_json_round_trip():
    p = compile_src("def f(A: lp.Matrix, B: lp.Matrix, N: int):\n    for i in range(N):\n        B[i] = k1(A[i])\n")
    q = lp.Program.from_json(p.to_json(), NS)
    assert q.ir == p.ir and q.name == "f"
