"""The symmetric eigenproblem: the band reduction program under the reference interpreter, and npw.eigh /
npw.eigvalsh end to end on the embedded runtime (real executor processes), against numpy/scipy.

Accuracy is measured as backward errors scaled by n·eps: ‖AV − VΛ‖_F/(‖A‖_F n eps) and
‖VᵀV − I‖_F/(n eps), required within a small constant of numpy's on the same matrix."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import numpywren2 as npw
from lambdapack import interpret
from numpywren2.client.eig import lower_band_storage
from numpywren2.core import programs
from numpywren2.core.kernels import band
from numpywren2.core.tiling import grid_shape, join, split


def random_symmetric(n: int, seed: int, dtype=np.float64) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return (g + g.T).astype(dtype)


def residuals(A: np.ndarray, w: np.ndarray, V: np.ndarray) -> tuple[float, float]:
    """(‖AV − VΛ‖/(‖A‖ n eps), ‖VᵀV − I‖/(n eps)) in A's precision, computed in float64."""
    n, eps = A.shape[0], np.finfo(A.dtype).eps
    A, w, V = A.astype(np.float64), w.astype(np.float64), V.astype(np.float64)
    return (np.linalg.norm(A @ V - V * w) / (np.linalg.norm(A) * n * eps),
            np.linalg.norm(V.T @ V - np.eye(V.shape[1])) / (n * eps))


def within_numpy(A: np.ndarray, w: np.ndarray, V: np.ndarray, factor: float = 10.0) -> None:
    """Both backward errors at most ``factor`` times numpy's (or than 1, whichever is larger)."""
    wr, Vr = np.linalg.eigh(A)
    ours, ref = residuals(A, w, V), residuals(A, wr, Vr)
    for name, x, r in zip(("‖AV − VΛ‖", "‖VᵀV − I‖"), ours, ref, strict=True):
        assert x <= factor * max(r, 1.0), f"{name}/(n eps) = {x:.3g}, numpy's {r:.3g}"


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


# --------------------------------------------------------------------------- the program, reference interpreter


def tree_copies(P: int) -> int:
    copies = 0
    while P > 1:
        copies += P % 2
        P = (P + 1) // 2
    return copies


def sym_band_task_count(N: int) -> int:
    """N² (the symmetric step 0) + N (the diagonal tiles of B) + per step, P = N − k − 1 panel tiles:
    (2P − 1 + c(P))·(1 + P) in the left tree and (2P − 1 + c(P))·P in the right one."""
    return N * N + N + sum((2 * P - 1 + tree_copies(P)) * (2 * P + 1) for P in range(1, N))


@pytest.mark.parametrize("N", [1, 2, 3, 4, 5, 8, 11])
def test_task_count(N):
    assert programs.sym_band_reduction.bind(N=N, LOWER=1).num_tasks() == sym_band_task_count(N)


@pytest.mark.parametrize("n, b, lower", [(16, 4, 1), (17, 5, 1), (23, 4, 0), (9, 9, 1), (10, 3, 0), (6, 1, 1),
                                         (40, 16, 1)])
def test_sym_band_reduction_program(n, b, lower):
    A = random_symmetric(n, seed=n * b)
    N = grid_shape(A.shape, b)[0]
    triangle = np.tril(A) if lower else np.triu(A)  # only that triangle may be read
    bound = programs.sym_band_reduction.bind(N=N, LOWER=lower, validate="full")
    out = interpret(bound, {"A": split(triangle, b)})
    B = np.tril(join(out["B"], (n, n), b))
    assert not np.tril(B, -b - 1).any(), "B is not banded with half-bandwidth b"
    Bs = B + np.tril(B, -1).T
    w_ref = np.linalg.eigvalsh(A)
    assert np.max(np.abs(np.linalg.eigvalsh(Bs) - w_ref)) <= 10 * n * np.finfo(float).eps * np.abs(w_ref).max()
    # the band storage the client builds, and V = Q Z by the kept reflectors
    Bm = npw.BigMatrix.from_numpy(join(out["B"], (n, n), b), b)
    try:
        band = lower_band_storage(Bm)
    finally:
        Bm.delete()
    w, Z = scipy.linalg.eig_banded(band, lower=True)
    V = Z
    if N > 1:
        back = programs.apply_reflectors.bind(R=N, NC=N, K=N - 1, OFF=1, TRANS=0, validate="full")
        V = join(interpret(back, {"C": split(Z, b), "V": out["Vq"], "T": out["Tq"]})["Out"], (n, n), b)
    within_numpy(A, w, V, factor=5.0)


def test_sym_band_reduction_program_float32():
    A = random_symmetric(30, seed=3, dtype=np.float32)
    out = interpret(programs.sym_band_reduction.bind(N=4, LOWER=1, validate="full"), {"A": split(A, 8)})
    B = np.tril(join(out["B"], (30, 30), 8))
    assert B.dtype == np.float32
    w = np.linalg.eigvalsh((B + np.tril(B, -1).T).astype(np.float64))
    w_ref = np.linalg.eigvalsh(A.astype(np.float64))
    assert np.max(np.abs(w - w_ref)) <= 10 * 30 * np.finfo(np.float32).eps * np.abs(w_ref).max()


def symmetric_band(n: int, b: int, seed: int) -> np.ndarray:
    a = np.tril(random_symmetric(n, seed))
    a -= np.tril(a, -b - 1)
    return a + np.tril(a, -1).T


@pytest.mark.parametrize("n, b, d", [(50, 10, 5), (57, 13, 7), (100, 40, 20), (33, 32, 16), (10, 3, 2)])
def test_reduce_symmetric_bandwidth_keeps_the_eigenvalues(n, b, d):
    a = symmetric_band(n, b, seed=n)
    w_ref = np.linalg.eigvalsh(a)
    band.reduce_symmetric_bandwidth(a, b, d)
    assert np.array_equal(a, a.T) and not np.tril(a, -d - 1).any(), "not symmetric with half-bandwidth d"
    assert np.max(np.abs(np.linalg.eigvalsh(a) - w_ref)) <= 10 * n * np.finfo(float).eps * np.abs(w_ref).max()


@pytest.mark.parametrize("n, b, dtype", [(1, 1, np.float64), (16, 4, np.float64), (17, 5, np.float64),
                                         (9, 9, np.float64), (150, 40, np.float64), (45, 8, np.float32)])
def test_sym_band_eigenvalues_program(n, b, dtype):
    """Band storage gathered up a tree, then one task (halving above SMALL_BAND, then sbevd); ragged, float32."""
    a = symmetric_band(n, b, seed=b).astype(dtype)
    N = grid_shape(a.shape, b)[0]
    bound = programs.sym_band_eigenvalues.bind(N=N, BS=b, validate="full")
    assert bound.num_tasks() == 2 * N + tree_copies(N)
    w = interpret(bound, {"B": split(np.tril(a), b)})["W"][0, 0]
    assert w.shape == (1, n) and w.dtype == dtype
    w_ref = np.linalg.eigvalsh(a.astype(np.float64))
    assert np.max(np.abs(w.ravel() - w_ref)) <= 10 * n * np.finfo(dtype).eps * np.abs(w_ref).max()


def sym_band_eigenvectors_task_count(N: int, NC: int) -> int:
    """The band gathered (2N − 1 + copies), one tridiagonalization, N row blocks of Q₂, NC eigenvector
    tasks, N·NC products."""
    return 2 * N + tree_copies(N) + N + NC + N * NC


@pytest.mark.parametrize("n, b, lo, r, dtype", [(1, 1, 0, 1, np.float64), (17, 5, 0, 17, np.float64),
                                                (150, 40, 0, 150, np.float64), (45, 8, 0, 45, np.float32),
                                                (33, 9, 4, 13, np.float64), (20, 20, 3, 2, np.float32)])
def test_sym_band_eigenvectors_program(n, b, lo, r, dtype):
    """Band → tridiagonal with Q₂ in one task, tridiagonal eigenvectors per index block, Z = Q₂ Z_T by tiles:
    the band's eigenpairs lo..lo+r−1 within c·n·eps of numpy's (halving passes run above SMALL_BAND)."""
    a = symmetric_band(n, b, seed=b + lo).astype(dtype)
    N, NC = grid_shape(a.shape, b)[0], -(-r // b)
    bound = programs.sym_band_eigenvectors.bind(N=N, NC=NC, BS=b, LO=lo, R=r, validate="full")
    assert bound.num_tasks() == sym_band_eigenvectors_task_count(N, NC)
    out = interpret(bound, {"B": split(np.tril(a), b)})
    w = np.hstack([out["W"][0, j] for j in range(NC)]).ravel()
    Z = join({(i, j): out["Z"][i, j] for i in range(N) for j in range(NC)}, (n, r), b)
    assert w.dtype == dtype and Z.dtype == dtype and Z.shape == (n, r)
    w_ref = np.linalg.eigvalsh(a.astype(np.float64))[lo:lo + r]
    eps = np.finfo(dtype).eps
    assert np.max(np.abs(w - w_ref)) <= 10 * n * eps * np.abs(w_ref).max()
    ours = residuals(a, w, Z)
    assert ours[0] <= 10 and ours[1] <= 10, ours


def test_tridiagonal_eigenpairs_keeps_a_cluster_cut_by_the_ranges_orthogonal():
    """Eigenvalues in clusters of 40 (gaps 1e-12) with range boundaries inside them: the vectors of
    separate ranges are orthogonal (a cluster is computed whole by a call of its own)."""
    n = 200
    rng = np.random.default_rng(3)
    lam = np.repeat(np.arange(5.0), 40) + 1e-12 * np.arange(n)
    Q = np.linalg.qr(rng.standard_normal((n, n)))[0]
    H = scipy.linalg.hessenberg((Q * lam) @ Q.T)
    t = np.zeros((2, n))
    t[0], t[1, :n - 1] = np.diag(H), np.diag(H, -1)
    parts = [band.tridiagonal_eigenpairs(t, lo, min(lo + 30, n) - 1) for lo in range(0, n, 30)]
    w = np.concatenate([p[0] for p in parts])
    Z = np.hstack([p[1] for p in parts])
    T = np.diag(t[0]) + np.diag(t[1, :n - 1], 1) + np.diag(t[1, :n - 1], -1)
    assert Z.shape == (n, n)
    assert np.max(np.abs(w - lam)) <= 10 * n * np.finfo(float).eps * 5
    ours = residuals(T, w, Z)
    assert ours[0] <= 10 and ours[1] <= 100, ours
    naive = np.hstack([scipy.linalg.eigh_tridiagonal(t[0], t[1, :n - 1], select="i",
                                                     select_range=(lo, min(lo + 30, n) - 1))[1]
                       for lo in range(0, n, 30)])
    assert residuals(T, w, naive)[1] > 1e3   # cutting the clusters would lose orthogonality


# --------------------------------------------------------------------------- npw.eigh on the runtime


@pytest.mark.parametrize("n, b, dtype", [(37, 10, np.float64), (29, 8, np.float32), (12, 12, np.float64)])
def test_eigh_vectors(rt, n, b, dtype):
    A = random_symmetric(n, seed=n, dtype=dtype)
    w, V = npw.eigh(A, block_size=b)
    assert isinstance(V, npw.BigMatrix) and V.shape == (n, n) and V.block_size == (b, b)
    assert w.dtype == dtype and V.dtype == dtype and w.shape == (n,)
    assert np.all(np.diff(w) >= 0)
    V = V.numpy()
    within_numpy(A, w, V)
    w_ref = scipy.linalg.eigvalsh(A.astype(np.float64))
    assert np.max(np.abs(w - w_ref)) <= 10 * n * np.finfo(dtype).eps * np.abs(w_ref).max()


def test_eigh_reads_one_triangle_and_takes_a_bigmatrix(rt):
    A = random_symmetric(26, seed=5)
    junk = np.triu(np.full((26, 26), 7.0), 1)   # never read: lower=True
    w_ref = np.linalg.eigvalsh(A)
    w = npw.eigvalsh(npw.BigMatrix.from_numpy(np.tril(A) + junk, 7))
    assert np.allclose(w, w_ref, rtol=0, atol=1e-12 * np.abs(w_ref).max())
    w, V = npw.eigh(np.triu(A) + junk.T, lower=False, block_size=7)
    within_numpy(A, w, V.numpy())


def test_eigh_subsets(rt):
    A = random_symmetric(33, seed=6)
    w_ref = np.linalg.eigvalsh(A)
    tol = 10 * 33 * np.finfo(float).eps * np.abs(w_ref).max()
    w, V = npw.eigh(A, subset_by_index=[3, 9], block_size=9)
    assert w.shape == (7,) and V.shape == (33, 7)
    assert np.max(np.abs(w - w_ref[3:10])) <= tol
    V = V.numpy()
    ours = residuals(A, w, V)
    assert ours[0] <= 10 and ours[1] <= 10, ours
    lo, hi = (w_ref[20] + w_ref[21]) / 2, (w_ref[25] + w_ref[26]) / 2
    w = npw.eigvalsh(A, subset_by_value=(lo, hi), block_size=9)
    assert np.max(np.abs(w - w_ref[21:26])) <= tol
    w, V = npw.eigh(A, subset_by_value=(lo, hi), block_size=9)
    assert w.shape == (5,) and V.shape == (33, 5) and np.max(np.abs(w - w_ref[21:26])) <= tol
    ours = residuals(A, w, V.numpy())
    assert ours[0] <= 10 and ours[1] <= 10, ours
    w, V = npw.eigh(A, subset_by_value=(w_ref[-1] + 1, w_ref[-1] + 2), block_size=9)
    assert w.shape == (0,) and V.shape == (33, 0)
    assert np.allclose(npw.eigvalsh(A, subset_by_index=(32, 32), block_size=9), w_ref[32:], rtol=1e-12)


@pytest.mark.parametrize("a, kwargs, error, match", [
    (np.ones((3, 4)), {}, ValueError, "expected square matrix"),
    (np.ones(3), {}, ValueError, "2-D"),
    (np.array([[1.0, np.nan], [np.nan, 1.0]]), {}, ValueError, "infs or NaNs"),
    (np.eye(3), {"subset_by_index": [2, 1]}, ValueError, "indices are not valid"),
    (np.eye(3), {"subset_by_index": [0, 3]}, ValueError, "indices are not valid"),
    (np.eye(3), {"subset_by_index": [0, 1], "subset_by_value": [0, 1]}, ValueError, "Either index or value"),
    (np.eye(3), {"b": np.eye(3)}, NotImplementedError, "generalized"),
    (np.eye(3) + 1j, {}, TypeError, "complex"),
    (np.eye(4), {"block_size": (2, 1)}, ValueError, "square tiles"),
])
def test_eigh_argument_errors(a, kwargs, error, match):
    with pytest.raises(error, match=match):
        npw.eigh(a, **kwargs)


def test_eigh_of_a_nan_bigmatrix_is_found_by_the_executors(rt):
    X = np.eye(6)
    X[4, 1] = np.inf
    with pytest.raises(ValueError, match="infs or NaNs"):
        npw.eigvalsh(npw.BigMatrix.from_numpy(X, 3))
