"""Singular value decomposition and principal component analysis on the runtime (``npw.svd``, ``npw.pca``).

Three ways to an SVD, each a sequence of LAmbdaPACK jobs (``numpywren2.programs.svd``):

- ``method="band"`` (all singular values, the default without ``k``): reduction to upper band form
  by alternating QR and LQ panel factorizations with TSQR trees (``band_reduction``), then the
  singular values of the band matrix with LAPACK on the client.  With ``compute_uv`` the kept
  Householder reflectors are applied to the band matrix's singular vectors (``apply_reflectors``).
- ``method="randomized"`` (the default with ``k``): the randomized range finder of Halko, Martinsson
  and Tropp with ``p`` oversampling columns and ``q`` power iterations, orthonormalised by TSQR after
  every product: one job (``randomized_range``) made of the reduction trees of ``gemm`` and the trees
  of ``tsqr``, then one job for U and Vᵀ (``low_rank_factors``).
- ``method="tree"``: truncated SVDs of the tile columns merged pairwise up a binary tree
  (``tree_svd``), the loosely coupled method of "Randomized SVD for Serverless Systems".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg

from . import programs
from .job import TileSpace, as_bigmatrix, submit
from .matrix import BigMatrix

METHODS = ("band", "randomized", "tree")


def svd(A, compute_uv: bool = True, k: int | None = None, method: str | None = None, p: int = 10, q: int = 2,
        block_size: int | tuple[int, int] | None = None, seed: int = 0, workers: int | None = None):
    """Singular value decomposition of a general matrix, like ``numpy.linalg.svd(A, full_matrices=False)``.

    Parameters
    ----------
    A : (m, n) array_like or BigMatrix
        Any shape (tall, wide or square); float32 or float64.
    compute_uv : bool
        Also return the singular vectors (default).  For the band method this costs a second
        distributed pass as large as the reduction plus a dense SVD of the n×n band matrix on the
        client (n = min(m, n)); see ``docs/algorithms.md (SVD and PCA)`` for when that is sensible.
    k : int, optional
        Number of leading singular triplets.  None: all ``min(m, n)`` of them.
    method : {"band", "randomized", "tree"}, optional
        Default: "band" when ``k`` is None, else "randomized".  "band" with ``k`` computes all
        singular values and the vectors of the leading ``k``; "randomized" and "tree" need ``k``.
    p : int
        Oversampling: the randomized range finder uses ``k + p`` columns and the tree method keeps
        ``k + p`` triplets at every node (both capped at ``min(m, n)``).
    q : int
        Power iterations of the randomized method (each one a product with Aᵀ and one with A).
    block_size : int or (int, int), optional
        Tile size when ``A`` is a numpy array.  The band method needs square tiles.
    seed : int
        Seed of the Gaussian test matrix of the randomized method.
    workers : int, optional
        Executors per job (default: the runtime's).

    Returns
    -------
    U : BigMatrix, (m, r)
        Left singular vectors (only with ``compute_uv``), r = k or min(m, n).
    s : ndarray, (r,)
        Singular values in decreasing order.
    Vt : BigMatrix, (r, n)
        Right singular vectors as rows (only with ``compute_uv``).

    Raises
    ------
    ValueError
        For a matrix that is not 2-D or is empty, ``k`` outside 1..min(m, n), an unknown method,
        negative ``p`` or ``q``, or non-square tiles with the band method.

    Examples
    --------
    >>> s = npw.svd(X, compute_uv=False)                  # doctest: +SKIP
    >>> U, s, Vt = npw.svd(X, k=10)                       # doctest: +SKIP
    >>> U, s, Vt = npw.svd(X, k=10, method="tree", block_size=(4096, 512))  # doctest: +SKIP
    """
    m, n = _shape(A)
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"k must be an integer, not {type(k).__name__}")
        if not 1 <= k <= min(m, n):
            raise ValueError(f"k={k} is outside 1..min(m, n) = 1..{min(m, n)} for a matrix of shape {A.shape}")
        k = int(k)
    if method is None:
        method = "band" if k is None else "randomized"
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    if method != "band" and k is None:
        raise ValueError(f'method="{method}" computes a truncated SVD: give k')
    for name, value in (("p", p), ("q", q)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
            raise ValueError(f"{name} must be a non-negative integer, not {value!r}")
    A = _as_matrix(A, block_size)
    if method == "band":
        return _band_svd(A, compute_uv, workers, rank=k)
    if method == "randomized":
        return _randomized_svd(A, k, int(p), int(q), compute_uv, seed, workers)
    return _tree_svd(A, k, int(p), compute_uv, workers)


@dataclass
class PCA:
    """Principal components of a data matrix, with scikit-learn's attribute names and meanings.

    Attributes
    ----------
    components_ : ndarray, (n_components, n_features)
        Principal axes (right singular vectors of the centered data), each row's largest entry in
        absolute value made positive (scikit-learn's sign convention for PCA).
    explained_variance_ : ndarray, (n_components,)
        Variance along each axis: ``singular_values_**2 / (n_samples - 1)``.
    explained_variance_ratio_ : ndarray, (n_components,)
        ``explained_variance_`` divided by the total variance of the data (all features, ddof=1).
    singular_values_ : ndarray, (n_components,)
        Singular values of the centered data.
    mean_ : ndarray, (n_features,)
        Column means that were subtracted.
    n_components_, n_samples_, n_features_in_ : int
    """

    components_: np.ndarray
    explained_variance_: np.ndarray
    explained_variance_ratio_: np.ndarray
    singular_values_: np.ndarray
    mean_: np.ndarray
    n_components_: int
    n_samples_: int
    n_features_in_: int

    def transform(self, X) -> np.ndarray:
        """Project data onto the components: ``(X - mean_) @ components_.T`` (computed with numpy)."""
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"X must have shape (n, {self.n_features_in_}), not {X.shape}")
        return (X - self.mean_) @ self.components_.T


def pca(X, k: int, method: str = "randomized", p: int = 10, q: int = 2,
        block_size: int | tuple[int, int] | None = None, seed: int = 0, workers: int | None = None) -> PCA:
    """Principal component analysis: centering (a LAmbdaPACK job), then a truncated SVD.

    Parameters
    ----------
    X : (n_samples, n_features) array_like or BigMatrix
        Data, one sample per row; at least two samples.
    k : int
        Number of components, 1 ≤ k ≤ min(n_samples, n_features).
    method, p, q, block_size, seed, workers
        As for :func:`svd`.

    Returns
    -------
    PCA
        ``components_``, ``explained_variance_``, ``explained_variance_ratio_``, ``singular_values_``,
        ``mean_`` as in ``sklearn.decomposition.PCA``.
    """
    m, n = _shape(X)
    if m < 2:
        raise ValueError(f"pca needs at least two samples (rows), got shape {(m, n)}")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= min(m, n):
        raise ValueError(f"k={k!r} is outside 1..min(n_samples, n_features) = 1..{min(m, n)}")
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    X = _as_matrix(X, block_size)
    M, N = X.grid
    bc = X.block_size[1]
    Xc = BigMatrix.empty(X.shape, X.block_size, X.dtype, store=X.store)
    means = BigMatrix.empty((1, n), (1, bc), X.dtype, store=X.store)
    sums_of_squares = BigMatrix.empty((1, n), (1, bc), X.dtype, store=X.store)
    submit(programs.center_columns, X=X, Xc=Xc, Mean=means, Sq=sums_of_squares, M=M, N=N, ROWS=m,
           workers=workers).wait()
    try:
        U, s, Vt = svd(Xc, k=int(k), method=method, p=p, q=q, seed=seed, workers=workers)
        components = Vt.numpy()
        for mat in (U, Vt):
            mat.delete()
        mean = means.numpy().ravel()
        total_variance = float(sums_of_squares.numpy().sum()) / (m - 1)
    finally:
        for mat in (Xc, means, sums_of_squares):
            mat.delete()
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), largest])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    explained = s**2 / (m - 1)
    ratio = explained / total_variance if total_variance > 0 else np.zeros_like(explained)
    return PCA(components_=components, explained_variance_=explained, explained_variance_ratio_=ratio,
               singular_values_=s, mean_=mean, n_components_=int(k), n_samples_=m, n_features_in_=n)


# ---------------------------------------------------------------------------------------------- helpers


def _shape(A) -> tuple[int, int]:
    """The shape of a BigMatrix or of a 2-D, non-empty, finite real array (checked before any upload)."""
    if isinstance(A, BigMatrix):
        shape = A.shape
    else:
        X = np.asarray(A)
        if X.ndim != 2:
            raise ValueError(f"expected a 2-D matrix, got an array of shape {X.shape}")
        if X.dtype.kind not in "fiub":
            raise TypeError(f"expected a real matrix, got dtype {X.dtype}")
        if X.size and not np.isfinite(X).all():
            raise ValueError("the matrix contains infinities or NaNs")
        shape = X.shape
    if min(shape) == 0:
        raise ValueError(f"cannot decompose an empty matrix of shape {shape}")
    return shape


def _as_matrix(A, block_size) -> BigMatrix:
    return as_bigmatrix(A if isinstance(A, BigMatrix) else np.asarray(A), block_size)


def _empty(shape, block_size, like: BigMatrix) -> BigMatrix:
    return BigMatrix.empty(shape, block_size, like.dtype, store=like.store)


def _transpose(A: BigMatrix, workers) -> BigMatrix:
    At = _empty((A.shape[1], A.shape[0]), (A.block_size[1], A.block_size[0]), A)
    submit(programs.transpose_tiles, A=A, At=At, M=A.grid[0], N=A.grid[1], workers=workers).wait()
    return At


# ---------------------------------------------------------------------------------------------- band


def _band_svd(A: BigMatrix, compute_uv: bool, workers, rank: int | None = None, transposed: bool = False):
    """SVD by band reduction, the leading ``rank`` triplets (all if None).

    ``transposed``: A holds the transpose of the user's (wide) matrix.
    """
    if A.block_size[0] != A.block_size[1]:
        raise ValueError(f'method="band" needs square tiles; {A.name} has block_size {A.block_size} '
                         "(pass a numpy array with an int block_size, or re-tile the matrix)")
    if A.shape[0] < A.shape[1]:
        # Aᵀ = U diag(s) Vt, so A = Vtᵀ diag(s) Uᵀ: the back-transformations write the factors transposed
        At = _transpose(A, workers)
        try:
            return _band_svd(At, compute_uv, workers, rank, transposed=True)
        finally:
            At.delete()
    m, n = A.shape
    b = A.block_size[0]
    M, N = A.grid
    B = _empty((n, n), b, A)
    keep = {}
    if compute_uv:
        keep = {"Vq": TileSpace.empty(A.store), "Vl": TileSpace.empty(A.store)}  # 3-index tile spaces
    try:
        submit(programs.band_reduction, A=A, B=B, M=M, N=N, workers=workers, **keep).wait()
        band = np.zeros((n, n), dtype=A.dtype)
        for t in range(N):
            for j in (t, t + 1):
                if j < N:
                    band[t * b:(t + 1) * b, j * b:(j + 1) * b] = B.get_tile(t, j)
        r = n if rank is None else rank
        if not compute_uv:
            return scipy.linalg.svdvals(band, check_finite=True)[:r]
        Ub, s, Vbt = scipy.linalg.svd(band, full_matrices=False, check_finite=True)
        # U = Q [Ub; 0] and Vt = (P Vb)ᵀ, for the leading r columns of Ub and Vb: two independent jobs
        C = np.zeros((m, r), dtype=A.dtype)
        C[:n] = Ub[:, :r]
        Cu = BigMatrix.from_numpy(C, b, store=A.store)
        Cv = BigMatrix.from_numpy(np.ascontiguousarray(Vbt[:r].T), b, store=A.store)
        flip = int(transposed)
        U = _empty((r, m) if transposed else (m, r), b, A)
        Vt = _empty((n, r) if transposed else (r, n), b, A)
        NC = Cu.grid[1]
        jobs = [submit(programs.apply_reflectors, C=Cu, V=keep["Vq"], Out=U, R=M, NC=NC, K=N, OFF=0, TRANS=flip,
                       workers=workers)]
        if N > 1:
            jobs.append(submit(programs.apply_reflectors, C=Cv, V=keep["Vl"], Out=Vt, R=N, NC=NC, K=N - 1, OFF=1,
                               TRANS=1 - flip, workers=workers))
        else:
            Vt.put_tile(0, 0, Vbt[:r].T if transposed else Vbt[:r])
        try:
            for job in jobs:
                job.wait()
        finally:
            Cu.delete()
            Cv.delete()
        return (Vt, s[:r], U) if transposed else (U, s[:r], Vt)
    finally:
        for mat in [B, *keep.values()]:
            mat.delete()


# ---------------------------------------------------------------------------------------------- randomized


def _randomized_svd(A: BigMatrix, k: int, p: int, q: int, compute_uv: bool, seed: int, workers):
    m, n = A.shape
    l = min(k + p, m, n)
    br, bc = A.block_size
    M, N = A.grid
    Q = _empty((m, l), (br, l), A)
    Qb = _empty((n, l), (bc, l), A)
    Rb = _empty((l, l), (l, l), A)
    scratch = [Q, Qb, Rb]
    try:
        submit(programs.randomized_range, A=A, Q=Q, Qb=Qb, Rb=Rb, M=M, N=N, L=l, QIT=q, COLS=n, BC=bc, SEED=seed,
               workers=workers).wait()
        # Aᵀ Q = Qb Rb and Rb = Ur diag(s) Vrᵀ, so Qᵀ A = Vr diag(s) (Qb Ur)ᵀ and A ≈ (Q Vr) diag(s) (Qb Ur)ᵀ
        Ur, s, Vrt = scipy.linalg.svd(Rb.numpy(), full_matrices=False)
        if not compute_uv:
            return s[:k]
        Wl = BigMatrix.from_numpy(np.ascontiguousarray(Vrt.T[:, :k]), (l, k), store=A.store)
        Wrt = BigMatrix.from_numpy(np.ascontiguousarray(Ur[:, :k].T), (k, l), store=A.store)
        scratch += [Wl, Wrt]
        U = _empty((m, k), (br, k), A)
        Vt = _empty((k, n), (k, bc), A)
        submit(programs.low_rank_factors, Q=Q, Qb=Qb, Wl=Wl, Wrt=Wrt, U=U, Vt=Vt, M=M, N=N, workers=workers).wait()
        return U, s[:k], Vt
    finally:
        for mat in scratch:
            mat.delete()


# ---------------------------------------------------------------------------------------------- tree


def _tree_svd(A: BigMatrix, k: int, p: int, compute_uv: bool, workers):
    m, n = A.shape
    br, bc = A.block_size
    M, N = A.grid
    S = _empty((1, k), (1, k), A)
    vectors = {}
    if compute_uv:
        vectors = {"U": _empty((m, k), (br, k), A), "Vt": _empty((k, n), (k, bc), A)}
    submit(programs.tree_svd, A=A, S=S, M=M, N=N, RANK=min(k + p, m, n), K=k, BR=br, ROWS=m, VEC=int(compute_uv),
           workers=workers, **vectors).wait()
    s = S.numpy().ravel()
    S.delete()
    if not compute_uv:
        return s
    return vectors["U"], s, vectors["Vt"]
