"""The symmetric eigenproblem on the runtime: ``npw.eigh`` and ``npw.eigvalsh`` (scipy.linalg's interface).

Two stages, as LAPACK's two-stage ``syevd_2stage``:

1. **symmetric → band** (executors): ``programs.sym_band_reduction`` reduces A to a symmetric band
   matrix B = Qᵀ A Q of half-bandwidth b (the tile size) by TSQR trees of Householder reflectors on the
   panels below the diagonal, each applied to both sides of the trailing matrix;
2. **band → eigenvalues** (``eigvals_only``, executors): one task of ``programs.sym_band_eigenvalues``
   (bandwidth halving, LAPACK ``sbevd``); the client reads n numbers;
3. **band → eigenvectors** (executors): ``programs.sym_band_eigenvectors`` reduces the band to tridiagonal
   form T = Q₂ᵀ B Q₂ in one task that keeps Q₂, computes the tridiagonal's eigenvectors in tasks of one
   tile column of indices each (bisection and inverse iteration), and multiplies Z = Q₂ Z_T tile by tile;
   then the kept reflectors are applied, V = Q Z (``programs.apply_reflectors`` with ``OFF = 1``, the
   back-transformation of the band SVD).  The client reads the r eigenvalues only: no O(n³) work and no
   n×n data on the client.

Conventions as ``numpywren2.client.linalg``: numpy or BigMatrix arguments, the eigenvalues as a numpy
array (ascending, in the matrix's dtype), the eigenvectors as a BigMatrix tiled like ``a``.
Algorithm, task counts and accuracy: ``docs/algorithms.md`` ("Symmetric eigenproblem").
"""

from __future__ import annotations

import numpy as np

from ..core import programs
from ..core.deprecation import renamed_options
from .call import Call
from .matrix import BigMatrix

_BAND_TILES = "the reduction pairs tile column k with tile row k"


@renamed_options(workers="executors")
def eigh(a, b=None, *, lower: bool = True, eigvals_only: bool = False, overwrite_a: bool = False,
         check_finite: bool = True, subset_by_index=None, subset_by_value=None, block_size: int | None = None,
         executors: int | None = None):
    """Eigenvalues and eigenvectors of a real symmetric matrix, as ``scipy.linalg.eigh``.

    Parameters
    ----------
    a : (n, n) array_like or BigMatrix
        Real symmetric; only the triangle ``lower`` names is read (symmetry is not checked, as scipy).
    b : None
        The generalized problem ``a v = w b v`` is not implemented: anything but None is a
        ``NotImplementedError``.
    lower : bool
        Read the lower (default) or the upper triangle of ``a``.
    eigvals_only : bool
        Return the eigenvalues only (no back-transformation job, nothing n×n on the client).
    overwrite_a : bool
        Accepted for scipy's signature; ``a`` is never overwritten.
    check_finite : bool
        Reject an ``a`` holding infs or NaNs (default, as scipy); False skips the check.
    subset_by_index : (int, int), optional
        The eigenvalues (and vectors) of ascending indices ``lo..hi``, both included, 0-based.
    subset_by_value : (float, float), optional
        The eigenvalues in the half-open interval ``(lo, hi]``.
    block_size : int, optional
        Tile size when ``a`` is a numpy array (square tiles); it is the band's half-bandwidth.
    executors : int, optional
        Executors per job (default: the runtime's).

    Returns
    -------
    w : numpy.ndarray, (r,)
        The eigenvalues in ascending order, r = n or the size of the subset, in ``a``'s dtype.
    v : BigMatrix, (n, r)
        The normalized eigenvectors as columns, ``v[:, i]`` belonging to ``w[i]`` (not with
        ``eigvals_only``); tiled like ``a``.

    Raises
    ------
    ValueError
        For a matrix that is not square or 2-D, is empty, holds infs or NaNs, non-square tiles, invalid
        subset bounds, or both subsets at once.
    TypeError
        For a complex or non-numeric ``a``.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> a = np.array([[2.0, 1.0, 0.0], [1.0, 2.0, 1.0], [0.0, 1.0, 2.0]])
    >>> w, v = npw.eigh(a, block_size=2)
    >>> w.round(8)
    array([0.58578644, 2.        , 3.41421356])
    >>> bool(np.allclose(a @ v.numpy(), v.numpy() * w))
    True
    >>> npw.eigh(a, eigvals_only=True, subset_by_index=[1, 2], block_size=2).round(8)
    array([2.        , 3.41421356])
    """
    del overwrite_a
    if b is not None:
        raise NotImplementedError("eigh: the generalized eigenproblem (b is not None) is not implemented")
    with Call("eigh", check_finite, executors) as call:
        return _eigh(call, a, lower, eigvals_only, subset_by_index, subset_by_value, block_size)


@renamed_options(workers="executors")
def eigvalsh(a, b=None, *, lower: bool = True, overwrite_a: bool = False, check_finite: bool = True,
             subset_by_index=None, subset_by_value=None, block_size: int | None = None,
             executors: int | None = None) -> np.ndarray:
    """Eigenvalues of a real symmetric matrix, as ``scipy.linalg.eigvalsh``: ``eigh(..., eigvals_only=True)``.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> npw.eigvalsh(np.diag([3.0, 1.0, 2.0]), block_size=2)
    array([1., 2., 3.])
    """
    return eigh(a, b, lower=lower, eigvals_only=True, overwrite_a=overwrite_a, check_finite=check_finite,
                subset_by_index=subset_by_index, subset_by_value=subset_by_value, block_size=block_size,
                executors=executors)


def _subset(subset_by_index, subset_by_value, n: int) -> tuple[str, tuple | None]:
    """(``select``, ``select_range``) in LAPACK's terms ("a", "i" or "v") for scipy's subset arguments
    (scipy's checks and words)."""
    if subset_by_index is not None and subset_by_value is not None:
        raise ValueError("Either index or value subset can be requested.")
    if subset_by_index is not None:
        try:
            lo, hi = (int(x) for x in subset_by_index)
        except (TypeError, ValueError):
            raise ValueError(f"subset_by_index must be a pair of integers, not {subset_by_index!r}") from None
        if not 0 <= lo <= hi < n:
            raise ValueError(f"Requested eigenvalue indices are not valid. Valid range is [0, {n - 1}] and start "
                             f"<= end, but start={lo}, end={hi} is given")
        return "i", (lo, hi)
    if subset_by_value is not None:
        try:
            lo, hi = (float(x) for x in subset_by_value)
        except (TypeError, ValueError):
            raise ValueError(f"subset_by_value must be a pair of numbers, not {subset_by_value!r}") from None
        if not lo < hi:
            raise ValueError("The interval bounds of subset_by_value must satisfy lo < hi, got "
                             f"({lo}, {hi})")
        return "v", (lo, hi)
    return "a", None


def _eigh(call: Call, a, lower: bool, eigvals_only: bool, subset_by_index, subset_by_value, block_size):
    x = call.argument(a, "a")
    if x.shape[0] != x.shape[1]:
        raise ValueError(f"{call.what}: expected square matrix, got shape {x.shape}")
    n = x.shape[0]
    select, select_range = _subset(subset_by_index, subset_by_value, n)
    A = call.matrix(x, "a", block_size, square=_BAND_TILES)
    bs, N = A.block_size[0], A.grid[0]
    B = call.empty((n, n), bs, A.dtype)
    keep = {} if eigvals_only else {name: call.tile_space() for name in ("Vq", "Tq")}
    call.run(programs.sym_band_reduction, A=A, B=B, N=N, LOWER=int(bool(lower)), **keep)
    if eigvals_only:  # one more job: the band's eigenvalues in one task, nothing but n numbers to the client
        W = call.empty((1, n), (1, n), A.dtype)
        call.run(programs.sym_band_eigenvalues, B=B, W=W, N=N, BS=bs)
        w = W.numpy().ravel()
        if select == "i":
            return w[select_range[0]:select_range[1] + 1]
        if select == "v":
            return w[(w > select_range[0]) & (w <= select_range[1])]
        return w
    if select == "a":
        lo, r = 0, n
    elif select == "i":
        lo, r = select_range[0], select_range[1] - select_range[0] + 1
    else:  # a value range: the eigenvalues first (one task, n numbers to the client), then its indices
        W = call.empty((1, n), (1, n), A.dtype)
        call.run(programs.sym_band_eigenvalues, B=B, W=W, N=N, BS=bs)
        w_all = W.numpy().ravel()
        call.delete(W)
        lo = int(np.searchsorted(w_all, select_range[0], side="right"))
        r = int(np.searchsorted(w_all, select_range[1], side="right")) - lo
    if r == 0:
        return np.zeros(0, dtype=A.dtype), call.keep(call.empty((n, 0), bs, A.dtype))
    W = call.empty((1, r), (1, bs), A.dtype)
    Z = call.empty((n, r), bs, A.dtype)
    call.run(programs.sym_band_eigenvectors, B=B, W=W, Z=Z, N=N, NC=Z.grid[1], BS=bs, LO=lo, R=r)
    call.delete(B)
    w = W.numpy().ravel()
    if N == 1:  # one tile: no reflectors, Z is the answer
        return w, call.keep(Z)
    V = call.empty((n, r), bs, A.dtype)
    call.run(programs.apply_reflectors, C=Z, V=keep["Vq"], T=keep["Tq"], Out=V, R=N, NC=Z.grid[1], K=N - 1, OFF=1,
             TRANS=0)
    return w, call.keep(V)


def lower_band_storage(B: BigMatrix) -> np.ndarray:
    """LAPACK's lower band storage ``ab[i - j, j] = B[i, j]`` (0 ≤ i − j ≤ bs) of the band ``sym_band_reduction``
    writes: the diagonal tiles B[k, k] (their lower triangles) and the triangles B[k + 1, k] below them.

    Reads 2N − 1 tiles; nothing n×n is formed.
    """
    n, bs, N = B.shape[0], B.block_size[0], B.grid[0]
    ab = np.zeros((bs + 1, n), dtype=B.dtype)
    for k in range(N):
        c0 = k * bs
        d = B.get_tile(k, k)
        for off in range(d.shape[0]):
            ab[off, c0:c0 + d.shape[0] - off] = np.diagonal(d, -off)
        if k + 1 < N:
            r = B.get_tile(k + 1, k)  # upper triangular: entry (p, q), q ≥ p, is (c0 + bs + p, c0 + q)
            for off in range(bs):      # q − p = off: band row bs − off, column c0 + p + off
                diag = np.diagonal(r, off)
                ab[bs - off, c0 + off:c0 + off + diag.size] = diag
    return ab
