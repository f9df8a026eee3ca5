"""``BigMatrix``: a 2-D matrix stored as tiles in a tile store under a name.

Layout in the store: ``<name>/meta`` holds the shape, block size and dtype (as a
small JSON byte tile); tile (i, j) is ``<name>/<i>/<j>``.  A matrix created by
``empty`` has no tiles until a job writes them; a tile that nobody wrote reads as
zeros (the upper triangle of a Cholesky factor, for instance).
"""

from __future__ import annotations

import json
import uuid

import numpy as np

from .arguments import real_array
from .backends import TileNotFoundError, TileStore
from .tiling import block_shape, grid_shape, split


class BigMatrix:
    """A tiled matrix in a tile store.

    Parameters
    ----------
    store : TileStore
    name : str
        Key prefix of the matrix; re-open an existing matrix with ``BigMatrix.open(store, name)``.
    shape : (int, int)
    block_size : int or (int, int)
    dtype : numpy dtype (float32 or float64)
    """

    def __init__(self, store: TileStore, name: str, shape, block_size, dtype=np.float64, runtime=None):
        self.store = store
        self.name = name
        self.shape = (int(shape[0]), int(shape[1]))
        self.block_size = block_shape(block_size)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise TypeError(f"BigMatrix supports float32 and float64, not {self.dtype}")
        if min(self.shape) < 0:
            raise ValueError(f"invalid shape {shape}")
        self.runtime = runtime

    # ------------------------------------------------------------------ creation
    @classmethod
    def empty(cls, shape, block_size, dtype=np.float64, store: TileStore | None = None, name: str | None = None,
              runtime=None) -> BigMatrix:
        """A matrix with no tiles yet (a job will write them)."""
        if store is None:
            from .runtime import current_runtime

            runtime = current_runtime()
            store = runtime.store
        m = cls(store, name or f"m-{uuid.uuid4().hex[:12]}", shape, block_size, dtype, runtime)
        m._write_meta()
        return m

    @classmethod
    def from_numpy(cls, X, block_size=None, store: TileStore | None = None, name: str | None = None,
                   dtype=None) -> BigMatrix:
        X = real_array(X, "X", "BigMatrix.from_numpy")  # complex, object...: a TypeError, not a cast
        if X.ndim != 2:
            raise ValueError(f"BigMatrix holds 2-D matrices; got an array of shape {X.shape}")
        if dtype is None:
            dtype = X.dtype
        if block_size is None:
            block_size = default_block_size(X.shape)
        m = cls.empty(X.shape, block_size, dtype, store, name)
        for (i, j), tile in split(X.astype(dtype, copy=False), m.block_size).items():
            m.put_tile(i, j, tile)
        return m

    @classmethod
    def open(cls, store: TileStore, name: str, runtime=None) -> BigMatrix:
        try:
            meta = json.loads(bytes(store.get(f"{name}/meta")).decode())
        except TileNotFoundError:
            raise KeyError(f"no matrix named {name!r} in {store.url}") from None
        return cls(store, name, meta["shape"], meta["block_size"], meta["dtype"], runtime)

    def _write_meta(self) -> None:
        meta = {"shape": self.shape, "block_size": self.block_size, "dtype": self.dtype.str}
        self.store.put(f"{self.name}/meta", np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    # ------------------------------------------------------------------ tiles
    @property
    def grid(self) -> tuple[int, int]:
        """Number of tile rows and columns."""
        return grid_shape(self.shape, self.block_size)

    def tile_shape(self, i: int, j: int) -> tuple[int, int]:
        gr, gc = self.grid
        if not (0 <= i < gr and 0 <= j < gc):
            raise IndexError(f"tile ({i}, {j}) is outside the {gr}x{gc} grid of {self.name}")
        br, bc = self.block_size
        return (min(br, self.shape[0] - i * br), min(bc, self.shape[1] - j * bc))

    def tile_key(self, i: int, j: int) -> str:
        return f"{self.name}/{i}/{j}"

    def get_tile(self, i: int, j: int) -> np.ndarray:
        shape = self.tile_shape(i, j)
        try:
            t = self.store.get(self.tile_key(i, j))
        except TileNotFoundError:
            return np.zeros(shape, self.dtype)
        return t

    def put_tile(self, i: int, j: int, a) -> None:
        a = np.asarray(a)
        shape = self.tile_shape(i, j)
        if a.shape != shape:
            raise ValueError(f"tile ({i}, {j}) of {self.name} has shape {shape}, not {a.shape}")
        self.store.put(self.tile_key(i, j), a.astype(self.dtype, copy=False))

    # ------------------------------------------------------------------ whole matrix
    def numpy(self) -> np.ndarray:
        out = np.zeros(self.shape, self.dtype)
        br, bc = self.block_size
        gr, gc = self.grid
        for i in range(gr):
            for j in range(gc):
                out[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = self.get_tile(i, j)
        return out

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def delete(self) -> None:
        self.store.delete_prefix(f"{self.name}/")

    def __repr__(self) -> str:
        return (f"BigMatrix({self.name!r}, shape={self.shape}, block_size={self.block_size}, "
                f"dtype={self.dtype}, grid={self.grid})")


def default_block_size(shape) -> int:
    """A block size for a matrix: about 4 tiles per dimension below n = 2048; above, about 8 tiles
    per dimension, rounded up to a multiple of 128, at most 4096.

    Eight tiles per dimension give a Cholesky 120 tasks, enough parallelism for a few executors,
    with tiles large enough (1024 at n = 8192, 2048 at n = 16384) for BLAS to run near its peak
    and for the per-task overhead (a few milliseconds) not to matter (bench/RESULTS.md).

    >>> default_block_size((1000, 300)), default_block_size((8192, 8192)), default_block_size((16384, 100))
    (250, 1024, 2048)
    """
    n = max(shape) if len(shape) else 1
    if n < 2048:
        return int(max(64, -(-n // 4)))
    return int(min(4096, -(-n // 1024) * 128))  # ceil(n / 8) rounded up to a multiple of 128
