"""Cholesky, triangular and matrix-multiply tile kernels over scipy's BLAS/LAPACK, or MKL's (``_mkl``)."""

from __future__ import annotations

import numpy as np

import lambdapack as lp

from . import _mkl
from ._lapack import _check_info, _lapack, c_order, gemm_c, potrf_lower_c, syrk_lower_c, trsm_c


@lp.kernel(flops=lambda a: a.shape[0] ** 3 / 3)
def chol(a: np.ndarray) -> np.ndarray:
    """Lower Cholesky factor of an SPD tile (only its lower triangle is read).

    >>> a = np.array([[4.0, 0.0], [2.0, 5.0]])  # upper triangle ignored
    >>> chol(a)
    array([[2., 0.],
           [1., 2.]])
    """
    out, info = potrf_lower_c(np.tril(a))  # a C-ordered copy whose upper triangle is zero, factored in place
    if info > 0 and not np.isfinite(np.tril(a[:info])).all():
        # NaN in, NaN out on every BLAS (check_finite=False): OpenBLAS's potrf carries a NaN pivot on,
        # MKL's stops at it. Row r of the factor reads rows <= r of the tile only, so a pivot made NaN
        # by a non-finite entry has one in a row up to its own; from that row on the factor is NaN.
        out[info - 1:, :] = np.tril(np.full((out.shape[0] - info + 1, out.shape[1]), np.nan), info - 1)
        return out
    if info > 0:
        raise np.linalg.LinAlgError(
            f"tile is not positive definite (leading minor of order {info} is not positive)")
    if info < 0:
        raise ValueError(f"potrf: illegal value in argument {-info}")
    return out


@lp.kernel(flops=lambda l_kk, a: a.shape[0] * a.shape[1] ** 2)
def trsm(l_kk: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``a @ inv(l_kk).T``: the panel tile of a Cholesky factor."""
    return trsm_c(1.0, l_kk, c_order(a), side=1, lower=1, trans=1)


@lp.kernel(flops=lambda c, a: c.shape[0] * c.shape[0] * a.shape[1])
def syrk(c: np.ndarray, a: np.ndarray) -> np.ndarray:
    """``c - a @ a.T`` for a diagonal tile; only the lower triangle is computed (and read from ``c``).

    The strict upper triangle of the result is ``c``'s, unchanged: the consumers of a diagonal
    tile (``chol`` and the next ``syrk``) read its lower triangle only.
    """
    return syrk_lower_c(-1.0, a, 1.0, c_order(c))


@lp.kernel(flops=lambda c, a, b: 2 * c.shape[0] * c.shape[1] * a.shape[1])
def gemm_nt(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c - a @ b.T``: the trailing update of a Cholesky factorization."""
    return gemm_c(-1.0, a, b, 1.0, c_order(c), trans_b=1)


@lp.kernel(flops=lambda a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (MKL's gemm when it is in use: ``_mkl``)."""
    a, b = np.asarray(a), np.asarray(b)
    if _mkl.routines(a, b) is not None and a.shape[1] == b.shape[0]:
        return gemm_c(1.0, a, b, 0.0, np.empty((a.shape[0], b.shape[1]), dtype=a.dtype))
    return a @ b


@lp.kernel(flops=lambda a, b: a.size)
def add(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a + b``."""
    return a + b


@lp.kernel(flops=lambda a: 0)
def copy(a: np.ndarray) -> np.ndarray:
    """The same tile (moves a tile up a reduction tree unchanged)."""
    return a.copy()


def _singular_tile(t: np.ndarray, tile: int, row0: int, name: str = "triangular matrix") -> None:
    zeros = np.flatnonzero(np.diagonal(t) == 0)
    if zeros.size:
        p = int(zeros[0])
        raise np.linalg.LinAlgError(
            f"the {name} is singular: diagonal tile ({tile}, {tile}) has a zero at its diagonal position {p} "
            f"(row {row0 + p} of the matrix)")


@lp.kernel(flops=lambda t, b, lower, trans, unit, tile, row0: t.shape[0] ** 2 * b.shape[1])
def trsm_left(t: np.ndarray, b: np.ndarray, lower: int, trans: int, unit: int, tile: int, row0: int) -> np.ndarray:
    """``op(t)⁻¹ @ b`` for a triangular diagonal tile (op = transpose when trans=1).

    Only the lower (lower=1) or upper triangle of ``t`` is read; unit=1 takes its diagonal
    as ones.  ``b`` may have more rows than ``t``: the first ``t.shape[1]`` are solved for
    (the rows of a least-squares right-hand side below the R factor).  A zero on the
    diagonal raises ``LinAlgError`` naming the tile (``tile``) and the matrix row
    (``row0`` is the tile's first row).
    """
    if not unit:
        _singular_tile(t, tile, row0)
    return trsm_c(1.0, t, c_order(b[:t.shape[1]]), side=0, lower=lower, trans=trans, diag=unit)


@lp.kernel(flops=lambda c, a, x, trans: 2 * c.shape[0] * c.shape[1] * x.shape[0])
def gemm_update(c: np.ndarray, a: np.ndarray, x: np.ndarray, trans: int) -> np.ndarray:
    """``c - a @ x`` (trans=0) or ``c - a.T @ x`` (trans=1): a substitution update."""
    return gemm_c(-1.0, a, x, 1.0, c_order(c), trans_a=trans)


@lp.kernel(flops=lambda c, a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def gemm_add(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c + a @ b``: one step of a product accumulated along the inner dimension (``gemm_chain``)."""
    return gemm_c(1.0, a, b, 1.0, c_order(c))


@lp.kernel(flops=lambda a, x: 2 * a.shape[0] * a.shape[1] * x.shape[1])
def neg_matmul(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``-a @ x``: the first update of a substitution whose right-hand side tile is zero."""
    return -(a @ x)


@lp.kernel(flops=lambda a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def matmul_tn(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a.T @ b``."""
    return a.T @ b


@lp.kernel(flops=lambda c, a, b: 2 * a.shape[0] * a.shape[1] * b.shape[1])
def gemm_tn_add(c: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c + a.T @ b``."""
    return gemm_c(1.0, a, b, 1.0, c_order(c), trans_a=1)


@lp.kernel(flops=lambda l, tile, row0: l.shape[0] ** 3 / 3)
def trtri_lower(l: np.ndarray, tile: int, row0: int) -> np.ndarray:
    """Inverse of a lower-triangular diagonal tile (its upper triangle is not read; zeros returned there)."""
    _singular_tile(l, tile, row0, "Cholesky factor")  # trtri's own info > 0 means the same zero pivot
    inv, info = _lapack("trtri", l)(l, lower=1)
    _check_info("trtri", info)
    return np.tril(inv)


@lp.kernel(flops=lambda a: 0)
def transpose(a: np.ndarray) -> np.ndarray:
    """``a.T`` (a contiguous copy)."""
    return np.ascontiguousarray(a.T)


@lp.kernel(flops=lambda a, b: 2 * a.shape[0] * a.shape[1] * b.shape[0])
def matmul_nt(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ bᵀ``."""
    return a @ b.T


@lp.kernel(flops=lambda a, b: 0)
def vstack(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``[a; b]``: assembles a column panel from its tiles up a binary tree."""
    return np.vstack([a, b])
