"""Cutting a numpy matrix into tiles and gluing tiles back, for any shape and block size.

>>> import numpy as np
>>> X = np.arange(20.0).reshape(4, 5)
>>> tiles = split(X, (3, 2))
>>> grid_shape(X.shape, (3, 2)), tiles[1, 2].shape
((2, 3), (1, 1))
>>> bool((join(tiles, X.shape, (3, 2)) == X).all())
True
"""

from __future__ import annotations

import numpy as np


def block_shape(block_size: int | tuple[int, int]) -> tuple[int, int]:
    """``(rows, cols)`` of a block size given as an int (square) or a pair."""
    if isinstance(block_size, int | np.integer):
        bs = (int(block_size), int(block_size))
    else:
        bs = tuple(int(b) for b in block_size)
        if len(bs) != 2:
            raise ValueError(f"block_size must be an int or a (rows, cols) pair, not {block_size!r}")
    if min(bs) < 1:
        raise ValueError(f"block sizes must be positive, not {block_size!r}")
    return bs  # type: ignore[return-value]


def grid_shape(shape: tuple[int, int], block_size) -> tuple[int, int]:
    """Number of tile rows and columns (edge tiles are smaller)."""
    br, bc = block_shape(block_size)
    return (-(-shape[0] // br), -(-shape[1] // bc))


def split(X: np.ndarray, block_size) -> dict[tuple[int, int], np.ndarray]:
    """Tiles of a 2-D array as views, keyed by (tile row, tile column)."""
    if X.ndim != 2:
        raise ValueError(f"expected a 2-D array, got shape {X.shape}")
    br, bc = block_shape(block_size)
    gr, gc = grid_shape(X.shape, block_size)
    return {(i, j): X[i * br:(i + 1) * br, j * bc:(j + 1) * bc] for i in range(gr) for j in range(gc)}


def join(tiles, shape: tuple[int, int], block_size, dtype=None) -> np.ndarray:
    """Assemble tiles into one array; missing tiles are zeros."""
    br, bc = block_shape(block_size)
    if dtype is None:
        dtype = next(iter(tiles.values())).dtype if tiles else np.float64
    out = np.zeros(shape, dtype=dtype)
    for (i, j), t in tiles.items():
        out[i * br:i * br + t.shape[0], j * bc:j * bc + t.shape[1]] = t
    return out
