"""The rest of numpy.linalg (issue 14, item 5): lstsq through the SVD, pinv, matrix_rank, norm, cond, the QR
modes (numpy's "raw", scipy's names, pivoting), svd's full_matrices / hermitian, and the PCA class.

Two layers, as in test_qr_solve: the new programs through the reference interpreter on many shapes
(fast), and every function end to end on the embedded runtime (real executor processes), against
numpy / scipy (scikit-learn's PCA by its formulas: it is not a dependency), float64 and float32, ragged
tilings.  Tolerances are backward errors scaled by n·eps of the dtype.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import numpywren2 as npw
from lambdapack import interpret
from numpywren2.core import programs
from numpywren2.core.tiling import grid_shape, join, split

EPS64, EPS32 = np.finfo(np.float64).eps, np.finfo(np.float32).eps


def with_singular_values(m: int, n: int, s, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """An m×n matrix with the singular values ``s`` (padded with zeros to min(m, n))."""
    rng = np.random.default_rng(seed)
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    full = np.zeros(r)
    full[:len(s)] = s
    return ((U * full) @ V.T).astype(dtype)


def copies(P: int) -> int:
    """u(P) of docs/algorithms.md: the copies of a binary tree over P leaves."""
    levels = int(np.ceil(np.log2(P))) if P > 1 else 0
    return sum(1 for level in range(levels) if -(-P // 2**level) % 2 == 1)


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


# --------------------------------------------------------------------------- programs, reference interpreter


@pytest.mark.parametrize("m, n, b", [(12, 12, 4), (13, 7, 4), (7, 13, 3), (10, 3, 4), (5, 5, 8), (30, 9, 4),
                                     (9, 9, 3)])
def test_householder_reconstruction_gives_lapacks_geqrf_reflectors(m, n, b):
    """LU without pivoting of Q − S (householder_lu) turns numpy's Q into LAPACK's (h, tau) of the same A."""
    A = np.random.default_rng(m * n).standard_normal((m, n))
    k = min(m, n)
    Q, R = np.linalg.qr(A)  # Q m×k
    M, K = grid_shape(Q.shape, b)
    bound = programs.householder_lu.bind(M=M, K=K, validate="full")
    out = interpret(bound, {"Q": split(Q, b)})
    lu = join(out["LU"], (m, k), b)
    s = join(out["S"], (k, 1), (b, 1))[:, 0]
    a = np.zeros((m, n))
    a[:, :k] = np.tril(lu, -1)
    a[:k] += s[:, None] * R
    h, tau = np.linalg.qr(A, mode="raw")
    assert np.abs(a.T - h).max() <= 50 * m * EPS64 * np.abs(h).max()
    assert np.abs(-s * np.diagonal(lu)[:k] - tau).max() <= 50 * m * EPS64
    tasks = sum(1 + (M - 1 - c) + (K - 1 - c) * (M - c) for c in range(K))  # docs/algorithms.md
    assert bound.num_tasks() == tasks


@pytest.mark.parametrize("m, n, b", [(1, 1, 1), (9, 7, 4), (7, 9, (3, 2)), (16, 5, (4, 5)), (40, 13, (5, 3))])
def test_norm_reductions_and_their_task_counts(m, n, b):
    X = np.random.default_rng(m + n).standard_normal((m, n))
    M, N = grid_shape(X.shape, b)
    br, bc = (b, b) if isinstance(b, int) else b
    for kind, expected in ((0, np.abs(X).sum(axis=0)), (1, (X**2).sum(axis=0))):
        bound = programs.column_norms.bind(M=M, N=N, KIND=kind, validate="full")
        out = interpret(bound, {"A": split(X, b)})
        assert np.allclose(join(out["Out"], (1, n), (1, bc))[0], expected)
        assert bound.num_tasks() == N * (2 * M - 1 + copies(M))
    bound = programs.row_norms.bind(M=M, N=N, validate="full")
    out = interpret(bound, {"A": split(X, b)})
    assert np.allclose(join(out["Out"], (m, 1), (br, 1))[:, 0], np.abs(X).sum(axis=1))
    assert bound.num_tasks() == M * (2 * N - 1 + copies(N))


def test_scalings_of_the_pseudo_inverse():
    rng = np.random.default_rng(3)
    U, d, e = rng.standard_normal((11, 7)), rng.standard_normal(7), rng.standard_normal(11)
    M, N = grid_shape(U.shape, 4)
    out = interpret(programs.scaled_transpose_of.bind(M=M, N=N, validate="full"),
                    {"U": split(U, 4), "D": split(d[:, None], (4, 1))})
    assert np.allclose(join(out["W"], (7, 11), 4), d[:, None] * U.T)
    out = interpret(programs.scale_rows_by.bind(M=M, N=N, validate="full"),
                    {"A": split(U, 4), "D": split(e[:, None], (4, 1))})
    assert np.allclose(join(out["X"], (11, 7), 4), e[:, None] * U)


@pytest.mark.parametrize("m, n, c, b, res", [(13, 7, 2, 4, 1), (7, 13, 1, 3, 0), (5, 5, 3, 5, 1), (21, 4, 2, 4, 1)])
def test_svd_solve_and_pinv_from_svd_programs(m, n, c, b, res):
    """The products after the SVD (reference interpreter): x = Vtᵀ diag(d) Uᵀ B and its residuals, Vtᵀ diag(d) Uᵀ;
    their task counts are those of docs/algorithms.md."""
    rng = np.random.default_rng(m * n + c)
    A, B = rng.standard_normal((m, n)), rng.standard_normal((m, c))
    U, s, Vt = np.linalg.svd(A, full_matrices=False)
    k = s.size
    d = 1.0 / s
    M, K = grid_shape(U.shape, b)
    N, C = grid_shape((n, c), b)
    g = programs.svd_solve.bind(M=M, K=K, N=N, C=C, RES=res, validate="full")
    out = interpret(g, {"U": split(U, b), "D": split(d[:, None], (b, 1)), "Vt": split(Vt, b), "A": split(A, b),
                        "B": split(B, b)})
    x = join(out["X"], (n, c), b)
    assert np.allclose(x, np.linalg.lstsq(A, B, rcond=None)[0])
    if res:
        assert np.allclose(join(out["Res"], (1, c), (1, b))[0], ((B - A @ x) ** 2).sum(axis=0))

    def products(rows, cols, inner):  # gemm_tn: a sum_tree over `inner` terms per tile
        return rows * cols * (2 * inner - 1 + copies(inner))

    tasks = products(K, C, M) + K * C + products(N, C, K) + res * (M * N * C + C * (2 * M - 1 + copies(M)))
    assert g.num_tasks() == tasks
    p = programs.pinv_from_svd.bind(M=M, K=K, N=N, validate="full")
    out = interpret(p, {"U": split(U, b), "D": split(d[:, None], (b, 1)), "Vt": split(Vt, b)})
    assert np.allclose(join(out["X"], (n, m), b), np.linalg.pinv(A))
    assert p.num_tasks() == M * K + products(N, M, K)
    assert k == min(m, n)


# --------------------------------------------------------------------------- lstsq, pinv, matrix_rank


def test_lstsq_near_duplicate_column_is_rank_deficient_like_numpy(rt):
    """The issue's case: a near-duplicate column. numpy (gelsd) says rank n - 1 and a small x; so does lstsq,
    and s and x agree with numpy's; no residuals (rank < n), as numpy."""
    rng = np.random.default_rng(14)
    A = rng.standard_normal((41, 13))
    A[:, 5] = A[:, 4] + 1e-15 * rng.standard_normal(41)
    b = rng.standard_normal(41)
    x, res, rank, s = npw.lstsq(A, b, block_size=8)
    xn, resn, rankn, sn = np.linalg.lstsq(A, b, rcond=None)
    assert rank == rankn == 12 and res.shape == resn.shape == (0,)
    assert x.shape == (13,) and np.abs(x).max() < 10
    assert np.linalg.norm(x - xn) <= 100 * 41 * EPS64 * np.linalg.norm(xn)
    assert np.abs(s - sn).max() <= 10 * 41 * EPS64 * sn[0]


def test_lstsq_wide_float32_bigmatrices_minimum_norm(rt):
    """A wide system: the minimum-norm solution; rcond (numpy's) drops the singular values below 0.5 s[0]."""
    A = with_singular_values(11, 26, np.linspace(3.0, 1.0, 11), seed=2, dtype=np.float32)
    B = np.random.default_rng(2).standard_normal((11, 2)).astype(np.float32)
    X, res, rank, s = npw.lstsq(npw.BigMatrix.from_numpy(A, 5), npw.BigMatrix.from_numpy(B, (5, 2)), rcond=0.5)
    Xn, _, rankn, sn = np.linalg.lstsq(A.astype(np.float64), B.astype(np.float64), rcond=0.5)
    assert isinstance(X, npw.BigMatrix) and X.shape == (26, 2) and X.dtype == np.float32
    assert rank == rankn == 8 and res.shape == (0,) and s.dtype == np.float32
    assert np.linalg.norm(X.numpy() - Xn) <= 30 * 26 * EPS32 * np.linalg.norm(Xn) * 3.0
    assert np.abs(s - sn).max() <= 10 * 26 * EPS32 * sn[0]


def test_lstsq_float32_tall_residuals(rt):
    A = with_singular_values(37, 10, np.linspace(4.0, 1.0, 10), seed=5, dtype=np.float32)
    b = np.random.default_rng(5).standard_normal(37).astype(np.float32)
    x, res, rank, s = npw.lstsq(A, b, block_size=6)
    xn, resn, rankn, _ = np.linalg.lstsq(A.astype(np.float64), b.astype(np.float64), rcond=None)
    assert x.dtype == res.dtype == s.dtype == np.float32 and rank == rankn == 10 and res.shape == (1,)
    assert np.linalg.norm(x - xn) <= 30 * 37 * EPS32 * np.linalg.norm(xn) * 4.0
    assert abs(res[0] - resn[0]) <= 30 * 37 * EPS32 * resn[0]


def test_pinv_of_a_rank_deficient_ragged_matrix_satisfies_penrose(rt):
    A = with_singular_values(23, 17, [5.0, 4.0, 3.0, 2.0, 1.5, 1.0, 0.8, 0.5, 0.25], seed=7)  # rank 9
    X = npw.pinv(A, block_size=6)
    assert isinstance(X, npw.BigMatrix) and X.shape == (17, 23) and X.block_size == (6, 6)
    P = X.numpy()
    tol = 100 * 23 * EPS64
    assert np.linalg.norm(A @ P @ A - A) <= tol * np.linalg.norm(A)
    assert np.linalg.norm(P @ A @ P - P) <= tol * np.linalg.norm(P) * 4
    assert np.linalg.norm(P - np.linalg.pinv(A)) <= tol * np.linalg.norm(P) * 4
    W = A.T.astype(np.float32)  # wide, float32, a BigMatrix
    P32 = npw.pinv(npw.BigMatrix.from_numpy(W, 5), rtol=None).numpy()
    assert P32.dtype == np.float32 and np.linalg.norm(P32 - np.linalg.pinv(W, rtol=None)) <= 1e-3 * np.linalg.norm(P)
    with pytest.raises(ValueError, match=r"rtol.*rcond.*both"):
        npw.pinv(A, rcond=1e-3, rtol=1e-3)
    with pytest.raises(np.linalg.LinAlgError, match="must be square"):
        npw.pinv(A, hermitian=True)


def test_matrix_rank_like_numpy(rt):
    A = with_singular_values(14, 19, [3.0, 2.0, 1.0, 1e-6, 1e-15], seed=4)
    assert npw.matrix_rank(A, block_size=5) == np.linalg.matrix_rank(A) == 4
    assert npw.matrix_rank(npw.BigMatrix.from_numpy(A, 5), tol=1e-5) == np.linalg.matrix_rank(A, tol=1e-5) == 3
    assert npw.matrix_rank(np.zeros(4)) == 0 and npw.matrix_rank(np.ones(3)) == 1  # vectors: numpy's rule


# --------------------------------------------------------------------------- norm, cond


def test_norms_of_every_order(rt):
    X = np.random.default_rng(8).standard_normal((19, 11))
    A32 = npw.BigMatrix.from_numpy(X.astype(np.float32), (4, 3))  # ragged, non-square tiles: the reductions
    for ord in (None, 1, -np.inf):
        value = npw.norm(A32, ord)
        assert value.dtype == np.float32
        assert abs(value - np.linalg.norm(X, ord)) <= 10 * 19 * EPS32 * np.linalg.norm(X, ord)
    for ord in ("fro", -1, np.inf, 2, -2, "nuc"):
        value = npw.norm(X, ord, block_size=5)
        assert value.dtype == np.float64
        assert abs(value - np.linalg.norm(X, ord)) <= 10 * 19 * EPS64 * np.linalg.norm(X, ord), ord
    assert npw.norm(X[:, 0]) == np.linalg.norm(X[:, 0])  # a vector: numpy's, on the client
    S = X.T @ X + np.eye(11)
    L = npw.cholesky(S, block_size=4)  # no tiles above the diagonal: they read as zeros
    assert np.isclose(npw.norm(L, 1), np.linalg.norm(np.linalg.cholesky(S), 1), rtol=100 * 11 * EPS64)
    assert npw.norm(np.eye(3), keepdims=True, block_size=2).shape == (1, 1)
    for bad in (3, "f", 0.5, True):
        with pytest.raises(ValueError, match="Invalid norm order"):
            npw.norm(X, bad)
    with pytest.raises(NotImplementedError, match="axis"):
        npw.norm(X, axis=0)


def test_cond_like_numpy(rt):
    A = with_singular_values(13, 13, np.linspace(50.0, 1.0, 13), seed=9)
    assert abs(npw.cond(A, block_size=4) - 50.0) <= 100 * 13 * EPS64 * 50
    assert abs(npw.cond(A, 1, block_size=4) - np.linalg.cond(A, 1)) <= 1e3 * 13 * EPS64 * np.linalg.cond(A, 1)
    assert npw.cond(np.ones((6, 6)), np.inf, block_size=3) == np.inf == np.linalg.cond(np.ones((6, 6)), np.inf)
    assert abs(npw.cond(A[:, :7].astype(np.float32), block_size=4) - np.linalg.cond(A[:, :7])) <= 1e-4 * 50
    with pytest.raises(np.linalg.LinAlgError, match="must be square"):
        npw.cond(A[:, :7], "fro", block_size=4)


# --------------------------------------------------------------------------- qr modes and pivoting


def test_qr_raw_is_numpys(rt):
    for shape, dtype in (((17, 6), np.float64), ((6, 17), np.float32)):
        A = np.random.default_rng(shape[0]).standard_normal(shape).astype(dtype)
        h, tau = npw.qr(A, mode="raw", block_size=4)
        hn, taun = np.linalg.qr(A, mode="raw")  # LAPACK sgeqrf / dgeqrf
        eps = np.finfo(dtype).eps
        assert h.shape == hn.shape and tau.shape == taun.shape and h.dtype == tau.dtype == dtype
        assert np.abs(h - hn).max() <= 100 * 17 * eps * np.abs(hn).max()
        assert np.abs(tau - taun).max() <= 100 * 17 * eps
    with pytest.raises(ValueError, match=r"raw.*pivoting"):
        npw.qr(A, mode="raw", pivoting=True)


@pytest.mark.parametrize("shape, dtype, mode", [((29, 11), np.float64, "economic"), ((9, 22), np.float32, "full"),
                                                ((14, 14), np.float64, "r")])
def test_qr_with_column_pivoting(rt, shape, dtype, mode):
    m, n = shape
    rng = np.random.default_rng(m * n)
    A = rng.standard_normal(shape)
    A[:, 3] = 2 * A[:, 1]  # rank deficient: pivoting puts the zero column of R last
    A = A.astype(dtype)
    out = npw.qr(A, mode=mode, pivoting=True, block_size=5)
    R, P = (out[0], out[1]) if mode == "r" else (out[1], out[2])
    R = R.numpy()
    eps = np.finfo(dtype).eps
    d = np.abs(np.diag(R))
    assert sorted(P) == list(range(n)) and np.all(d[1:] <= d[:-1] * (1 + 10 * eps))  # like geqp3
    assert np.allclose(d, np.abs(np.diag(scipy.linalg.qr(A.astype(np.float64), pivoting=True)[1])),
                       atol=100 * n * eps * d[0])
    if mode != "r":
        Q = out[0].numpy()
        assert Q.shape == ((m, m) if mode == "full" else (m, min(m, n)))
        assert np.linalg.norm(Q @ R - A[:, P]) <= 100 * m * eps * np.linalg.norm(A)
        assert np.linalg.norm(Q.T @ Q - np.eye(Q.shape[1])) <= 100 * m * eps


# --------------------------------------------------------------------------- svd options


def test_svd_full_matrices_tall_and_wide(rt):
    for shape, dtype in (((17, 9), np.float32), ((9, 17), np.float64)):
        A = np.random.default_rng(shape[0] * 3).standard_normal(shape).astype(dtype)
        m, n = shape
        U, s, Vt = npw.svd(A, full_matrices=True, block_size=4)
        eps = np.finfo(dtype).eps
        assert U.shape == (m, m) and Vt.shape == (n, n) and s.shape == (min(m, n),)
        U, Vt = U.numpy(), Vt.numpy()
        k = min(m, n)
        assert np.linalg.norm(U.T @ U - np.eye(m)) <= 100 * m * eps
        assert np.linalg.norm(Vt @ Vt.T - np.eye(n)) <= 100 * n * eps
        assert np.linalg.norm((U[:, :k] * s) @ Vt[:k] - A) <= 100 * max(m, n) * eps * s[0]
    S = np.random.default_rng(1).standard_normal((10, 10))
    S = S + S.T
    sh = npw.svd(S, compute_uv=False, hermitian=True, block_size=4)
    assert np.allclose(sh, np.linalg.svd(S, compute_uv=False, hermitian=True))
    with pytest.raises(np.linalg.LinAlgError, match="must be square"):
        npw.svd(A, hermitian=True)
    with pytest.raises(ValueError, match=r"full_matrices=True.*k"):
        npw.svd(A, k=2, full_matrices=True)


# --------------------------------------------------------------------------- PCA


def test_pca_class_like_sklearn(rt):
    rng = np.random.default_rng(21)
    X = rng.standard_normal((47, 9)) @ np.diag([5.0, 3.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1, 0.05]) + 3.0
    Xc = X - X.mean(axis=0)
    U, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    signs = np.sign(Vt[np.arange(9), np.argmax(np.abs(Vt), axis=1)])  # scikit-learn's sign convention
    Vt, U = Vt * signs[:, None], U * signs
    ratios = s**2 / np.sum(s**2)
    P = npw.PCA(n_components=0.9, block_size=8)
    Z = P.fit_transform(X)
    k = int(np.searchsorted(np.cumsum(ratios), 0.9, side="right")) + 1  # scikit-learn's rule for a float
    assert P.n_components_ == k and Z.shape == (47, k)
    assert np.allclose(P.components_, Vt[:k]) and np.allclose(P.singular_values_, s[:k])
    assert np.allclose(P.explained_variance_ratio_, ratios[:k]) and np.allclose(P.mean_, X.mean(axis=0))
    assert np.allclose(P.explained_variance_, s[:k] ** 2 / 46)
    assert np.isclose(P.noise_variance_, np.sum(s[k:] ** 2) / 46 / (9 - k))
    assert np.allclose(Z, U[:, :k] * s[:k]) and np.allclose(P.transform(X), Z)
    assert np.allclose(P.transform(npw.BigMatrix.from_numpy(X, (16, 9))), Z)
    assert np.allclose(P.inverse_transform(Z), X.mean(axis=0) + (U[:, :k] * s[:k]) @ Vt[:k])
    full = npw.PCA(block_size=8).fit(X.astype(np.float32))  # None: every component, exact inverse
    assert full.n_components_ == 9 and np.allclose(full.explained_variance_ratio_.sum(), 1.0)
    assert np.allclose(full.inverse_transform(full.transform(X)), X, atol=1e-4 * np.abs(X).max())
    with pytest.warns(DeprecationWarning, match="k= is deprecated, use n_components="):
        assert np.allclose(npw.pca(X, k=2, block_size=(16, 9)).singular_values_, s[:2])
    with pytest.raises(ValueError, match="not fitted"):
        npw.PCA(2).transform(X)
    with pytest.raises(ValueError, match="'mle' is not supported"):
        npw.PCA("mle").fit(X)
