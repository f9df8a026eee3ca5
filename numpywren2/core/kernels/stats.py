"""Column statistics for PCA: sums, means, centring."""

from __future__ import annotations

import numpy as np

import lambdapack as lp


@lp.kernel(flops=lambda a: a.size)
def column_sums(a: np.ndarray) -> np.ndarray:
    """Column sums of a tile (a 1×n row)."""
    return a.sum(axis=0, keepdims=True)


@lp.kernel(flops=lambda a, rows: a.size)
def column_means(a: np.ndarray, rows: int) -> np.ndarray:
    """Column sums divided by ``rows`` (the number of rows of the whole matrix)."""
    return a.sum(axis=0, keepdims=True) / rows


@lp.kernel(flops=lambda a, b, rows: a.size)
def add_and_divide(a: np.ndarray, b: np.ndarray, rows: int) -> np.ndarray:
    """``(a + b) / rows``: the root of a column-mean reduction."""
    return (a + b) / rows


@lp.kernel(flops=lambda a, mean: 3 * a.size)
def center_tile(a: np.ndarray, mean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(a - mean, column sums of squares of a - mean)`` for a tile and its columns' mean (1×n)."""
    c = a - mean
    return c, np.einsum("ij,ij->j", c, c)[None, :]
