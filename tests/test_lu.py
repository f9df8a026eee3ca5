"""LU with tournament pivoting (programs.lu) and the scipy-style API on it (numpywren2.client.lu).

Accuracy is measured against scipy's getrf on the same matrices: backward errors ‖PA − LU‖/‖A‖ scaled
by n·eps of the dtype, and growth factors max|U| / max|A| (random, ragged, float32; the Wilkinson
matrix, whose growth is 2**(n-1) for partial pivoting too; matrices that need a row swap in every
column). The factorization sweeps run the program in the serial interpreter (the same kernels the
executors run); the API tests run real jobs on executors.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg as sl
from dag_oracle import assert_analysis_matches

import numpywren2 as npw
from lambdapack import interpret
from numpywren2.client.lu import permutation_of_pivots, permutation_of_steps, pivots_of
from numpywren2.core import programs
from numpywren2.core.tiling import split


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def factor_serially(A: np.ndarray, bs: int, zero_pivots: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(perm, L, U)`` with ``A[perm] ≈ L U`` (L m×k, U k×n) from ``programs.lu`` run by the serial
    interpreter; every tile of LU and of P must be written."""
    (m, n), k = A.shape, min(A.shape)
    MT, NT = -(-m // bs), -(-n // bs)
    out = interpret(programs.lu.bind(MT=MT, NT=NT, BS=bs, ZERO_PIVOTS=zero_pivots), {"A": split(A, (bs, bs))})
    LU = np.full((m, n), np.nan, dtype=A.dtype)
    for (i, j), t in out["LU"].items():
        LU[i * bs:i * bs + t.shape[0], j * bs:j * bs + t.shape[1]] = t
    assert not np.isnan(LU).any() and sorted(out["P"]) == [(0, s) for s in range(min(MT, NT))]
    winners = np.concatenate([out["P"][(0, s)][0] for s in range(min(MT, NT))]).astype(np.int64)
    assert winners.size == k
    L = np.tril(LU, -1)[:, :k] + np.eye(m, k, dtype=A.dtype)
    return permutation_of_steps(winners, bs, m), L, np.triu(LU)[:k]


def backward_error(A, perm, L, U) -> float:
    A, L, U = (np.asarray(x, dtype=np.float64) for x in (A, L, U))
    return float(np.linalg.norm(A[perm] - L @ U) / np.linalg.norm(A))


def scipy_backward_error(A) -> float:
    P, L, U = sl.lu(A)
    A64 = A.astype(np.float64)
    return float(np.linalg.norm(P.T.astype(np.float64) @ A64 - L.astype(np.float64) @ U.astype(np.float64))
                 / np.linalg.norm(A64))


def growth(A, U) -> float:
    return float(np.abs(U).max() / np.abs(A).max())


def wilkinson(n: int) -> np.ndarray:
    """1 on the diagonal and in the last column, -1 below the diagonal: growth 2**(n-1) under partial pivoting."""
    W = np.eye(n) - np.tril(np.ones((n, n)), -1)
    W[:, -1] = 1
    return W


def pivots_everywhere(n: int, seed: int = 0) -> np.ndarray:
    """The exchange matrix plus small noise: every column's largest entry is off the diagonal at every step."""
    rng = np.random.default_rng(seed)
    return np.fliplr(np.eye(n)) + 0.01 * rng.standard_normal((n, n))


# ------------------------------------------------------------------ the program, serially

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, bs", [(16, 4), (23, 5), (30, 7), (9, 9), (12, 1), (3, 4)])
def test_backward_error_and_growth_on_random_matrices(n, bs, dtype):
    A = np.random.default_rng(n * bs).standard_normal((n, n)).astype(dtype)
    perm, L, U = factor_serially(A, bs)
    assert sorted(perm.tolist()) == list(range(n)) and L.dtype == dtype and U.dtype == dtype
    err = backward_error(A, perm, L, U)
    assert err <= n * eps(dtype), (err, scipy_backward_error(A))
    _, _, U0 = sl.lu(A)
    assert growth(A, U) <= 4 * growth(A, U0)


@pytest.mark.parametrize("n, bs", [(12, 4), (20, 6), (17, 3)])
def test_wilkinson_growth_matrix_grows_as_under_partial_pivoting(n, bs):
    W = wilkinson(n)
    perm, L, U = factor_serially(W, bs)
    _, _, U0 = sl.lu(W)
    assert growth(W, U) == growth(W, U0) == 2.0 ** (n - 1)
    assert backward_error(W, perm, L, U) <= n * eps(np.float64)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, bs", [(16, 4), (21, 5)])
def test_a_matrix_needing_a_swap_in_every_column(n, bs, dtype):
    A = pivots_everywhere(n).astype(dtype)
    perm, L, U = factor_serially(A, bs)
    assert np.count_nonzero(perm != np.arange(n)) >= n - 1  # rows moved nearly everywhere (the middle may stay)
    assert backward_error(A, perm, L, U) <= n * eps(dtype)
    _, _, U0 = sl.lu(A)
    assert growth(A, U) <= 4 * growth(A, U0)
    assert np.abs(L).max() <= 1 + 1e-6  # here the tournament's pivots are partial pivoting's


# tall, wide, ragged in either dimension or both, one tile row or column, the last step one tile or not
RECTANGULAR = [(13, 9, 4), (9, 13, 4), (10, 9, 4), (9, 10, 4), (16, 8, 4), (8, 16, 4), (23, 7, 5), (7, 23, 5),
               (30, 11, 3), (5, 1, 2), (1, 5, 2), (3, 2, 4), (2, 3, 4), (12, 4, 12)]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, n, bs", RECTANGULAR)
def test_backward_error_and_growth_on_rectangular_matrices(m, n, bs, dtype):
    A = np.random.default_rng(m * n + bs).standard_normal((m, n)).astype(dtype)
    perm, L, U = factor_serially(A, bs)
    k = min(m, n)
    assert sorted(perm.tolist()) == list(range(m)) and L.shape == (m, k) and U.shape == (k, n)
    assert L.dtype == dtype and U.dtype == dtype
    err = backward_error(A, perm, L, U)
    assert err <= max(m, n) * eps(dtype), (err, scipy_backward_error(A))
    _, _, U0 = sl.lu(A)
    assert growth(A, U) <= 4 * growth(A, U0)


@pytest.mark.parametrize("m, n, bs, column", [(13, 9, 4, 0), (13, 9, 4, 5), (13, 9, 4, 8), (9, 13, 4, 3),
                                              (9, 13, 4, 11), (10, 3, 2, 2)])
def test_rectangular_zero_pivots_are_kept_where_getrf_keeps_them(m, n, bs, column):
    A = np.random.default_rng(column).standard_normal((m, n))
    A[:, column] = 0.0
    perm, L, U = factor_serially(A, bs, zero_pivots=1)
    _, _, U0 = sl.lu(A)
    assert np.array_equal(np.flatnonzero(np.diag(U) == 0), np.flatnonzero(np.diag(U0) == 0))
    assert np.isfinite(L).all() and backward_error(A, perm, L, U) <= max(m, n) * eps(np.float64)
    ones = np.ones((m, n))  # rank one: every pivot after the first is exactly zero, as getrf's
    perm, L, U = factor_serially(ones, bs, zero_pivots=1)
    assert np.array_equal(np.diag(U), np.diag(sl.lu(ones)[2])) and backward_error(ones, perm, L, U) == 0.0


@pytest.mark.parametrize("m, n, bs", [(1, 1, 1), (1, 1, 3), (2, 2, 1), (3, 3, 2), (5, 5, 2), (6, 6, 3), (9, 9, 4),
                                      (9, 4, 2), (4, 9, 2), (7, 3, 2), (3, 7, 2), (10, 3, 4), (1, 3, 3), (5, 2, 2)])
def test_lu_programs_implicit_dag_matches_the_unrolled_graph(m, n, bs):
    MT, NT = -(-m // bs), -(-n // bs)
    assert_analysis_matches(programs.lu.bind(MT=MT, NT=NT, BS=bs, ZERO_PIVOTS=0))
    assert_analysis_matches(programs.lu_split.bind(MT=MT, NT=NT, K=min(m, n), BS=bs))
    for C in (1, 2):
        assert_analysis_matches(programs.permute_rows.bind(N=MT, C=C, BS=bs))  # P @ L has m rows
        for trans in (0, 1) if m == n else ():  # the solves: square matrices only
            assert_analysis_matches(programs.lu_solve.bind(N=MT, C=C, TRANS=trans, BS=bs))


def lu_task_count(MT: int, NT: int) -> int:
    """Tasks of ``programs.lu`` on MT×NT tiles, counted from the algorithm: per step k < min(MT, NT)
    (R = MT - k tile rows), a tournament of R leaves and T(R) matches (a binary tree: the unpaired node
    of a level is copied up), the diagonal and pivot tiles, R - 1 panel tiles and, per other tile
    column, a gather tree of R picks and T(R) sums and R - 1 swaps or updates. A step of one tile row
    factors its one tile and settles the rows of each other tile column in one task."""
    def tree(R: int) -> int:
        return sum(-(-R // 2 ** (level + 1)) for level in range(int(np.ceil(np.log2(R))))) if R > 1 else 0
    total = 0
    for k in range(min(MT, NT)):
        R = MT - k
        if R == 1:
            total += 1 + 2 + (NT - 1)
        else:
            total += R + tree(R) + 2 + (R - 1) + (NT - 1) * (R + tree(R) + R - 1)
    return total


def test_task_count_of_the_lu_program():
    for MT, NT in [(1, 1), (1, 4), (4, 1), (2, 3), (3, 2), (5, 3), (3, 5), (4, 4), (6, 2), (2, 6)]:
        assert programs.lu.bind(MT=MT, NT=NT, BS=4, ZERO_PIVOTS=0).num_tasks() == lu_task_count(MT, NT)
    assert programs.lu.bind(MT=8, NT=8, BS=4, ZERO_PIVOTS=0).num_tasks() == lu_task_count(8, 8) == 792
    counts = [lu_task_count(*grid) for grid in ((4, 2), (2, 4), (6, 3), (3, 6))]
    assert counts == [40, 24, 132, 84]  # docs/algorithms.md
    assert programs.lu_split.bind(MT=4, NT=2, K=8, BS=4).num_tasks() == 4 * 2 + 2 * 2


def test_permutation_helpers_round_trip():
    rng = np.random.default_rng(3)
    for n in (1, 2, 7, 30):
        perm = rng.permutation(n)
        piv = pivots_of(perm)
        assert np.array_equal(permutation_of_pivots(piv, n), perm)
    A = rng.standard_normal((9, 9))
    _, piv = sl.lu_factor(A)
    assert np.array_equal(pivots_of(permutation_of_pivots(piv, 9)), piv)
    with pytest.raises(ValueError, match=r"piv\[1\] = 0 is not a row index"):
        permutation_of_pivots(np.array([1, 0]), 2)
    for m, n in ((9, 4), (4, 9)):  # a rectangular matrix's first min(m, n) pivots, as getrf's
        B = rng.standard_normal((m, n))
        p0, _, _ = sl.lu(B, p_indices=True)
        inv = np.empty_like(p0)
        inv[p0] = np.arange(m)
        assert np.array_equal(pivots_of(inv, min(m, n)), sl.lu_factor(B)[1])


# ------------------------------------------------------------------ singular matrices

@pytest.mark.parametrize("column", [0, 5, 8, 13])
def test_an_exactly_singular_matrix_names_the_column_lapack_names(rt, column):
    A = np.random.default_rng(column).standard_normal((14, 14))
    A[:, column] = 0.0
    info = sl.lapack.dgetrf(A)[2]
    assert info == column + 1  # LAPACK: U[column, column] is exactly zero
    with pytest.raises(np.linalg.LinAlgError, match=rf"lu_factor: a is singular: .*pivot of column {column} is "
                                                    "exactly zero"):
        npw.lu_factor(A, block_size=4)
    assert npw.det(A, block_size=4) == 0.0
    sign, logdet = npw.slogdet(A, block_size=4)
    assert sign == 0.0 and logdet == -np.inf


# ------------------------------------------------------------------ the API on executors

@pytest.mark.parametrize("bs", [1, 7])
def test_lu_factor_equals_scipys_where_the_tournament_is_partial_pivoting(rt, bs):
    # one tile (bs = n) or one column per panel (bs = 1): the tournament picks partial pivoting's rows
    A = np.random.default_rng(bs).standard_normal((7, 7))
    lu, piv = npw.lu_factor(A, block_size=bs)
    lu0, piv0 = sl.lu_factor(A)
    assert isinstance(lu, npw.BigMatrix) and piv.dtype == piv0.dtype
    assert np.array_equal(piv, piv0)
    assert np.allclose(lu.numpy(), lu0, rtol=0, atol=10 * 7 * eps(np.float64))


def test_lu_returns_scipys_forms(rt):
    A = np.random.default_rng(2).standard_normal((11, 11))
    n = 11
    P, L, U = npw.lu(A, block_size=4)
    P, L, U = P.numpy(), L.numpy(), U.numpy()
    P0, L0, U0 = sl.lu(A)
    assert P.shape == P0.shape and L.shape == L0.shape and U.shape == U0.shape
    assert np.array_equal(P @ P.T, np.eye(n)) and set(np.unique(P)) == {0.0, 1.0}
    assert np.array_equal(np.diag(L), np.ones(n)) and np.array_equal(L, np.tril(L)) and np.array_equal(U, np.triu(U))
    assert np.linalg.norm(P @ L @ U - A) <= n * eps(np.float64) * np.linalg.norm(A)
    p, L2, U2 = npw.lu(A, p_indices=True, block_size=4)
    assert p.shape == (n,) and p.dtype.kind == "i"
    assert np.linalg.norm(L2.numpy()[p] @ U2.numpy() - A) <= n * eps(np.float64) * np.linalg.norm(A)
    PL, U3 = npw.lu(A, permute_l=True, block_size=4)
    assert np.allclose(PL.numpy(), P @ L, rtol=0, atol=0) and np.array_equal(U3.numpy(), U)
    # one tile: scipy's very factors
    P1, L1, U1 = npw.lu(A, block_size=n)
    assert np.array_equal(P1.numpy(), P0) and np.allclose(L1.numpy(), L0) and np.allclose(U1.numpy(), U0)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lu_solve_many_right_hand_sides_both_transposes(rt, dtype):
    n = 23
    rng = np.random.default_rng(4)
    A = rng.standard_normal((n, n)).astype(dtype)
    B = rng.standard_normal((n, 3)).astype(dtype)
    f = npw.lu_factor(A, block_size=5)
    for trans, op in ((0, A), (1, A.T), ("T", A.T)):
        X = npw.lu_solve(f, B, trans=trans)
        assert isinstance(X, npw.BigMatrix) and X.dtype == dtype and X.shape == (n, 3)
        r = np.linalg.norm(op.astype(float) @ X.numpy().astype(float) - B) / np.linalg.norm(B)
        x0 = sl.lu_solve(sl.lu_factor(A), B, trans=0 if trans == 0 else 1).astype(float)
        r0 = np.linalg.norm(op.astype(float) @ x0 - B) / np.linalg.norm(B)
        assert r <= max(10 * r0, n * eps(dtype) * np.linalg.cond(A.astype(float)))
    x = npw.lu_solve(f, B[:, 0])
    assert x.shape == (n,) and np.allclose(A.astype(float) @ x, B[:, 0], atol=100 * n * eps(dtype))
    Bm = npw.BigMatrix.from_numpy(B, (5, 5))
    assert np.allclose(npw.lu_solve(f, Bm).numpy(), npw.lu_solve(f, B).numpy())


def test_lu_solve_takes_scipys_factors_and_checks_its_arguments(rt):
    A = np.random.default_rng(6).standard_normal((9, 9))
    b = np.arange(9.0)
    x = npw.lu_solve(sl.lu_factor(A), b, block_size=4)
    assert np.allclose(x, np.linalg.solve(A, b))
    with pytest.raises(ValueError, match="piv must be 9 integer pivot indices"):
        npw.lu_solve((A, np.zeros(3, dtype=np.int32)), b, block_size=4)
    with pytest.raises(ValueError, match="trans must be"):
        npw.lu_solve(sl.lu_factor(A), b, trans=3)
    with pytest.raises(ValueError, match="b has 8 rows, the matrix has 9"):
        npw.lu_solve(sl.lu_factor(A), b[:8], block_size=4)
    with pytest.raises(ValueError, match="needs a square matrix lu, got shape"):
        npw.lu_solve(npw.lu_factor(A[:, :7], block_size=4), b)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_det_and_slogdet_against_numpy(rt, dtype):
    A = np.random.default_rng(7).standard_normal((13, 13)).astype(dtype)
    d, (s, ld) = npw.det(A, block_size=4), npw.slogdet(npw.BigMatrix.from_numpy(A, 4))
    d0, (s0, ld0) = np.linalg.det(A), np.linalg.slogdet(A)
    assert d.dtype == dtype and s == s0
    assert abs(d - d0) <= 100 * 13 * eps(dtype) * abs(d0)
    assert abs(ld - ld0) <= 100 * 13 * eps(dtype) * max(1.0, abs(ld0))
    W = wilkinson(10)
    assert npw.det(W, block_size=3) == 2.0 ** 9 and np.isclose(np.linalg.det(W), 2.0 ** 9)  # exact here


def test_cho_factor_and_cho_solve_as_scipy(rt):
    n = 17
    g = np.random.default_rng(8).standard_normal((n, n))
    S = g @ g.T + n * np.eye(n)
    B = np.random.default_rng(9).standard_normal((n, 2))
    for lower in (False, True):
        c, low = npw.cho_factor(S, lower=lower, block_size=5)
        c0, _ = sl.cho_factor(S, lower=lower)
        tri = np.tril if lower else np.triu
        assert low is lower and np.allclose(c.numpy(), tri(c0))
        X = npw.cho_solve((c, low), B)
        assert np.allclose(X.numpy(), sl.cho_solve((c0, lower), B))
        x = npw.cho_solve((c.numpy(), low), B[:, 1], block_size=5)
        assert np.allclose(x, np.linalg.solve(S, B[:, 1]))
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        npw.cho_factor(-S, block_size=5)


def test_solve_and_inv_go_through_lu(rt):
    n = 19
    A = np.random.default_rng(10).standard_normal((n, n))
    b = np.random.default_rng(11).standard_normal(n)
    for assume_a in (None, "gen"):
        x = npw.solve(npw.BigMatrix.from_numpy(A, 6), b, assume_a=assume_a)
        assert np.linalg.norm(A @ x - b) <= 10 * n * eps(np.float64) * np.linalg.norm(A) * np.linalg.norm(x)
    X = npw.inv(A, block_size=6).numpy()
    assert np.linalg.norm(A @ X - np.eye(n)) <= 10 * n * eps(np.float64) * np.linalg.cond(A)
    W = wilkinson(n)  # a solve where every column pivots exactly as LAPACK's
    assert np.allclose(npw.solve(W, b, block_size=6), sl.solve(W, b), rtol=1e-9, atol=1e-9)


# ------------------------------------------------------------------ rectangular matrices on executors

@pytest.mark.parametrize("m, n", [(13, 9), (9, 13)])
def test_rectangular_lu_returns_scipys_shapes_and_forms(rt, m, n):
    A = np.random.default_rng(m).standard_normal((m, n))
    k, tol = min(m, n), max(m, n) * eps(np.float64) * np.linalg.norm(A)
    P, L, U = (x.numpy() for x in npw.lu(npw.BigMatrix.from_numpy(A, 4)))
    P0, L0, U0 = sl.lu(A)
    assert (P.shape, L.shape, U.shape) == (P0.shape, L0.shape, U0.shape) == ((m, m), (m, k), (k, n))
    assert np.array_equal(P @ P.T, np.eye(m)) and set(np.unique(P)) == {0.0, 1.0}
    assert np.array_equal(np.diag(L), np.ones(k)) and np.array_equal(L, np.tril(L)) and np.array_equal(U, np.triu(U))
    assert np.linalg.norm(P @ L @ U - A) <= tol
    p, L2, U2 = npw.lu(A, p_indices=True, block_size=4)
    assert p.shape == sl.lu(A, p_indices=True)[0].shape == (m,) and p.dtype.kind == "i"
    assert np.array_equal(L2.numpy()[p], P @ L) and np.array_equal(U2.numpy(), U)
    PL, U3 = npw.lu(A, permute_l=True, block_size=4)
    assert np.array_equal(U3.numpy(), U)
    assert PL.shape == sl.lu(A, permute_l=True)[0].shape and np.array_equal(PL.numpy(), P @ L)
    lu, piv = npw.lu_factor(A, block_size=4)
    lu0, piv0 = sl.lu_factor(A)
    assert lu.shape == lu0.shape and piv.shape == piv0.shape == (k,) and piv.dtype == piv0.dtype
    assert np.array_equal(np.tril(lu.numpy(), -1)[:, :k] + np.eye(m, k), L2.numpy())  # packed as getrf
    assert np.array_equal(pivoted_order(piv, m), np.argsort(p))  # piv means what scipy's means
    lu1, piv1 = npw.lu_factor(A, block_size=16)  # one tile: the tournament is getrf, the factors scipy's
    assert np.array_equal(piv1, piv0) and np.allclose(lu1.numpy(), lu0, rtol=0, atol=10 * n * eps(np.float64))


def pivoted_order(piv: np.ndarray, m: int) -> np.ndarray:
    """The rows of A in the order of P A, from (fewer than m) LAPACK pivots."""
    order = np.arange(m)
    for r, q in enumerate(piv):
        order[[r, q]] = order[[q, r]]
    return order


def test_rectangular_float32_and_singular_inputs_follow_scipy(rt):
    A = np.random.default_rng(12).standard_normal((17, 6)).astype(np.float32)
    p, L, U = npw.lu(A, p_indices=True, block_size=4)
    assert L.dtype == U.dtype == np.float32
    assert backward_error(A, np.argsort(p), L.numpy(), U.numpy()) <= 17 * eps(np.float32)
    S = np.random.default_rng(13).standard_normal((6, 17))
    S[:, 2] = 0.0  # getrf: U[2, 2] is exactly zero; scipy's lu returns it, its lu_factor warns
    p, L, U = npw.lu(S, p_indices=True, block_size=4)
    assert U.numpy()[2, 2] == 0.0 and np.linalg.norm(L.numpy()[p] @ U.numpy() - S) <= 17 * eps(np.float64) * 10
    with pytest.warns(sl.LinAlgWarning, match="Diagonal number 3 is exactly zero. Singular matrix."):
        lu, piv = npw.lu_factor(S, block_size=4)
    with pytest.warns(sl.LinAlgWarning, match="Diagonal number 3 is exactly zero. Singular matrix."):
        sl.lu_factor(S)
    assert lu.shape == S.shape and piv.shape == (6,)
    with pytest.raises(np.linalg.LinAlgError, match=r"lu: a is singular: .*pivot of column 2 is exactly zero"):
        npw.lu(S[:, :6], block_size=4)  # square: the clear error stays
