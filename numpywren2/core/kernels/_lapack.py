"""Shared helpers of the kernel families: BLAS/LAPACK function lookup, LAPACK info checks."""

from __future__ import annotations

import numpy as np
from scipy.linalg import blas, lapack

from . import _mkl


def _blas(name: str, *arrays):
    return blas.get_blas_funcs(name, arrays)


def _lapack(name: str, *arrays):
    return lapack.get_lapack_funcs(name, arrays)


def _check_info(name: str, info: int) -> None:
    """LAPACK's info < 0: an illegal argument (a bug here, not bad data)."""
    if info < 0:
        raise ValueError(f"{name}: LAPACK reported illegal argument {-info}")


# Tiles are C-ordered; scipy's BLAS wrappers take Fortran arrays and copy (transpose) any other input,
# and return Fortran-ordered results that the tile store transposes back.  The C-order forms below pass
# each operand as the Fortran view of its transpose (``x.T``) and compute the transposed equation, so no
# operand is copied: a 1024-tile ``c + a @ b`` took 66 ms through the plain call and 46 ms so (numpy's
# ``a @ b`` on one thread: 45 ms; bench/RESULTS.md).


def c_order(x: np.ndarray) -> np.ndarray:
    """A writeable C-ordered copy of ``x`` (the output buffer of the C-order forms below)."""
    return np.array(x, order="C", copy=True)


def gemm_c(alpha: float, a: np.ndarray, b: np.ndarray, beta: float, out: np.ndarray,
           trans_a: int = 0, trans_b: int = 0) -> np.ndarray:
    """``out := alpha op(a) op(b) + beta out`` for a C-ordered ``out``; returns the result (C-ordered,
    ``out`` itself when BLAS wrote in place).  outᵀ = alpha op(b)ᵀ op(a)ᵀ + beta outᵀ, where op(x)ᵀ is
    the Fortran view ``x.T`` (no transpose) or its transpose.  MKL's when it is in use (``_mkl``)."""
    a, b = np.asarray(a), np.asarray(b)
    m = _mkl.routines(out, a, b)
    if m is not None:
        return _mkl.gemm(*m, alpha, a, b, beta, out, trans_a, trans_b)
    f = _blas("gemm", out, a, b)
    r = f(alpha, np.asarray(b).T, np.asarray(a).T, beta=beta, c=out.T, trans_a=trans_b, trans_b=trans_a,
          overwrite_c=1)
    return r.T


def trsm_c(alpha: float, t: np.ndarray, out: np.ndarray, side: int, lower: int, trans: int = 0,
           diag: int = 0) -> np.ndarray:
    """The triangular solve ``op(t) x = alpha out`` (side 0) or ``x op(t) = alpha out`` (side 1) for a
    C-ordered ``out``, overwritten with x where BLAS can; returns x (C-ordered).  Transposed, the solve
    is on the other side, with ``t.T`` (the other triangle) and the same op.  MKL's when it is in use."""
    t = np.asarray(t)
    m = _mkl.routines(out, t)
    if m is not None:
        return _mkl.trsm(*m, alpha, t, out, side, lower, trans, diag)
    f = _blas("trsm", t, out)
    r = f(alpha, np.asarray(t).T, out.T, side=1 - side, lower=1 - lower, trans_a=trans, diag=diag, overwrite_b=1)
    return r.T


def syrk_lower_c(alpha: float, a: np.ndarray, beta: float, out: np.ndarray) -> np.ndarray:
    """The lower triangle of ``out := alpha a aᵀ + beta out`` for a C-ordered ``out`` (its strict upper triangle
    is left as it was); returns the result.  outᵀ's upper triangle is out's lower one, and (aᵀ)ᵀ aᵀ = a aᵀ."""
    a = np.asarray(a)
    m = _mkl.routines(out, a)
    if m is not None:
        return _mkl.syrk_lower(*m, alpha, a, beta, out)
    f = _blas("syrk", out, a)
    return f(alpha, a.T, beta=beta, c=out.T, trans=1, lower=0, overwrite_c=1).T


def potrf_lower_c(out: np.ndarray) -> tuple[np.ndarray, int]:
    """The lower Cholesky factor of the lower triangle of a C-ordered square ``out``, in place where LAPACK can,
    and LAPACK's info; the strict upper triangle of the result is zero only if it was zero in ``out``."""
    m = _mkl.routines(out)
    if m is not None:
        return out, _mkl.potrf_lower(*m, out)
    # out.T is Fortran-ordered; its upper triangle is out's lower one: U with out.T = UᵀU is Lᵀ.
    r, info = _lapack("potrf", out)(out.T, lower=0, clean=0, overwrite_a=1)
    return r.T, info
