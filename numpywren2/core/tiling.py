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


def block_shape(block_size) -> tuple[int, int]:
    """``(rows, cols)`` of a block size given as a positive int (square tiles) or a pair of them.

    The one rule for ``block_size`` everywhere: a float, a bool, a string, a pair with other
    than two entries or with non-integer entries is a ``TypeError`` or ``ValueError`` with the
    same message; so is a size below 1.

    >>> block_shape(4), block_shape((300, 60)), block_shape([2, 3])
    ((4, 4), (300, 60), (2, 3))
    >>> block_shape(2.5)
    Traceback (most recent call last):
    ...
    TypeError: block_size must be a positive int or a (rows, cols) pair of positive ints, not 2.5 (float)
    """
    def integer(v) -> bool:
        return isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_)

    message = (f"block_size must be a positive int or a (rows, cols) pair of positive ints, "
               f"not {block_size!r} ({type(block_size).__name__})")
    if integer(block_size):
        bs = (int(block_size), int(block_size))
    elif isinstance(block_size, tuple | list | np.ndarray):
        entries = list(np.asarray(block_size).ravel()) if isinstance(block_size, np.ndarray) else list(block_size)
        if isinstance(block_size, np.ndarray) and block_size.ndim != 1:
            raise ValueError(message)
        if not all(integer(v) for v in entries):
            raise TypeError(message)
        if len(entries) != 2:
            raise ValueError(message)
        bs = (int(entries[0]), int(entries[1]))
    else:
        raise TypeError(message)
    if min(bs) < 1:
        raise ValueError(message)
    return bs


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
