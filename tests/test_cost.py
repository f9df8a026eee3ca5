"""Symbolic analysis (issue 18, item 1): closed-form task counts, program.cost() and the critical path.

The oracles are independent of ``lambdapack.symbolic`` and ``lambdapack.cost``: task counts by
enumerating each statement's loop nest, flops by calling the kernels' formulas on real numpy tiles
of every enumerated task, critical paths by the longest path of the unrolled graph
(``dag_oracle.unrolled_graph``).
"""

from __future__ import annotations

import random

import numpy as np
import pytest
from dag_oracle import unrolled_graph
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_analysis import loop_nests, prog

import lambdapack as lp
from lambdapack import symbolic
from lambdapack.cost import longest_path
from numpywren2.core import programs

BUILTIN = sorted(programs.__all__)


def enumerated_counts(bound) -> list[int]:
    return [sum(1 for _ in bound.stmt_tasks(i)) for i in range(len(bound.stmts))]


def parameter_sets(p: lp.Program, n: int, seed: int = 0) -> list[dict[str, int]]:
    """``n`` small parameter sets of ``p`` (each parameter 0..5, flags 0..1) that bind and enumerate."""
    rng = random.Random(f"{p.name}-{seed}")
    out, tries = [], 0
    while len(out) < n and tries < 40 * n:
        tries += 1
        values = {k: rng.randint(0, 1) if k in ("TRANS", "UNIT", "SINGLE", "WANT_Q", "SOLVE", "VEC", "OFF")
                  else rng.randint(0, 5) for k in p.params}
        try:
            b = p.bind(validate="none", **values)
            counts = enumerated_counts(b)
        except (ValueError, ArithmeticError, lp.CompileError):
            continue  # parameters the program rejects (a log2 of 0, say)
        out.append((values, b, counts))
    return out


@pytest.mark.parametrize("name", BUILTIN)
def test_builtin_counts_equal_enumeration(name):
    p = getattr(programs, name)
    counts = symbolic.count_program(p)
    assert all(c.expr is not None for c in counts), [(c.label, c.reason) for c in counts if c.expr is None]
    cases = parameter_sets(p, 25)
    assert len(cases) >= 10
    nonzero = 0
    for values, _, expected in cases:
        got = [c.evaluate(values) for c in counts]
        assert got == expected, (values, [(c.label, g, e) for c, g, e in zip(counts, got, expected) if g != e])
        nonzero += sum(expected) > 0
    assert nonzero >= 5  # the cases are not all empty programs


def test_num_tasks_uses_the_closed_form_for_large_nests():
    b = programs.cholesky.bind(N=300, validate="none")
    n = 300
    assert b.num_tasks() == n + n * (n - 1) // 2 + (n + 1) * n * (n - 1) // 6
    methods = b.count_methods()
    assert methods[-1] == ("closed form", "")  # gemm_nt: 300³/6 loop iterations, not enumerated
    assert ("enumeration", "small loop nest") in methods  # the chol at k == 0 is one task
    tree = programs.tsqr.bind(N=1 << 20, validate="none")
    assert tree.stmt_counts()[1] == (1 << 20) - 1  # qr_pair: every merge of the tree
    assert tree.count_methods()[1] == ("finite sum", "")
    big = programs.cholesky.bind(N=1 << 20, validate="none")
    assert big.num_tasks() == (1 << 20) * ((1 << 20) + 1) * ((1 << 20) + 2) // 6


def test_closed_forms_of_cholesky():
    counts = symbolic.count_program(programs.cholesky)
    N = symbolic.symbol("N")
    gemm_nt = counts[-1].expr
    assert str(gemm_nt) == "Piecewise((N**3/6 - N**2 + 11*N/6 - 1, N >= 3), (0, True))"
    assert all(c.method == "closed form" for c in counts)
    total = sum(c.expr for c in counts)
    for n in range(0, 9):
        assert total.subs(N, n) == n * (n + 1) * (n + 2) // 6


def test_statements_without_a_closed_form_are_enumerated_and_say_why():
    p = prog("""
        def f(A: lp.Matrix, B: lp.Matrix, N: int, S: int):
            for i in range(N):
                for j in range(i, N, S - 2):
                    for k in range(j, N):
                        B[i, j, k] = k1(A[i, j])
    """)
    c = symbolic.count_statement(p, 0)
    assert c.method == "enumeration" and c.expr is None and "no known sign" in c.reason
    b = p.bind(N=800, S=3, validate="none")  # 320,400 iterations of (i, j): above the enumeration limit
    assert b.num_tasks() == sum(800 - j for i in range(800) for j in range(i, 800))
    method, reason = b.count_methods()[0]
    assert method == "enumeration" and "no known sign" in reason


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(src=loop_nests(), cases=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 5)), min_size=3, max_size=6))
def test_random_programs_counts_equal_enumeration(src, cases):
    p = prog(src)
    counts = symbolic.count_program(p)
    for n, m in cases:
        b = p.bind(N=n, M=m, validate="none")
        expected = enumerated_counts(b)
        for c, e in zip(counts, expected):
            if c.expr is None:
                continue  # counted by enumeration (the reason is given): nothing to compare
            assert c.evaluate({"N": n, "M": m}) == e, (src, n, m, c.label, str(c.expr))


# --------------------------------------------------------------------------- cost


def flops_oracle(bound, block: int) -> tuple[float, int, int]:
    """(flops, bytes read, bytes written) summed over the enumerated tasks, with real tiles."""
    kernels = bound.program.kernels()
    tile = np.zeros((block, block))
    flops = 0.0
    read = written = 0
    for t in bound.tasks():
        k = kernels[bound.stmt(t).kernel]
        args = [tile if isinstance(a, tuple) and a and a[0] == "tile" else a for a in bound.kernel_args(t)]
        flops += k.flops(*args) if k.flops is not None else 0
        read += len(bound.reads(t)) * tile.nbytes
        written += len(bound.writes(t)) * tile.nbytes
    return flops, read, written


COST_CASES = [
    ("cholesky", {"N": 5}), ("gemm", {"M": 2, "N": 3, "K": 5}), ("gemm_chain", {"M": 2, "N": 3, "K": 5}),
    ("tsqr", {"N": 7}), ("posv", {"N": 4, "C": 2, "BS": 3}),
    ("qr_factor", {"M": 5, "N": 3, "C": 1}), ("tsqr_up", {"N": 6}), ("check_symmetric", {"N": 5, "BS": 3}),
    ("spd_inverse", {"N": 4, "BS": 3}), ("tree_svd", {"M": 3, "N": 5, "RANK": 2, "K": 2, "BR": 3, "ROWS": 8, "VEC": 1}),
]


@pytest.mark.parametrize("name, values", COST_CASES)
def test_cost_totals_equal_the_sum_over_tasks(name, values):
    p = getattr(programs, name)
    c = p.cost(block=6, **values)
    b = p.bind(**values)
    flops, read, written = flops_oracle(b, 6)
    assert c.values["tasks"] == b.num_tasks() == len(list(b.tasks()))
    assert c.values["flops"] == pytest.approx(flops, rel=1e-12)
    assert (c.values["bytes_read"], c.values["bytes_written"]) == (read, written)
    assert sum(s.values["flops"] for s in c.stmts) == pytest.approx(c.values["flops"])
    # the expressions evaluate to the numbers
    for key in ("tasks", "bytes_read", "bytes_written", "flops"):
        value = symbolic.compile_expr(c.exprs[key], sorted(c.params))(**c.params)
        assert float(value) == pytest.approx(c.values[key], rel=1e-12), key


def test_cost_flops_of_cholesky_in_closed_form():
    c = programs.cholesky.cost(block=1024, N=4096)
    N, b = symbolic.symbol("N"), symbolic.symbol("b")
    total = c.exprs["flops"]
    for n in (1, 2, 3, 4, 10):
        assert float(total.subs({N: n, b: 2})) == pytest.approx(flops_oracle(programs.cholesky.bind(N=n), 2)[0])
    assert c.values["flops"] == pytest.approx(4096**3 * 1024**3 / 3, rel=1e-3)  # n³/3 for n = 4096 · 1024


def longest_path_oracle(bound, block: int) -> tuple[int, float]:
    tasks, parents, _, _ = unrolled_graph(bound)
    kernels = bound.program.kernels()
    tile = np.zeros((block, block))
    depth, weight = {}, {}
    for t in tasks:  # serial order: parents first
        k = kernels[bound.stmt(t).kernel]
        args = [tile if isinstance(a, tuple) and a and a[0] == "tile" else a for a in bound.kernel_args(t)]
        f = k.flops(*args) if k.flops is not None else 0
        depth[t] = 1 + max((depth[p] for p in parents[t]), default=0)
        weight[t] = f + max((weight[p] for p in parents[t]), default=0)
    return max(depth.values(), default=0), max(weight.values(), default=0)


@pytest.mark.parametrize("name, make", [
    ("cholesky", lambda n: {"N": n}), ("tsqr", lambda n: {"N": n}),
    ("gemm", lambda n: {"M": 1 + n % 3, "N": 2, "K": n}),
    ("gemm_chain", lambda n: {"M": 1 + n % 3, "N": 2, "K": n}),
])
def test_critical_path_closed_forms_equal_the_unrolled_graph(name, make):
    p = getattr(programs, name)
    assert p.critical_path_formula is not None
    for n in range(1, 13):
        values = make(n)
        cp = p.cost(block=5, **values).critical_path
        assert cp.method == "closed form"
        tasks, flops = longest_path_oracle(p.bind(**values), 5)
        assert cp.values["tasks"] == tasks, (values, cp.values, tasks)
        assert cp.values["flops"] == pytest.approx(flops, rel=1e-12), (values, cp.values, flops)


@pytest.mark.parametrize("name, values", [("posv", {"N": 4, "C": 2, "BS": 3}), ("tsqr_up", {"N": 7}),
                                          ("qr_factor", {"M": 5, "N": 3, "C": 1})])
def test_critical_path_over_the_dag_equals_the_unrolled_graph(name, values):
    p = getattr(programs, name)
    cp = p.cost(block=4, **values).critical_path
    assert cp.method == "longest path over the DAG"
    tasks, flops = longest_path_oracle(p.bind(**values), 4)
    assert (cp.values["tasks"], cp.values["flops"]) == (tasks, pytest.approx(flops, rel=1e-12))
    assert longest_path(p.bind(**values), 4) == (tasks, pytest.approx(flops, rel=1e-12))
