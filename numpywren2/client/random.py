"""Random matrices generated inside the executors, deterministic per seed (``npw.random``)."""

from __future__ import annotations

import numpy as np

from ..core import programs
from ..core.deprecation import renamed_options
from .arguments import block_size_arg
from .call import Call
from .matrix import BigMatrix


@renamed_options(workers="executors")
def normal(shape: tuple[int, int], block_size: int | tuple[int, int], seed: int = 0, dtype=np.float64,
           executors: int | None = None) -> BigMatrix:
    """A matrix of independent standard normal entries, tile (i, j) a function of (seed, i, j).

    ``block_size``: an int or a ``(rows, cols)`` pair (the rule of every entry point).
    """
    br, bc = block_size_arg(block_size, "random.normal")
    with Call("random.normal", executors=executors) as call:
        X = call.empty(shape, (br, bc), dtype)
        call.run(programs.normal, X=X, ROWS=shape[0], COLS=shape[1], BR=br, BC=bc, SEED=seed,
                 SINGLE=int(X.dtype == np.float32))
        return call.keep(X)


@renamed_options(workers="executors")
def spd(n: int, block_size: int | tuple[int, int], seed: int = 0, dtype=np.float64,
        executors: int | None = None) -> BigMatrix:
    """A symmetric positive definite n×n matrix (uniform [-1, 1) entries plus n·I), for benchmarks."""
    bs = block_size_arg(block_size, "random.spd", square="a tile and its mirror image have the same shape")
    with Call("random.spd", executors=executors) as call:
        X = call.empty((n, n), bs, dtype)
        call.run(programs.spd, X=X, N=n, B=bs[0], SEED=seed, SINGLE=int(X.dtype == np.float32))
        return call.keep(X)
