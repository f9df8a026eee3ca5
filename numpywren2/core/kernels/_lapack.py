"""Shared helpers of the kernel families: BLAS/LAPACK function lookup, LAPACK info checks."""

from __future__ import annotations

from scipy.linalg import blas, lapack


def _blas(name: str, *arrays):
    return blas.get_blas_funcs(name, arrays)


def _lapack(name: str, *arrays):
    return lapack.get_lapack_funcs(name, arrays)


def _check_info(name: str, info: int) -> None:
    """LAPACK's info < 0: an illegal argument (a bug here, not bad data)."""
    if info < 0:
        raise ValueError(f"{name}: LAPACK reported illegal argument {-info}")
