"""``BigMatrix`` as an array: operators, transposes, casts, retiling, slices, ``eye``/``zeros``/``diag``.

Every operation that makes a matrix runs a LAmbdaPACK program (``core/programs/arrays.py``) in the
executors: the client submits one job and never touches the tiles.  The operations are attached to
``BigMatrix`` below (``_install``), so that ``matrix.py`` keeps only the storage of a matrix.

- ``A.T``, ``A + B``, ``A - B``, ``alpha * A``, ``A * alpha``, ``-A``, ``A.astype(dtype)``: one job each,
  tile by tile; a ``B`` tiled otherwise than ``A`` is retiled first, and a numpy ``B`` is uploaded in
  ``A``'s tiles.  ``A @ B`` is ``npw.matmul(A, B, check_finite=False)``.
- ``A.rechunk(block_size)``: a retiling job (``programs.retile``: each new tile is cut from the one old
  tile that holds it, or put together from the ones it overlaps).
- ``A[r0:r1, c0:c1]``: a slice on tile boundaries (``r0`` a multiple of the row block and ``r1`` one or
  the number of rows; the same for columns) is a ``MatrixView``: no tile is copied, and every program
  reads (and writes) it through the job description's tile offsets (``JobSpec.offsets``).  Any other
  slice is a new matrix cut out by a retiling job, in ``A``'s block size.
- Tiles nobody wrote read as zeros (a Cholesky factor has no tiles above its diagonal); jobs need
  every tile they read, so such a matrix is first completed by a job (``Call.dense``).

Results are anonymous matrices, freed when their handle is collected (``persist()`` keeps them).
"""

from __future__ import annotations

import numbers
import re

import numpy as np

from ..core import programs
from ..core.jobspec import tile_path
from ..core.kernels.elementwise import float_bits
from ..core.tiling import block_shape, grid_shape
from .arguments import real_dtype
from .call import Call
from .matrix import BigMatrix, MatrixNotFoundError, default_block_size

_TILE = re.compile(r"(\d+)/(\d+)")


class MatrixView(BigMatrix):
    """A tile-aligned block of a matrix: its tile (i, j) is tile (i + di, j + dj) of ``parent``.

    It holds no tiles of its own and never deletes any (``delete`` is a ``TypeError``): it keeps its
    parent alive while it lives.  Jobs address it through the parent's key prefix and the offset.
    """

    def __init__(self, parent: BigMatrix, tile_offset: tuple[int, int], shape):
        base = getattr(parent, "parent", None)
        if base is not None:  # a view of a view: of the same base matrix
            tile_offset = (tile_offset[0] + parent.tile_offset[0], tile_offset[1] + parent.tile_offset[1])
            parent = base
        super().__init__(parent.store, parent.name, shape, parent.block_size, parent.dtype, parent.runtime)
        self.parent = parent
        self.tile_offset = (int(tile_offset[0]), int(tile_offset[1]))

    def tile_key(self, i: int, j: int) -> str:
        """The key of the parent's tile that is tile (i, j) of this view."""
        return tile_path(self.name, (i + self.tile_offset[0], j + self.tile_offset[1]))

    def holds_key(self, key: str) -> bool:
        """Whether ``key`` (a key under the parent's name) is one of this view's tiles."""
        m = _TILE.fullmatch(key[len(self.name) + 1:]) if key.startswith(f"{self.name}/") else None
        if m is None:
            return False
        i, j = int(m[1]) - self.tile_offset[0], int(m[2]) - self.tile_offset[1]
        gr, gc = self.grid
        return 0 <= i < gr and 0 <= j < gc

    def exists(self) -> bool:
        return self.parent.exists()

    def _check_live(self) -> None:
        if not self.exists():
            raise MatrixNotFoundError(f"the matrix {self.name} this view {self.shape} is a block of was deleted "
                                      f"from {self.store.url}")

    def delete(self) -> None:
        raise TypeError(f"a view holds no tiles of its own; delete the matrix it is a block of ({self.name})")

    def persist(self) -> MatrixView:
        """Persist the parent (a view has no lifetime of its own)."""
        self.parent.persist()
        return self

    def copy(self) -> BigMatrix:
        """The view as a matrix of its own (a copy job)."""
        return copy(self)

    def to(self, runtime=None, name: str | None = None) -> BigMatrix:
        """A copy in another runtime: the view is first materialised (a copy job), then copied."""
        return self.copy().to(runtime, name)

    def __repr__(self) -> str:
        return (f"MatrixView({self.name!r}, shape={self.shape}, tile_offset={self.tile_offset}, "
                f"block_size={self.block_size}, dtype={self.dtype})")


# ---------------------------------------------------------------------------------------- operations
def _single(dtype) -> int:
    return int(np.dtype(dtype) == np.float32)


def _operand(call: Call, A: BigMatrix, B, what: str) -> BigMatrix:
    """The other operand of an elementwise operation with ``A``: a BigMatrix tiled like ``A`` (retiled if it is
    not), or a numpy array uploaded in ``A``'s tiles; its shape must be ``A``'s."""
    if not isinstance(B, BigMatrix):
        b = np.asarray(B)
        if b.ndim != 2:
            raise ValueError(f"{what}: a BigMatrix combines with a 2-D matrix of its shape {A.shape}, not an array "
                             f"of shape {b.shape} (no broadcasting)")
        B = call.upload(b.astype(np.result_type(b.dtype, np.float32), copy=False), A.block_size)
    if B.shape != A.shape:
        raise ValueError(f"{what}: shapes {A.shape} and {B.shape} differ (no broadcasting)")
    return call.dense(call.retiled(B, A.block_size))


def combine(A: BigMatrix, B, alpha: float = 1.0, beta: float = 1.0, executors: int | None = None) -> BigMatrix:
    """``alpha * A + beta * B`` by one job, in ``result_type(A, B)`` and ``A``'s tiling."""
    what = "add" if beta == 1.0 else "subtract" if beta == -1.0 else "combine"
    with Call(what, check_finite=False, executors=executors) as call:
        B = _operand(call, A, B, what)
        dtype = np.result_type(A.dtype, B.dtype)
        X = call.empty(A.shape, A.block_size, dtype)
        if min(A.shape):
            call.run(programs.combine, A=call.dense(A), B=B, X=X, GR=A.grid[0], GC=A.grid[1],
                     ALPHA=float_bits(alpha), BETA=float_bits(beta), SINGLE=_single(dtype))
        return call.keep(X)


def scale(A: BigMatrix, alpha, executors: int | None = None) -> BigMatrix:
    """``alpha * A`` by one job (dtype: A's, as numpy keeps a float32 array float32 times a Python float)."""
    with Call("multiply", check_finite=False, executors=executors) as call:
        X = call.empty(A.shape, A.block_size, A.dtype)
        if min(A.shape):
            call.run(programs.scaled, A=call.dense(A), X=X, GR=A.grid[0], GC=A.grid[1], ALPHA=float_bits(alpha),
                     SINGLE=_single(A.dtype))
        return call.keep(X)


def transpose(A: BigMatrix, executors: int | None = None) -> BigMatrix:
    """``A.T`` by one job: tile (i, j) transposed into tile (j, i), tiled (A's column tiles, A's row tiles)."""
    with Call("transpose", check_finite=False, executors=executors) as call:
        X = call.empty((A.shape[1], A.shape[0]), (A.block_size[1], A.block_size[0]), A.dtype)
        if min(A.shape):
            call.run(programs.transpose_all, A=call.dense(A), X=X, GR=A.grid[0], GC=A.grid[1])
        return call.keep(X)


def astype(A: BigMatrix, dtype, executors: int | None = None) -> BigMatrix:
    """``A`` as ``dtype`` (float32 or float64), a new matrix as numpy's ``astype`` makes (one job)."""
    dt = real_dtype(dtype, "dtype", "astype")
    with Call("astype", check_finite=False, executors=executors) as call:
        X = call.empty(A.shape, A.block_size, dt)  # float32/float64 only: BigMatrix says so
        if min(A.shape):
            call.run(programs.astype, A=call.dense(A), X=X, GR=A.grid[0], GC=A.grid[1], SINGLE=_single(dt))
        return call.keep(X)


def copy(A: BigMatrix, executors: int | None = None) -> BigMatrix:
    """A copy of ``A`` (of a view: the view as a matrix of its own), by one job."""
    with Call("copy", check_finite=False, executors=executors) as call:
        X = call.empty(A.shape, A.block_size, A.dtype)
        src = call.dense(A)
        if min(A.shape):
            call.run(programs.copy_all, A=src, X=X, GR=A.grid[0], GC=A.grid[1])
        return call.keep(X)


def rechunk(A: BigMatrix, block_size, executors: int | None = None) -> BigMatrix:
    """``A`` in ``block_size`` tiles (an int or a (rows, cols) pair): ``A`` itself if it is tiled so, else a
    new matrix retiled by one job."""
    bs = block_shape(block_size)
    if bs == A.block_size:
        return A
    with Call("rechunk", check_finite=False, executors=executors) as call:
        return call.keep(call.retiled(A, bs))


def _bounds(key, n: int, what: str) -> tuple[int, int]:
    if isinstance(key, numbers.Integral):
        raise TypeError(f"{what}: a BigMatrix is indexed with slices (A[r0:r1, c0:c1]), not integers; "
                        f"A[{key}:{key}+1] keeps the row as a matrix")
    if not isinstance(key, slice):
        raise TypeError(f"{what}: a BigMatrix is indexed with slices, not {type(key).__name__}")
    start, stop, step = key.indices(n)
    if step != 1:
        raise ValueError(f"{what}: slices with a step ({key}) are not supported")
    return start, max(start, stop)


def getitem(A: BigMatrix, key) -> BigMatrix:
    """``A[r0:r1, c0:c1]`` (or ``A[r0:r1]``): a view when the slice falls on tile boundaries, else a copy."""
    rows, cols = key if isinstance(key, tuple) else (key, slice(None))
    if isinstance(rows, tuple) or isinstance(cols, tuple):
        raise TypeError("a BigMatrix has two axes")
    (r0, r1), (c0, c1) = _bounds(rows, A.shape[0], "slice"), _bounds(cols, A.shape[1], "slice")
    br, bc = A.block_size
    shape = (r1 - r0, c1 - c0)
    if (r0, r1, c0, c1) == (0, A.shape[0], 0, A.shape[1]):
        return A
    aligned = (r0 % br == 0 and (r1 % br == 0 or r1 == A.shape[0]) and c0 % bc == 0
               and (c1 % bc == 0 or c1 == A.shape[1]))
    if aligned and min(shape) > 0:
        return MatrixView(A, (r0 // br, c0 // bc), shape)
    with Call("slice", check_finite=False) as call:
        return call.keep(call.block(A, r0, c0, shape, A.block_size))


# ---------------------------------------------------------------------------------------- constructors
def _block(shape, block_size) -> tuple[int, int]:
    return block_shape(block_size if block_size is not None else default_block_size(shape))


def zeros(shape, block_size=None, dtype=np.float64, executors: int | None = None) -> BigMatrix:
    """An all-zero matrix of ``shape``, every tile written by a job (``programs.zeros``)."""
    dt = real_dtype(dtype, "dtype", "zeros")
    shape = (int(shape[0]), int(shape[1]))
    bs = _block(shape, block_size)
    with Call("zeros", check_finite=False, executors=executors) as call:
        X = call.empty(shape, bs, dt)
        if min(shape):
            call.run(programs.zeros, X=X, ROWS=shape[0], COLS=shape[1], BR=bs[0], BC=bs[1], SINGLE=_single(dt))
        return call.keep(X)


def eye(n: int, m: int | None = None, block_size: int | None = None, dtype=np.float64,
        executors: int | None = None) -> BigMatrix:
    """The ``n`` × ``m`` identity (``m`` default ``n``) in square ``block_size`` tiles, made by a job."""
    dt = real_dtype(dtype, "dtype", "eye")
    m = n if m is None else m
    shape = (int(n), int(m))
    bs = _block(shape, block_size)
    if bs[0] != bs[1]:
        raise ValueError(f"eye: the identity is made in square tiles, not {bs}; rechunk it afterwards")
    with Call("eye", check_finite=False, executors=executors) as call:
        X = call.empty(shape, bs, dt)
        if min(shape):
            call.run(programs.eye_rect, X=X, ROWS=shape[0], COLS=shape[1], B=bs[0], SINGLE=_single(dt))
        return call.keep(X)


def diag(v, block_size: int | None = None, dtype=None, executors: int | None = None):
    """As ``numpy.diag`` for k = 0: the diagonal of a BigMatrix (a numpy vector: O(n) on the client, taken from
    the diagonal tiles by a job), or the square BigMatrix with a 1-D ``v`` on its diagonal (made by a job)."""
    if isinstance(v, BigMatrix):
        A = v
        with Call("diag", check_finite=False, executors=executors) as call:
            if A.block_size[0] != A.block_size[1]:
                A = call.retiled(A, (A.block_size[0], A.block_size[0]))
            k = min(A.shape)
            if k == 0:
                return np.zeros(0, A.dtype)
            V = call.empty((k, 1), (A.block_size[0], 1), A.dtype)
            call.run(programs.diagonal, A=call.dense(A), V=V, G=grid_shape((k, k), A.block_size)[0])
            return V.numpy()[:, 0]
    x = np.asarray(v)
    if x.ndim != 1:
        raise ValueError(f"diag: a 1-D vector or a BigMatrix, not an array of shape {x.shape}")
    dt = real_dtype(dtype if dtype is not None else np.result_type(x.dtype, np.float32), "dtype", "diag")
    n = x.shape[0]
    bs = _block((n, n), block_size)
    if bs[0] != bs[1]:
        raise ValueError(f"diag: the matrix is made in square tiles, not {bs}")
    with Call("diag", check_finite=False, executors=executors) as call:
        X = call.empty((n, n), bs, dt)
        if n:
            V = call.upload(x.astype(dt)[:, None], (bs[0], 1))  # the vector: O(n) on the client
            call.run(programs.diag_matrix, V=V, X=X, N=n, B=bs[0], SINGLE=_single(dt))
        return call.keep(X)


# ---------------------------------------------------------------------------------------- the methods
def _is_scalar(x) -> bool:
    return (isinstance(x, numbers.Real) and not isinstance(x, bool)) or (isinstance(x, np.ndarray) and x.ndim == 0)


def _add(self, other):
    if _is_scalar(other):
        return NotImplemented
    return combine(self, other, 1.0, 1.0)


def _radd(self, other):
    return _add(self, other)


def _sub(self, other):
    if _is_scalar(other):
        return NotImplemented
    return combine(self, other, 1.0, -1.0)


def _rsub(self, other):
    if _is_scalar(other):
        return NotImplemented
    return combine(self, other, -1.0, 1.0)


def _mul(self, other):
    if not _is_scalar(other):
        return NotImplemented  # elementwise products are not among the operations
    return scale(self, float(other))


def _truediv(self, other):
    if not _is_scalar(other):
        return NotImplemented
    return scale(self, 1.0 / float(other))


def _neg(self):
    return scale(self, -1.0)


def _matmul(self, other):
    from .linalg import matmul

    return matmul(self, other, check_finite=False)


def _rmatmul(self, other):
    from .linalg import matmul

    return matmul(other, self, check_finite=False)


def _install() -> None:
    """Attach the array operations to ``BigMatrix``."""
    methods = {
        "T": property(transpose, doc="The transpose, made by a job (``transpose``)."),
        "ndim": property(lambda self: 2, doc="2: a BigMatrix is a matrix."),
        "size": property(lambda self: self.shape[0] * self.shape[1], doc="The number of entries."),
        "nbytes": property(lambda self: self.shape[0] * self.shape[1] * self.dtype.itemsize,
                           doc="The bytes of its entries."),
        "__len__": lambda self: self.shape[0],
        "__bool__": lambda self: True,  # a handle is true, as before it had a length (numpy's is ambiguous)
        "__add__": _add, "__radd__": _radd, "__sub__": _sub, "__rsub__": _rsub,
        "__mul__": _mul, "__rmul__": _mul, "__truediv__": _truediv, "__neg__": _neg,
        "__matmul__": _matmul, "__rmatmul__": _rmatmul, "__getitem__": getitem,
        "astype": astype, "rechunk": rechunk, "transpose": transpose, "copy": copy,
    }
    for name, value in methods.items():
        if name not in BigMatrix.__dict__:
            setattr(BigMatrix, name, value)


_install()
