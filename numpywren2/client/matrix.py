"""``BigMatrix``: a 2-D matrix stored as tiles in a tile store under a name.

Layout in the store: ``<name>/meta`` holds the shape, block size and dtype (as a
small JSON byte tile); tile (i, j) is ``<name>/<i>/<j>``.  A matrix created by
``empty`` has no tiles until a job writes them; a tile that nobody wrote reads as
zeros (the upper triangle of a Cholesky factor, for instance).  A matrix whose
``meta`` is gone has been deleted: reading it is an error (``MatrixNotFoundError``).

Lifetime: a matrix made without a ``name`` (``empty``, ``from_numpy``, the results of
``npw.cholesky`` and the like) is *owned* by its handle and freed when the handle is
garbage-collected, or when its runtime closes; ``persist()`` keeps it (under ``A.name``),
as does creating it with ``name=``.  ``BigMatrix.open`` handles never free what they open.
"""

from __future__ import annotations

import json
import logging
import os
import re
import uuid
import weakref
from typing import TYPE_CHECKING

import numpy as np

from ..core.backends import TileNotFoundError, TileStore
from ..core.jobspec import tile_path
from ..core.tiling import block_shape, grid_shape, split
from .arguments import real_array

if TYPE_CHECKING:
    from .runtime import Runtime

log = logging.getLogger(__name__)
_TILE = re.compile(r"(\d+)/(\d+)")


class MatrixNotFoundError(KeyError):
    """No matrix of that name in the store: it was deleted (through this handle or another) or never made."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "matrix not found"


def _free(store: TileStore, name: str, pid: int, runtime_ref) -> None:
    """Delete a matrix nobody holds (a ``weakref.finalize`` callback: must never raise)."""
    runtime = runtime_ref() if runtime_ref is not None else None
    if os.getpid() != pid or (runtime is not None and runtime.closed):
        return  # a forked child does not own its parent's matrices; a closed runtime has freed them
    _delete_quietly(store, name)


def _delete_quietly(store: TileStore, name: str) -> None:
    try:
        store.delete(f"{name}/meta")
        store.delete_prefix(f"{name}/")
    except Exception as e:  # a store gone or unreachable: the tiles stay (a leak, never an error here)
        log.warning("could not free matrix %s in %s: %r", name, getattr(store, "url", store), e)


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
    runtime : Runtime, optional
        The runtime the matrix belongs to (default: the open runtime whose store is ``store``).

    Notes
    -----
    A handle made by this constructor or by ``open`` never deletes the matrix; those made by
    ``empty`` and ``from_numpy`` without a ``name`` do, when collected (see ``persist``).
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
        if runtime is None:
            from .runtime import runtime_of

            runtime = runtime_of(store)
        self.runtime = runtime
        self._deleted = False
        self._finalizer: weakref.finalize | None = None

    # ------------------------------------------------------------------ creation
    @classmethod
    def empty(cls, shape, block_size, dtype=np.float64, store: TileStore | None = None, name: str | None = None,
              runtime=None) -> BigMatrix:
        """A matrix with no tiles yet (a job will write them).

        Without ``name`` the matrix is anonymous and freed when this handle is collected
        (``persist()`` keeps it); with ``name`` it stays until ``delete()``.
        """
        if store is None:
            from .runtime import current_runtime

            runtime = runtime or current_runtime()
            store = runtime.store
        m = cls(store, name or f"m-{uuid.uuid4().hex[:12]}", shape, block_size, dtype, runtime)
        store.allocate_matrix(m.name, m.shape, m.block_size, m.dtype)  # e.g. one shared-memory file, tiles its slots
        m._write_meta()
        if name is None:
            m._own()
        return m

    @classmethod
    def from_numpy(cls, X, block_size=None, store: TileStore | None = None, name: str | None = None,
                   dtype=None) -> BigMatrix:
        """Upload a 2-D array, tile by tile (freed when collected unless ``name`` is given or ``persist()``)."""
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
        """A handle on an existing matrix; it never deletes the matrix.

        Raises
        ------
        MatrixNotFoundError
            (a ``KeyError``) if there is no matrix of that name in ``store``.
        """
        try:
            meta = json.loads(bytes(store.get(f"{name}/meta")).decode())
        except TileNotFoundError:
            raise MatrixNotFoundError(f"no matrix named {name!r} in {store.url}") from None
        return cls(store, name, meta["shape"], meta["block_size"], meta["dtype"], runtime)

    def _write_meta(self) -> None:
        meta = {"shape": self.shape, "block_size": self.block_size, "dtype": self.dtype.str}
        self.store.put(f"{self.name}/meta", np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))

    # ------------------------------------------------------------------ lifetime
    def _own(self) -> None:
        """Free the matrix when this handle is collected (or its runtime closes)."""
        rt = self.runtime
        f = weakref.finalize(self, _free, self.store, self.name, os.getpid(),
                             weakref.ref(rt) if rt is not None else None)
        f.atexit = False  # at exit the runtime's close frees what is left (or removes its directory)
        self._finalizer = f
        if rt is not None:
            rt._owned.add(self)

    def _release(self, free: bool) -> None:
        """Stop owning the matrix; delete it first if ``free``."""
        f, self._finalizer = self._finalizer, None
        if self.runtime is not None:
            self.runtime._owned.discard(self)
        if f is not None and f.detach() is not None and free:
            _delete_quietly(self.store, self.name)

    def persist(self) -> BigMatrix:
        """Keep the matrix when this handle is collected and when its runtime closes: it stays in the
        store under ``self.name`` until ``delete()`` (re-open it with ``BigMatrix.open(store, name)``).

        Returns
        -------
        BigMatrix
            ``self``.
        """
        self._check_live()
        self._release(free=False)
        return self

    @property
    def persistent(self) -> bool:
        """False while this handle will free the matrix when collected."""
        return self._finalizer is None or not self._finalizer.alive

    def delete(self) -> None:
        """Delete the matrix and all its tiles; reading it afterwards (through any handle) raises
        ``MatrixNotFoundError``."""
        self._deleted = True
        self._release(free=False)
        self.store.delete(f"{self.name}/meta")  # first: a reader that then misses a tile sees it deleted
        self.store.delete_prefix(f"{self.name}/")

    def exists(self) -> bool:
        """Whether the matrix is in its store (not deleted, through this handle or another)."""
        return not self._deleted and self.store.exists(f"{self.name}/meta")

    def _check_live(self) -> None:
        if not self.exists():
            raise MatrixNotFoundError(f"matrix {self.name} (shape {self.shape}) was deleted from {self.store.url}; "
                                      "its tiles are gone")

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
        """The store key of tile (i, j): ``<name>/<i>/<j>`` (``core.jobspec.tile_path``, as jobs address it)."""
        return tile_path(self.name, (i, j))

    def get_tile(self, i: int, j: int) -> np.ndarray:
        """Tile (i, j); zeros if no job wrote it.

        Raises
        ------
        MatrixNotFoundError
            If the matrix was deleted.
        """
        shape = self.tile_shape(i, j)
        if self._deleted:
            self._check_live()
        try:
            return self.store.get(self.tile_key(i, j))
        except TileNotFoundError:
            self._check_live()  # a deleted matrix has no tiles, but it is not zeros
            return np.zeros(shape, self.dtype)

    def put_tile(self, i: int, j: int, a) -> None:
        if self._deleted:
            self._check_live()
        a = np.asarray(a)
        shape = self.tile_shape(i, j)
        if a.shape != shape:
            raise ValueError(f"tile ({i}, {j}) of {self.name} has shape {shape}, not {a.shape}")
        self.store.put(self.tile_key(i, j), a.astype(self.dtype, copy=False))

    # ------------------------------------------------------------------ whole matrix
    def numpy(self) -> np.ndarray:
        """The whole matrix as a numpy array (tiles nobody wrote are zeros).

        Raises
        ------
        MatrixNotFoundError
            If the matrix was deleted (through this handle or another), also while it was read.
        """
        if self._deleted:
            self._check_live()
        out = np.zeros(self.shape, self.dtype)
        br, bc = self.block_size
        gr, gc = self.grid
        missing = False
        for i in range(gr):
            for j in range(gc):
                try:
                    out[i * br:(i + 1) * br, j * bc:(j + 1) * bc] = self.store.get(self.tile_key(i, j))
                except TileNotFoundError:
                    missing = True
        if missing:  # checked after the reads: a matrix deleted meanwhile lost its meta first
            self._check_live()
        return out

    def __array__(self, dtype=None, copy=None):
        a = self.numpy()
        return a if dtype is None else a.astype(dtype, copy=False)

    def to(self, runtime: Runtime | None = None, name: str | None = None) -> BigMatrix:
        """This matrix in another runtime's tile store: a copy, tile by tile through this process.

        Parameters
        ----------
        runtime : Runtime, optional
            Default: the current runtime (of the innermost ``with npw.runtime(...)``).
        name : str, optional
            Name of the copy; without one it is anonymous (freed when collected) unless this
            matrix was kept by name, whose name it then keeps.

        Returns
        -------
        BigMatrix
            ``self`` if it already lives in that runtime's store, else the copy.

        Raises
        ------
        MatrixNotFoundError
            If this matrix was deleted.
        ValueError
            If the other store already holds a matrix of that name.
        """
        from .runtime import current_runtime

        rt = runtime if runtime is not None else current_runtime()
        if rt.store.url == self.store.url and name in (None, self.name):
            return self
        self._check_live()
        if name is None and self.persistent:
            name = self.name
        if name is not None and rt.store.exists(f"{name}/meta"):
            raise ValueError(f"{rt.store.url} already holds a matrix named {name!r}; give the copy another name")
        out = BigMatrix.empty(self.shape, self.block_size, self.dtype, store=rt.store, name=name, runtime=rt)
        prefix = f"{self.name}/"
        try:
            for key in self.store.list(prefix):
                if _TILE.fullmatch(key[len(prefix):]):
                    out.store.put(out.tile_key(*map(int, key[len(prefix):].split("/"))), self.store.get(key))
        except TileNotFoundError:
            out.delete()
            self._check_live()
            raise
        return out

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
