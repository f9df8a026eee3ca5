"""Programs that compose: calls of programs (inlined), local scratch spaces, step-0 aliases.

The oracle for every composed program is the program a user would write by hand
(``*_by_hand``): the implicit DAG of the composed program must agree with its own
unrolled graph and with the hand-inlined program's, task for task.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter

import numpy as np
import pytest
from dag_oracle import assert_analysis_matches

import lambdapack as lp
import numpywren2 as npw
from lambdapack import ir
from numpywren2.core.jobspec import kernel_namespace
from numpywren2.core.kernels import add, chol, copy, gemm_nt, gemm_update, matmul, matmul_tn, syrk, trsm, trsm_left

# --------------------------------------------------------------------------- DAG comparisons


def assert_same_tasks(new: lp.BoundProgram, old: lp.BoundProgram, rename: dict[str, str] | None = None) -> None:
    """Task for task the same DAG: same tasks in the same order, reads, writes, arguments, parents, priorities.

    ``rename`` maps tile-space names of ``new`` to those of ``old`` (scratch spaces get new names).
    """
    rename = rename or {}

    def ren(tiles):
        return [(rename.get(m, m), idx) for m, idx in tiles]

    def ren_args(args):
        return [("tile", rename.get(a[1], a[1]), a[2]) if isinstance(a, tuple) else a for a in args]

    assert new.num_tasks() == old.num_tasks()
    assert list(new.tasks()) == list(old.tasks())
    assert set(new.starters()) == set(old.starters())
    for t in new.tasks():
        assert new.stmt(t).kernel.rsplit(".", 1)[-1] == old.stmt(t).kernel.rsplit(".", 1)[-1]
        assert ren(new.reads(t)) == old.reads(t), t
        assert ren(new.writes(t)) == old.writes(t), t
        assert ren_args(new.kernel_args(t)) == old.kernel_args(t), t
        assert new.parents(t) == old.parents(t) and new.children(t) == old.children(t), t
        assert new.priority(t) == old.priority(t), t


def dag_signature(bound: lp.BoundProgram, visible: tuple[str, ...], intern: dict) -> Counter:
    """The unrolled DAG up to statement numbering and scratch tile names.

    A task is identified by its kernel, its non-tile arguments and the identity of each
    tile it reads: a tile of a ``visible`` space that no task writes by its name, any other
    tile by (its writer's identity, output slot).  Identities are interned in ``intern``
    (shared between the programs compared), so equal multisets mean isomorphic DAGs with
    the same kernels, arguments and reads and writes of the visible spaces.
    """
    tile_id: dict = {}
    out: Counter = Counter()
    for t in bound.tasks():  # program order is a topological order
        args = []
        for a in bound.kernel_args(t):
            if isinstance(a, tuple):
                _, m, idx = a
                args.append(tile_id.get((m, idx), ("input", m, idx) if m in visible else ("unwritten", m)))
            else:
                args.append(("value", a))
        key = (bound.stmt(t).kernel.rsplit(".", 1)[-1], tuple(args))
        sid = intern.setdefault(key, len(intern))
        visible_writes = []
        for slot, (m, idx) in enumerate(bound.writes(t)):
            tile_id[(m, idx)] = ("task", sid, slot)
            if m in visible:
                visible_writes.append((slot, m, idx))
        out[(sid, tuple(visible_writes))] += 1
    return out


def assert_same_dag(new: lp.BoundProgram, old: lp.BoundProgram, visible: tuple[str, ...]) -> None:
    """``new``'s implicit DAG is its unrolled graph, and that is ``old``'s up to numbering and scratch names."""
    assert_analysis_matches(new)
    intern: dict = {}
    assert new.num_tasks() == old.num_tasks()
    assert dag_signature(new, visible, intern) == dag_signature(old, visible, intern)


# --------------------------------------------------------------------------- step-0 alias: Cholesky


@lp.program
def cholesky_aliased(A: lp.Matrix, L: lp.Matrix, S: lp.Matrix, N: int):
    S[:, :, 0] = A
    for k in range(N):
        L[k, k] = chol(S[k, k, k])
        for i in range(k + 1, N):
            L[i, k] = trsm(L[k, k], S[i, k, k])
        for j in range(k + 1, N):
            S[j, j, k + 1] = syrk(S[j, j, k], L[j, k])
            for i in range(j + 1, N):
                S[i, j, k + 1] = gemm_nt(S[i, j, k], L[i, k], L[j, k])


@lp.program
def cholesky_by_hand(A: lp.Matrix, L: lp.Matrix, S: lp.Matrix, N: int):
    for k in range(N):
        if k == 0:
            L[k, k] = chol(A[k, k])
        else:
            L[k, k] = chol(S[k, k, k])
        for i in range(k + 1, N):
            if k == 0:
                L[i, k] = trsm(L[k, k], A[i, k])
            else:
                L[i, k] = trsm(L[k, k], S[i, k, k])
        for j in range(k + 1, N):
            if k == 0:
                S[j, j, k + 1] = syrk(A[j, j], L[j, k])
            else:
                S[j, j, k + 1] = syrk(S[j, j, k], L[j, k])
            for i in range(j + 1, N):
                if k == 0:
                    S[i, j, k + 1] = gemm_nt(A[i, j], L[i, k], L[j, k])
                else:
                    S[i, j, k + 1] = gemm_nt(S[i, j, k], L[i, k], L[j, k])


def test_step0_alias_compiles_to_the_hand_written_program():
    # every read of S whose last index may be 0 is split into the k == 0 and else cases
    assert cholesky_aliased.ir.body == cholesky_by_hand.ir.body
    for n in range(1, 9):
        new, old = cholesky_aliased.bind(N=n), cholesky_by_hand.bind(N=n)
        assert_analysis_matches(new)
        assert_same_tasks(new, old)


# --------------------------------------------------------------------------- calls, views, local scratch


@lp.program
def cholesky_local(A: lp.Matrix, L: lp.Matrix, N: int):
    """Cholesky with its trailing matrices in a local scratch space."""
    S = lp.scratch()
    cholesky_aliased(A, L, S, N)


@lp.program
def trsm_forward_aliased(T: lp.Matrix, B: lp.Matrix, X: lp.Matrix, F: lp.Matrix, N: int, C: int, TRANS: int,
                         UNIT: int, BS: int):
    F[:, :, 0] = B
    for i in range(N):
        for c in range(C):
            X[i, c] = trsm_left(T[i, i], F[i, c, i], 1 - TRANS, TRANS, UNIT, i, i * BS)
            for r in range(i + 1, N):
                if TRANS == 0:
                    F[r, c, i + 1] = gemm_update(F[r, c, i], T[r, i], X[i, c], 0)
                else:
                    F[r, c, i + 1] = gemm_update(F[r, c, i], T[i, r], X[i, c], 1)


@lp.program
def trsm_backward_aliased(T: lp.Matrix, B: lp.Matrix, X: lp.Matrix, F: lp.Matrix, N: int, C: int, TRANS: int,
                          UNIT: int, BS: int):
    F[:, :, N] = B  # the backward substitution starts from step N
    for i in range(N - 1, -1, -1):
        for c in range(C):
            X[i, c] = trsm_left(T[i, i], F[i, c, i + 1], TRANS, TRANS, UNIT, i, i * BS)
            for r in range(i):
                if TRANS == 0:
                    F[r, c, i] = gemm_update(F[r, c, i + 1], T[r, i], X[i, c], 0)
                else:
                    F[r, c, i] = gemm_update(F[r, c, i + 1], T[i, r], X[i, c], 1)


@lp.program
def posv_composed(A: lp.Matrix, B: lp.Matrix, X: lp.Matrix, L: lp.Matrix, S: lp.Matrix, Y: lp.Matrix,
                  F: lp.Matrix, G: lp.Matrix, N: int, C: int, BS: int):
    cholesky_aliased(A, L, S, N)
    trsm_forward_aliased(L, B, Y, F, N, C, 0, 0, BS)
    trsm_backward_aliased(L, Y, X, G, N, C, TRANS=1, UNIT=0, BS=BS)


def test_posv_from_three_calls_is_the_hand_written_posv():
    # the constant TRANS / UNIT arguments fold the callees' branches away, so even the
    # statement numbering, the loop values and the priorities are those of the hand-written program
    for n in range(1, 6):
        for c in (1, 2, 3):
            assert_same_tasks(posv_composed.bind(N=n, C=c, BS=8), npw.programs.posv.bind(N=n, C=c, BS=8))
            assert_analysis_matches(posv_composed.bind(N=n, C=c, BS=8))
    assert "TRANS" not in str(posv_composed)


@lp.program
def block_update(X: lp.Matrix, Y: lp.Matrix, Out: lp.Matrix, N: int, K: int):
    """Out[i, 0] = X[i, 0] @ Y[0, 0] for i < N, and a column of K products."""
    for i in range(N):
        Out[i, 0] = matmul(X[i, 0], Y[0, 0])
    for q in range(K):
        Out[N + q, 1] = matmul(X[q, 0], Y[0, 0])


@lp.program
def sweeps_composed(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, M: int):
    for k in range(M):
        # a view shifted by the loop variable, a fixed leading index, and integer expressions
        block_update(A[k:, k:], B[k, :, :], C[k, :, :], M - k, k + 1)


@lp.program
def sweeps_by_hand(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, M: int):
    for k in range(M):
        for i in range(M - k):
            C[k, i, 0] = matmul(A[k + i, k], B[k, 0, 0])
        for q in range(k + 1):
            C[k, M - k + q, 1] = matmul(A[k + q, k], B[k, 0, 0])


def test_views_with_offsets_fixed_indices_and_integer_expressions():
    for m in range(1, 7):
        assert_same_tasks(sweeps_composed.bind(M=m), sweeps_by_hand.bind(M=m))
        assert_analysis_matches(sweeps_composed.bind(M=m))
    # the printed program is an ordinary one, and reads back to the same IR
    printed = str(sweeps_composed)
    assert "C[k, i, 0] = matmul(A[k + i, k], B[k, 0, 0])" in printed
    again = lp.Program.from_source(printed, {"matmul": matmul})
    assert again.ir == sweeps_composed.ir


@lp.program
def two_factorizations(A: lp.Matrix, B: lp.Matrix, L: lp.Matrix, M: lp.Matrix, N: int):
    cholesky_local(A, L, N)
    cholesky_local(B, M, N)


@lp.program
def batched_factorizations(A: lp.Matrix, L: lp.Matrix, NB: int, N: int):
    for b in range(NB):
        cholesky_local(A[b, :, :], L[b, :, :], N)


@lp.program
def batched_by_hand(A: lp.Matrix, L: lp.Matrix, S: lp.Matrix, NB: int, N: int):
    for b in range(NB):
        for k in range(N):
            if k == 0:
                L[b, k, k] = chol(A[b, k, k])
            else:
                L[b, k, k] = chol(S[b, k, k, k])
            for i in range(k + 1, N):
                if k == 0:
                    L[b, i, k] = trsm(L[b, k, k], A[b, i, k])
                else:
                    L[b, i, k] = trsm(L[b, k, k], S[b, i, k, k])
            for j in range(k + 1, N):
                if k == 0:
                    S[b, j, j, k + 1] = syrk(A[b, j, j], L[b, j, k])
                else:
                    S[b, j, j, k + 1] = syrk(S[b, j, j, k], L[b, j, k])
                for i in range(j + 1, N):
                    if k == 0:
                        S[b, i, j, k + 1] = gemm_nt(A[b, i, j], L[b, i, k], L[b, j, k])
                    else:
                        S[b, i, j, k + 1] = gemm_nt(S[b, i, j, k], L[b, i, k], L[b, j, k])


def test_scratch_is_private_to_each_call_site_and_each_iteration():
    assert cholesky_local.matrices == ("A", "L") and cholesky_local.scratch == ("S",)
    # two call sites: two scratch spaces
    assert two_factorizations.scratch == ("cholesky_local_S", "cholesky_local_S_2")
    assert two_factorizations.tile_spaces == ("A", "B", "L", "M", "cholesky_local_S", "cholesky_local_S_2")
    for n in range(1, 6):
        b = two_factorizations.bind(N=n, validate="full")  # no tile written twice
        assert_analysis_matches(b)
        one = cholesky_local.bind(N=n)
        assert b.num_tasks() == 2 * one.num_tasks()
        assert b.outputs == ("L", "M", "cholesky_local_S", "cholesky_local_S_2")
    # a call inside a loop: the scratch space gets the loop variable as its leading index
    assert batched_factorizations.scratch == ("cholesky_local_S",)
    for nb in (1, 3):
        for n in range(1, 5):
            new, old = batched_factorizations.bind(NB=nb, N=n), batched_by_hand.bind(NB=nb, N=n)
            assert_same_tasks(new, old, rename={"cholesky_local_S": "S"})
            assert_analysis_matches(new)


def test_inlined_loop_variables_and_scalars_never_clash():
    k = lp.kernel(lambda *a: a[0], name="k")
    inner = lp.Program.from_source(textwrap.dedent("""\
        def inner(X: lp.Matrix, Y: lp.Matrix, N: int):
            d = N + 1
            for i in range(N):
                Y[i, d] = k(X[i, 0])
    """), {"k": k})
    outer = lp.Program.from_source(textwrap.dedent("""\
        def outer(A: lp.Matrix, B: lp.Matrix, N: int):
            d = 2
            for i in range(N):
                inner(A[i:, :], B[i, :, :], i + d)
    """), {"k": k, "inner": inner})
    printed = str(outer)
    assert "for i_1 in range(i + d):" in printed and "d_1 = i + d + 1" in printed
    assert lp.Program.from_source(printed, {"k": k}).ir == outer.ir
    b = outer.bind(N=3)
    assert_analysis_matches(b)
    assert sorted(idx for t in b.tasks() for _, idx in b.writes(t)) == sorted(
        (i, j, i + 3) for i in range(3) for j in range(i + 2))


# --------------------------------------------------------------------------- how aliases split reads

K = lp.kernel(lambda *a: a[0], name="k1")


def compile_src(src: str, **ns) -> lp.Program:
    return lp.Program.from_source(textwrap.dedent(src), {"k1": K, **ns}, filename="<test>")


def kernel_calls(p: lp.Program) -> list[str]:
    return [line.strip() for line in str(p).splitlines() if "= k1(" in line]


def test_alias_splits_only_reads_that_may_fall_in_the_region():
    p = compile_src("""
        def f(A: lp.Matrix, S: lp.Matrix, R: lp.Matrix, N: int):
            S[:, 0] = A
            for k in range(N):
                S[0, k + 1] = k1(S[0, k])
                R[k, 0] = k1(S[0, k + 1])
                R[k, 1] = k1(S[k, 0])
                if k > 0:
                    R[k, 2] = k1(S[0, k])
                R[k, 3] = k1(S[0, k], S[0, k])
    """)
    assert kernel_calls(p) == [
        "S[0, k + 1] = k1(A[0])",      # k may be 0: split
        "S[0, k + 1] = k1(S[0, k])",
        "R[k, 0] = k1(S[0, k + 1])",   # k + 1 >= 1: never in the region
        "R[k, 1] = k1(A[k])",          # always in it
        "R[k, 2] = k1(S[0, k])",       # the guard k > 0 keeps it out
        "R[k, 3] = k1(A[0], A[0])",    # two reads, one condition: two statements, not four
        "R[k, 3] = k1(S[0, k], S[0, k])",
    ]
    for n in range(1, 6):
        assert_analysis_matches(p.bind(N=n))


def test_alias_regions_with_bounds_and_views():
    # S[i, j, 0] is A[i, j] for j < N and B[i, j - N] for j >= N (a right-hand side carried along)
    p = compile_src("""
        def f(A: lp.Matrix, B: lp.Matrix, S: lp.Matrix, R: lp.Matrix, M: int, N: int, C: int):
            S[:, :N, 0] = A
            S[:, N:, 0] = B
            for k in range(2):
                for i in range(M):
                    for j in range(N + C):
                        S[i, j, k + 1] = k1(S[i, j, k])
            for i in range(M):
                for j in range(N + C):
                    R[i, j] = k1(S[i, j, 2])
    """)
    assert kernel_calls(p)[:3] == ["S[i, j, k + 1] = k1(A[i, j])", "S[i, j, k + 1] = k1(B[i, j - N])",
                                   "S[i, j, k + 1] = k1(S[i, j, k])"]
    assert "if k == 0 and j < N:" in str(p) and "elif k == 0 and j >= N:" in str(p)
    for m, n, c in ((1, 1, 0), (2, 3, 1), (3, 1, 2)):
        b = p.bind(M=m, N=n, C=c)
        assert_analysis_matches(b)
        firsts = [b.reads(t)[0] for t in b.tasks() if t.idx[0] == 0 and len(t.idx) == 3]
        assert sorted(firsts) == sorted([("A", (i, j)) for i in range(m) for j in range(n)] +
                                        [("B", (i, j)) for i in range(m) for j in range(c)])
    # an alias whose source is a view
    q = compile_src("""
        def g(A: lp.Matrix, S: lp.Matrix, R: lp.Matrix, N: int):
            S[:, 0] = A[1:, 7]
            for k in range(N):
                R[k] = k1(S[k, 0])
    """)
    assert kernel_calls(q) == ["R[k] = k1(A[1 + k, 7])"]


def test_writing_into_an_alias_region_is_an_error():
    with pytest.raises(lp.CompileError, match=r"S\[k, 0\] is in the region of the alias S\[:, 0\] = A: that tile "
                                              r"is A\[k\]") as info:
        compile_src("""
            def f(A: lp.Matrix, S: lp.Matrix, N: int):
                S[:, 0] = A
                for k in range(N):
                    S[k, 0] = k1(A[k])
        """)
    assert info.value.line == 5 and info.value.also[0].line == 3
    # a write that may land there is checked when the program is bound
    p = compile_src("""
        def g(A: lp.Matrix, S: lp.Matrix, R: lp.Matrix, N: int):
            S[:, N] = A
            for k in range(N + 1):
                S[k, k] = k1(A[k])
            for k in range(N):
                R[k] = k1(S[k, N])
    """)
    with pytest.raises(lp.CompileError, match=r"k1@L5\(k=3\) writes S\[3, 3\], which the alias 'S\[:, N\] = A' "
                                              "says is a tile of another space") as info:
        p.bind(N=3)
    assert info.value.line == 5 and info.value.also[0].line == 3
    p.bind(N=3, validate="none")  # as every bind-time check, it can be skipped


# --------------------------------------------------------------------------- errors

INNER = lp.Program.from_source("def inner(X: lp.Matrix, Y: lp.Matrix, N: int):\n"
                               "    for i in range(N):\n        Y[i, 0] = k1(X[i, 0])\n", {"k1": K})


@pytest.mark.parametrize("body, message", [
    ("inner(A, B, N, N)", "inner() takes 3 arguments (X, Y, N), 4 given"),
    ("inner(A, B)", "inner() is missing N"),
    ("inner(A, B, N, Q=1)", "inner() has no parameter 'Q'"),
    ("inner(A, B, N, N=N)", "inner() got parameter 'N' twice"),
    ("inner(A, N, B)", "inner's parameter Y is a tile space, not the number N"),
    ("inner(A, B, A)", "inner's parameter N is an integer, not the tile space A"),
    ("inner(A, B, 0.5)", "inner's parameter N is an integer, not a float"),
    ("inner(A[0, 0], B, N)", "pass a tile space or a view of one (e.g. A or A[:, :]), not the tile A[0, 0]"),
    ("inner(A[:, :, :], B, N)", "inner indexes X with 2 indices, but the view A[:, :, :] leaves 3 axes free"),
    ("inner(A[0:N, :], B, N)", "a view passed to a program cannot have a stop (0:N)"),
    ("inner(A[::2, :], B, N)", "a view cannot have a step"),
    ("inner(*A)", "*arguments are not supported"),
    ("nothere(A, B, N)", "program 'nothere' is not defined"),
    ("num(A, B, N)", "'num' is called like a program but is int"),
    ("k1(A[0, 0])", "a kernel call must store its result in tiles: X[i, j] = k1(...)"),
    ("B[0, 0] = inner(A[0, 0])", "'inner' is a program: call it as a statement"),
    ("for i in range(N):\n        S = lp.scratch()", "declare scratch tile space 'S' at the top of the program body"),
    ("S = lp.scratch(3)", "lp.scratch() takes no arguments"),
    ("lp.scratch()", "a scratch tile space needs a name: S = lp.scratch()"),
    ("S = lp.scratch()\n    B[0, 0] = k1(S[0, 0])", "scratch tile space 'S' is read but no statement writes it"),
    ("B = lp.scratch()", "'B' is already a matrix"),
    ("B[:, 0] = A[0, :, :]", "maps 1 axis of B onto 2 axes of A; the counts must agree"),
    ("B[:, :] = A", "an alias fixes at least one index of 'B'"),
    ("B[0, 0] = A[0, 0]", "tiles can only be assigned the result of a kernel call"),
    ("for i in range(N):\n        B[:, 0] = A", "an alias (S[:, :, 0] = A) is a declaration"),
    ("x = 2\n    B[:, x] = A[0, :]", "the region of alias B[:, x] = A[0, :] may use integer parameters only"),
    ("B[:, 0] = A[:, 0]\n    A[:, 0] = B[:, 0]", "aliases of B lead back to B"),
    ("B[:, 0] = B[:, 1]", "'B' cannot be an alias of itself"),
    ("B[:, 0] = A[0, :]\n    B[0, 0, 0] = k1(A[0, 0])", "the alias B[:, 0] = A[0, :] gives B 2 indices, but it is "
                                                         "indexed with 3 elsewhere"),
])
def test_misuse_is_a_compile_error_at_the_users_line(body, message):
    src = f"def f(A: lp.Matrix, B: lp.Matrix, N: int):\n    {body}\n"
    with pytest.raises(lp.CompileError) as info:
        lp.Program.from_source(src, {"k1": K, "inner": INNER, "num": 3}, filename="<test>")
    err = info.value
    assert message in err.message
    assert err.filename == "<test>" and 2 <= err.line <= 4 and err.col >= 4


def test_errors_in_inlined_statements_show_the_callee_line_and_the_call(tmp_path):
    lib = tmp_path / "lib_programs.py"
    lib.write_text(textwrap.dedent("""\
        import lambdapack as lp


        @lp.program
        def scale(X: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = k1(X[i, 0])
        """))
    ns: dict = {"k1": K}
    exec(compile(lib.read_text(), str(lib), "exec"), ns)
    user = tmp_path / "user_programs.py"
    user.write_text(textwrap.dedent("""\
        import lambdapack as lp


        @lp.program
        def twice(A: lp.Matrix, B: lp.Matrix, N: int):
            scale(A, B, N)
            scale(A, B, N)
        """))
    exec(compile(user.read_text(), str(user), "exec"), ns)
    twice = ns["twice"]
    b = twice.bind(N=2, validate="none")
    first = b.task(0, (0,))
    assert str(first) == "k1@L6>lib_programs.py:L7(i=0)"  # the call, then the callee's file and line
    assert str(b.task(1, (0,))) == "k1@L7>lib_programs.py:L7(i=0)"
    assert b.stmt(first).src.filename == str(lib) and [c.line for c in b.stmt(first).src.via] == [6]
    with pytest.raises(lp.CompileError, match=r"tile B\[0, 0\] is written by more than one task") as info:
        twice.bind(N=2)
    err = info.value
    assert (err.filename, err.line) == (str(lib), 7)
    text = str(err)
    assert f"inlined from the call at {user}:6:5" in text and f"inlined from the call at {user}:7:5" in text
    assert "    scale(A, B, N)" in text and "Y[i, 0] = k1(X[i, 0])" in text


# --------------------------------------------------------------------------- kernels of called programs


def test_a_callee_finds_its_kernels_in_its_own_module():
    kadd = lp.kernel(lambda a: a + 1, name="kadd")
    kmul = lp.kernel(lambda a: a * 2, name="kmul")
    inner = lp.Program.from_source("def inner(X: lp.Matrix, Y: lp.Matrix, N: int):\n    for i in range(N):\n"
                                   "        Y[i] = step(X[i])\n", {"step": kadd})
    # the caller has no 'step' of its own: the callee's is used under its name
    a = lp.Program.from_source("def a(X: lp.Matrix, Y: lp.Matrix, N: int):\n    inner(X, Y, N)\n", {"inner": inner})
    assert a.kernels() == {"step": kadd}
    # the caller means another kernel by 'step': the callee's is renamed
    b = lp.Program.from_source("def b(X: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int):\n    inner(X, Y, N)\n"
                               "    for i in range(N):\n        Z[i] = step(Y[i])\n", {"inner": inner, "step": kmul})
    assert b.kernels() == {"step": kmul, "inner.step": kadd}
    out = lp.interpret(b.bind(N=3), {"X": {(i,): np.float64(i) for i in range(3)}})
    assert [out["Z"][(i,)] for i in range(3)] == [2.0, 4.0, 6.0]
    assert str(b.bind(N=1).task(0, (0,))) == "step@L2>L3(i=0)"  # the call at line 2, the statement at line 3


# --------------------------------------------------------------------------- JSON, interpreter, executors


def test_composed_programs_round_trip_through_json():
    for p, values in ((posv_composed, {"N": 4, "C": 2, "BS": 8}), (batched_factorizations, {"NB": 2, "N": 3}),
                      (two_factorizations, {"N": 3})):
        s = p.to_json()
        assert "source" not in json.loads(s)  # the compiled program travels, not the text of its callees
        q = lp.Program.from_json(s, kernel_namespace(p.kernels()))
        assert q.ir == p.ir and q.scratch == p.scratch and q.tile_spaces == p.tile_spaces
        assert q.kernels() == p.kernels()
        assert_same_tasks(q.bind(**values), p.bind(**values))
        assert [str(t) for t in q.bind(**values).tasks()] == [str(t) for t in p.bind(**values).tasks()]
        assert [s.src for s in q.bind(**values).stmts] == [s.src for s in p.bind(**values).stmts]
        assert [s.src.via for s in q.bind(**values).stmts] == [s.src.via for s in p.bind(**values).stmts]
    # the bind-time alias check survives the trip
    g = compile_src("def g(A: lp.Matrix, S: lp.Matrix, N: int):\n    S[:, N] = A\n    for k in range(N + 1):\n"
                    "        S[k, k] = k1(A[k])\n")
    back = lp.Program.from_json(g.to_json(), {"k1": K})
    with pytest.raises(lp.CompileError, match="which the alias 'S\\[:, N\\] = A' says"):
        back.bind(N=2)


def test_the_ir_data_form_round_trips_every_node():
    nodes = [posv_composed.ir, sweeps_composed.ir, ir.View("T", (ir.Var("i"), ir.Slice(ir.Const(1), ir.Var("N")))),
             ir.Alias(ir.View("S", (ir.Slice(), ir.Const(0))), ir.View("A"))]
    for node in nodes:
        assert ir.from_data(json.loads(json.dumps(ir.to_data(node)))) == node


def test_composed_posv_solves_in_the_reference_interpreter():
    rng = np.random.default_rng(0)
    n, bs, c = 12, 4, 2
    g = rng.standard_normal((n, n))
    a = g @ g.T + n * np.eye(n)
    rhs = rng.standard_normal((n, c * bs))

    def tiles(x):
        return {(i, j): x[i * bs:(i + 1) * bs, j * bs:(j + 1) * bs]
                for i in range(x.shape[0] // bs) for j in range(x.shape[1] // bs)}

    out = lp.interpret(posv_composed.bind(N=n // bs, C=c, BS=bs), {"A": tiles(a), "B": tiles(rhs)})
    x = np.block([[out["X"][(i, j)] for j in range(c)] for i in range(n // bs)])
    assert np.allclose(a @ x, rhs)


@lp.program
def gram_local(A: lp.Matrix, G: lp.Matrix, N: int):
    """G = Aᵀ A for A on an N×1 grid: the products and their running sums in local scratch."""
    P = lp.scratch()
    for i in range(N):
        P[i, 0] = matmul_tn(A[i, 0], A[i, 0])
    for i in range(N):
        if i == 0:
            P[0, 1] = copy(P[0, 0])
        else:
            P[i, 1] = add(P[i - 1, 1], P[i, 0])
    G[0, 0] = copy(P[N - 1, 1])


@lp.program
def two_grams_then_factor(A: lp.Matrix, B: lp.Matrix, G: lp.Matrix, H: lp.Matrix, L: lp.Matrix, N: int):
    gram_local(A, G, N)
    gram_local(B, H, N)
    cholesky_local(G, L, 1)


def test_composed_program_with_local_scratch_runs_on_executors():
    rng = np.random.default_rng(2)
    n, bs = 3, 4
    a = rng.standard_normal((n * bs, bs))
    b = rng.standard_normal((n * bs, bs))
    with npw.runtime(executors=2) as rt:
        A = npw.BigMatrix.from_numpy(a, bs)
        B = npw.BigMatrix.from_numpy(b, bs)
        G, H, L = (npw.BigMatrix.empty((bs, bs), bs) for _ in range(3))
        job = npw.submit(two_grams_then_factor, A=A, B=B, G=G, H=H, L=L, N=n)
        job.wait(timeout=120)
        assert np.allclose(G.numpy(), a.T @ a) and np.allclose(H.numpy(), b.T @ b)
        want = a.T @ a
        assert np.allclose(L.numpy(), np.linalg.cholesky(want))
        assert job.num_tasks == two_grams_then_factor.bind(N=n).num_tasks()
        assert rt.store.list(f"{job.id}/") == []  # the local scratch tiles belong to the job and are gone


# --------------------------------------------------------------------------- the built-in programs, rewritten

import handwritten_programs as old  # noqa: E402  (the programs as they were written before composition)

P = npw.programs
# (program, parameter sets, task for task identical to the hand-written program: else the same DAG up to
# statement numbering, i.e. the statements of a branch nest in another order)
REWRITTEN = [
    ("cholesky", [dict(N=n) for n in range(1, 7)], True),
    ("trsm_forward", [dict(N=n, C=c, TRANS=t, UNIT=u, BS=4) for n in (1, 3, 4) for c in (1, 2) for t in (0, 1)
                      for u in (0, 1)], False),
    ("trsm_backward", [dict(N=n, C=c, TRANS=t, UNIT=u, BS=4) for n in (1, 3, 4) for c in (1, 2) for t in (0, 1)
                       for u in (0, 1)], False),
    ("posv", [dict(N=n, C=c, BS=4) for n in (1, 2, 4) for c in (1, 2)], True),
    ("spd_inverse", [dict(N=n, BS=4) for n in (1, 2, 3, 5)], True),
    ("qr_factor", [dict(M=m, N=n, C=c) for m, n, c in ((1, 1, 0), (3, 2, 0), (2, 3, 1), (4, 3, 0), (3, 2, 1),
                                                       (4, 3, 2), (1, 1, 1))], True),
    ("qr_lstsq", [dict(M=m, N=n, C=c, BS=4) for m, n, c in ((1, 1, 1), (3, 2, 1), (4, 3, 1), (4, 3, 2), (2, 2, 3))],
     True),
    ("qr_form_q", [dict(M=m, N=n, ROWS=4 * m, BS=4, QC=qc, QCOLS=4 * qc, SINGLE=0)
                   for m, n, qc in ((1, 1, 1), (3, 2, 2), (2, 3, 2), (4, 3, 3), (4, 3, 4), (5, 2, 5))], True),
    ("gemm", [dict(M=m, N=n, K=k) for m, n, k in ((1, 1, 1), (2, 3, 1), (1, 1, 2), (3, 2, 3), (2, 2, 5), (1, 2, 7),
                                                (1, 1, 9))], True),
    ("gemm_tn", [dict(M=m, N=n, K=k) for m, n, k in ((1, 1, 1), (2, 3, 1), (3, 2, 3), (2, 2, 5), (1, 1, 9))], True),
    ("tsqr", [dict(N=n) for n in range(1, 10)], True),
    ("band_reduction", [dict(M=m, N=n) for m, n in ((1, 1), (2, 1), (3, 2), (4, 4), (5, 3), (7, 5))], True),
    ("tree_svd", [dict(M=m, N=n, RANK=2, K=2, BR=4, ROWS=4 * m, VEC=v) for m, n in ((1, 1), (1, 3), (3, 1), (4, 5),
                                                                                  (5, 2)) for v in (0, 1)], False),
    ("center_columns", [dict(M=m, N=n, ROWS=4 * m) for m, n in ((1, 1), (2, 3), (3, 1), (5, 2))], True),
    ("apply_reflectors", [dict(R=r, NC=nc, K=k, OFF=off, TRANS=tr) for r, k in ((1, 1), (3, 2), (5, 3))
                          for nc, off, tr in ((1, 0, 0), (2, 1, 1), (1, 1, 0))], True),
    ("randomized_range", [dict(M=m, N=n, L=4, QIT=q, COLS=4 * n, BC=4, SEED=1) for m, n in ((1, 1), (3, 1), (1, 3),
                                                                                         (3, 4), (5, 2))
                          for q in (0, 2)], True),
]


@pytest.mark.parametrize("name, cases, identical", REWRITTEN, ids=[r[0] for r in REWRITTEN])
def test_rewritten_programs_give_the_hand_written_dags(name, cases, identical):
    new, hand = getattr(P, name), getattr(old, name)
    assert new.matrices == hand.matrices and new.params == hand.params  # the same signature
    for values in cases:
        b, h = new.bind(**values), hand.bind(**values)
        assert_same_dag(b, h, visible=hand.matrices)
        if identical:
            assert_same_tasks(b, h)


def calls(p: lp.Program) -> list[str]:
    """Names of the programs ``p`` calls, as written, anywhere in its body."""
    out = []

    def walk(body):
        for s in body:
            if isinstance(s, ir.ProgramCall):
                out.append(s.program)
            elif isinstance(s, ir.For):
                walk(s.body)
            elif isinstance(s, ir.If):
                walk(s.body)
                walk(s.orelse)

    walk(p.parsed.body)
    return out


def test_the_algorithms_are_written_once():
    assert calls(P.posv) == ["cholesky", "trsm_forward", "trsm_backward"]
    assert calls(P.spd_inverse) == ["cholesky"]
    assert calls(P.qr_lstsq) == ["qr_factor", "trsm_backward"]
    assert calls(P.tsqr) == ["tsqr_up", "tsqr_down"]
    assert calls(P.gemm) == calls(P.gemm_tn) == calls(P.center_columns) == ["sum_tree"]
    assert calls(P.randomized_range) == ["sum_tree", "tsqr_up", "tsqr_down"] * 2
    # step 0 (or the last step) through aliases: no "if k == 0" duplicates left in the source
    for p in (P.cholesky, P.trsm_forward, P.trsm_backward, P.qr_factor, P.band_reduction, P.tree_svd,
              P.apply_reflectors):
        assert any(isinstance(s, ir.Alias) for s in p.parsed.body), p.name
    assert sum(isinstance(s, ir.Alias) for s in P.qr_factor.parsed.body) == 2


def test_split_qr_programs_factor_solve_and_form_q():
    rng = np.random.default_rng(3)
    bs, m, n, c = 4, 3, 2, 1
    a, rhs = rng.standard_normal((m * bs, n * bs)), rng.standard_normal((m * bs, c * bs))

    def tiles(x):
        return {(i, j): x[i * bs:(i + 1) * bs, j * bs:(j + 1) * bs]
                for i in range(x.shape[0] // bs) for j in range(x.shape[1] // bs)}

    def whole(t, rows, cols):  # missing tiles (below R's diagonal) are zero
        return np.block([[t.get((i, j), np.zeros((bs, bs))) for j in range(cols)] for i in range(rows)])

    out = lp.interpret(P.qr_lstsq.bind(M=m, N=n, C=c, BS=bs), {"A": tiles(a), "B": tiles(rhs)})
    assert np.allclose(whole(out["X"], n, c), np.linalg.lstsq(a, rhs, rcond=None)[0])
    fac = lp.interpret(P.qr_factor.bind(M=m, N=n, C=0), {"A": tiles(a), "B": {}})  # C = 0: no B tile read
    q = lp.interpret(P.qr_form_q.bind(M=m, N=n, ROWS=m * bs, BS=bs, QC=n, QCOLS=n * bs, SINGLE=0),
                     {"V": fac["V"], "T": fac["T"]})
    r = np.triu(whole(fac["R"], n, n))
    assert np.allclose(whole(q["Q"], m, n) @ r, a)


@lp.program
def total(X: lp.Matrix, Out: lp.Matrix, N: int):
    T = lp.scratch()
    for i in range(N):
        T[i, 0] = copy(X[i, 0])
    P.sum_tree(T, Out, N)


def test_sum_tree_from_a_program_with_local_leaves():
    bs, n = 2, 5
    out = lp.interpret(total.bind(N=n), {"X": {(i, 0): np.full((bs, bs), float(i + 1)) for i in range(n)}})
    assert np.array_equal(out["Out"][(0, 0)], np.full((bs, bs), 15.0))
    assert total.scratch == ("T",) and total.kernels() == {"copy": copy, "add": add}
