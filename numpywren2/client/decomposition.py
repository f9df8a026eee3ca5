"""Singular value decomposition and principal component analysis on the runtime (``npw.svd``, ``npw.pca``).

Three ways to an SVD, each a sequence of LAmbdaPACK jobs (``numpywren2.core.programs.svd``):

- ``method="band"`` (all singular values, the default without ``k``): reduction to upper band form
  by alternating QR and LQ panel factorizations with TSQR trees (``band_reduction``), then the
  singular values of the band matrix in one executor task.  With ``compute_uv`` the band's singular
  vectors come from ``band_singular_vectors`` (band → bidiagonal in one task that keeps its transforms,
  the bidiagonal's triplets per block of indices in separate tasks, the products tile by tile) and the
  kept Householder reflectors are applied to them (``apply_reflectors``): no O(n³) work on the client.
- ``method="randomized"`` (the default with ``k``): the randomized range finder of Halko, Martinsson
  and Tropp with ``p`` oversampling columns and ``q`` power iterations, orthonormalised by TSQR after
  every product: one job (``randomized_range``) made of the reduction trees of ``gemm`` and the trees
  of ``tsqr``, then one job for U and Vᵀ (``low_rank_factors``).
- ``method="tree"``: truncated SVDs of the tile columns merged pairwise up a binary tree
  (``tree_svd``), the loosely coupled method of "Randomized SVD for Serverless Systems".
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

from ..core import programs
from ..core.deprecation import renamed_options
from .arguments import real_array
from .band import band_singular_values
from .call import Call
from .linalg import matmul
from .matrix import BigMatrix

LinAlgError = np.linalg.LinAlgError
METHODS = ("band", "randomized", "tree")


@renamed_options(workers="executors")
def svd(A, compute_uv: bool = True, k: int | None = None, method: str | None = None, p: int = 10, q: int = 2,
        block_size: int | tuple[int, int] | None = None, seed: int = 0, executors: int | None = None,
        check_finite: bool = True, full_matrices: bool = False, hermitian: bool = False,
        progress: bool | None = None):
    """Singular value decomposition of a general matrix, like ``numpy.linalg.svd`` (default
    ``full_matrices=False``: the reduced factors, where numpy's default is the complete ones).

    Parameters
    ----------
    A : (m, n) array_like or BigMatrix
        Any shape (tall, wide or square); float32 or float64.
    compute_uv : bool
        Also return the singular vectors (default).  For the band method this costs a job for the band's
        vectors (its O(n³) steps in executor tasks, n = min(m, n)) and a second distributed pass as
        large as the reduction; see ``docs/algorithms.md (SVD and PCA)``.
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
    full_matrices : bool
        As numpy: with ``compute_uv``, return U m×m and Vt n×n (the complete orthogonal factors; the
        band method, all singular values, no ``k``). False (default): U m×r and Vt r×n.
    hermitian : bool
        As numpy, ``A`` is taken to be symmetric: it must be square (else ``LinAlgError``, numpy's
        message). The factors are those of the general SVD of ``A`` as given (both triangles are
        read; numpy's eigh-based route reads the lower one only), so they agree with numpy's for a
        symmetric ``A``.
    progress : bool, optional
        Show a live progress bar of each job on stderr when it is a terminal (default:
        ``npw.config.progress``).

    Returns
    -------
    U : BigMatrix, (m, r)
        Left singular vectors (only with ``compute_uv``), r = k or min(m, n) (m with ``full_matrices``).
    s : ndarray, (r,)
        Singular values in decreasing order.
    Vt : BigMatrix, (r, n)
        Right singular vectors as rows (only with ``compute_uv``; n×n with ``full_matrices``).

    Raises
    ------
    numpy.linalg.LinAlgError
        With ``hermitian=True``, for a matrix that is not square.
    ValueError
        For a matrix that is not 2-D or is empty, holds infs or NaNs, ``k`` outside 1..min(m, n), an
        unknown method, negative ``p`` or ``q``, non-square tiles with the band method, or
        ``full_matrices=True`` with ``k`` or a truncated method.
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
    with Call("svd", check_finite, executors, progress) as call:
        return _svd(call, A, compute_uv, k, method, p, q, block_size, seed, full=bool(full_matrices),
                    hermitian=bool(hermitian))


def _svd(call: Call, A, compute_uv: bool, k, method, p, q, block_size, seed, full: bool = False,
         hermitian: bool = False):
    """``svd`` within a call (``pca`` runs it in its own): arguments checked before any upload."""
    A = call.argument(A, "A")
    m, n = A.shape
    if hermitian and m != n:
        raise LinAlgError(f"{call.what}: Last 2 dimensions of the array must be square (hermitian=True; a has "
                          f"shape {(m, n)})")
    if full and compute_uv and (k is not None or method not in (None, "band")):
        raise ValueError(f"{call.what}: full_matrices=True computes the complete orthogonal factors by the band "
                         "method; it cannot be combined with k or a truncated method")
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
        return _band_svd(call, A, compute_uv, rank=k, full=full and compute_uv)
    if method == "randomized":
        return _randomized_svd(call, A, k, int(p), int(q), compute_uv, seed)
    return _tree_svd(call, A, k, int(p), compute_uv)


class PCA:
    """Principal component analysis with scikit-learn's interface: ``fit``, ``transform``,
    ``fit_transform``, ``inverse_transform`` and its fitted attributes.

    Fitting centers the data (a LAmbdaPACK job, ``center_columns``) and runs a truncated SVD of the
    centered data (:func:`svd`'s programs); the projections are products with the components.

    Parameters
    ----------
    n_components : int, float or None
        Number of components, 1 ≤ n_components ≤ min(n_samples, n_features); None (default): all
        min(n_samples, n_features) of them; a float in (0, 1): the fewest components whose
        explained variance ratios add up to more than it (scikit-learn's rule). None and floats need
        every singular value: they use the band method.
    method : {"randomized", "band", "tree"}, optional
        The SVD of the centered data (as :func:`svd`). Default: "randomized" for an int
        ``n_components``, else "band".
    p, q, block_size, seed, executors, check_finite
        As for :func:`svd`.

    Attributes
    ----------
    components_ : ndarray, (n_components_, n_features)
        Principal axes (right singular vectors of the centered data), each row's largest entry in
        absolute value made positive (scikit-learn's sign convention for PCA).
    explained_variance_ : ndarray, (n_components_,)
        Variance along each axis: ``singular_values_**2 / (n_samples - 1)``.
    explained_variance_ratio_ : ndarray, (n_components_,)
        ``explained_variance_`` divided by the total variance of the data (all features, ddof=1).
    singular_values_ : ndarray, (n_components_,)
        Singular values of the centered data.
    mean_ : ndarray, (n_features,)
        Column means that were subtracted.
    noise_variance_ : float
        The mean of the variances not explained (scikit-learn's probabilistic PCA estimate): the total
        variance minus the explained, over ``min(n_samples, n_features) - n_components_``; 0 if none is left.
    n_components_, n_samples_, n_features_in_ : int

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> X = np.random.default_rng(0).standard_normal((40, 2)) @ np.array([[3.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    >>> P = npw.PCA(n_components=2, block_size=(20, 3))
    >>> Z = P.fit_transform(X)
    >>> Z.shape, bool(np.allclose(P.inverse_transform(Z), X))  # the data spans two dimensions
    ((40, 2), True)
    """

    @renamed_options(workers="executors")
    def __init__(self, n_components: int | float | None = None, *, method: str | None = None, p: int = 10,
                 q: int = 2, block_size: int | tuple[int, int] | None = None, seed: int = 0,
                 executors: int | None = None, check_finite: bool = True):
        self.n_components, self.method, self.p, self.q = n_components, method, p, q
        self.block_size, self.seed, self.executors, self.check_finite = block_size, seed, executors, check_finite

    def __repr__(self) -> str:
        return f"PCA(n_components={self.n_components!r})"

    def fit(self, X, y=None) -> PCA:
        """Fit the components to ``X`` (n_samples, n_features; numpy array or BigMatrix). Returns ``self``."""
        self._fit(X, scores=False)
        return self

    def fit_transform(self, X, y=None) -> np.ndarray:
        """Fit to ``X`` and return its projection (n_samples, n_components_): ``U * singular_values_`` from the
        SVD itself (no second pass over ``X``)."""
        return self._fit(X, scores=True)

    def transform(self, X) -> np.ndarray:
        """Project data onto the components: ``(X - mean_) @ components_.T``, an ndarray (n, n_components_).

        A numpy ``X`` is projected with numpy; a BigMatrix by a ``matmul`` job (the mean's part,
        ``mean_ @ components_.T``, subtracted on the client).
        """
        self._require_fitted("transform")
        if isinstance(X, BigMatrix):
            if X.shape[1] != self.n_features_in_:
                raise ValueError(f"transform: X must have {self.n_features_in_} columns (features), not shape "
                                 f"{X.shape}")
            Z = matmul(X, np.ascontiguousarray(self.components_.T.astype(X.dtype)), check_finite=self.check_finite,
                       executors=self.executors)
            try:
                return Z.numpy() - self.mean_ @ self.components_.T
            finally:
                Z.delete()
        X = real_array(X, "X", "transform")
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise ValueError(f"transform: X must have shape (n, {self.n_features_in_}), not {X.shape}")
        return (X - self.mean_) @ self.components_.T

    def inverse_transform(self, X) -> np.ndarray:
        """Data from projections: ``X @ components_ + mean_``, an ndarray (n, n_features) (a BigMatrix ``X`` is
        multiplied by a ``matmul`` job)."""
        self._require_fitted("inverse_transform")
        if isinstance(X, BigMatrix):
            if X.shape[1] != self.n_components_:
                raise ValueError(f"inverse_transform: X must have {self.n_components_} columns, not shape {X.shape}")
            Y = matmul(X, np.ascontiguousarray(self.components_.astype(X.dtype)), check_finite=self.check_finite,
                       executors=self.executors)
            try:
                return Y.numpy() + self.mean_
            finally:
                Y.delete()
        X = real_array(X, "X", "inverse_transform")
        if X.ndim != 2 or X.shape[1] != self.n_components_:
            raise ValueError(f"inverse_transform: X must have shape (n, {self.n_components_}), not {X.shape}")
        return X @ self.components_ + self.mean_

    def _require_fitted(self, what: str) -> None:
        if not hasattr(self, "components_"):
            raise ValueError(f"{what}: this PCA instance is not fitted yet; call fit first")

    def _fit(self, X, scores: bool) -> np.ndarray | None:
        with Call("pca", self.check_finite, self.executors) as call:
            X = call.argument(X, "X")
            m, n = X.shape
            if m < 2:
                raise ValueError(f"pca needs at least two samples (rows), got shape {(m, n)}")
            k, fraction = _n_components(self.n_components, m, n)
            method = self.method if self.method is not None else ("randomized" if k is not None else "band")
            if method not in METHODS:
                raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
            if k is None and method != "band":
                raise ValueError(f'pca: n_components={self.n_components!r} needs every singular value: use '
                                 f'method="band", not "{method}"')
            X = call.matrix(X, "X", self.block_size, square=_BAND_TILES if method == "band" else None)
            M, N = X.grid
            bc = X.block_size[1]
            Xc = call.empty(X.shape, X.block_size, X.dtype)
            means = call.empty((1, n), (1, bc), X.dtype)
            sums_of_squares = call.empty((1, n), (1, bc), X.dtype)
            call.run(programs.center_columns, X=X, Xc=Xc, Mean=means, Sq=sums_of_squares, M=M, N=N, ROWS=m)
            U, s, Vt = _svd(call, Xc, True, k, method, self.p, self.q, None, self.seed)
            call.own(U, Vt)
            mean = means.numpy().ravel()
            total_variance = float(sums_of_squares.numpy().astype(np.float64).sum()) / (m - 1)
            explained = s**2 / (m - 1)
            if fraction is not None:  # scikit-learn: the fewest components whose ratios add up to more than it
                ratios = np.cumsum(explained / total_variance) if total_variance > 0 else np.ones_like(explained)
                k = min(int(np.searchsorted(ratios, fraction, side="right")) + 1, s.size)
            k = s.size if k is None else k
            components = Vt.numpy()[:k]
            u = U.numpy()[:, :k] if scores else None
        largest = np.argmax(np.abs(components), axis=1)
        signs = np.sign(components[np.arange(k), largest])
        signs = np.where(signs == 0, 1.0, signs).astype(components.dtype)
        components *= signs[:, None]
        s, explained = s[:k], explained[:k]
        self.components_, self.singular_values_, self.mean_ = components, s, mean
        self.explained_variance_ = explained
        self.explained_variance_ratio_ = explained / total_variance if total_variance > 0 else np.zeros_like(explained)
        left = min(m, n) - k
        self.noise_variance_ = max(total_variance - float(explained.sum()), 0.0) / left if left > 0 else 0.0
        self.n_components_, self.n_samples_, self.n_features_in_ = int(k), m, n
        return None if u is None else (u * signs) * s


def _n_components(n_components, m: int, n: int) -> tuple[int | None, float | None]:
    """``(k, fraction)`` for scikit-learn's ``n_components``: an int k, or None with the fraction (a float in
    (0, 1)), or (None, None) for all of them."""
    if n_components is None:
        return None, None
    if isinstance(n_components, str):
        raise ValueError(f"pca: n_components={n_components!r} is not supported (give an int, a float in (0, 1) "
                         "or None)")
    if isinstance(n_components, float | np.floating) and not float(n_components).is_integer():
        if not 0.0 < n_components < 1.0:
            raise ValueError(f"pca: n_components={n_components!r} must be an int or a float in (0, 1)")
        return None, float(n_components)
    if isinstance(n_components, bool) or not isinstance(n_components, int | np.integer | float | np.floating):
        raise ValueError(f"n_components={n_components!r} must be an int, a float in (0, 1) or None")
    k = int(n_components)
    if not 1 <= k <= min(m, n):
        raise ValueError(f"n_components={n_components!r} is outside 1..min(n_samples, n_features) = 1..{min(m, n)}")
    return k, None


@renamed_options(workers="executors", k="n_components")
def pca(X, n_components: int | float | None = None, method: str | None = None, p: int = 10, q: int = 2,
        block_size: int | tuple[int, int] | None = None, seed: int = 0, executors: int | None = None,
        check_finite: bool = True) -> PCA:
    """Principal component analysis: ``PCA(n_components, ...).fit(X)`` (centering, a LAmbdaPACK job, then a
    truncated SVD).

    Parameters
    ----------
    X : (n_samples, n_features) array_like or BigMatrix
        Data, one sample per row; at least two samples.
    n_components : int, float or None
        As for :class:`PCA` (``k=`` is its former name).
    method, p, q, block_size, seed, executors, check_finite
        As for :class:`PCA` and :func:`svd`.

    Returns
    -------
    PCA
        Fitted: ``components_``, ``explained_variance_``, ``explained_variance_ratio_``,
        ``singular_values_``, ``mean_`` as in ``sklearn.decomposition.PCA``.

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
    return PCA(n_components, method=method, p=p, q=q, block_size=block_size, seed=seed, executors=executors,
               check_finite=check_finite).fit(X)


# ---------------------------------------------------------------------------------------------- helpers

_BAND_TILES = "the band reduction pairs tile column k with tile row k"


def _transpose(call: Call, A: BigMatrix) -> BigMatrix:
    At = call.empty((A.shape[1], A.shape[0]), (A.block_size[1], A.block_size[0]), A.dtype)
    call.run(programs.transpose_tiles, A=A, At=At, M=A.grid[0], N=A.grid[1])
    return At


# ---------------------------------------------------------------------------------------------- band


def _band_svd(call: Call, A: BigMatrix, compute_uv: bool, rank: int | None = None, transposed: bool = False,
              full: bool = False):
    """SVD by band reduction, the leading ``rank`` triplets (all if None).

    ``transposed``: A holds the transpose of the user's (wide) matrix. ``full``: U is the complete m×m
    factor (of the tall matrix): the reflectors applied to [[Ub, 0], [0, I]] (built on the client).
    """
    if A.shape[0] < A.shape[1]:
        # Aᵀ = U diag(s) Vt, so A = Vtᵀ diag(s) Uᵀ: the back-transformations write the factors transposed
        return _band_svd(call, _transpose(call, A), compute_uv, rank, transposed=True, full=full)
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
    # the band's triplets by one job (nothing but the r singular values to the client), then
    # U = Q [[Ub, 0], [0, I]] and Vt = (P Vb)ᵀ for the leading r columns of Ub and Vb: two independent jobs
    cols = m if full else r
    S = call.empty((1, r), (1, b), A.dtype)
    Cu = call.empty((m, cols), b, A.dtype)
    Cv = call.empty((n, r), b, A.dtype)
    NCR = Cv.grid[1]
    call.run(programs.band_singular_vectors, B=B, S=S, Cu=Cu, Cv=Cv, M=M, N=N, NCU=Cu.grid[1], NCR=NCR, BS=b, R=r,
             ROWS=m, COLS=cols, NB=n)
    call.delete(B)
    s = S.numpy().ravel()
    flip = int(transposed)
    U = call.empty((cols, m) if transposed else (m, cols), b, A.dtype)
    Vt = call.empty((n, r) if transposed else (r, n), b, A.dtype)
    jobs = [call.submit(programs.apply_reflectors, C=Cu, V=keep["Vq"], T=keep["Tq"], Out=U, R=M, NC=Cu.grid[1], K=N,
                        OFF=0, TRANS=flip)]
    if N > 1:
        jobs.append(call.submit(programs.apply_reflectors, C=Cv, V=keep["Vl"], T=keep["Tl"], Out=Vt, R=N,
                                NC=NCR, K=N - 1, OFF=1, TRANS=1 - flip))
    else:
        Vt.put_tile(0, 0, Cv.get_tile(0, 0) if transposed else Cv.get_tile(0, 0).T)
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
