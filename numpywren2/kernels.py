"""Built-in kernels: thin wrappers over scipy's BLAS/LAPACK, in one place.

Every kernel takes and returns numpy tiles (2-D arrays) and works for float32
and float64.  Edge tiles may be smaller than the block size, and the TSQR
kernels accept tiles with fewer rows than columns.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas, lapack

import lambdapack as lp


def _blas(name: str, *arrays):
    return blas.get_blas_funcs(name, arrays)


def _lapack(name: str, *arrays):
    return lapack.get_lapack_funcs(name, arrays)


# The BLAS/LAPACK kernels below work on C-ordered tiles through their transposes, which are
# Fortran-ordered views of the same memory: BLAS then reads and writes the tiles in place,
# with no layout conversion (f2py would otherwise copy every C-ordered operand to Fortran
# order and hand back a Fortran-ordered result, which costs about half the kernel time at
# 1024×1024).  Each kernel copies its updated operand once, into the C-ordered result.


@lp.kernel(flops=lambda a: a.shape[0] ** 3 / 3)
def chol(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of an SPD tile (only its lower triangle is read).

    >>> a = np.array([[4.0, 0.0], [2.0, 5.0]])  # upper triangle ignored
    >>> chol(a)
    array([[2., 0.],
           [1., 2.]])
    """
    out = np.array(a, order="C", copy=True)
    potrf = _lapack("potrf", out)
    # out.T is Fortran-ordered; its upper triangle is a's lower one: U with out.T = UᵀU is Lᵀ.
    _, info = potrf(out.T, lower=0, clean=1, overwrite_a=1)
    if info > 0:
        raise np.linalg.LinAlgError(
            f"tile is not positive definite (leading minor of order {info} is not positive)")
    if info < 0:
        raise ValueError(f"potrf: illegal value in argument {-info}")
    return out


@lp.kernel(flops=lambda l_kk, a: a.shape[0] * a.shape[1] ** 2)
def trsm(l_kk: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``a @ inv(l_kk).T``: the panel tile of a Cholesky factor."""
    out = np.array(a, order="C", copy=True)
    f = _blas("trsm", l_kk, out)
    # out.T := inv(L) @ out.T, with L = (l_kk.T)ᵀ given as the Fortran view l_kk.T (upper, transposed).
    f(1.0, np.asarray(l_kk).T, out.T, side=0, lower=0, trans_a=1, overwrite_b=1)
    return out


@lp.kernel(flops=lambda c, a: c.shape[0] * c.shape[0] * a.shape[1])
def syrk(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``c - a @ a.T`` for a diagonal tile; only the lower triangle is computed (and read from ``c``).

    The strict upper triangle of the result is ``c``'s, unchanged: the consumers of a diagonal
    tile (``chol`` and the next ``syrk``) read its lower triangle only.
    """
    out = np.array(c, order="C", copy=True)
    f = _blas("syrk", out, a)
    # out.T's upper triangle is out's lower one; (a.T)ᵀ a.T = a aᵀ.
    f(-1.0, np.asarray(a).T, beta=1.0, c=out.T, trans=1, lower=0, overwrite_c=1)
    return out


@lp.kernel(flops=lambda c, a, b: 2 * c.shape[0] * c.shape[1] * a.shape[1])
def gemm_nt(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c - a @ b.T``: the trailing update of a Cholesky factorization."""
    out = np.array(c, order="C", copy=True)
    f = _blas("gemm", out, a, b)
    # out.T := out.T - b @ a.T, with b given as (b.T)ᵀ and a.T as the Fortran view of a.
    f(-1.0, np.asarray(b).T, np.asarray(a).T, beta=1.0, c=out.T, trans_a=1, overwrite_c=1)
    return out


@lp.kernel(flops=lambda a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b``."""
    return a @ b


@lp.kernel(flops=lambda a, b: a.size)
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``."""
    return a + b


@lp.kernel(flops=lambda a: 0)
def copy(a: np.ndarray) -> np.ndarray:
    """The same tile (moves a tile up a reduction tree unchanged)."""
    return a.copy()


@lp.kernel
def identity(r: np.ndarray) -> np.ndarray:
    """A square identity with as many rows as ``r`` (the root of a Q reconstruction)."""
    return np.eye(r.shape[0], dtype=r.dtype)


@lp.kernel(flops=lambda a: 2 * a.shape[0] * a.shape[1] ** 2)
def qr_factor(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Reduced QR of one tile: ``(Q, R)`` with ``Q`` m×k, ``R`` k×n, k = min(m, n)."""
    q, r = np.linalg.qr(a, mode="reduced")
    return q, r


@lp.kernel(flops=lambda r1, r2: 2 * (r1.shape[0] + r2.shape[0]) * r1.shape[1] ** 2)
def qr_pair(r1: np.ndarray, r2: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """QR of two stacked R factors: ``(Q_top, Q_bottom, R)`` with ``[r1; r2] = [Q_top; Q_bottom] @ R``."""
    q, r = np.linalg.qr(np.vstack([r1, r2]), mode="reduced")
    k = r1.shape[0]
    return q[:k].copy(), q[k:].copy(), r




@lp.kernel
def normal_tile(i: int, j: int, rows: int, cols: int, seed: int) -> np.ndarray:
    """Tile (i, j) of a standard normal matrix; a function of (seed, i, j) only."""
    return np.random.default_rng([seed, i, j]).standard_normal((rows, cols))


@lp.kernel
def spd_tile(i: int, j: int, rows: int, cols: int, n: int, seed: int) -> np.ndarray:
    """Tile (i, j) of a symmetric, strictly diagonally dominant (hence SPD) n×n matrix.

    Entries are uniform in [-1, 1), drawn from (seed, min(i, j), max(i, j)) so that tile
    (j, i) is the transpose of tile (i, j); n is added on the diagonal.
    """
    lo, hi = min(i, j), max(i, j)
    shape = (rows, cols) if i >= j else (cols, rows)
    t = np.random.default_rng([seed, hi, lo, 1]).uniform(-1.0, 1.0, shape)
    if i == j:
        t = np.tril(t) + np.tril(t, -1).T + n * np.eye(rows)
    return t if i >= j else t.T.copy()


BUILTIN = {name: obj for name, obj in globals().items() if isinstance(obj, lp.Kernel)}
