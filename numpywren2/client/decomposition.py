"""Singular value decomposition and principal component analysis on the runtime (``npw.svd``, ``npw.pca``).

Three ways to an SVD, each a sequence of LAmbdaPACK jobs (``numpywren2.core.programs.svd``):

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

from ..core import programs
from ..core.deprecation import renamed_options
from .band import band_singular_values
from .call import Call
from .matrix import BigMatrix

METHODS = ("band", "randomized", "tree")


@renamed_options(workers="executors")
def svd(A, compute_uv: bool = True, k: int | None = None, method: str | None = None, p: int = 10, q: int = 2,
        block_size: int | tuple[int, int] | None = None, seed: int = 0, executors: int | None = None,
        check_finite: bool = True):
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
        Tile size when ``A`` is a numpy array.  The band method needs square tiles.  For a BigMatrix,
        leave it out or give its own tiling.
    seed : int
        Seed of the Gaussian test matrix of the randomized method.
    executors : int, optional
        Executors per job (default: the runtime's).
    check_finite : bool
        Reject an ``A`` holding infs or NaNs (default, as scipy); False skips the check.

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
        For a matrix that is not 2-D or is empty, holds infs or NaNs, ``k`` outside 1..min(m, n), an
        unknown method, negative ``p`` or ``q``, or non-square tiles with the band method.
    TypeError
        For a complex or non-numeric ``A``, a non-integer ``k`` or a malformed ``block_size``.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> X = np.random.default_rng(0).standard_normal((30, 20))
    >>> exact = np.linalg.svd(X, compute_uv=False)
    >>> s = npw.svd(X, compute_uv=False, block_size=10)         # band reduction, all singular values
    >>> bool(np.allclose(s, exact))
    True
    >>> U, s, Vt = npw.svd(X, k=3, block_size=10)                # randomized: leading 3 triplets
    >>> U.shape, s.shape, Vt.shape
    ((30, 3), (3,), (3, 20))
    >>> bool(np.allclose(s, exact[:3], rtol=1e-2))
    True
    >>> U, s, Vt = npw.svd(X, k=3, method="tree", block_size=(30, 20))  # one column block: exact
    >>> bool(np.allclose(s, exact[:3]))
    True
    >>> bool(np.isclose(np.linalg.norm(X - U.numpy() * s @ Vt.numpy(), 2), exact[3]))  # the best rank-3 error
    True
    """
    with Call("svd", check_finite, executors) as call:
        return _svd(call, A, compute_uv, k, method, p, q, block_size, seed)


def _svd(call: Call, A, compute_uv: bool, k, method, p, q, block_size, seed):
    """``svd`` within a call (``pca`` runs it in its own): arguments checked before any upload."""
    A = call.argument(A, "A")
    m, n = A.shape
    if k is not None:
        if isinstance(k, bool) or not isinstance(k, int | np.integer):
            raise TypeError(f"k must be an integer, not {type(k).__name__}")
        if not 1 <= k <= min(m, n):
            raise ValueError(f"k={k} is outside 1..min(m, n) = 1..{min(m, n)} for a matrix of shape {(m, n)}")
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
    A = call.matrix(A, "A", block_size, square=_BAND_TILES if method == "band" else None)
    if method == "band":
        return _band_svd(call, A, compute_uv, rank=k)
    if method == "randomized":
        return _randomized_svd(call, A, k, int(p), int(q), compute_uv, seed)
    return _tree_svd(call, A, k, int(p), compute_uv)


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


@renamed_options(workers="executors")
def pca(X, k: int, method: str = "randomized", p: int = 10, q: int = 2,
        block_size: int | tuple[int, int] | None = None, seed: int = 0, executors: int | None = None,
        check_finite: bool = True) -> PCA:
    """Principal component analysis: centering (a LAmbdaPACK job), then a truncated SVD.

    Parameters
    ----------
    X : (n_samples, n_features) array_like or BigMatrix
        Data, one sample per row; at least two samples.
    k : int
        Number of components, 1 ≤ k ≤ min(n_samples, n_features).
    method, p, q, block_size, seed, executors, check_finite
        As for :func:`svd`.

    Returns
    -------
    PCA
        ``components_``, ``explained_variance_``, ``explained_variance_ratio_``, ``singular_values_``,
        ``mean_`` as in ``sklearn.decomposition.PCA``.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> X = np.random.default_rng(0).standard_normal((40, 2)) @ np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    >>> P = npw.pca(X, 2, block_size=(20, 3))
    >>> Xc = X - X.mean(axis=0)
    >>> bool(np.allclose(P.explained_variance_, np.linalg.svd(Xc, compute_uv=False)[:2] ** 2 / 39))
    True
    >>> bool(np.isclose(P.explained_variance_ratio_.sum(), 1.0))  # the data spans two dimensions
    True
    >>> P.components_.shape, bool(np.allclose(P.transform(X) @ P.components_, Xc))
    ((2, 3), True)
    """
    with Call("pca", check_finite, executors) as call:
        X = call.argument(X, "X")
        m, n = X.shape
        if m < 2:
            raise ValueError(f"pca needs at least two samples (rows), got shape {(m, n)}")
        if isinstance(k, bool) or not isinstance(k, int | np.integer) or not 1 <= k <= min(m, n):
            raise ValueError(f"k={k!r} is outside 1..min(n_samples, n_features) = 1..{min(m, n)}")
        if method not in METHODS:
            raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        X = call.matrix(X, "X", block_size)
        M, N = X.grid
        bc = X.block_size[1]
        Xc = call.empty(X.shape, X.block_size, X.dtype)
        means = call.empty((1, n), (1, bc), X.dtype)
        sums_of_squares = call.empty((1, n), (1, bc), X.dtype)
        call.run(programs.center_columns, X=X, Xc=Xc, Mean=means, Sq=sums_of_squares, M=M, N=N, ROWS=m)
        U, s, Vt = _svd(call, Xc, True, int(k), method, p, q, None, seed)
        components = Vt.numpy()
        call.delete(U, Vt)
        mean = means.numpy().ravel()
        total_variance = float(sums_of_squares.numpy().sum()) / (m - 1)
    largest = np.argmax(np.abs(components), axis=1)
    signs = np.sign(components[np.arange(components.shape[0]), largest])
    components *= np.where(signs == 0, 1.0, signs)[:, None]
    explained = s**2 / (m - 1)
    ratio = explained / total_variance if total_variance > 0 else np.zeros_like(explained)
    return PCA(components_=components, explained_variance_=explained, explained_variance_ratio_=ratio,
               singular_values_=s, mean_=mean, n_components_=int(k), n_samples_=m, n_features_in_=n)


# ---------------------------------------------------------------------------------------------- helpers

_BAND_TILES = "the band reduction pairs tile column k with tile row k"


def _transpose(call: Call, A: BigMatrix) -> BigMatrix:
    At = call.empty((A.shape[1], A.shape[0]), (A.block_size[1], A.block_size[0]), A.dtype)
    call.run(programs.transpose_tiles, A=A, At=At, M=A.grid[0], N=A.grid[1])
    return At


# ---------------------------------------------------------------------------------------------- band


def _band_svd(call: Call, A: BigMatrix, compute_uv: bool, rank: int | None = None, transposed: bool = False):
    """SVD by band reduction, the leading ``rank`` triplets (all if None).

    ``transposed``: A holds the transpose of the user's (wide) matrix.
    """
    if A.shape[0] < A.shape[1]:
        # Aᵀ = U diag(s) Vt, so A = Vtᵀ diag(s) Uᵀ: the back-transformations write the factors transposed
        return _band_svd(call, _transpose(call, A), compute_uv, rank, transposed=True)
    m, n = A.shape
    b = A.block_size[0]
    M, N = A.grid
    B = call.empty((n, n), b, A.dtype)
    keep = {}
    if compute_uv:
        # the reflectors (V, T) of both trees, kept for the back-transformations: 3-index tile spaces, no grid
        keep = {name: call.tile_space() for name in ("Vq", "Tq", "Vl", "Tl")}
    call.run(programs.band_reduction, A=A, B=B, M=M, N=N, **keep)
    r = n if rank is None else rank
    if not compute_uv:
        return band_singular_values(call, B)[:r]
    band = np.zeros((n, n), dtype=A.dtype)
    for t in range(N):
        for j in (t, t + 1):
            if j < N:
                band[t * b:(t + 1) * b, j * b:(j + 1) * b] = B.get_tile(t, j)
    Ub, s, Vbt = scipy.linalg.svd(band, full_matrices=False, check_finite=True)
    # U = Q [Ub; 0] and Vt = (P Vb)ᵀ, for the leading r columns of Ub and Vb: two independent jobs
    C = np.zeros((m, r), dtype=A.dtype)
    C[:n] = Ub[:, :r]
    Cu = call.upload(C, b)
    Cv = call.upload(np.ascontiguousarray(Vbt[:r].T), b)
    flip = int(transposed)
    U = call.empty((r, m) if transposed else (m, r), b, A.dtype)
    Vt = call.empty((n, r) if transposed else (r, n), b, A.dtype)
    NC = Cu.grid[1]
    jobs = [call.submit(programs.apply_reflectors, C=Cu, V=keep["Vq"], T=keep["Tq"], Out=U, R=M, NC=NC, K=N, OFF=0,
                        TRANS=flip)]
    if N > 1:
        jobs.append(call.submit(programs.apply_reflectors, C=Cv, V=keep["Vl"], T=keep["Tl"], Out=Vt, R=N, NC=NC,
                                K=N - 1, OFF=1, TRANS=1 - flip))
    else:
        Vt.put_tile(0, 0, Vbt[:r].T if transposed else Vbt[:r])
    for job in jobs:
        call.wait(job)
    call.keep(U, Vt)
    return (Vt, s[:r], U) if transposed else (U, s[:r], Vt)


# ---------------------------------------------------------------------------------------------- randomized


def _randomized_svd(call: Call, A: BigMatrix, k: int, p: int, q: int, compute_uv: bool, seed: int):
    m, n = A.shape
    l = min(k + p, m, n)
    br, bc = A.block_size
    M, N = A.grid
    Q = call.empty((m, l), (br, l), A.dtype)
    Qb = call.empty((n, l), (bc, l), A.dtype)
    Rb = call.empty((l, l), (l, l), A.dtype)
    call.run(programs.randomized_range, A=A, Q=Q, Qb=Qb, Rb=Rb, M=M, N=N, L=l, QIT=q, COLS=n, BC=bc, SEED=seed)
    # Aᵀ Q = Qb Rb and Rb = Ur diag(s) Vrᵀ, so Qᵀ A = Vr diag(s) (Qb Ur)ᵀ and A ≈ (Q Vr) diag(s) (Qb Ur)ᵀ
    Ur, s, Vrt = scipy.linalg.svd(Rb.numpy(), full_matrices=False)
    if not compute_uv:
        return s[:k]
    Wl = call.upload(np.ascontiguousarray(Vrt.T[:, :k]), (l, k))
    Wrt = call.upload(np.ascontiguousarray(Ur[:, :k].T), (k, l))
    U = call.empty((m, k), (br, k), A.dtype)
    Vt = call.empty((k, n), (k, bc), A.dtype)
    call.run(programs.low_rank_factors, Q=Q, Qb=Qb, Wl=Wl, Wrt=Wrt, U=U, Vt=Vt, M=M, N=N)
    call.keep(U, Vt)
    return U, s[:k], Vt


# ---------------------------------------------------------------------------------------------- tree


def _tree_svd(call: Call, A: BigMatrix, k: int, p: int, compute_uv: bool):
    m, n = A.shape
    br, bc = A.block_size
    M, N = A.grid
    S = call.empty((1, k), (1, k), A.dtype)
    vectors = {}
    if compute_uv:
        vectors = {"U": call.empty((m, k), (br, k), A.dtype), "Vt": call.empty((k, n), (k, bc), A.dtype)}
    call.run(programs.tree_svd, A=A, S=S, M=M, N=N, RANK=min(k + p, m, n), K=k, BR=br, ROWS=m, VEC=int(compute_uv),
             **vectors)
    s = S.numpy().ravel()
    if not compute_uv:
        return s
    call.keep(vectors["U"], vectors["Vt"])
    return vectors["U"], s, vectors["Vt"]
