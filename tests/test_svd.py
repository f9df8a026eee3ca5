"""SVD and PCA: the programs under the reference interpreter on many shapes, and npw.svd / npw.pca end
to end on the embedded runtime (real executor processes), against scipy/numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import numpywren2 as npw
from lambdapack import interpret
from numpywren2.core import programs
from numpywren2.core.kernels import band
from numpywren2.core.tiling import grid_shape, join, split

EPS = np.finfo(float).eps


def well_conditioned(m: int, n: int, seed: int = 0, cond: float = 10.0) -> np.ndarray:
    """A random m×n matrix with singular values spread evenly in [1, cond]."""
    rng = np.random.default_rng(seed)
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (U * np.linspace(cond, 1.0, r)) @ V.T


def paper_matrix(m: int, n: int, seed: int = 0) -> np.ndarray:
    """The test matrix of "Randomized SVD for Serverless Systems": σ1 = 100, σi = 2^(1-i) σ1."""
    rng = np.random.default_rng(seed)
    r = min(m, n)
    U, _ = np.linalg.qr(rng.standard_normal((m, r)))
    V, _ = np.linalg.qr(rng.standard_normal((n, r)))
    return (U * (100.0 * 2.0 ** -np.arange(r))) @ V.T


def exact_pca_ratios(X: np.ndarray, k: int) -> np.ndarray:
    s = scipy.linalg.svdvals(X - X.mean(axis=0))
    return s[:k] ** 2 / np.sum(s**2)


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


# --------------------------------------------------------------------------- programs, reference interpreter


def reduce_to_band(X: np.ndarray, b: int):
    M, N = grid_shape(X.shape, b)
    out = interpret(programs.band_reduction.bind(M=M, N=N, validate="full"), {"A": split(X, b)})
    n = X.shape[1]
    return join(out["B"], (n, n), b), out


@pytest.mark.parametrize("m, n, b", [(16, 16, 4), (24, 16, 8), (23, 17, 5), (19, 19, 4), (30, 7, 3), (9, 9, 9),
                                     (21, 4, 4), (13, 11, 2), (230, 190, 80)])
def test_band_reduction_program(m, n, b):
    X = well_conditioned(m, n, seed=m * n)
    B, out = reduce_to_band(X, b)
    assert np.array_equal(B, np.triu(B) - np.triu(B, b + 1)), "B is not upper banded with bandwidth b"
    s_ref = scipy.linalg.svdvals(X)
    assert np.max(np.abs(scipy.linalg.svdvals(B) - s_ref) / s_ref) <= 1e-10
    # the kept reflectors rebuild the singular vectors: A = Q B Pᵀ
    M, N = grid_shape(X.shape, b)
    Ub, s, Vbt = np.linalg.svd(B)
    C = np.vstack([Ub, np.zeros((m - n, n))])
    bound = programs.apply_reflectors.bind(R=M, NC=N, K=N, OFF=0, TRANS=0, validate="full")
    U = join(interpret(bound, {"C": split(C, b), "V": out["Vq"], "T": out["Tq"]})["Out"], (m, n), b)
    V = Vbt.T
    if N > 1:
        bound = programs.apply_reflectors.bind(R=N, NC=N, K=N - 1, OFF=1, TRANS=0, validate="full")
        V = join(interpret(bound, {"C": split(np.ascontiguousarray(V), b), "V": out["Vl"], "T": out["Tl"]})["Out"],
                 (n, n), b)
    tol = 20 * max(m, n) * EPS
    assert np.linalg.norm(X - (U * s) @ V.T) / np.linalg.norm(X) <= tol
    assert np.linalg.norm(U.T @ U - np.eye(n)) <= tol and np.linalg.norm(V.T @ V - np.eye(n)) <= tol


def test_band_reduction_program_float32():
    X = well_conditioned(41, 29, seed=9).astype(np.float32)
    B, out = reduce_to_band(X, 8)
    assert B.dtype == np.float32 and out["Vq"][0, 0, 0].dtype == np.float32
    s_ref = scipy.linalg.svdvals(X.astype(np.float64))
    s = scipy.linalg.svdvals(B.astype(np.float64))
    assert np.max(np.abs(s - s_ref) / s_ref) <= 20 * 41 * np.finfo(np.float32).eps


@pytest.mark.parametrize("m, n, block", [(30, 20, (30, 5)), (31, 23, (7, 5)), (16, 33, (5, 4)), (12, 12, (12, 12))])
def test_tree_svd_program_is_exact_when_nothing_is_truncated(m, n, block):
    """With RANK ≥ the width of every merged block nothing is discarded: the tree gives the exact SVD."""
    X = well_conditioned(m, n, seed=3)
    M, N = grid_shape(X.shape, block)
    k = min(m, n)
    bound = programs.tree_svd.bind(M=M, N=N, RANK=k, K=k, BR=block[0], ROWS=m, VEC=1, validate="full")
    out = interpret(bound, {"A": split(X, block)})
    s = out["S"][0, 0].ravel()
    U, Vt = join(out["U"], (m, k), (block[0], k)), join(out["Vt"], (k, n), (k, block[1]))
    s_ref = scipy.linalg.svdvals(X)
    assert np.max(np.abs(s - s_ref) / s_ref) <= 1e-10
    assert np.linalg.norm(X - (U * s) @ Vt) / np.linalg.norm(X) <= 1e-12


@pytest.mark.parametrize("m, n, block", [(30, 20, (7, 6)), (9, 5, (9, 5)), (40, 3, (8, 2))])
def test_center_columns_program(m, n, block):
    X = np.random.default_rng(5).standard_normal((m, n)) + 3.0
    M, N = grid_shape(X.shape, block)
    out = interpret(programs.center_columns.bind(M=M, N=N, ROWS=m, validate="full"), {"X": split(X, block)})
    Xc = X - X.mean(axis=0)
    assert np.allclose(join(out["Xc"], X.shape, block), Xc, rtol=0, atol=1e-13)
    assert np.allclose(join(out["Mean"], (1, n), (1, block[1])).ravel(), X.mean(axis=0), rtol=1e-14)
    assert np.allclose(join(out["Sq"], (1, n), (1, block[1])).ravel(), (Xc**2).sum(axis=0), rtol=1e-12)


@pytest.mark.parametrize("m, n, c, block", [(30, 20, 3, (7, 6)), (9, 5, 2, (9, 5)), (40, 3, 4, (8, 2))])
def test_gemm_tn_and_transpose_programs(m, n, c, block):
    rng = np.random.default_rng(6)
    X, Y = rng.standard_normal((m, n)), rng.standard_normal((m, c))
    M, N = grid_shape(X.shape, block)
    out = interpret(programs.gemm_tn.bind(M=N, N=1, K=M, validate="full"),
                    {"A": split(X, block), "B": split(Y, (block[0], c))})
    assert np.allclose(join(out["C"], (n, c), (block[1], c)), X.T @ Y, rtol=0, atol=1e-13)
    out = interpret(programs.transpose_tiles.bind(M=M, N=N, validate="full"), {"A": split(X, block)})
    assert np.array_equal(join(out["At"], (n, m), block[::-1]), X.T)


def tree_copies(P: int) -> int:
    """Nodes that move up a binary tree over P leaves without a partner (one per odd level width)."""
    copies = 0
    while P > 1:
        copies += P % 2
        P = (P + 1) // 2
    return copies


def band_task_count(M: int, N: int) -> int:
    def tree(P: int, T: int) -> int:  # a QR (or LQ) tree over P tiles, T trailing tiles per tile
        return 1 + T if P == 1 else (2 * P - 1 + tree_copies(P)) * (1 + T)

    return sum(tree(M - k, N - k - 1) + (tree(N - k - 1, M - k - 1) if k < N - 1 else 0) for k in range(N))


def back_transform_task_count(R: int, NC: int, K: int, OFF: int) -> int:
    return OFF * NC + sum((2 * (R - k - OFF) - 1 + tree_copies(R - k - OFF)) * NC for k in range(K))


def tree_svd_task_count(M: int, N: int, vec: int) -> int:
    assemble = M - 1 + tree_copies(M)
    return N * (assemble + 1) + N - 1 + tree_copies(N) + 1 + vec * (M + N)


def randomized_range_task_count(M: int, N: int, QIT: int) -> int:
    def gemm(rows: int, inner: int) -> int:
        return rows * (2 * inner - 1 + tree_copies(inner))

    def tsqr(P: int) -> int:
        return 4 * P - 1 + 2 * tree_copies(P)  # tsqr without its copy of R

    return N + (QIT + 1) * (gemm(M, N) + tsqr(M) + gemm(N, M) + tsqr(N)) + M + N + 1


@pytest.mark.parametrize("M, N", [(1, 1), (4, 4), (7, 3), (8, 8), (5, 2), (16, 9), (3, 1)])
def test_task_counts(M, N):
    """The task counts given in docs/algorithms.md (SVD and PCA), against the bound programs."""
    assert programs.band_reduction.bind(M=M, N=N).num_tasks() == band_task_count(M, N)
    assert programs.apply_reflectors.bind(R=M, NC=N, K=N, OFF=0, TRANS=0).num_tasks() == \
        back_transform_task_count(M, N, N, 0)
    assert programs.apply_reflectors.bind(R=N, NC=N, K=N - 1, OFF=1, TRANS=1).num_tasks() == \
        back_transform_task_count(N, N, N - 1, 1)
    for vec in (0, 1):
        bound = programs.tree_svd.bind(M=M, N=N, RANK=3, K=2, BR=4, ROWS=4 * M, VEC=vec)
        assert bound.num_tasks() == tree_svd_task_count(M, N, vec)
    for qit in (0, 2):
        bound = programs.randomized_range.bind(M=M, N=N, L=3, QIT=qit, COLS=4 * N, BC=4, SEED=0)
        assert bound.num_tasks() == randomized_range_task_count(M, N, qit)


# --------------------------------------------------------------------------- the second stage: band → singular values


def upper_band(n: int, b: int, seed: int, dtype=np.float64) -> np.ndarray:
    a = np.triu(np.random.default_rng(seed).standard_normal((n, n)))
    return (a - np.triu(a, b + 1)).astype(dtype)


@pytest.mark.parametrize("n, b, d", [(50, 10, 5), (57, 13, 7), (100, 40, 20), (33, 32, 16), (10, 3, 2), (7, 6, 3)])
def test_reduce_bandwidth_keeps_the_singular_values(n, b, d):
    a = upper_band(n, b, seed=n + b)
    s_ref = scipy.linalg.svdvals(a)
    band.reduce_bandwidth(a, b, d)
    assert not np.tril(a, -1).any() and not np.triu(a, d + 1).any(), "not upper banded with bandwidth d"
    assert np.max(np.abs(scipy.linalg.svdvals(a) - s_ref)) <= 10 * n * EPS * s_ref[0]


@pytest.mark.parametrize("n, b", [(1, 1), (2, 1), (5, 9), (64, 63), (130, 70), (201, 40), (150, 1)])
def test_band_singular_values_kernel(n, b):
    """Halving passes (bandwidths above SMALL_BAND), gbbrd and bdsqr against LAPACK's dense gesdd."""
    a = upper_band(n, b, seed=n)
    s_ref = scipy.linalg.svdvals(a)
    s = band.band_singular_values(a.copy(), b)
    assert s.shape == (n,) and np.all(np.diff(s) <= 0)
    assert np.max(np.abs(s - s_ref)) <= 10 * n * EPS * s_ref[0]


@pytest.mark.parametrize("n, b, dtype", [(1, 1, np.float64), (16, 4, np.float64), (17, 5, np.float64),
                                         (40, 7, np.float64), (9, 9, np.float64), (45, 8, np.float32)])
def test_band_singular_values_program(n, b, dtype):
    """The band's tiles gathered into band storage up a tree, one task for the values (ragged, float32)."""
    a = upper_band(n, b, seed=b, dtype=dtype)
    N = grid_shape(a.shape, b)[0]
    bound = programs.band_singular_values.bind(N=N, BS=b, validate="full")
    assert bound.num_tasks() == 2 * N + tree_copies(N)
    s = interpret(bound, {"B": split(a, b)})["S"][0, 0]
    assert s.shape == (1, n) and s.dtype == dtype
    s_ref = scipy.linalg.svdvals(a.astype(np.float64))
    assert np.max(np.abs(s.ravel() - s_ref)) <= 10 * n * np.finfo(dtype).eps * s_ref[0]


def band_singular_vectors_task_count(M: int, N: int, NCU: int, NCR: int) -> int:
    """The band gathered (2N − 1 + copies), one bidiagonalization, M + N row blocks, NCU triplet or zero
    blocks, M·NCU + N·NCR products."""
    return 2 * N + tree_copies(N) + M + N + NCU + M * NCU + N * NCR


def triplet_errors(a: np.ndarray, U: np.ndarray, s: np.ndarray, V: np.ndarray) -> tuple[float, float, float]:
    """(‖aV − US‖/‖a‖, ‖UᵀU − I‖, ‖VᵀV − I‖), each over n·eps of a's precision, in float64."""
    n, eps = a.shape[0], np.finfo(a.dtype).eps
    a, U, s, V = (x.astype(np.float64) for x in (a, U, s, V))
    r = V.shape[1]
    return (np.linalg.norm(a @ V - U[:, :r] * s) / np.linalg.norm(a) / (n * eps),
            np.linalg.norm(U.T @ U - np.eye(U.shape[1])) / (n * eps), np.linalg.norm(V.T @ V - np.eye(r)) / (n * eps))


@pytest.mark.parametrize("n, b, r, m, full, dtype", [(1, 1, 1, 1, False, np.float64),
                                                     (17, 5, 17, 17, False, np.float64),
                                                     (150, 40, 150, 150, False, np.float64),
                                                     (45, 8, 45, 45, False, np.float32),
                                                     (33, 9, 13, 33, False, np.float64),
                                                     (23, 6, 23, 31, True, np.float64),
                                                     (19, 4, 7, 26, False, np.float32)])
def test_band_singular_vectors_program(n, b, r, m, full, dtype):
    """Band → bidiagonal keeping both transforms in one task, triplets per block of BS indices (Golub–Kahan),
    Cu = [[L Ub, 0], [0, I]] (m rows, full or r columns) and Cv = R Vb by tiles; ragged, float32; the
    random triangular bands are ill-conditioned, so the tiny singular values' cluster is exercised."""
    a = upper_band(n, b, seed=n + r, dtype=dtype)
    cols = m if full else r
    M, N = grid_shape((m, n), b)
    NCU, NCR = -(-cols // b), -(-r // b)
    bound = programs.band_singular_vectors.bind(M=M, N=N, NCU=NCU, NCR=NCR, BS=b, R=r, ROWS=m, COLS=cols, NB=n,
                                                validate="full")
    assert bound.num_tasks() == band_singular_vectors_task_count(M, N, NCU, NCR)
    out = interpret(bound, {"B": split(a, b)})
    s = np.hstack([out["S"][0, j] for j in range(NCR)]).ravel()
    Cu = join(out["Cu"], (m, cols), b)
    V = join(out["Cv"], (n, r), b)
    assert s.dtype == dtype and Cu.dtype == dtype and V.dtype == dtype
    s_ref = scipy.linalg.svdvals(a.astype(np.float64))[:r]
    eps = np.finfo(dtype).eps
    assert np.all(np.diff(s) <= 0) and np.max(np.abs(s - s_ref)) <= 10 * n * eps * s_ref[0]
    assert np.all(Cu[n:, :min(cols, n)] == 0)
    if full:
        assert np.array_equal(Cu[n:, n:], np.eye(m - n)) and np.all(Cu[:n, n:] == 0)
    res = triplet_errors(a, Cu[:n, :min(cols, n)], s, V)
    assert max(res) <= 10, res


def test_band_singular_vectors_of_a_rank_deficient_band():
    """Exact zero singular values (a band with zero rows): ±0 of the Golub–Kahan matrix cluster and their
    vectors are recovered from the spans of the cluster's odd and even entries."""
    n, b = 40, 6
    a = upper_band(n, b, seed=1)
    a[[3, 17, 18, 30]] = 0.0
    N = grid_shape(a.shape, b)[0]
    bound = programs.band_singular_vectors.bind(M=N, N=N, NCU=N, NCR=N, BS=b, R=n, ROWS=n, COLS=n, NB=n)
    out = interpret(bound, {"B": split(a, b)})
    s = np.hstack([out["S"][0, j] for j in range(N)]).ravel()
    U, V = join(out["Cu"], (n, n), b), join(out["Cv"], (n, n), b)
    assert np.max(np.abs(s[-4:])) <= 10 * n * EPS * s[0]
    res = triplet_errors(a, U, s, V)
    assert max(res) <= 10, res


# --------------------------------------------------------------------------- npw.svd on the runtime


@pytest.mark.parametrize("m, n, b", [(64, 48, 16), (70, 45, 16), (45, 70, 16), (37, 37, 37)])
def test_band_singular_values(rt, m, n, b):
    X = well_conditioned(m, n, seed=m + n)
    s = npw.svd(X, compute_uv=False, block_size=b)
    assert isinstance(s, np.ndarray) and s.shape == (min(m, n),)
    s_ref = scipy.linalg.svdvals(X)
    assert np.max(np.abs(s - s_ref) / s_ref) <= 1e-10


def test_band_singular_values_float32_ragged(rt):
    X = well_conditioned(47, 41, seed=3).astype(np.float32)
    s = npw.svd(X, compute_uv=False, block_size=9)
    assert s.dtype == np.float32 and s.shape == (41,)
    s_ref = scipy.linalg.svdvals(X.astype(np.float64))
    assert np.max(np.abs(s - s_ref) / s_ref) <= 10 * 47 * np.finfo(np.float32).eps


@pytest.mark.parametrize("m, n, b, k", [(50, 33, 12, None), (30, 23, 8, 5), (17, 29, 8, 13), (20, 20, 20, None)])
def test_band_svd_vectors(rt, m, n, b, k):
    X = np.random.default_rng(7).standard_normal((m, n))
    U, s, Vt = npw.svd(npw.BigMatrix.from_numpy(X, b), k=k, method="band")
    r = k or min(m, n)
    assert isinstance(U, npw.BigMatrix) and isinstance(Vt, npw.BigMatrix)
    U, Vt = U.numpy(), Vt.numpy()
    assert U.shape == (m, r) and s.shape == (r,) and Vt.shape == (r, n)
    tol = 20 * max(m, n) * EPS
    U_ref, s_ref, Vt_ref = np.linalg.svd(X, full_matrices=False)
    best = np.linalg.norm(X - (U_ref[:, :r] * s_ref[:r]) @ Vt_ref[:r])  # 0 for r = min(m, n)
    assert abs(np.linalg.norm(X - (U * s) @ Vt) - best) / np.linalg.norm(X) <= tol
    assert np.linalg.norm(U.T @ U - np.eye(r)) <= tol and np.linalg.norm(Vt @ Vt.T - np.eye(r)) <= tol
    assert np.allclose(s, s_ref[:r], rtol=1e-12)


@pytest.mark.parametrize("m, n, b, full", [(41, 29, 9, False), (29, 41, 9, True), (38, 25, 8, True)])
def test_band_svd_vectors_float32_and_full(rt, m, n, b, full):
    """float32, ragged tiles, wide and tall, full_matrices: backward error and orthogonality within c·n·eps
    of numpy's on the same matrix."""
    X = well_conditioned(m, n, seed=m * n, cond=1e3).astype(np.float32)
    U, s, Vt = npw.svd(X, full_matrices=full, block_size=b)
    U, Vt = U.numpy(), Vt.numpy()
    assert U.dtype == np.float32 and s.dtype == np.float32 and Vt.dtype == np.float32
    r = min(m, n)
    assert U.shape == ((m, m) if full else (m, r)) and Vt.shape == ((n, n) if full else (r, n))
    Ur, sr, Vtr = np.linalg.svd(X, full_matrices=full)
    eps = np.finfo(np.float32).eps

    def errs(U, s, Vt):
        X64 = X.astype(np.float64)
        U, s, Vt = U.astype(np.float64), s.astype(np.float64), Vt.astype(np.float64)
        return (np.linalg.norm(X64 - (U[:, :r] * s) @ Vt[:r]) / np.linalg.norm(X64) / (max(m, n) * eps),
                np.linalg.norm(U.T @ U - np.eye(U.shape[1])) / (max(m, n) * eps),
                np.linalg.norm(Vt @ Vt.T - np.eye(Vt.shape[0])) / (max(m, n) * eps))
    for ours, ref in zip(errs(U, s, Vt), errs(Ur, sr, Vtr), strict=True):
        assert ours <= 10 * max(ref, 1.0), (ours, ref)
    assert np.max(np.abs(s - sr) / sr) <= 10 * max(m, n) * eps


@pytest.mark.parametrize("m, n, block", [(120, 80, (32, 24)), (70, 110, (25, 40)), (90, 90, (40, 40))])
def test_randomized_svd(rt, m, n, block):
    """Rank-k matrix plus the paper's decay: U, Vt orthonormal, s and U diag(s) Vt accurate."""
    X = paper_matrix(m, n, seed=1)
    k = 8
    U, s, Vt = npw.svd(X, k=k, p=6, q=1, block_size=block)
    assert U.block_size == (block[0], k) and Vt.block_size == (k, block[1])
    U, Vt = U.numpy(), Vt.numpy()
    s_ref = scipy.linalg.svdvals(X)[:k]
    assert np.max(np.abs(s - s_ref) / s_ref) <= 1e-10
    tol = 20 * max(m, n) * EPS
    assert np.linalg.norm(U.T @ U - np.eye(k)) <= tol and np.linalg.norm(Vt @ Vt.T - np.eye(k)) <= tol
    Xk = (U * s) @ Vt
    best = scipy.linalg.svdvals(X)[k]  # spectral norm of the best rank-k error
    assert np.linalg.norm(X - Xk, 2) <= best * (1 + 1e-6)


def test_pca_randomized_matches_exact_pca_on_the_paper_matrix(rt):
    X = paper_matrix(150, 100, seed=2)
    P = npw.pca(X, 10, block_size=(40, 30))
    ratios = exact_pca_ratios(X, 10)
    assert np.max(np.abs(P.explained_variance_ratio_ - ratios) / ratios) <= 1e-8
    Xc = X - X.mean(axis=0)
    _, s, Vt = np.linalg.svd(Xc, full_matrices=False)
    assert np.allclose(P.mean_, X.mean(axis=0), rtol=0, atol=1e-14)
    assert np.allclose(P.singular_values_, s[:10], rtol=1e-10)
    assert np.allclose(P.explained_variance_, s[:10] ** 2 / (X.shape[0] - 1), rtol=1e-10)
    # components: sklearn's convention (largest |entry| of each row positive), leading ones accurate
    largest = np.argmax(np.abs(Vt[:10]), axis=1)
    Vt_ref = Vt[:10] * np.sign(Vt[np.arange(10), largest])[:, None]
    assert np.allclose(P.components_[:6], Vt_ref[:6], rtol=0, atol=1e-8)
    assert np.allclose(P.transform(X[:3]), Xc[:3] @ P.components_.T)


def tree_explained_variance_ratios(X: np.ndarray, k: int, block: tuple[int, int], rank: int) -> np.ndarray:
    """PCA ratios by the tree program (reference interpreter) on centered X in tiles of ``block``."""
    Xc = X - X.mean(axis=0)
    m = X.shape[0]
    M, N = grid_shape(X.shape, block)
    bound = programs.tree_svd.bind(M=M, N=N, RANK=rank, K=k, BR=block[0], ROWS=m, VEC=0)
    s = interpret(bound, {"A": split(Xc, block)})["S"][0, 0].ravel()
    return s**2 / np.sum(Xc**2)


def test_tree_svd_error_grows_with_blocks_within_bound():
    """The tree method on the paper's matrix: relative error of the top-10 explained variance ratios for
    1..16 column blocks (RANK = k: every node keeps k triplets, as in the paper).  A node discards
    singular values of its (approximated) block, each at most σ_{k+1} of the whole matrix, and the root's
    Gram matrix is X Xᵀ minus one positive semidefinite term of norm ≤ σ_{k+1}² per truncation (2·blocks − 1
    of them at most); by Weyl's inequality the relative error of σ_i², hence of the i-th explained variance
    ratio, is at most (2·blocks − 1)·(σ_{k+1}/σ_i)².  Keeping k + p triplets replaces σ_{k+1} by σ_{k+p+1}."""
    m, n, k = 96, 64, 10
    X = paper_matrix(m, n, seed=4)
    ratios = exact_pca_ratios(X, k)
    s_all = scipy.linalg.svdvals(X - X.mean(axis=0))
    errors = {}
    for p in (0, 4):
        for blocks in (1, 2, 3, 5, 8, 16):
            block = (-(-m // 2), -(-n // blocks))  # two tile rows, `blocks` tile columns
            err = np.abs(tree_explained_variance_ratios(X, k, block, k + p) - ratios) / ratios
            bound = (2 * blocks - 1) * (s_all[k + p] / s_all[:k]) ** 2 + 1e-12
            assert np.all(err <= bound), (p, blocks, err, bound)
            errors[p, blocks] = err.max()
    assert errors[0, 1] <= 1e-12 and errors[4, 1] <= 1e-12  # one block: an exact SVD
    assert errors[0, 16] > 1e-6 and errors[4, 16] < errors[0, 16]


def test_pca_tree_on_the_runtime(rt):
    X = paper_matrix(60, 40, seed=4)
    P = npw.pca(X, 5, method="tree", p=0, block_size=(32, 9))  # 5 column blocks, 2 tile rows
    ratios = exact_pca_ratios(X, 5)
    assert np.allclose(P.explained_variance_ratio_, tree_explained_variance_ratios(X, 5, (32, 9), 5), rtol=1e-10)
    s_all = scipy.linalg.svdvals(X - X.mean(axis=0))
    assert np.all(np.abs(P.explained_variance_ratio_ - ratios) / ratios <= 9 * (s_all[5] / s_all[:5]) ** 2)


def test_tree_svd_vectors(rt):
    X = paper_matrix(45, 30, seed=5)
    U, s, Vt = npw.svd(X, k=4, method="tree", block_size=(20, 7))
    U, Vt = U.numpy(), Vt.numpy()
    assert U.shape == (45, 4) and Vt.shape == (4, 30)
    assert np.allclose(s, scipy.linalg.svdvals(X)[:4], rtol=1e-8)
    assert np.linalg.norm(U.T @ U - np.eye(4)) <= 1e-12
    assert np.linalg.norm(Vt @ Vt.T - np.eye(4)) <= 1e-6


# --------------------------------------------------------------------------- errors (no job is submitted)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"k": 7}, ValueError, r"k=7 is outside 1..min\(m, n\) = 1..6"),
    ({"k": 0}, ValueError, "outside"),
    ({"k": 2.5}, TypeError, "k must be an integer"),
    ({"k": 2, "method": "qr"}, ValueError, "unknown method 'qr'"),
    ({"method": "tree"}, ValueError, "give k"),
    ({"method": "randomized"}, ValueError, "give k"),
    ({"k": 2, "p": -1}, ValueError, "p must be a non-negative integer"),
    ({"k": 2, "q": 1.5}, ValueError, "q must be a non-negative integer"),
    ({"k": 2, "method": "tree", "p": True}, ValueError, "p must be"),
])
def test_svd_argument_errors(kwargs, error, match, monkeypatch):
    monkeypatch.setattr(npw.BigMatrix, "from_numpy", None)  # the arguments are checked before any upload
    with pytest.raises(error, match=match):
        npw.svd(np.ones((9, 6)), **kwargs)


def test_svd_input_errors(rt):
    with pytest.raises(ValueError, match="2-D"):
        npw.svd(np.ones(5))
    with pytest.raises(ValueError, match="empty"):
        npw.svd(np.ones((0, 3)))
    with pytest.raises(ValueError, match="NaN"):
        npw.svd(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="square tiles"):
        npw.svd(npw.BigMatrix.from_numpy(np.ones((8, 6)), (4, 3)), compute_uv=False)
    with pytest.raises(ValueError, match="at least two samples"):
        npw.pca(np.ones((1, 4)), 1)
    with pytest.raises(ValueError, match="outside"):
        npw.pca(np.ones((5, 4)), 5)
    with pytest.raises(ValueError, match="unknown method"):
        npw.pca(np.ones((5, 4)), 2, method="exact")
