"""dask interop: a dask array into a BigMatrix without a gather, and a BigMatrix as a lazy dask array.

``from_dask(x)`` rechunks ``x`` (lazily) to the tiling and submits one job whose task (i, j) computes
chunk (i, j) of ``x`` — dask's graph for that chunk only, culled from the whole, run by dask's
synchronous scheduler inside the executor — and stores it as tile (i, j).  The graph travels as the
job's kernel, by value (cloudpickle, as every user kernel does): whatever the graph holds travels
with it (a ``da.from_array`` of a numpy array carries that array; a graph that reads files or makes
random numbers carries only the recipe).

``A.to_dask()`` is a dask array with one chunk per tile; computing a chunk reads its tile from the
store (zeros for a tile nobody wrote).  The tiles are read when dask computes them: keep ``A`` (or
``persist()`` it) until then, since an anonymous matrix is freed when its handle is collected.
"""

from __future__ import annotations

import numpy as np

import lambdapack as lp

from ..core.backends import TileNotFoundError, TileStore
from ..core.backends.urls import open_store
from ..core.tiling import block_shape
from .arguments import real_dtype
from .call import Call
from .matrix import BigMatrix, default_block_size

_FROM_CHUNKS = '''
def from_chunks(X: lp.Matrix, GR: int, GC: int):
    """X[i, j] = chunk (i, j) of a dask array rechunked to X's tiles."""
    for i in range(GR):
        for j in range(GC):
            X[i, j] = dask_chunk(i, j)
'''


def _chunk_kernel(x, dtype: np.dtype) -> lp.Kernel:
    def dask_chunk(i, j):
        block = x.blocks[int(i), int(j)].compute(scheduler="synchronous")
        return np.ascontiguousarray(block, dtype=dtype)

    return lp.kernel(dask_chunk)


def from_dask(x, block_size=None, dtype=None, name: str | None = None, executors: int | None = None) -> BigMatrix:
    """A BigMatrix of the 2-D dask array ``x``, each tile computed by an executor from dask's graph.

    Parameters
    ----------
    x : dask.array.Array
    block_size : int or (int, int), optional
        Default: ``x``'s chunks if they are regular (all chunks but the last of each axis equal), else
        ``default_block_size(x.shape)``.  ``x`` is rechunked to it (lazily, in the graph).
    dtype : float32 or float64, optional
        Default: ``x``'s if float32/float64, else float64.
    name : str, optional
        Keep the matrix under this name.
    """
    import dask.array as da

    if not isinstance(x, da.Array) or x.ndim != 2:
        raise TypeError(f"from_dask takes a 2-D dask array, not {type(x).__name__} of shape {getattr(x, 'shape', '?')}")
    if any(np.isnan(s) for s in x.shape):
        raise ValueError("from_dask: the dask array has unknown chunk sizes; call x.compute_chunk_sizes() first")
    shape = (int(x.shape[0]), int(x.shape[1]))
    if block_size is None:
        regular = all(len(set(c[:-1])) <= 1 and (len(c) == 1 or c[-1] <= c[0]) for c in x.chunks)
        block_size = (x.chunks[0][0], x.chunks[1][0]) if regular and min(shape) else default_block_size(shape)
    bs = block_shape(block_size)
    kind = np.dtype(x.dtype)
    dt = real_dtype(dtype if dtype is not None else (kind if kind in (np.float32, np.float64) else np.float64),
                    "dtype", "from_dask")
    x = x.rechunk(bs)
    with Call("from_dask", check_finite=False, executors=executors) as call:
        X = call.empty(shape, bs, dt) if name is None else call._own(BigMatrix.empty(shape, bs, dt, name=name))
        if min(shape):
            program = lp.Program.from_source(_FROM_CHUNKS, {"lp": lp, "dask_chunk": _chunk_kernel(x, dt)})
            call.run(program, X=X, GR=X.grid[0], GC=X.grid[1])
        return call.keep(X)


_STORES: dict[str, TileStore] = {}


def _store(url: str) -> TileStore:
    store = _STORES.get(url)
    if store is None:
        store = _STORES[url] = open_store(url)
    return store


def _read_tile(url: str, key: str, shape: tuple[int, int], dtype: str) -> np.ndarray:
    try:
        return np.asarray(_store(url).get(key))
    except TileNotFoundError:
        return np.zeros(shape, dtype)


def to_dask(A: BigMatrix):
    """A dask array with one chunk per tile of ``A``, each read from the store when dask computes it."""
    import dask.array as da

    A._check_live()
    _STORES.setdefault(A.store.url, A.store)  # in this process: the open store (a memory:// one, say)
    name = f"bigmatrix-{A.name}-{'-'.join(map(str, getattr(A, 'tile_offset', (0, 0))))}"
    gr, gc = A.grid
    graph = {(name, i, j): (_read_tile, A.store.url, A.tile_key(i, j), A.tile_shape(i, j), A.dtype.str)
             for i in range(gr) for j in range(gc)}
    br, bc = A.block_size
    chunks = (tuple(min(br, A.shape[0] - i * br) for i in range(gr)) or (0,),
              tuple(min(bc, A.shape[1] - j * bc) for j in range(gc)) or (0,))
    return da.Array(graph, name, chunks, dtype=A.dtype)


def _install() -> None:
    BigMatrix.to_dask = to_dask


_install()
