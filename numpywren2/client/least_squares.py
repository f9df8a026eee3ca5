"""Least squares, the pseudo-inverse and the numerical rank, through the SVD (``npw.lstsq``, ``npw.pinv``,
``npw.matrix_rank``), with numpy's conventions.

All three start from the band SVD of ``a`` (``decomposition._band_svd``: the band reduction and the
back-transformations are jobs; the singular values of the band come from LAPACK).  The singular values
below the cutoff (``rcond`` or ``rtol`` times the largest) count as zero, as in LAPACK's ``gelsd`` and
numpy's ``pinv``; the rest of the work is products of tiled matrices in the executors, one job each
(``core/programs/least_squares.py``):

- ``lstsq`` (``svd_solve``): ``c = Uᵀ b`` (``gemm_tn``), ``c ← diag(s⁺) c`` (``scale_rows_by``), ``x = Vtᵀ c``
  (``gemm_tn``); for a full-rank overdetermined system also the residuals, the column sums of squares
  of ``b − a x`` (a chain of ``gemm_update`` per tile, then ``column_norms``).
- ``pinv`` (``pinv_from_svd``): ``W = diag(s⁺) Uᵀ`` (``scaled_transpose_of``), ``a⁺ = Vtᵀ W`` (``gemm_tn``).
- ``matrix_rank``: the singular values alone.

s⁺ holds ``1/s_i`` for the kept values and 0 for the others; it is the only thing computed on the client
besides the cutoff (O(min(m, n))).
"""

from __future__ import annotations

import numpy as np

from ..core import programs
from ..core.deprecation import renamed_options
from .call import Call
from .decomposition import _BAND_TILES, _band_svd
from .linalg import _arguments, _as_returned, _block_from_rhs, _right_hand_side
from .matrix import BigMatrix

_DEFAULT = object()  # numpy's "not given" for pinv's rtol


def singular_triplets(call: Call, A: BigMatrix) -> tuple[BigMatrix, np.ndarray, BigMatrix]:
    """``(U, s, Vt)``: the reduced SVD of ``A`` (square tiles; tiles it lacks read as zeros) by the band method;
    U and Vt belong to ``call``."""
    U, s, Vt = _band_svd(call, call.dense(A), True)
    call.own(U, Vt)
    return U, s, Vt


def singular_values(call: Call, A: BigMatrix) -> np.ndarray:
    """All singular values of ``A`` (square tiles; tiles it lacks read as zeros), in decreasing order."""
    return _band_svd(call, call.dense(A), False)


def _inverted(s: np.ndarray, cutoff: float) -> tuple[np.ndarray, int]:
    """``(s⁺, rank)``: 1/s for the singular values above ``cutoff``, 0 for the others."""
    large = s > cutoff
    out = np.zeros_like(s)
    out[large] = 1.0 / s[large]
    return out, int(large.sum())


def _column(call: Call, values: np.ndarray, block: int, dtype) -> BigMatrix:
    """``values`` as a column matrix tiled in ``block`` rows (an intermediate)."""
    return call.upload(np.ascontiguousarray(values.astype(dtype)[:, None]), (block, 1))


@renamed_options(workers="executors")
def lstsq(a, b, rcond: float | None = None, block_size: int | tuple[int, int] | None = None,
          executors: int | None = None,
          check_finite: bool = True,
          progress: bool | None = None) -> tuple[BigMatrix | np.ndarray, np.ndarray, int, np.ndarray]:
    """Least-squares solution of ``a x ≈ b`` of minimum norm, like ``numpy.linalg.lstsq``, through the SVD.

    ``a = U diag(s) Vt`` by the band SVD (``npw.svd``'s programs), then ``x = Vtᵀ diag(s⁺) Uᵀ b`` by jobs,
    where s⁺ inverts the singular values above ``rcond · s[0]`` and zeroes the others (LAPACK ``gelsd``'s
    rule, which numpy uses): a rank-deficient or wide ``a`` gets the minimum-norm solution.

    Parameters
    ----------
    a : (m, n) array_like or BigMatrix
        Any shape: overdetermined (m > n), square or underdetermined (m < n), of any rank.
        A BigMatrix must have square tiles.
    b : (m,) or (m, k) array_like, or (m, k) BigMatrix
        Right-hand side(s); a BigMatrix tiled in other rows than ``a`` is retiled by a job.
    rcond : float, optional
        Cut-off ratio for small singular values (numpy's): those ``<= rcond * s[0]`` count as zero.
        None (default): machine precision of the dtype times ``max(m, n)``; a negative value: machine
        precision.
    block_size : int or (int, int), optional
        Tile size when ``a`` is a numpy array; square tiles only.
    executors : int, optional
        Executors for these jobs (default: the runtime's).
    check_finite : bool
        Reject inputs holding infs or NaNs (default, as scipy); False skips the check.

    Returns
    -------
    x : BigMatrix (n, k), or numpy.ndarray of shape (n,) when ``b`` is a vector
    residuals : numpy.ndarray
        Squared 2-norm of each column of ``b - a x``, shape (k,) ((1,) for a vector ``b``), computed
        in the executors from ``b - a x``; empty unless ``rank == n`` and ``m > n``, as numpy.
    rank : int
        The number of singular values above the cutoff.
    s : numpy.ndarray
        The singular values of ``a``, (min(m, n),), in decreasing order.

    Raises
    ------
    ValueError
        For mismatched shapes or tilings, non-square tiles, or infs and NaNs.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> a = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])     # rank 1
    >>> x, res, rank, s = npw.lstsq(a, np.array([2.0, 2.0, 1.0]), block_size=2)
    >>> x.round(12), res, rank, s.round(12)
    (array([1., 1.]), array([], dtype=float64), 1, array([2., 0.]))
    """
    with Call("lstsq", check_finite, executors, progress) as call:
        a, b, vector = _arguments(call, a, b)
        A = call.dense(call.matrix(a, "a", _block_from_rhs(a, b, block_size), square=_BAND_TILES))
        m, n = A.shape
        bs = A.block_size[0]
        B = _right_hand_side(call, b, m, bs)
        dtype = np.result_type(A.dtype, B.dtype)
        U, s, Vt = singular_triplets(call, A)
        eps = float(np.finfo(A.dtype).eps)
        if rcond is None:
            rcond = eps * max(m, n)
        elif rcond < 0:
            rcond = eps
        s_plus, rank = _inverted(s, float(rcond) * float(s[0]))
        D = _column(call, s_plus, U.block_size[1], dtype)
        X = call.empty((n, B.shape[1]), (Vt.block_size[1], B.block_size[1]), dtype)
        sums = call.empty((1, B.shape[1]), (1, B.block_size[1]), np.float64)
        residual = int(rank == n and m > n)  # numpy's rule: residuals of a full-rank overdetermined system only
        call.run(programs.svd_solve, U=U, D=D, Vt=Vt, A=A, B=B, X=X, Res=sums, M=U.grid[0], K=U.grid[1],
                 N=Vt.grid[1], C=B.grid[1], RES=residual)
        residuals = sums.numpy().ravel().astype(dtype) if residual else np.zeros(0, dtype)
        return _as_returned(call, X, vector), residuals, rank, s


@renamed_options(workers="executors")
def pinv(a, rcond: float | None = None, hermitian: bool = False, *, rtol=_DEFAULT,
         block_size: int | tuple[int, int] | None = None, executors: int | None = None,
         check_finite: bool = True,
         progress: bool | None = None) -> BigMatrix:
    """Moore-Penrose pseudo-inverse, like ``numpy.linalg.pinv``: ``Vtᵀ diag(s⁺) Uᵀ`` from the band SVD.

    Parameters
    ----------
    a : (m, n) array_like or BigMatrix
        Any shape and rank; a BigMatrix must have square tiles.
    rcond : float, optional
        numpy's cut-off ratio: singular values ``<= rcond * s[0]`` count as zero. Default (with ``rtol``
        not given): 1e-15, as numpy.
    hermitian : bool
        As numpy, ``a`` is taken to be symmetric; it must be square (``LinAlgError`` otherwise). The
        general SVD is used (see ``npw.svd``).
    rtol : float or None, keyword only
        numpy 2's name for the cut-off ratio; None means ``max(m, n) · eps``. Giving both ``rcond`` and
        ``rtol`` is a ``ValueError``, as numpy.
    block_size : int or (int, int), optional
        Tile size when ``a`` is a numpy array; square tiles only.
    executors : int, optional
        Executors for these jobs (default: the runtime's).
    check_finite : bool
        Reject an ``a`` holding infs or NaNs (default, as scipy); False skips the check.

    Returns
    -------
    BigMatrix
        (n, m), in ``a``'s square tiles.

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> a = np.array([[1.0, 2.0], [2.0, 4.0], [0.0, 0.0]])      # rank 1
    >>> bool(np.allclose(npw.pinv(a, block_size=2).numpy(), np.linalg.pinv(a)))
    True
    """
    if rcond is None:
        if rtol is _DEFAULT:
            rcond = 1e-15
        elif rtol is not None:
            rcond = float(rtol)
    elif rtol is not _DEFAULT:
        raise ValueError("pinv: `rtol` and `rcond` can't be both set.")
    with Call("pinv", check_finite, executors, progress) as call:
        A = call.matrix(a, "a", block_size, square=_BAND_TILES)
        m, n = A.shape
        if hermitian and m != n:
            raise np.linalg.LinAlgError(f"pinv: Last 2 dimensions of the array must be square (hermitian=True; a "
                                        f"has shape {(m, n)})")
        if rcond is None:  # rtol=None: numpy's max(m, n) · eps
            rcond = max(m, n) * float(np.finfo(A.dtype).eps)
        U, s, Vt = singular_triplets(call, A)
        s_plus, _ = _inverted(s, float(rcond) * float(s[0]))
        D = _column(call, s_plus, U.block_size[1], U.dtype)
        X = call.empty((n, m), (Vt.block_size[1], U.block_size[0]), A.dtype)
        call.run(programs.pinv_from_svd, U=U, D=D, Vt=Vt, X=X, M=U.grid[0], K=U.grid[1], N=Vt.grid[1])
        return call.keep(X)


@renamed_options(workers="executors")
def matrix_rank(A, tol: float | None = None, hermitian: bool = False, *, rtol: float | None = None,
                block_size: int | tuple[int, int] | None = None, executors: int | None = None,
                check_finite: bool = True,
                progress: bool | None = None) -> int:
    """The numerical rank of a matrix, like ``numpy.linalg.matrix_rank``: the singular values above ``tol``.

    Parameters
    ----------
    A : (m, n) array_like or BigMatrix
        A BigMatrix must have square tiles. A 1-D numpy array is a vector: rank 1 unless all zeros
        (numpy's rule, answered on the client).
    tol : float, optional
        Absolute threshold. Default: ``s[0] * rtol``.
    hermitian : bool
        As numpy; the matrix must be square. The general SVD is used.
    rtol : float, optional, keyword only
        Relative threshold; default ``max(m, n) · eps`` of the dtype.
    block_size, executors, check_finite
        As for ``npw.svd``.

    Returns
    -------
    int

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> npw.matrix_rank(np.array([[1.0, 2.0], [2.0, 4.0], [1.0, 0.0]]), block_size=2)
    2
    """
    if not isinstance(A, BigMatrix):
        x = np.asarray(A)
        if x.ndim < 2:
            return int(not np.all(x == 0))
    with Call("matrix_rank", check_finite, executors, progress) as call:
        M = call.matrix(A, "A", block_size, square=_BAND_TILES)
        m, n = M.shape
        if hermitian and m != n:
            raise np.linalg.LinAlgError(f"matrix_rank: Last 2 dimensions of the array must be square "
                                        f"(hermitian=True; A has shape {(m, n)})")
        s = singular_values(call, M)
    if tol is None:
        if rtol is None:
            rtol = max(m, n) * float(np.finfo(s.dtype).eps)
        tol = float(s[0]) * float(rtol)
    return int(np.count_nonzero(s > tol))
