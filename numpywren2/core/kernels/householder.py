"""Tile kernels of the QR modes beyond the tiled factorization (``core/programs/householder.py``): the
Householder reconstruction, i.e. the LU factorization without pivoting of ``Q − S`` for a matrix Q with
orthonormal columns, where the signs S are chosen column by column as the factorization reaches them
(Ballard et al., "Reconstructing Householder vectors from tall-skinny QR", 2015); and the pivoted QR of a
triangular factor.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg

import lambdapack as lp


@lp.kernel(flops=lambda a, below: 2 * a.shape[0] * a.shape[1] ** 2)
def householder_diagonal(a: np.ndarray, below: int) -> tuple[np.ndarray, np.ndarray]:
    """``(lu, s)``: the packed unit-lower L and upper U of ``a − S`` (a rows×cols diagonal tile, rows ≥ cols),
    with ``s_j = −sign(u_jj)`` of the entry the elimination has reached (+1 taken for 0), so that every pivot
    has magnitude at least 1; ``s`` is a cols×1 tile. ``below``: the number of tile rows below this one.

    The last column of a square Q (no tile row below, the tile's last row) reaches a single entry ±1, which
    LAPACK's ``geqrf`` leaves alone (its reflector is the identity, tau = 0): there s is that sign and U_jj
    is set to 0 exactly.

    >>> lu, s = householder_diagonal(np.array([[0.6], [0.8]]), 0)
    >>> lu, s
    (array([[1.6],
           [0.5]]), array([[-1.]]))
    >>> householder_diagonal(np.array([[-1.0]]), 0)
    (array([[0.]]), array([[-1.]]))
    """
    x = np.array(a, dtype=a.dtype, copy=True)
    rows, cols = x.shape
    s = np.empty((cols, 1), a.dtype)
    for j in range(cols):
        if below == 0 and j == rows - 1:
            s[j, 0] = 1.0 if x[j, j] >= 0 else -1.0
            x[j, j] = 0.0
            break
        s[j, 0] = -1.0 if x[j, j] >= 0 else 1.0
        x[j, j] -= s[j, 0]
        x[j + 1:, j] /= x[j, j]
        x[j + 1:, j + 1:] -= np.outer(x[j + 1:, j], x[j, j + 1:])
    return x, s


@lp.kernel(flops=lambda lu, a: a.shape[0] * a.shape[1] ** 2)
def householder_below(lu: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``a U⁻¹``: a tile of L below the diagonal tile ``lu`` (whose upper triangle is U)."""
    cols = lu.shape[1]
    u = np.triu(lu[:cols])
    return np.ascontiguousarray(scipy.linalg.solve_triangular(u, a.T, trans="T", lower=False,
                                                              check_finite=False).T.astype(a.dtype, copy=False))


@lp.kernel(flops=lambda lu, a: a.shape[0] ** 2 * a.shape[1])
def householder_right(lu: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``L⁻¹ a``: a tile of U right of the (square) diagonal tile ``lu`` (whose strict lower triangle is L's)."""
    return scipy.linalg.solve_triangular(lu, a, lower=True, unit_diagonal=True,
                                         check_finite=False).astype(a.dtype, copy=False)


@lp.kernel(flops=lambda r: 4 * r.shape[0] * r.shape[0] * r.shape[1])
def pivoted_qr(r: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(Q, R, P)`` with ``r[:, P] = Q R`` and ``|R_kk|`` non-increasing: LAPACK ``geqp3`` (QR with column
    pivoting by the largest remaining column norm), on a k×n tile; P is a 1×n float row of column indices.

    >>> q, r, p = pivoted_qr(np.array([[1.0, 3.0], [0.0, 4.0]]))
    >>> p, bool(np.allclose(q @ r, np.array([[1.0, 3.0], [0.0, 4.0]])[:, p[0].astype(int)]))
    (array([[1., 0.]]), True)
    """
    q, r_, p = scipy.linalg.qr(r, mode="economic", pivoting=True, check_finite=False)
    return q.astype(r.dtype, copy=False), r_.astype(r.dtype, copy=False), p[None, :].astype(r.dtype)
