"""The implicit DAG agrees with the unrolled graph, for the built-in programs and random ones."""

from __future__ import annotations

import json
import os
import random
import textwrap
import tracemalloc
from collections import Counter

import pytest
from dag_oracle import assert_analysis_matches, unrolled_graph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lambdapack as lp
from lambdapack import Task
from numpywren2.core.programs import cholesky, gemm, tsqr


@pytest.mark.parametrize("n", range(1, 17))
def test_cholesky_matches_unrolled(n):
    assert_analysis_matches(cholesky.bind(N=n))


@pytest.mark.parametrize("n", range(1, 17))
def test_tsqr_matches_unrolled(n):
    assert_analysis_matches(tsqr.bind(N=n))


@pytest.mark.parametrize("m, n, k", [(1, 1, 1), (2, 3, 1), (1, 1, 2), (3, 2, 3), (2, 2, 5), (1, 2, 7),
                                     (2, 1, 8), (1, 1, 9), (4, 4, 4), (1, 3, 13), (2, 2, 16)])
def test_gemm_matches_unrolled(m, n, k):
    assert_analysis_matches(gemm.bind(M=m, N=n, K=k))


def test_cholesky_task_counts_closed_form():
    for n in (1, 2, 7, 64, 256):
        expected = n + n * (n - 1) // 2 + (n + 1) * n * (n - 1) // 6
        assert cholesky.bind(N=n).num_tasks() == expected
    assert cholesky.bind(N=256).num_tasks() == 2_829_056


def test_cholesky_structure():
    d = cholesky.bind(N=4)
    chol0 = d.task(0, (0,))
    assert list(d.starters()) == [chol0]
    assert str(chol0) == "chol@L18(k=0)"
    assert [str(c) for c in d.children(chol0)] == ["trsm@L20(k=0, i=1)", "trsm@L20(k=0, i=2)", "trsm@L20(k=0, i=3)"]
    gemm_task = d.task(7, (1, 2, 3))
    assert d.reads(gemm_task) == [("S", (3, 2, 1)), ("L", (3, 1)), ("L", (2, 1))]
    assert d.writes(gemm_task) == [("S", (3, 2, 2))]
    assert sorted(map(str, d.parents(gemm_task))) == ["gemm_nt@L24(k=0, j=2, i=3)", "trsm@L20(k=1, i=2)",
                                                       "trsm@L20(k=1, i=3)"]
    assert d.in_degree(gemm_task) == 3
    assert d.inputs == ("A",) and d.outputs == ("L", "S")


def test_tasks_are_hashable_json_and_printable():
    d = tsqr.bind(N=5)
    for t in d.tasks():
        s = t.to_json()
        assert json.loads(s)[0] == t.stmt
        back = Task.from_json(s)
        assert back == t and hash(back) == hash(t)
        assert d.task_from_json(s) == t and str(d.task_from_json(s)) == str(t)
    t = d.task(2, (1, 4))
    assert repr(t) == "copy@L57>L30(level=1, i=4)"  # tsqr_up, called at line 57
    assert repr(Task(2, (1, 4))) == "s2(1, 4)"
    assert t.stmt == 2 and t.idx == (1, 4)


def test_tasks_come_in_serial_program_order():
    d = cholesky.bind(N=5)
    seen = set()
    for t in d.tasks():
        assert all(p in seen for p in d.parents(t)), f"{t} comes before one of its parents"
        seen.add(t)


def test_bound_memory_does_not_grow_with_parameters():
    def bound_size(n):
        tracemalloc.start()
        before = tracemalloc.take_snapshot()
        d = cholesky.bind(N=n, validate="none")
        after = tracemalloc.take_snapshot()
        tracemalloc.stop()
        size = sum(s.size_diff for s in after.compare_to(before, "filename"))
        del d
        return size

    small, large = bound_size(16), bound_size(4096)
    assert large < 1.2 * small + 20_000, (small, large)


def test_random_task_draws_valid_tasks():
    d = gemm.bind(M=3, N=2, K=5)
    all_tasks = set(d.tasks())
    rng = random.Random(3)
    drawn = [d.random_task(rng) for _ in range(500)]
    assert set(drawn) <= all_tasks
    assert len(Counter(t.stmt for t in drawn)) >= 4  # several statements show up


# --------------------------------------------------------------------------- validation

K = {"k1": lp.kernel(lambda *a: None, name="k1")}


def prog(src: str) -> lp.Program:
    return lp.Program.from_source(textwrap.dedent(src), K, filename="<test>")


def test_double_write_is_reported_with_both_lines():
    p = prog("""
        def f(A: lp.Matrix, B: lp.Matrix, N: int):
            for i in range(N):
                B[i] = k1(A[i])
            for j in range(N):
                B[2 * j] = k1(A[j])
    """)
    with pytest.raises(lp.CompileError, match=r"tile B\[0\] is written by more than one task") as info:
        p.bind(N=3)
    assert info.value.line == 4 and info.value.also[0].line == 6
    p.bind(N=1, validate="full") if False else None  # N=1: B[0] twice as well
    with pytest.raises(lp.CompileError):
        p.bind(N=1)


def test_same_statement_double_write():
    p = prog("""
        def f(A: lp.Matrix, B: lp.Matrix, N: int):
            for i in range(N):
                for j in range(N):
                    B[i] = k1(A[j])
    """)
    p.bind(N=1)
    with pytest.raises(lp.CompileError, match="written by more than one task"):
        p.bind(N=2)


def test_read_of_unwritten_tile_is_reported():
    p = prog("""
        def f(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, N: int):
            for i in range(N):
                B[i] = k1(A[i])
            for i in range(N):
                C[i] = k1(B[i + 1])
    """)
    with pytest.raises(lp.CompileError, match=r"reads B\[3\], which no task writes") as info:
        p.bind(N=3)
    assert info.value.line == 6
    p.bind(N=3, validate="none")  # the check can be skipped


def test_large_programs_are_validated_structurally():
    bad = prog("""
        def f(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, N: int):
            for i in range(N):
                for j in range(N):
                    B[i, j] = k1(A[i, j])
            for i in range(N):
                for j in range(N):
                    C[i, j] = k1(B[i, j + 1])
    """)
    with pytest.raises(lp.CompileError, match="which no task writes"):
        bad.bind(N=600)  # 720k tasks: above the exhaustive limit, caught by the sampled check
    dup = prog("""
        def f(A: lp.Matrix, B: lp.Matrix, N: int):
            for i in range(N):
                for j in range(N):
                    B[i, j] = k1(A[i, j])
            B[N - 1, N - 1] = k1(A[0, 0])
    """)
    with pytest.raises(lp.CompileError, match="written by more than one task"):
        dup.bind(N=600)


# --------------------------------------------------------------------------- random programs

VARS = "abcdefghi"


@st.composite
def loop_nests(draw):
    """Source of a random program of affine (and some non-affine) loop nests."""
    lines = ["def rnd(IN: lp.Matrix, X: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int, M: int):"]
    written: list[str] = []
    names = iter(VARS)
    arity = {"IN": 2, "X": 2, "Y": 2, "Z": 3}
    n_nests = draw(st.integers(1, 3))
    for nest in range(n_nests):
        depth = draw(st.integers(1, 3))
        loop_vars: list[str] = []
        indent = "    "
        for _ in range(depth):
            v = next(names)
            outer = loop_vars[-1] if loop_vars else None
            start = draw(st.sampled_from(["0", "1"] + ([outer, f"{outer} + 1"] if outer else [])))
            stop = draw(st.sampled_from(["N", "N + 1", "M"] + ([f"{outer} + 1", f"N - {outer}"] if outer else [])))
            kind = draw(st.sampled_from(["up", "up", "up", "step2", "down"]))
            if kind == "up":
                rng = f"range({start}, {stop})"
            elif kind == "step2":
                rng = f"range({start}, {stop}, 2)"
            else:
                rng = f"range({stop} - 1, {start} - 1, -1)"
            lines.append(f"{indent}for {v} in {rng}:")
            loop_vars.append(v)
            indent += "    "
        target = ["X", "Y", "Z"][nest % 3]
        call = _random_call(draw, target, written, loop_vars, arity)
        if draw(st.booleans()):
            v0, vl = loop_vars[0], loop_vars[-1]
            cond = draw(st.sampled_from([f"{v0} == 0", f"{vl} < {v0} + 2", f"({v0} + {vl}) % 2 == 0",
                                         f"{vl} >= 1 and not {v0} == 2"]))
            lines += [f"{indent}if {cond}:", f"{indent}    {call}"]
            if draw(st.booleans()):
                lines += [f"{indent}else:", f"{indent}    {_random_call(draw, target, written, loop_vars, arity)}"]
        else:
            lines.append(f"{indent}{call}")
        written.append(target)
    return "\n".join(lines) + "\n"


def _random_ref(draw, m: str, loop_vars: list[str], arity: dict[str, int]) -> str:
    v0, vl = loop_vars[0], loop_vars[-1]
    choices = [f"{vl}, {v0}", f"{v0} + {vl}, {vl}", f"2 * {v0}, {vl}", f"{vl}, 2 ** {v0}",
               f"{v0} - 1, {vl}", f"{vl} // 2, {v0}", f"0, {v0}", f"{vl} + 2 ** {v0}, {v0}",
               f"N - 1 - {vl}, {v0}", f"{v0} % 2, {vl}"]
    if len(loop_vars) > 1:
        choices.append(", ".join(loop_vars[:2]))
    idx = draw(st.sampled_from(choices))
    if arity[m] == 3:
        idx += f", {draw(st.sampled_from(['0', '1', v0]))}"
    return f"{m}[{idx}]"


def _random_call(draw, target: str, written: list[str], loop_vars: list[str], arity: dict[str, int]) -> str:
    reads = [_random_ref(draw, "IN", loop_vars, arity)]
    reads += [_random_ref(draw, m, loop_vars, arity) for m in written if draw(st.booleans())]
    return f"{_random_ref(draw, target, loop_vars, arity)} = k1({', '.join(reads)})"


FUZZ_EXAMPLES = int(os.environ.get("LP_FUZZ_EXAMPLES", "150"))


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=loop_nests(), n=st.integers(0, 6), m=st.integers(0, 5))
def test_random_programs_match_unrolled_graph(src, n, m):
    p = prog(src)
    d = p.bind(N=n, M=m, validate="none")
    # validation agrees with the unrolled graph: an error exactly when a tile has two writers,
    # or a read of a written tile space has none
    _, _, _, writer_of = unrolled_graph(d)
    double = any(len(ws) > 1 for ws in writer_of.values())
    missing = any(m_ in d.outputs and (m_, idx) not in writer_of
                  for t in d.tasks() for m_, idx in d.reads(t))
    assert_analysis_matches(d, valid=not missing)
    if double or missing:
        with pytest.raises(lp.CompileError):
            p.bind(N=n, M=m, validate="full")
    else:
        p.bind(N=n, M=m, validate="full")
