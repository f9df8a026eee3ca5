"""Matrix norms and condition numbers (``npw.norm``, ``npw.cond``), with numpy's conventions.

- ``ord`` None / "fro", 1, -1, inf, -inf: one reduction job (``programs.column_norms`` or
  ``programs.row_norms``): float64 partial sums per tile added up binary trees, so that the client reads
  a row of n column sums or a column of m row sums and takes the largest, the smallest or (Frobenius) the
  square root of their total.
- ``ord`` 2, -2, "nuc": the singular values (the band SVD, ``npw.svd(compute_uv=False)``'s programs).
- ``cond(x, p)``: p None, 2, -2 from the singular values; the other orders as numpy,
  ``norm(x, p) * norm(inv(x), p)`` with the tiled LU inverse, inf for an exactly singular x.
"""

from __future__ import annotations

import numpy as np

from ..core import programs
from ..core.deprecation import renamed_options
from ..core.kernels.norms import ABS_SUMS, SQUARES
from .arguments import real_array
from .call import Call
from .decomposition import _BAND_TILES
from .least_squares import singular_values
from .lu import solve_general
from .matrix import BigMatrix

LinAlgError = np.linalg.LinAlgError
_ORDERS = (None, "fro", "nuc", 1, -1, 2, -2, np.inf, -np.inf)
_SPECTRAL = (2, -2, "nuc")


def _order(ord, what: str):
    """``ord`` checked against numpy's matrix norms (numpy's message for any other)."""
    try:
        ok = any(ord == o and type(ord) is not bool for o in _ORDERS if not isinstance(o, str) or isinstance(ord, str))
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{what}: Invalid norm order {ord!r} for matrices.")
    return ord


def matrix_norm(call: Call, A: BigMatrix, ord) -> float:
    """The ``ord`` norm (a checked order) of ``A`` within ``call`` (its jobs), as a Python float."""
    if ord in _SPECTRAL and not isinstance(ord, bool):
        s = singular_values(call, call.matrix(A, "x", square=_BAND_TILES))
        return float(s.sum() if ord == "nuc" else s[0] if ord == 2 else s[-1])
    if ord in (1, -1):
        sums = call.empty((1, A.shape[1]), (1, A.block_size[1]), np.float64)
        call.run(programs.column_norms, A=A, Out=sums, M=A.grid[0], N=A.grid[1], KIND=ABS_SUMS)
        v = sums.numpy().ravel()
        return float(v.max() if ord == 1 else v.min())
    if ord in (np.inf, -np.inf):
        sums = call.empty((A.shape[0], 1), (A.block_size[0], 1), np.float64)
        call.run(programs.row_norms, A=A, Out=sums, M=A.grid[0], N=A.grid[1])
        v = sums.numpy().ravel()
        return float(v.max() if ord == np.inf else v.min())
    sums = call.empty((1, A.shape[1]), (1, A.block_size[1]), np.float64)  # None, "fro"
    call.run(programs.column_norms, A=A, Out=sums, M=A.grid[0], N=A.grid[1], KIND=SQUARES)
    return float(np.sqrt(sums.numpy().sum()))


@renamed_options(workers="executors")
def norm(x, ord=None, axis=None, keepdims: bool = False, block_size: int | tuple[int, int] | None = None,
         executors: int | None = None, check_finite: bool = True,
         progress: bool | None = None):
    """Matrix norm, like ``numpy.linalg.norm`` for a 2-D ``x``.

    Parameters
    ----------
    x : (m, n) array_like or BigMatrix
        A 1-D numpy array is a vector: its norm is ``numpy.linalg.norm(x, ord)``, on the client (O(n)).
    ord : {None, "fro", "nuc", 1, -1, 2, -2, inf, -inf}
        None and "fro": Frobenius; 1 / -1: largest / smallest column sum of ``|x|``; inf / -inf: largest /
        smallest row sum (each one reduction job); 2 / -2: largest / smallest singular value; "nuc": their
        sum (the band SVD's values; square tiles).
    axis : None or (0, 1)
        The matrix's two axes (numpy's default); other axes are not supported.
    keepdims : bool
        Return a (1, 1) array, as numpy.
    block_size, executors, check_finite
        As for ``npw.svd``: tile size of a numpy ``x``; executors; reject infs and NaNs (scipy's
        ``check_finite``, default True).

    Returns
    -------
    float
        Of ``x``'s dtype (numpy.float32 or numpy.float64).

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> x = np.array([[1.0, -2.0], [3.0, 4.0]])
    >>> [float(npw.norm(x, o, block_size=1)) for o in (1, np.inf)], bool(np.isclose(npw.norm(x), np.sqrt(30)))
    ([6.0, 7.0], True)
    """
    if not isinstance(x, BigMatrix):
        v = real_array(x, "x", "norm")
        if v.ndim == 1 and axis in (None, 0, (0,)):
            return np.linalg.norm(v, ord, keepdims=keepdims)
    if axis is not None and tuple(np.atleast_1d(axis)) not in ((0, 1), (-2, -1)):
        raise NotImplementedError(f"norm: axis={axis!r}; only the norm of the whole matrix (axis None or (0, 1)) "
                                  "is implemented")
    _order(ord, "norm")
    with Call("norm", check_finite, executors, progress) as call:
        square = _BAND_TILES if ord in _SPECTRAL and not isinstance(ord, bool) else None
        A = call.matrix(x, "x", block_size, square=square)
        value = A.dtype.type(matrix_norm(call, call.dense(A), ord))
    return np.full((1, 1), value) if keepdims else value


@renamed_options(workers="executors")
def cond(x, p=None, block_size: int | tuple[int, int] | None = None, executors: int | None = None,
         check_finite: bool = True,
         progress: bool | None = None):
    """Condition number, like ``numpy.linalg.cond``.

    Parameters
    ----------
    x : (m, n) array_like or BigMatrix
        Any shape for p None, 2, -2; square otherwise. Square tiles (the SVD and the LU need them).
    p : {None, 2, -2, "fro", "nuc", 1, -1, inf, -inf}
        None and 2: ``s[0] / s[-1]`` (inf for a zero singular value), -2: ``s[-1] / s[0]``; the others
        ``norm(x, p) * norm(inv(x), p)``, with the tiled LU inverse of ``npw.inv``: an exactly singular
        ``x`` (a zero pivot) gives inf, as numpy.
    block_size, executors, check_finite
        As for ``npw.norm``.

    Returns
    -------
    float
        Of ``x``'s dtype.

    Raises
    ------
    numpy.linalg.LinAlgError
        For a non-square ``x`` with p other than None, 2, -2 (numpy's message).

    Examples
    --------
    >>> import numpy as np, numpywren2 as npw
    >>> x = np.array([[2.0, 0.0], [0.0, 0.5]])
    >>> float(npw.cond(x, block_size=1)), float(npw.cond(x, 1, block_size=1))
    (4.0, 4.0)
    """
    if p is not None:
        _order(p, "cond")
    with Call("cond", check_finite, executors, progress) as call:
        A = call.matrix(x, "x", block_size, square=_BAND_TILES)
        m, n = A.shape
        dtype = A.dtype.type
        if p in (None, 2, -2) and not isinstance(p, bool):
            s = singular_values(call, A)
            with np.errstate(divide="ignore", invalid="ignore"):
                r = dtype(s[-1]) / dtype(s[0]) if p == -2 else dtype(s[0]) / dtype(s[-1])
            return dtype(np.inf) if np.isnan(r) else r
        if m != n:
            raise LinAlgError(f"cond: Last 2 dimensions of the array must be square (x has shape {(m, n)})")
        A = call.dense(A)
        eye = call.empty(A.shape, A.block_size, A.dtype)
        call.run(programs.eye, X=eye, N=n, B=A.block_size[0], SINGLE=int(A.dtype == np.float32))
        try:
            X = solve_general(call, A, eye)
        except LinAlgError:
            return dtype(np.inf)
        call.own(X)
        with np.errstate(over="ignore", invalid="ignore"):
            r = dtype(matrix_norm(call, A, p)) * dtype(matrix_norm(call, X, p))
        return dtype(np.inf) if np.isnan(r) else r
