"""I/O kernels: each executor reads (or writes) its tile's block of a .npy file, a zarr array or an HDF5
dataset, so that a matrix goes in and out of a job without passing through the client.

Where the data is travels as a *descriptor* tile: a uint8 tile holding a small JSON object
(``descriptor`` makes it, ``describe`` reads it back)::

    {"format": "npy", "path": "/data/a.npy"}
    {"format": "zarr", "path": "/data/a.zarr"}
    {"format": "zarr", "path": "s3://bucket/a.zarr", "storage_options": {"endpoint_url": "http://..."}}
    {"format": "hdf5", "path": "/data/a.h5", "dataset": "A"}

A .npy file is never mapped whole: a tile's rows (C order) or columns (Fortran order) are one
contiguous band of the file, mapped with ``np.memmap`` at that offset, so an executor's address
space grows by one band of tiles, whatever the size of the file.  Writers of a .npy file each map
and flush their own band (the file, header and size, is made before the job: ``write_npy_header``);
zarr arrays are written chunk-aligned (one tile is one chunk, so writers never share a chunk); HDF5,
which is not safe for concurrent writers, is written under an exclusive ``flock`` of the file.
zarr and h5py are imported by the kernels that use them only.
"""

from __future__ import annotations

import fcntl
import json
import os

import numpy as np

import lambdapack as lp


def descriptor(**fields) -> np.ndarray:
    """The descriptor tile for a source or destination (see the module docstring).

    >>> describe(descriptor(format="npy", path="/x.npy"))
    {'format': 'npy', 'path': '/x.npy'}
    """
    return np.frombuffer(json.dumps(fields, sort_keys=True).encode(), dtype=np.uint8).reshape(1, -1).copy()


def describe(tile: np.ndarray) -> dict:
    """The fields of a descriptor tile."""
    return json.loads(np.asarray(tile, dtype=np.uint8).tobytes().decode())


def npy_header(path: str) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    """``(shape, fortran_order, dtype, data offset)`` of a .npy file, from its header only.

    >>> import tempfile, os
    >>> p = os.path.join(tempfile.mkdtemp(), "a.npy"); np.save(p, np.zeros((3, 2), np.float32))
    >>> npy_header(p)[:3]
    ((3, 2), False, dtype('float32'))
    """
    with open(path, "rb") as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
        else:
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
        return tuple(shape), bool(fortran), np.dtype(dtype), f.tell()


def write_npy_header(path: str, shape, dtype) -> None:
    """Make ``path`` a .npy file of ``shape`` and ``dtype`` (C order) whose data is all zeros: the header,
    then a file extended to its full size without writing the data (a sparse file where the file system
    allows)."""
    dtype = np.dtype(dtype)
    with open(path, "wb") as f:
        np.lib.format.write_array_header_2_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                 "fortran_order": False, "shape": tuple(int(s) for s in shape)})
        f.truncate(f.tell() + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize)


def _npy_band(path: str, r0: int, c0: int, rows: int, cols: int, mode: str):
    """A memory map of the band of ``path`` that holds the block (r0, c0, rows, cols), and the block in it."""
    shape, fortran, dtype, offset = npy_header(path)
    if len(shape) != 2:
        raise ValueError(f"{path} holds an array of shape {shape}, not a matrix")
    n_rows, n_cols = shape
    if not fortran:  # rows r0 .. r0 + rows are contiguous
        band = np.memmap(path, dtype, mode, offset=offset + r0 * n_cols * dtype.itemsize, shape=(rows, n_cols))
        return band, (slice(None), slice(c0, c0 + cols))
    band = np.memmap(path, dtype, mode, offset=offset + c0 * n_rows * dtype.itemsize, shape=(n_rows, cols),
                     order="F")
    return band, (slice(r0, r0 + rows), slice(None))


def _open_zarr(d: dict, mode: str):
    """The zarr array of a descriptor: a directory, or an fsspec URL with its ``storage_options``."""
    import zarr

    return zarr.open_array(d["path"], mode=mode, storage_options=d.get("storage_options"))


def _dtype(single: int) -> np.dtype:
    return np.dtype(np.float32) if single else np.dtype(np.float64)


@lp.kernel(flops=lambda src, r0, c0, rows, cols, single: 0)
def read_block(src: np.ndarray, r0: int, c0: int, rows: int, cols: int, single: int) -> np.ndarray:
    """The ``rows`` × ``cols`` block at (r0, c0) of the array the descriptor ``src`` names, as a tile of
    float32 (``single``) or float64."""
    d = describe(src)
    fmt, path = d["format"], d["path"]
    if fmt == "npy":
        band, block = _npy_band(path, r0, c0, rows, cols, "r")
        try:
            out = np.array(band[block], dtype=_dtype(single), copy=True)
        finally:
            del band
    elif fmt == "zarr":
        out = np.asarray(_open_zarr(d, "r")[r0:r0 + rows, c0:c0 + cols])
    elif fmt == "hdf5":
        import h5py

        with h5py.File(path, "r", locking=False) as f:
            out = f[d["dataset"]][r0:r0 + rows, c0:c0 + cols]
    else:
        raise ValueError(f"unknown source format {fmt!r}")
    out = np.ascontiguousarray(out, dtype=_dtype(single))
    if out.shape != (rows, cols):
        raise ValueError(f"{path}: the block at ({r0}, {c0}) is {out.shape}, not ({rows}, {cols})")
    return out


@lp.kernel(flops=lambda dst, a, r0, c0: 0)
def write_block(dst: np.ndarray, a: np.ndarray, r0: int, c0: int) -> np.ndarray:
    """Write tile ``a`` at (r0, c0) into the array the descriptor ``dst`` names (made before the job);
    returns a 1×1 marker tile (a job's outputs are tiles)."""
    d = describe(dst)
    fmt, path = d["format"], d["path"]
    rows, cols = a.shape
    if fmt == "npy":
        band, block = _npy_band(path, r0, c0, rows, cols, "r+")
        try:
            band[block] = a
            band.flush()
        finally:
            del band
    elif fmt == "zarr":
        _open_zarr(d, "r+")[r0:r0 + rows, c0:c0 + cols] = a
    elif fmt == "hdf5":
        import h5py

        fd = os.open(path, os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # HDF5 has no concurrent writers: one executor at a time
            with h5py.File(path, "r+", locking=False) as f:
                f[d["dataset"]][r0:r0 + rows, c0:c0 + cols] = a
        finally:
            os.close(fd)
    else:
        raise ValueError(f"unknown destination format {fmt!r}")
    return np.zeros((1, 1))
