"""Tiled QR, triangular solves, SPD solve and inverse, least squares.

Two layers: the programs' numerics on many shapes and block sizes through the reference
interpreter (the same programs and kernels, run serially: fast), and every user function
end to end on the embedded runtime (real executor processes) with a few small matrices.
Errors are backward errors with tolerances scaled by n·eps.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg as sl
from dag_oracle import assert_analysis_matches

import numpywren2 as npw
from lambdapack import interpret
from numpywren2.core import programs
from numpywren2.core.tiling import grid_shape, join, split

EPS = np.finfo(np.float64).eps


def spd(n: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def qr_by_interpreter(A: np.ndarray, b: int, complete: bool = False, rhs: np.ndarray | None = None):
    m, n = A.shape
    M, N = grid_shape(A.shape, b)
    k = min(m, n)
    q_cols = m if complete else k
    C = grid_shape(rhs.shape, b)[1] if rhs is not None else 0
    bound = programs.qr_factor.bind(M=M, N=N, C=C)
    out = interpret(bound, {"A": split(A, b), "B": split(rhs if rhs is not None else A, b)})
    form_q = programs.qr_form_q.bind(M=M, N=N, ROWS=m, BS=b, QC=-(-q_cols // b), QCOLS=q_cols, SINGLE=0)
    Q = join(interpret(form_q, {"V": out["V"], "T": out["T"]})["Q"], (m, q_cols), b)
    R = join(out["R"], (k, n), b)
    QtB = join(out["QtB"], rhs.shape, b) if rhs is not None else None
    return Q, R, QtB


def check_qr(A: np.ndarray, Q: np.ndarray, R: np.ndarray, factor: float = 5.0) -> None:
    m, n = A.shape
    k = min(m, n)
    tol = factor * max(m, n) * EPS
    assert Q.shape[0] == m and R.shape[1] == n
    assert np.linalg.norm(A - Q[:, :R.shape[0]] @ R) / np.linalg.norm(A) <= tol
    assert np.linalg.norm(Q.T @ Q - np.eye(Q.shape[1])) <= tol
    assert np.allclose(np.tril(R[:k, :k], -1), 0)
    check_r_matches_numpy(A, R[:k])


def check_r_matches_numpy(A: np.ndarray, R: np.ndarray) -> None:
    """R equals numpy's up to the signs of its rows."""
    Rn = np.linalg.qr(A, mode="r")
    signs = np.sign(np.diag(R)) * np.sign(np.diag(Rn))
    assert np.linalg.norm(signs[:, None] * R - Rn) <= 5 * max(A.shape) * EPS * np.linalg.norm(Rn)


# ---------------------------------------------------------------- programs, by the reference interpreter

@pytest.mark.parametrize("m, n, b", [
    (32, 32, 8), (30, 30, 7), (48, 16, 8), (50, 13, 8), (16, 48, 8), (13, 50, 8), (9, 10, 4), (10, 9, 4),
    (5, 12, 4), (37, 11, 4), (23, 7, 3), (8, 8, 16), (1, 1, 4), (1, 6, 4), (6, 1, 4), (64, 24, 5),
])
def test_qr_program_tall_square_wide_even_ragged(m, n, b):
    A = np.random.default_rng(m * 100 + n).standard_normal((m, n))
    Q, R, _ = qr_by_interpreter(A, b)
    check_qr(A, Q, R)


@pytest.mark.parametrize("m, n, b", [(30, 12, 8), (12, 30, 8), (17, 17, 5)])
def test_qr_program_complete_q(m, n, b):
    A = np.random.default_rng(3).standard_normal((m, n))
    Q, R, _ = qr_by_interpreter(A, b, complete=True)
    assert Q.shape == (m, m)
    check_qr(A, Q, R)


@pytest.mark.parametrize("m, n, c, b", [(40, 12, 1, 8), (37, 11, 5, 4), (20, 20, 3, 6), (30, 10, 7, 3)])
def test_qr_program_applies_qt_to_right_hand_sides(m, n, c, b):
    rng = np.random.default_rng(4)
    A, B = rng.standard_normal((m, n)), rng.standard_normal((m, c))
    Q, _, QtB = qr_by_interpreter(A, b, complete=True, rhs=B)
    assert np.linalg.norm(QtB - Q.T @ B) <= 10 * m * EPS * np.linalg.norm(B)
    M, N = grid_shape(A.shape, b)
    bound = programs.qr_lstsq.bind(M=M, N=N, C=grid_shape(B.shape, b)[1], BS=b)
    X = join(interpret(bound, {"A": split(A, b), "B": split(B, b)})["X"], (n, c), b)
    Xn = np.linalg.lstsq(A, B, rcond=None)[0]
    assert np.linalg.norm(X - Xn) <= 100 * m * EPS * np.linalg.norm(Xn)


def triangular(n: int, lower: bool, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n)) / np.sqrt(n)
    T = (np.tril(g) if lower else np.triu(g)) + 2 * np.eye(n)
    T[np.triu_indices(n, 1) if lower else np.tril_indices(n, -1)] = np.nan  # the other triangle is never read
    return T


@pytest.mark.parametrize("n, c, b", [(24, 8, 8), (29, 5, 6), (7, 3, 16)])
@pytest.mark.parametrize("lower, trans", [(True, 0), (True, 1), (False, 0), (False, 1)])
def test_triangular_programs(n, c, b, lower, trans):
    T = triangular(n, lower)
    B = np.random.default_rng(1).standard_normal((n, c))
    forward = lower != bool(trans)
    program = programs.trsm_forward if forward else programs.trsm_backward
    N, C = grid_shape((n, c), b)
    out = interpret(program.bind(N=N, C=C, TRANS=trans, UNIT=0, BS=b), {"T": split(T, b), "B": split(B, b)})
    X = join(out["X"], (n, c), b)
    Tc = np.nan_to_num(T)
    opT = Tc.T if trans else Tc
    assert np.linalg.norm(opT @ X - B) / (np.linalg.norm(Tc) * np.linalg.norm(X)) <= 10 * n * EPS
    assert np.allclose(X, sl.solve_triangular(Tc, B, lower=lower, trans=trans))
    # unit_diagonal: the diagonal is not read (zeros there must neither raise nor matter)
    Tu = T.copy()
    np.fill_diagonal(Tu, 0.0)
    out = interpret(program.bind(N=N, C=C, TRANS=trans, UNIT=1, BS=b), {"T": split(Tu, b), "B": split(B, b)})
    Xu = join(out["X"], (n, c), b)
    assert np.allclose(Xu, sl.solve_triangular(np.nan_to_num(Tu), B, lower=lower, trans=trans, unit_diagonal=True))


@pytest.mark.parametrize("n, c, b", [(24, 3, 8), (31, 1, 7), (5, 2, 8)])
def test_posv_and_inverse_programs(n, c, b):
    A = spd(n, 2)
    B = np.random.default_rng(2).standard_normal((n, c))
    N, C = grid_shape((n, c), b)
    out = interpret(programs.posv.bind(N=N, C=C, BS=b), {"A": split(A, b), "B": split(B, b)})
    X = join(out["X"], (n, c), b)
    assert np.linalg.norm(A @ X - B) / (np.linalg.norm(A) * np.linalg.norm(X)) <= 10 * n * EPS
    out = interpret(programs.spd_inverse.bind(N=N, BS=b), {"A": split(A, b)})
    Ai = join(out["X"], (n, n), b)
    assert np.linalg.norm(A @ Ai - np.eye(n)) / (np.linalg.norm(A) * np.linalg.norm(Ai)) <= 10 * n * EPS
    assert np.allclose(Ai, Ai.T, rtol=0, atol=10 * n * EPS * np.abs(Ai).max())


# ---------------------------------------------------------------- the implicit DAG and task counts

def unpaired(P: int) -> int:
    """Copies per column of one TSQR tree over P leaves: levels at which the node count is odd."""
    return sum(1 for level in range(math.ceil(math.log2(P)) if P > 1 else 0) if -(-P // 2**level) % 2)


def qr_task_count(M: int, N: int, C: int, QC: int) -> int:
    """The count given in docs/algorithms.md."""
    K = min(M, N)
    factor = sum((N + C - k) * (2 * (M - k) - 1 + unpaired(M - k) + (M - k == 1)) for k in range(K))
    form_q = M * QC + sum((QC - k) * (2 * (M - k) - 1 + unpaired(M - k)) for k in range(K)) if QC else 0
    return factor + form_q


@pytest.mark.parametrize("M, N, C, QC", [(1, 1, 0, 0), (1, 1, 0, 1), (2, 2, 1, 2), (3, 5, 0, 3), (5, 3, 1, 0),
                                         (5, 3, 0, 5), (4, 4, 2, 4), (7, 2, 1, 2), (6, 6, 0, 6), (9, 2, 0, 0)])
def test_qr_dag_matches_unrolled_and_task_count(M, N, C, QC):
    factor = programs.qr_factor.bind(M=M, N=N, C=C, validate="full")
    assert_analysis_matches(factor)
    tasks = factor.num_tasks()
    if QC:
        form_q = programs.qr_form_q.bind(M=M, N=N, ROWS=4 * M, BS=4, QC=QC, QCOLS=4 * QC, SINGLE=0, validate="full")
        assert_analysis_matches(form_q)
        tasks += form_q.num_tasks()
    assert tasks == qr_task_count(M, N, C, QC)
    if M >= N and C:  # least squares: the backward substitution adds C·N(N+1)/2 tasks
        bound = programs.qr_lstsq.bind(M=M, N=N, C=C, BS=4, validate="full")
        assert_analysis_matches(bound)
        assert bound.num_tasks() == qr_task_count(M, N, C, 0) + C * N * (N + 1) // 2


def cholesky_tasks(N: int) -> int:
    return N + N * (N - 1) // 2 + (N + 1) * N * (N - 1) // 6


@pytest.mark.parametrize("N", [1, 2, 3, 5])
def test_solve_and_inverse_dags_match_unrolled_and_task_counts(N):
    for trans in (0, 1):
        for program in (programs.trsm_forward, programs.trsm_backward):
            bound = program.bind(N=N, C=2, TRANS=trans, UNIT=0, BS=4, validate="full")
            assert_analysis_matches(bound)
            assert bound.num_tasks() == 2 * N * (N + 1) // 2
    bound = programs.posv.bind(N=N, C=2, BS=4, validate="full")
    assert_analysis_matches(bound)
    assert bound.num_tasks() == cholesky_tasks(N) + 2 * 2 * N * (N + 1) // 2
    bound = programs.spd_inverse.bind(N=N, BS=4, validate="full")
    assert_analysis_matches(bound)
    assert bound.num_tasks() == cholesky_tasks(N) + N * (N + 1) * (N + 2) // 3 + N * (N - 1) // 2


# ---------------------------------------------------------------- end to end on the embedded runtime

@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


def test_qr_reduced_ragged_tall(rt):
    A = np.random.default_rng(10).standard_normal((70, 30))
    Q, R = npw.qr(A, block_size=16)
    assert isinstance(Q, npw.BigMatrix) and isinstance(R, npw.BigMatrix)
    assert Q.shape == (70, 30) and R.shape == (30, 30)
    check_qr(A, Q.numpy(), R.numpy())


def test_qr_r_mode_wide_bigmatrix_input(rt):
    X = np.random.default_rng(11).standard_normal((24, 40))
    A = npw.BigMatrix.from_numpy(X, 8)
    R = npw.qr(A, mode="r")
    assert isinstance(R, npw.BigMatrix) and R.shape == (24, 40)
    check_r_matches_numpy(X, R.numpy())


def test_qr_complete_and_float32(rt):
    X = np.random.default_rng(12).standard_normal((33, 20))
    Q, R = npw.qr(X, mode="complete", block_size=12)
    assert Q.shape == (33, 33) and R.shape == (33, 20)
    check_qr(X, Q.numpy(), R.numpy())
    X32 = X.astype(np.float32)
    Q, R = npw.qr(X32, block_size=12)
    Qn, Rn = Q.numpy(), R.numpy()
    assert Qn.dtype == np.float32 and Rn.dtype == np.float32
    eps32 = np.finfo(np.float32).eps
    assert np.linalg.norm(X32 - Qn @ Rn) / np.linalg.norm(X32) <= 10 * 33 * eps32
    assert np.linalg.norm(Qn.T @ Qn - np.eye(20)) <= 10 * 33 * eps32


def test_solve_triangular_vector_and_matrix(rt):
    n = 45
    L = np.nan_to_num(triangular(n, lower=True, seed=3))
    b = np.random.default_rng(13).standard_normal(n)
    x = npw.solve_triangular(L, b, lower=True, block_size=16)
    assert isinstance(x, np.ndarray) and x.shape == (n,)
    assert np.linalg.norm(L @ x - b) / (np.linalg.norm(L) * np.linalg.norm(x)) <= 10 * n * EPS
    assert np.allclose(x, sl.solve_triangular(L, b, lower=True))
    B = npw.BigMatrix.from_numpy(np.random.default_rng(14).standard_normal((n, 20)), (16, 8))
    X = npw.solve_triangular(npw.BigMatrix.from_numpy(L, 16), B, lower=True, trans="T")
    assert isinstance(X, npw.BigMatrix) and X.shape == (n, 20)
    Xn = X.numpy()
    assert np.linalg.norm(L.T @ Xn - B.numpy()) / (np.linalg.norm(L) * np.linalg.norm(Xn)) <= 10 * n * EPS


def test_solve_triangular_zero_on_the_diagonal_names_the_tile(rt):
    U = np.nan_to_num(triangular(40, lower=False, seed=4))
    U[21, 21] = 0.0
    with pytest.raises(np.linalg.LinAlgError, match=r"diagonal tile \(2, 2\) has a zero at its diagonal position 5 "
                                                   r"\(row 21 of the matrix\)"):
        npw.solve_triangular(U, np.ones(40), block_size=8)


def test_solve_spd(rt):
    n = 50
    A = spd(n, 5)
    b = np.random.default_rng(15).standard_normal(n)
    x = npw.solve(A, b, block_size=16)
    assert x.shape == (n,)
    assert np.linalg.norm(A @ x - b) / (np.linalg.norm(A) * np.linalg.norm(x)) <= 10 * n * EPS
    assert np.allclose(x, sl.solve(A, b, assume_a="pos"))


def test_solve_not_positive_definite_raises(rt):
    A = spd(40, 6)
    A[30, 30] = -100.0
    with pytest.raises(np.linalg.LinAlgError, match=r"task chol@.*\(k=3\).*not positive definite"):
        npw.solve(A, np.ones(40), assume_a="pos", block_size=10)


def test_inv_spd(rt):
    n = 45
    A = spd(n, 7)
    X = npw.inv(A, block_size=16)
    assert isinstance(X, npw.BigMatrix)
    Xn = X.numpy()
    assert np.linalg.norm(A @ Xn - np.eye(n)) / (np.linalg.norm(A) * np.linalg.norm(Xn)) <= 10 * n * EPS
    assert np.allclose(Xn, np.linalg.inv(A))


def test_lstsq_matches_numpy(rt):
    rng = np.random.default_rng(17)
    A = rng.standard_normal((90, 25))
    b = rng.standard_normal(90)
    x, res, rank, s = npw.lstsq(A, b, block_size=16)
    xn, resn, rankn, sn = np.linalg.lstsq(A, b, rcond=None)
    assert x.shape == (25,) and res.shape == (1,) and rank == rankn == 25
    assert s.shape == (25,) and np.abs(s - sn).max() <= 10 * 90 * EPS * sn[0]
    assert np.linalg.norm(x - xn) <= 100 * 90 * EPS * np.linalg.norm(xn)
    assert np.allclose(res, resn, rtol=1e-10)
    B = rng.standard_normal((90, 3))
    X, res, _, _ = npw.lstsq(npw.BigMatrix.from_numpy(A, 16), B)
    Xn, resn, _, _ = np.linalg.lstsq(A, B, rcond=None)
    assert isinstance(X, npw.BigMatrix) and np.linalg.norm(X.numpy() - Xn) <= 100 * 90 * EPS * np.linalg.norm(Xn)
    assert res.shape == (3,) and np.allclose(res, resn, rtol=1e-10)


def test_lstsq_square_and_rank_deficient(rt):
    rng = np.random.default_rng(18)
    A = rng.standard_normal((20, 20))
    b = rng.standard_normal(20)
    x, res, _, _ = npw.lstsq(A, b, block_size=8)
    assert res.shape == (0,) and np.allclose(A @ x, b)
    A = rng.standard_normal((30, 12))
    A[:, 9] = 0.0  # an exactly zero column: rank 11, the minimum-norm solution (x[9] = 0), as numpy
    b = rng.standard_normal(30)
    x, res, rank, _ = npw.lstsq(A, b, block_size=4)
    xn, _, rankn, _ = np.linalg.lstsq(A, b, rcond=None)
    assert rank == rankn == 11 and res.shape == (0,) and np.allclose(x, xn) and abs(x[9]) <= 100 * 30 * EPS


def test_bad_input_is_a_clear_error():
    square = np.eye(4)
    with pytest.raises(ValueError, match="mode"):
        npw.qr(square, mode="fulll")
    with pytest.raises(ValueError, match="2-D"):
        npw.qr(np.ones(5))
    with pytest.raises(ValueError, match="empty"):
        npw.qr(np.ones((0, 3)))
    with pytest.raises(ValueError, match="square"):
        npw.solve_triangular(np.ones((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match="b has 3 rows"):
        npw.solve_triangular(square, np.ones(3))
    with pytest.raises(ValueError, match="trans"):
        npw.solve_triangular(square, np.ones(4), trans="X")
    with pytest.raises(ValueError, match="square"):
        npw.solve(np.ones((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match="not a recognized matrix structure"):
        npw.solve(square, np.ones(4), assume_a="spd")
    with pytest.raises(ValueError, match="square"):
        npw.inv(np.ones((3, 4)))
    with pytest.raises(ValueError, match="b has 4 rows"):
        npw.lstsq(np.ones((3, 4)), np.ones(4))
    with pytest.raises(ValueError, match="infs or NaNs"):
        npw.solve(np.full((4, 4), np.nan), np.ones(4))
    with pytest.raises(ValueError, match="square tiles"):
        npw.qr(npw.BigMatrix.from_numpy(np.ones((8, 8)), (4, 2)))
    # a right-hand side tiled in other rows than the matrix is retiled by a job (it used to be an error)
    x = npw.solve(npw.BigMatrix.from_numpy(2 * np.eye(8), 4), npw.BigMatrix.from_numpy(np.ones((8, 1)), (2, 1)))
    assert x.block_size[0] == 4 and np.allclose(x.numpy(), 0.5)
