"""Tile kernels of the symmetric eigenproblem (``core/programs/eig.py``)."""

from __future__ import annotations

import numpy as np

import lambdapack as lp


@lp.kernel(flops=lambda a, lower: 0)
def symmetrized(a: np.ndarray, lower: int) -> np.ndarray:
    """The symmetric tile whose lower (``lower`` = 1) or upper triangle is that of the square tile ``a``."""
    if lower:
        t = np.tril(a)
        return t + np.tril(a, -1).T
    t = np.triu(a)
    return t + np.triu(a, 1).T
