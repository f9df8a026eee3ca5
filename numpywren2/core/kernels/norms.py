"""Tile kernels of the matrix norms (``core/programs/norms.py``) and of the diagonal scalings of the
pseudo-inverse and the least-squares solution (``core/programs/least_squares.py``).

The partial sums of a norm are float64 whatever the tiles' dtype (their matrices are float64), so that
a float32 matrix's column sums do not lose digits as they are added up the reduction tree.
"""

from __future__ import annotations

import numpy as np

import lambdapack as lp

ABS_SUMS, SQUARES = 0, 1  # the ``kind`` of ``column_parts``


@lp.kernel(flops=lambda a, kind: 2 * a.size)
def column_parts(a: np.ndarray, kind: int) -> np.ndarray:
    """The 1×n row of a tile's column sums of ``|a|`` (``kind`` 0) or of ``a**2`` (``kind`` 1), in float64.

    >>> column_parts(np.array([[1.0, -2.0], [3.0, 4.0]]), 0), column_parts(np.array([[1.0, -2.0]]), 1)
    (array([[4., 6.]]), array([[1., 4.]]))
    """
    x = np.asarray(a, dtype=np.float64)
    if kind == SQUARES:
        return np.einsum("ij,ij->j", x, x)[None, :]
    return np.abs(x).sum(axis=0, keepdims=True)


@lp.kernel(flops=lambda a: 2 * a.size)
def row_abs_sums(a: np.ndarray) -> np.ndarray:
    """The m×1 column of a tile's row sums of ``|a|``, in float64.

    >>> row_abs_sums(np.array([[1.0, -2.0], [3.0, 4.0]]))
    array([[3.],
           [7.]])
    """
    return np.abs(np.asarray(a, dtype=np.float64)).sum(axis=1, keepdims=True)


@lp.kernel(flops=lambda d, a: a.size)
def scale_rows(d: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``diag(d) @ a`` for a column tile ``d`` (one entry per row of ``a``), in ``a``'s dtype.

    >>> scale_rows(np.array([[2.0], [0.0]]), np.ones((2, 3)))
    array([[2., 2., 2.],
           [0., 0., 0.]])
    """
    return (a * d.astype(a.dtype, copy=False)).astype(a.dtype, copy=False)


@lp.kernel(flops=lambda d, u: u.size)
def scaled_transpose(d: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``diag(d) @ u.T`` for a column tile ``d`` (one entry per column of ``u``), in ``u``'s dtype.

    >>> scaled_transpose(np.array([[1.0], [10.0]]), np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]))
    array([[ 1.,  3.,  5.],
           [20., 40., 60.]])
    """
    return np.ascontiguousarray((u * d[:, 0].astype(u.dtype, copy=False)).T)
