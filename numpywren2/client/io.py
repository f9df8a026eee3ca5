"""Matrices in and out of .npy files, zarr arrays and HDF5 datasets, tile by tile in the executors.

``BigMatrix.from_npy(path)`` / ``A.to_npy(path)``, ``from_zarr`` / ``to_zarr``, ``from_hdf5`` /
``to_hdf5``: the client reads or writes only the metadata (a .npy header, a zarr array's or an HDF5
dataset's shape, chunks and dtype) and submits one job (``programs.load`` or ``programs.save``) in
which each task reads or writes one tile's block (``core/kernels/io.py``).  The client never holds
the matrix: a .npy file far larger than the client's memory goes through.

The executors open the paths themselves, so the files must be where they run (local paths for the
local executors; they are made absolute here).  Where the data is goes to the job as a descriptor
tile (``kernels.io.descriptor``) in a tile space of the call.

- ``from_npy``: C or Fortran order; float32 and float64 stay so, other real dtypes become float64.
  ``to_npy`` writes a C-order file of the matrix's dtype (its header and size first, then the tiles).
- ``from_zarr``: tiled as the zarr chunks unless ``block_size`` says otherwise (tiles equal to chunks:
  each task reads one chunk).  ``to_zarr`` makes the array with one chunk per tile (``chunks``, if
  given, retiles the matrix first), so that no two writers share a chunk.  The path may be an fsspec
  URL (``s3://bucket/a.zarr``, through s3fs): the endpoint comes from, first, ``storage_options``, then
  the URL's own ``?endpoint_url=&region=``, then the current runtime's S3 tile store, then
  ``$AWS_ENDPOINT_URL`` (``zarr_location``), and travels to the executors in the descriptor; the
  credentials never do (each executor has its own, as for the tile store).
- ``from_hdf5`` / ``to_hdf5``: a dataset of a file; writers take turns (an exclusive lock on the file).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlparse

import numpy as np

from ..core import programs
from ..core.jobspec import tile_path
from ..core.kernels.io import descriptor, npy_header, write_npy_header
from ..core.tiling import block_shape
from .array_ops import _single
from .call import Call
from .matrix import BigMatrix, default_block_size
from .runtime import current_runtime

_CREDENTIAL_OPTIONS = ("key", "secret", "token", "aws_access_key_id", "aws_secret_access_key", "aws_session_token")


def _local(path) -> str:
    path = os.fspath(path)
    return path if "://" in path else os.path.abspath(path)


def _dtype_of(dtype, given) -> np.dtype:
    if given is not None:
        return np.dtype(given)
    dtype = np.dtype(dtype)
    if dtype.kind == "c" or dtype.kind not in "fiub":
        raise TypeError(f"a BigMatrix holds real numbers, not {dtype}")
    return dtype if dtype in (np.float32, np.float64) else np.dtype(np.float64)


def _source(call: Call, **fields):
    """A tile space of the call holding the descriptor tile (0, 0)."""
    space = call.tile_space()
    space.store.put(tile_path(space.name, (0, 0)), descriptor(**fields))
    return space


def _load(what: str, shape, dtype, block_size, fields: dict, name: str | None, executors: int | None) -> BigMatrix:
    if len(shape) != 2:
        raise ValueError(f"{what}: a BigMatrix holds 2-D matrices; {fields['path']} holds shape {tuple(shape)}")
    shape = (int(shape[0]), int(shape[1]))
    bs = block_shape(block_size if block_size is not None else default_block_size(shape))
    with Call(what, check_finite=False, executors=executors) as call:
        if name is None:
            X = call.empty(shape, bs, dtype)
        else:
            X = call._own(BigMatrix.empty(shape, bs, dtype, name=name))
        if min(shape):
            call.run(programs.load, SRC=_source(call, **fields), X=X, ROWS=shape[0], COLS=shape[1], BR=bs[0],
                     BC=bs[1], SINGLE=_single(dtype))
        return call.keep(X)


def _save(what: str, A: BigMatrix, fields: dict, executors: int | None) -> None:
    with Call(what, check_finite=False, executors=executors) as call:
        if min(A.shape):
            src = call.dense(A)  # tiles nobody wrote are zeros in the file too
            call.run(programs.save, A=src, DST=_source(call, **fields), GR=A.grid[0], GC=A.grid[1],
                     BR=A.block_size[0], BC=A.block_size[1])


# ---------------------------------------------------------------------------------------- .npy
def from_npy(path, block_size=None, dtype=None, name: str | None = None, executors: int | None = None) -> BigMatrix:
    """A matrix read from a .npy file by the executors, tile by tile (only the header is read here).

    Parameters
    ----------
    path : str or path-like
        A 2-D .npy file (C or Fortran order) where the executors run.
    block_size : int or (int, int), optional
        Default: ``default_block_size(shape)``.
    dtype : float32 or float64, optional
        Default: the file's (float32, float64), else float64.
    name : str, optional
        Keep the matrix under this name (default: anonymous, freed when collected).
    """
    path = _local(path)
    shape, _, file_dtype, _ = npy_header(path)
    return _load("from_npy", shape, _dtype_of(file_dtype, dtype), block_size, {"format": "npy", "path": path},
                 name, executors)


def to_npy(A: BigMatrix, path, executors: int | None = None) -> None:
    """Write the matrix to a .npy file (C order, its dtype): the header here, the tiles by the executors."""
    path = _local(path)
    write_npy_header(path, A.shape, A.dtype)
    _save("to_npy", A, {"format": "npy", "path": path}, executors)


# ---------------------------------------------------------------------------------------- zarr
def zarr_location(path, storage_options: dict | None = None) -> tuple[str, dict | None]:
    """The zarr array's path or URL as the executors open it, and its fsspec ``storage_options`` (None for a
    local path).  For ``s3://`` the endpoint is, first found: ``storage_options["endpoint_url"]``, the URL's
    ``?endpoint_url=`` (and ``region=``), the current runtime's S3 tile store's, ``$AWS_ENDPOINT_URL``.

    >>> zarr_location("s3://b/a.zarr?endpoint_url=http://10.0.0.1:5000&region=eu-west-1")
    ('s3://b/a.zarr', {'endpoint_url': 'http://10.0.0.1:5000', 'client_kwargs': {'region_name': 'eu-west-1'}})
    """
    path = os.fspath(path)
    if "://" not in path:
        if storage_options:
            raise ValueError(f"storage_options are for URLs (s3://...), not the local path {path}")
        return os.path.abspath(path), None
    options = dict(storage_options or {})
    given = sorted(set(options) & set(_CREDENTIAL_OPTIONS))
    if given:
        raise ValueError(f"storage_options {given} would travel to the executors with the job: give the "
                         f"executors their credentials in their environment (AWS_ACCESS_KEY_ID, ...) instead")
    u = urlparse(path)
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    url = u._replace(query="").geturl()
    if u.scheme in ("s3", "s3a"):
        endpoint = options.get("endpoint_url") or q.get("endpoint_url")
        region = q.get("region")
        store = urlparse(current_runtime().urls["store"]) if endpoint is None else None
        if store is not None and store.scheme == "s3":
            sq = {k: v[0] for k, v in parse_qs(store.query).items()}
            endpoint, region = sq.get("endpoint_url"), region or sq.get("region")
        endpoint = endpoint or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        if endpoint:
            options["endpoint_url"] = endpoint
        if region:
            options.setdefault("client_kwargs", {}).setdefault("region_name", region)
    return url, options


def from_zarr(path, block_size=None, dtype=None, name: str | None = None, executors: int | None = None,
              storage_options: dict | None = None) -> BigMatrix:
    """A matrix read from a zarr array by the executors; tiled as its chunks by default.

    Parameters
    ----------
    path : str or path-like
        A local directory, or an fsspec URL such as ``s3://bucket/a.zarr`` (s3fs; the endpoint as in
        ``zarr_location``).
    block_size : int or (int, int), optional
        Default: the array's chunks (each task then reads one chunk, as stored).
    storage_options : dict, optional
        fsspec options of the URL (``endpoint_url``, ``client_kwargs``...); never credentials.
    """
    import zarr

    url, options = zarr_location(path, storage_options)
    z = zarr.open_array(url, mode="r", storage_options=options)
    bs = block_size if block_size is not None else tuple(int(c) for c in z.chunks)
    return _load("from_zarr", z.shape, _dtype_of(z.dtype, dtype), bs, _zarr_fields(url, options), name, executors)


def _zarr_fields(url: str, options: dict | None) -> dict:
    return {"format": "zarr", "path": url, **({"storage_options": options} if options else {})}


def to_zarr(A: BigMatrix, path, chunks=None, executors: int | None = None, storage_options: dict | None = None) -> None:
    """Write the matrix to a new zarr array at ``path`` (a directory or a URL, as for ``from_zarr``) with one chunk
    per tile (``chunks``: retile first)."""
    import zarr

    url, options = zarr_location(path, storage_options)
    with Call("to_zarr", check_finite=False) as call:
        src = call.retiled(A, chunks) if chunks is not None else A
        zarr.create_array(store=url, shape=src.shape, chunks=src.block_size, dtype=src.dtype, fill_value=0,
                          overwrite=True, storage_options=options)
        _save("to_zarr", src, _zarr_fields(url, options), executors)


# ---------------------------------------------------------------------------------------- HDF5
def from_hdf5(path, dataset: str, block_size=None, dtype=None, name: str | None = None,
              executors: int | None = None) -> BigMatrix:
    """A matrix read from dataset ``dataset`` of an HDF5 file by the executors (tiled as its chunks, if it has
    any, by default)."""
    import h5py

    path = _local(path)
    with h5py.File(path, "r") as f:
        d = f[dataset]
        shape, file_dtype, chunks = d.shape, d.dtype, d.chunks
    bs = block_size if block_size is not None else (tuple(int(c) for c in chunks) if chunks else None)
    return _load("from_hdf5", shape, _dtype_of(file_dtype, dtype), bs,
                 {"format": "hdf5", "path": path, "dataset": dataset}, name, executors)


def to_hdf5(A: BigMatrix, path, dataset: str, executors: int | None = None) -> None:
    """Write the matrix to dataset ``dataset`` (made, chunked as the tiles; it must not exist) of an HDF5 file
    (made if need be)."""
    import h5py

    path = _local(path)
    chunks = (min(A.block_size[0], A.shape[0]), min(A.block_size[1], A.shape[1])) if min(A.shape) else None
    with h5py.File(path, "a") as f:
        f.create_dataset(dataset, shape=A.shape, dtype=A.dtype, chunks=chunks)
    _save("to_hdf5", A, {"format": "hdf5", "path": path, "dataset": dataset}, executors)


def _install() -> None:
    """Attach the readers (as static methods) and the writers to ``BigMatrix``."""
    for fn in (from_npy, from_zarr, from_hdf5):
        setattr(BigMatrix, fn.__name__, staticmethod(fn))
    for fn in (to_npy, to_zarr, to_hdf5):
        setattr(BigMatrix, fn.__name__, fn)


_install()
