"""``submit`` checks the program against its matrices at once: index arity, and every tile inside the grid.

The grid check (``lambdapack.extent``) works from the loop bounds: these tests hold it to the
brute-force answer on random programs, to the real arguments of every built-in entry point, to
the size of Cholesky at N = 4096 (no enumeration), and to the errors a user sees.
"""

from __future__ import annotations

import itertools
import json
import re
import textwrap

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import lambdapack as lp
import lambdapack.extent as extent
import numpywren2 as npw
from lambdapack.extent import check_extents
from numpywren2.core.jobspec import JobSpec
from numpywren2.core.programs import cholesky


@lp.kernel
def k1(*tiles):
    return tiles[0]


def prog(src: str, filename: str = "user_program.py") -> lp.Program:
    return lp.Program.from_source(textwrap.dedent(src), {"k1": k1}, filename=filename)


@pytest.fixture
def rt():
    with npw.runtime(executors=0) as r:  # nothing here needs an executor: submit must refuse before launching any
        yield r


@pytest.fixture
def created(rt, monkeypatch):
    """The ids of the jobs submit created in the state store (none, when it refused the program)."""
    jobs: list[str] = []
    create = rt.state.create_job

    def recording(job, description):
        jobs.append(job)
        return create(job, description)

    monkeypatch.setattr(rt.state, "create_job", recording)
    return jobs


# --------------------------------------------------------------------------- the example


def test_cholesky_with_N_larger_than_the_grid_is_refused_at_submit(rt, created):
    X = np.eye(8)
    A = npw.BigMatrix.from_numpy(X, 4)  # a 2×2 grid of tiles
    L = npw.BigMatrix.empty(X.shape, 4)
    keys_before = set(rt.store.list(""))
    with pytest.raises(ValueError) as err:
        npw.submit(cholesky, A=A, L=L, N=5)
    msg = str(err.value)
    # the matrix (parameter and BigMatrix name, its grid), the first tile outside, a concrete task, the line
    assert "cholesky(N=5)" in msg
    assert "task chol@L18(k=2) writes tile L[2, 2], outside matrix L" in msg
    assert L.name in msg and "shape (8, 8), block_size (4, 4): a 2×2 grid of tiles" in msg
    assert "programs/cholesky.py:18:" in msg and "L[k, k] = chol(S[k, k, k])" in msg
    # refused before anything was stored or launched: no job record, no tile, no queue
    assert set(rt.store.list("")) == keys_before
    assert created == [] and rt.provisioners == []


def test_an_input_grid_too_small_names_the_input_and_the_reading_task(rt):
    A = npw.BigMatrix.from_numpy(np.eye(8), 4)  # 2×2
    L = npw.BigMatrix.empty((12, 12), 4)  # 3×3
    with pytest.raises(ValueError, match=r"task trsm@L20\(k=0, i=2\) reads tile A\[2, 0\], outside matrix A "
                                         rf"\({A.name}, shape \(8, 8\)"):
        npw.submit(cholesky, A=A, L=L, N=3)


def test_cholesky_at_N_4096_is_checked_from_the_loop_bounds_without_enumerating(monkeypatch):
    b = cholesky.bind(N=4096, validate="none")  # 1.1e10 tasks

    def no_enumeration(*_):
        raise AssertionError("the grid check enumerated a statement")

    monkeypatch.setattr(b, "stmt_tasks", no_enumeration)
    monkeypatch.setattr(b, "tasks", no_enumeration)
    report = check_extents(b, {"A": (4096, 4096), "L": (4096, 4096)})
    assert report.violation is None and report.unchecked == []
    assert report.searched == 0 and report.enumerated == 0  # every question settled by the bound alone
    assert report.proved == 2 * 2 * sum(r.matrix in "AL" for s in b.stmts for r in (*s.reads, *s.writes))
    # one tile short: the witness is found by the guided search, still without enumerating
    v = check_extents(b, {"A": (4095, 4095), "L": (4096, 4096)}).violation
    assert (v.matrix, v.tile, str(v.task)) == ("A", (4095, 0), "trsm@L20(k=0, i=4095)")


# --------------------------------------------------------------------------- user programs, off by one


SHIFT = """
def shift(A: lp.Matrix, B: lp.Matrix, N: int):
    for i in range(N):
        B[i, 0] = k1(A[{index}, 0])
"""


@pytest.mark.parametrize("index, guard, tile, task", [
    ("i + 1", None, "A[5, 0]", "k1@L4(i=4)"),  # reads one past the end
    ("i - 1", None, "A[-1, 0]", "k1@L4(i=0)"),  # one before the start
    ("N - i", None, "A[5, 0]", "k1@L4(i=0)"),  # a reversed index off by one
    ("2 * i", None, "A[6, 0]", "k1@L4(i=3)"),  # a stride the grid does not have
])
def test_off_by_one_reads_are_refused_naming_the_first_tile_outside(rt, index, guard, tile, task):
    A = npw.BigMatrix.from_numpy(np.ones((10, 2)), 2)  # 5×1 tiles
    B = npw.BigMatrix.empty((10, 2), 2)
    p = prog(SHIFT.format(index=index))
    with pytest.raises(ValueError, match=re.escape(f"task {task} reads tile {tile}, outside matrix A")):
        npw.submit(p, A=A, B=B, N=5)


def submit_and_cancel(**kw):
    job = npw.submit(**kw)
    job.cancel()
    return job


@pytest.mark.parametrize("src", [
    # a guard keeps the index inside
    """
    def f(A: lp.Matrix, B: lp.Matrix, N: int):
        for i in range(N):
            if i + 1 < N:
                B[i, 0] = k1(A[i + 1, 0])
            else:
                B[i, 0] = k1(A[0, 0])
    """,
    """
    def f(A: lp.Matrix, B: lp.Matrix, N: int):
        for i in range(N):
            if i > 0:
                B[i, 0] = k1(A[i - 1, 0])
            else:
                B[i, 0] = k1(A[i, 0])
    """,
    # a triangular nest and min/max bounds
    """
    def f(A: lp.Matrix, B: lp.Matrix, N: int):
        for i in range(N):
            for j in range(max(0, i - 1), min(N, i + 2)):
                B[i, j] = k1(A[j, i])
    """,
    # a binary tree over a grid that is not a power of two (the pattern of gemm, tsqr, qr and svd)
    """
    def f(A: lp.Matrix, B: lp.Matrix, T: lp.Matrix, N: int):
        d = ceil(log2(N))
        for i in range(N):
            T[i, 0] = k1(A[i, 0])
        for level in range(d):
            for i in range(0, N, 2 ** (level + 1)):
                if i + 2**level < N:
                    T[i, level + 1] = k1(T[i, level], T[i + 2**level, level], A[i + 2**level, 0])
                else:
                    T[i, level + 1] = k1(T[i, level])
        B[0, 0] = k1(T[0, d])
    """,
])
def test_programs_whose_guards_keep_them_inside_the_grid_are_accepted(rt, src):
    A = npw.BigMatrix.from_numpy(np.ones((5, 5)), 1)
    B = npw.BigMatrix.empty((5, 5), 1)
    p = lp.Program.from_source(textwrap.dedent(src), {"k1": k1, "ceil": lp.ceil, "log2": lp.log2})
    submit_and_cancel(program=p, A=A, B=B, N=5)


def test_a_tree_without_its_partner_guard_is_refused(rt):
    src = """
    def f(A: lp.Matrix, T: lp.Matrix, N: int):
        d = ceil(log2(N))
        for level in range(d):
            for i in range(0, N, 2 ** (level + 1)):
                T[i, level + 1] = k1(A[i, 0], A[i + 2**level, 0])
    """
    p = lp.Program.from_source(textwrap.dedent(src), {"k1": k1, "ceil": lp.ceil, "log2": lp.log2})
    A = npw.BigMatrix.from_numpy(np.ones((5, 1)), 1)
    with pytest.raises(ValueError, match=r"task k1@L6\(level=0, i=4\) reads tile A\[5, 0\], outside matrix A"):
        npw.submit(p, A=A, N=5)
    A8 = npw.BigMatrix.from_numpy(np.ones((8, 1)), 1)  # a power of two: every node has its partner
    submit_and_cancel(program=p, A=A8, N=8)


def test_an_output_too_small_is_refused_naming_the_writing_task(rt):
    p = prog("""
    def f(A: lp.Matrix, B: lp.Matrix, N: int):
        for i in range(N):
            for j in range(i + 1):
                B[i, j + 1] = k1(A[i, j])
    """)
    A = npw.BigMatrix.from_numpy(np.ones((3, 3)), 1)
    B = npw.BigMatrix.empty((3, 3), 1)
    with pytest.raises(ValueError, match=r"task k1@L5\(i=2, j=2\) writes tile B\[2, 3\], outside matrix B"):
        npw.submit(p, A=A, B=B, N=3)
    submit_and_cancel(program=p, A=A, B=npw.BigMatrix.empty((3, 4), 1), N=3)


def test_a_guard_that_no_task_passes_touches_nothing(rt):
    p = prog("""
    def f(A: lp.Matrix, B: lp.Matrix, N: int):
        for i in range(N):
            if i > N:
                B[i, 0] = k1(A[i + 100, 0])
            else:
                B[i, 0] = k1(A[i, 0])
    """)
    A = npw.BigMatrix.from_numpy(np.ones((3, 1)), 1)
    submit_and_cancel(program=p, A=A, B=npw.BigMatrix.empty((3, 1), 1), N=3)


# --------------------------------------------------------------------------- index arity


def test_a_bigmatrix_indexed_with_three_indices_is_refused_and_a_tilespace_accepted(rt, created):
    p = prog("""
    def f(A: lp.Matrix, V: lp.Matrix, N: int):
        for i in range(N):
            V[i, 0, 1] = k1(A[i, 0])
    """)
    A = npw.BigMatrix.from_numpy(np.ones((2, 1)), 1)
    V = npw.BigMatrix.empty((2, 1), 1)
    with pytest.raises(ValueError) as err:
        npw.submit(p, A=A, V=V, N=2)
    msg = str(err.value)
    assert "V is indexed with 3 indices (V[i, 0, 1] in k1@L4" in msg and V.name in msg
    assert "user_program.py:4:" in msg and "npw.TileSpace" in msg
    assert created == []
    keep = npw.TileSpace.empty()
    job = npw.submit(p, A=A, V=keep, N=2)
    assert json.loads(rt.state.job(job.id)["description"])["prefixes"]["V"] == keep.name
    job.cancel()
    keep.delete()


def test_a_matrix_indexed_with_one_index_is_refused(rt):
    p = prog("""
    def f(A: lp.Matrix, B: lp.Matrix, N: int):
        for i in range(N):
            B[i] = k1(A[i, 0])
    """)
    with pytest.raises(ValueError, match=r"B is indexed with 1 indices \(B\[i\] in k1@L4"):
        npw.submit(p, A=npw.BigMatrix.from_numpy(np.ones((2, 1)), 1), B=npw.BigMatrix.empty((2, 1), 1), N=2)


def test_check_extents_rejects_a_wrong_number_of_indices():
    b = prog(SHIFT.format(index="i")).bind(N=2)
    with pytest.raises(ValueError, match=r"A\[i, 0\] has 2 indices, but A has 3"):
        check_extents(b, {"A": (2, 1, 1)})


# --------------------------------------------------------------------------- the fallbacks of step 3


def test_an_undecided_question_falls_back_to_enumerating_a_small_statement(monkeypatch):
    b = prog(SHIFT.format(index="(i * i) % 7")).bind(N=6)  # neither monotone nor linear
    monkeypatch.setattr(extent, "SEARCH_BUDGET", 0)  # the guided search decides nothing
    assert check_extents(b, {"A": (7, 1), "B": (6, 1)}).searched == 0  # the interval [0, 6] is enough here
    r = check_extents(b, {"A": (6, 1), "B": (6, 1)})  # but not here: the 6 tasks are enumerated
    assert r.violation is None and r.enumerated == 1 and r.unchecked == []
    v = check_extents(b, {"A": (4, 1), "B": (6, 1)}).violation
    assert (v.tile, str(v.task)) == ((4, 0), "k1@L4(i=2)")
    monkeypatch.setattr(extent, "ENUMERATE_LIMIT", 3)  # too big to enumerate: accepted, and said so
    r = check_extents(b, {"A": (5, 1), "B": (6, 1)})
    assert r.violation is None and r.unchecked == [("k1@L4", "A[i * i % 7, 0]")]


# --------------------------------------------------------------------------- exact on random programs


@st.composite
def random_programs(draw):
    """A few loop nests with affine, triangular, min/max, strided, reversed and tree loops, guards with
    and/or/not, and affine and non-affine indices; reading A and writing B."""
    lines = ["def rnd(A: lp.Matrix, B: lp.Matrix, N: int, M: int):"]
    names = iter("abcdefghijkl")
    for _ in range(draw(st.integers(1, 3))):
        loop_vars: list[str] = []
        indent = "    "
        for _ in range(draw(st.integers(1, 3))):
            v = next(names)
            o = loop_vars[-1] if loop_vars else None
            start = draw(st.sampled_from(["0", "1"] + ([o, f"{o} + 1", f"max(0, {o} - 1)"] if o else [])))
            stop = draw(st.sampled_from(["N", "N + 1", "M"] + ([f"{o} + 1", f"N - {o}", f"min(N, {o} + 3)"]
                                                              if o else [])))
            kind = draw(st.sampled_from(["up", "up", "up", "step2", "down", "tree"] if o else ["up", "down"]))
            rng = {"up": f"range({start}, {stop})", "step2": f"range({start}, {stop}, 2)",
                   "down": f"range({stop} - 1, {start} - 1, -1)", "tree": f"range({start}, {stop}, 2 ** ({o} + 1))"}
            lines.append(f"{indent}for {v} in {rng[kind]}:")
            loop_vars.append(v)
            indent += "    "
        v0, vl = loop_vars[0], loop_vars[-1]

        def ref(m: str, v0: str = v0, vl: str = vl) -> str:
            return f"{m}[{_random_index(draw, v0, vl)}, {_random_index(draw, v0, vl)}]"

        call = f"{ref('B')} = k1({ref('A')})"
        if draw(st.booleans()):
            cond = draw(st.sampled_from([
                f"{v0} == 0", f"{vl} < {v0} + 2", f"({v0} + {vl}) % 2 == 0", f"{vl} >= 1 and not {v0} == 2",
                f"{vl} + 2 ** {v0} < N", f"not ({v0} == 0 and {vl} < M)", f"{v0} == N - 1 or {vl} > 2",
                f"{vl} != {v0}", f"{vl} > N"]))
            lines += [f"{indent}if {cond}:", f"{indent}    {call}"]
            if draw(st.booleans()):
                lines += [f"{indent}else:", f"{indent}    {ref('B')} = k1({ref('A')})"]
        else:
            lines.append(f"{indent}{call}")
    return "\n".join(lines) + "\n"


def _random_index(draw, v0: str, vl: str) -> str:
    comps = [f"{vl}", f"{vl} + 1", f"{v0} - 1", f"N - 1 - {vl}", f"2 * {v0}", f"{vl} // 2", f"{vl} % 3",
             f"{vl} + 2 ** {v0}", f"{v0} + {vl}", "0", f"min({vl}, M)", f"max({vl} - 2, 0)"]
    if v0 != vl:
        comps.append(f"{vl} - {v0}")  # (i - i as an index trips the DAG analysis: a separate issue)
    return draw(st.sampled_from(comps))


def first_violating_statement(b, ext) -> int | None:
    for s in b.stmts:
        for t in b.stmt_tasks(s.id):
            for m, idx in (*b.reads(t), *b.writes(t)):
                if m in ext and any(not 0 <= i < n for i, n in zip(idx, ext[m])):
                    return s.id
    return None


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=random_programs(), n=st.integers(0, 6), m=st.integers(0, 5),
       grid=st.tuples(st.integers(0, 7), st.integers(0, 7), st.integers(0, 7), st.integers(0, 7)))
def test_the_check_agrees_with_enumeration_on_random_programs(src, n, m, grid):
    b = prog(src).bind(N=n, M=m, validate="none")
    ext = {"A": grid[:2], "B": grid[2:]}
    old = extent.ENUMERATE_LIMIT
    extent.ENUMERATE_LIMIT = 0  # steps 1 and 2 alone must decide every question of these small programs
    try:
        r = check_extents(b, ext)
    finally:
        extent.ENUMERATE_LIMIT = old
    assert r.unchecked == []
    expected = first_violating_statement(b, ext)
    if expected is None:
        assert r.violation is None
        return
    v = r.violation
    assert v is not None and v.stmt.id == expected
    assert v.task in set(b.stmt_tasks(v.stmt.id))  # a real task of the program...
    assert (v.matrix, v.tile) in (b.reads(v.task) if v.access == "reads" else b.writes(v.task))
    assert any(not 0 <= i < n for i, n in zip(v.tile, ext[v.matrix]))  # ...that touches a tile outside


# --------------------------------------------------------------------------- the built-in entry points


def test_every_builtin_entry_point_is_proved_inside_its_grids_by_the_bound_alone(monkeypatch):
    """The real arguments of every entry point, on ragged shapes: each access is proved by step 1.

    Jobs run in this process through the reference interpreter (``Job.wait`` replaced), so that the
    entry points that chain jobs reach their later programs with real tiles.
    """
    import numpywren2.client.job as jobmod
    from lambdapack import interpret
    from numpywren2.core.backends import TileNotFoundError

    reports = []

    def recording(b, grids):
        r = check_extents(b, grids)
        reports.append((b.program.name, b.values, r))
        return r

    class StoredTiles:
        def __init__(self, store, spec, m):
            self.store, self.spec, self.m = store, spec, m

        def __contains__(self, idx):
            try:
                self.store.get(self.spec.tile_key(self.m, idx))
            except TileNotFoundError:
                return False
            return True

        def __getitem__(self, idx):
            return np.array(self.store.get(self.spec.tile_key(self.m, idx)))

    def serial_wait(self, *args, **kwargs):
        spec = JobSpec.from_json(self.runtime.state.job(self.id)["description"], job=self.id)
        out = interpret(self.bound, {m: StoredTiles(self.runtime.store, spec, m) for m in self.bound.inputs})
        for m, tiles in out.items():
            for idx, t in tiles.items():
                self.runtime.store.put(spec.tile_key(m, idx), np.asarray(t))
        self.runtime.state.set_status(self.id, "done")
        self._end()
        return self

    monkeypatch.setattr(jobmod, "check_extents", recording)
    monkeypatch.setattr(jobmod.Job, "wait", serial_wait)
    rng = np.random.default_rng(0)
    with npw.runtime(executors=0):
        n, b = 7, 3
        g = rng.standard_normal((n, n))
        S = g @ g.T / n + np.eye(n)
        npw.cholesky(S, block_size=b)
        npw.solve(S, rng.standard_normal((n, 2)), assume_a="pos", block_size=b)
        npw.inv(S, assume_a="pos", block_size=b)
        npw.eigh(S, block_size=b)
        npw.eigvalsh(S, block_size=b)
        for lower, trans in itertools.product([True, False], [0, 1]):
            T = np.tril(S) if lower else np.triu(S)
            npw.solve_triangular(T, rng.standard_normal(n), trans=trans, lower=lower, block_size=b)
        for m, n in [(9, 5), (4, 7)]:
            X = rng.standard_normal((m, n))
            for mode in ("reduced", "r", "complete"):
                npw.qr(X, mode=mode, block_size=b)
            npw.matmul(X, rng.standard_normal((n, 5)), block_size=b)  # gemm_chain or gemm, by the grid
            npw.matmul(X, rng.standard_normal((n, 5)), block_size=b, executors=64)  # gemm: few output tiles
            npw.matmul(X, rng.standard_normal((n, 5)), block_size=b, executors=1)  # gemm_chain
            npw.tsqr(X, block_size=max(b, n))
            npw.svd(X, compute_uv=False, block_size=b)
            npw.svd(npw.BigMatrix.from_numpy(X, b), k=1, method="band")
            npw.svd(X, k=1, p=1, q=1, block_size=(b, b + 1))
            npw.svd(X, k=1, method="tree", block_size=(b, b + 1))
            npw.pca(X, 1, block_size=(b, b))
            npw.qr(X, mode="raw", block_size=b)
            npw.qr(X, mode="complete", pivoting=True, block_size=b)
            npw.svd(X, full_matrices=True, block_size=b)
            npw.pinv(X, block_size=b)
            npw.norm(X, 1, block_size=b)
            npw.norm(X, np.inf, block_size=b)
        npw.lstsq(rng.standard_normal((9, 5)), rng.standard_normal((9, 2)), block_size=b)
    names = {name for name, _, _ in reports}
    assert {"cholesky", "posv", "spd_inverse", "trsm_forward", "trsm_backward", "qr_factor", "qr_form_q",
            "gemm", "gemm_chain", "tsqr", "band_reduction", "apply_reflectors", "randomized_range", "low_rank_factors",
            "tree_svd",
            "center_columns", "transpose_tiles", "householder_lu", "pivoted_qr_of", "svd_solve", "pinv_from_svd",
            "column_norms", "row_norms", "band_singular_values",
            "sym_band_reduction", "sym_band_eigenvalues"} <= names
    loose = [(name, values, r) for name, values, r in reports
             if r.violation or r.searched or r.enumerated or r.unchecked]
    assert loose == []
