"""Generator tile kernels: a tile is a function of (seed, i, j) only, so any executor can make it."""

from __future__ import annotations

import numpy as np

import lambdapack as lp


@lp.kernel(flops=lambda *args: 0)  # generated, not computed: no flops counted
def normal_tile(i: int, j: int, rows: int, cols: int, seed: int, single: int = 0) -> np.ndarray:
    """Tile (i, j) of a standard normal matrix; a function of (seed, i, j) only (float32 if ``single``,
    rounded from the same float64 values)."""
    t = np.random.default_rng([seed, i, j]).standard_normal((rows, cols))
    return t.astype(np.float32) if single else t


@lp.kernel(flops=lambda *args: 0)  # generated, not computed: no flops counted
def spd_tile(i: int, j: int, rows: int, cols: int, n: int, seed: int, single: int = 0) -> np.ndarray:
    """Tile (i, j) of a symmetric, strictly diagonally dominant (hence SPD) n×n matrix.

    Entries are uniform in [-1, 1), drawn from (seed, min(i, j), max(i, j)) so that tile
    (j, i) is the transpose of tile (i, j); n is added on the diagonal.
    """
    lo, hi = min(i, j), max(i, j)
    shape = (rows, cols) if i >= j else (cols, rows)
    t = np.random.default_rng([seed, hi, lo, 1]).uniform(-1.0, 1.0, shape)
    if i == j:
        t = np.tril(t) + np.tril(t, -1).T + n * np.eye(rows)
    t = t if i >= j else t.T.copy()
    return t.astype(np.float32) if single else t


@lp.kernel(flops=lambda *args: 0)  # generated, not computed: no flops counted
def eye_tile(i: int, j: int, rows: int, cols: int, single: int) -> np.ndarray:
    """Tile (i, j) of a rectangular identity: ``eye(rows, cols)`` on the diagonal, zeros elsewhere."""
    dtype = np.float32 if single else np.float64
    return np.eye(rows, cols, dtype=dtype) if i == j else np.zeros((rows, cols), dtype)
