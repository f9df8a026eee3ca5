"""Random matrices generated inside the executors, deterministic per seed (``npw.random``)."""

from __future__ import annotations

import numpy as np

from . import programs
from .job import submit
from .matrix import BigMatrix
from .tiling import block_shape


def normal(shape: tuple[int, int], block_size, seed: int = 0, dtype=np.float64,
           workers: int | None = None) -> BigMatrix:
    """A matrix of independent standard normal entries, tile (i, j) a function of (seed, i, j)."""
    br, bc = block_shape(block_size)
    X = BigMatrix.empty(shape, (br, bc), dtype)
    submit(programs.normal, X=X, ROWS=shape[0], COLS=shape[1], BR=br, BC=bc, SEED=seed,
           SINGLE=int(X.dtype == np.float32), workers=workers).wait()
    return X


def spd(n: int, block_size: int, seed: int = 0, dtype=np.float64, workers: int | None = None) -> BigMatrix:
    """A symmetric positive definite n×n matrix (uniform [-1, 1) entries plus n·I), for benchmarks."""
    X = BigMatrix.empty((n, n), block_size, dtype)
    if X.block_size[0] != X.block_size[1]:
        raise ValueError("spd needs square tiles")
    submit(programs.spd, X=X, N=n, B=X.block_size[0], SEED=seed, SINGLE=int(X.dtype == np.float32),
           workers=workers).wait()
    return X
