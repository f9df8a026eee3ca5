"""Matrices in and out of .npy, zarr and HDF5, read and written by the executors tile by tile."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import pytest
import zarr

import numpywren2 as npw
from numpywren2.core.kernels import spd_tile


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


def data(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


class NoTileTraffic:
    """Fails a test if the client reads or writes a tile (the executors are other processes)."""

    def __init__(self, store, monkeypatch):
        self.keys = []
        for op in ("get", "put"):
            real = getattr(store, op)

            def counted(key, *a, _real=real, **k):
                if not key.endswith("/meta") and not key.startswith("t-"):  # meta, and the descriptor tile
                    self.keys.append(key)
                return _real(key, *a, **k)

            monkeypatch.setattr(store, op, counted)


@pytest.mark.parametrize("order, dtype, block", [("C", np.float64, (4, 3)), ("F", np.float32, (3, 4)),
                                                 ("C", np.int32, 5), ("F", np.float64, (10, 1))])
def test_npy_round_trip_without_tiles_through_the_client(rt, tmp_path, monkeypatch, order, dtype, block):
    X = (data((10, 7), 1) * 10).astype(dtype)
    X = np.asfortranarray(X) if order == "F" else X
    np.save(tmp_path / "x.npy", X)
    guard = NoTileTraffic(rt.store, monkeypatch)
    A = npw.BigMatrix.from_npy(tmp_path / "x.npy", block)
    A.to_npy(tmp_path / "y.npy")
    assert guard.keys == []
    assert A.dtype == (dtype if dtype != np.int32 else np.float64)
    assert np.array_equal(A.numpy(), X.astype(A.dtype))
    Y = np.load(tmp_path / "y.npy")
    assert Y.dtype == A.dtype and Y.flags.c_contiguous and np.array_equal(Y, X.astype(A.dtype))


def test_npy_of_a_triangular_factor_has_its_zeros(rt, tmp_path):
    g = data((9, 9), 2)
    S = g @ g.T + 9 * np.eye(9)
    L = npw.cholesky(S, block_size=4)  # no tiles above the diagonal
    L.to_npy(tmp_path / "l.npy")
    assert np.allclose(np.load(tmp_path / "l.npy"), np.linalg.cholesky(S))


def test_zarr_round_trip_tiles_are_chunks(rt, tmp_path, monkeypatch):
    X = data((10, 7), 3, np.float32)
    z = zarr.create_array(store=str(tmp_path / "x.zarr"), shape=X.shape, chunks=(4, 3), dtype=X.dtype)
    z[:] = X
    guard = NoTileTraffic(rt.store, monkeypatch)
    A = npw.BigMatrix.from_zarr(tmp_path / "x.zarr")
    assert A.block_size == (4, 3) and A.dtype == np.float32  # tiled as the chunks
    A.to_zarr(tmp_path / "y.zarr")
    A.to_zarr(tmp_path / "w.zarr", chunks=(5, 5))  # retiled by a job first
    assert guard.keys == []
    assert np.array_equal(A.numpy(), X)
    y, w = zarr.open_array(str(tmp_path / "y.zarr"), mode="r"), zarr.open_array(str(tmp_path / "w.zarr"), mode="r")
    assert y.chunks == (4, 3) and w.chunks == (5, 5)
    assert np.array_equal(y[:], X) and np.array_equal(w[:], X)
    B = npw.BigMatrix.from_zarr(tmp_path / "x.zarr", block_size=(3, 2), dtype=np.float64)
    assert B.block_size == (3, 2) and np.array_equal(B.numpy(), X.astype(np.float64))


def test_hdf5_round_trip(rt, tmp_path):
    X = data((10, 7), 4)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.create_dataset("group/X", data=X, chunks=(5, 7))
    A = npw.BigMatrix.from_hdf5(tmp_path / "x.h5", "group/X")
    assert A.block_size == (5, 7) and np.array_equal(A.numpy(), X)
    B = A.rechunk(3)
    B.to_hdf5(tmp_path / "x.h5", "Y")  # 12 tiles written by 2 executors, one at a time
    with h5py.File(tmp_path / "x.h5", "r") as f:
        assert np.array_equal(f["Y"][:], X) and np.array_equal(f["group/X"][:], X)


CLIENT = textwrap.dedent('''
    import re, resource, sys
    import numpy as np
    import numpywren2 as npw

    src, dst, nbytes = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def vm_size():
        return int(re.search(r"VmSize:\\s+(\\d+) kB", open("/proc/self/status").read())[1]) * 1024

    with npw.runtime(executors=2) as rt:
        npw.zeros((2, 2), 2)  # starts the executors' zygote first: the executors are not limited
        limit = vm_size() + 128 * 2**20
        assert limit < nbytes, (limit, nbytes)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        try:
            np.ones(nbytes // 8)
        except MemoryError:
            pass
        else:
            raise AssertionError("the limit does not hold the matrix back")
        A = npw.BigMatrix.from_npy(src, 1024)
        L = npw.cholesky(A)
        L.to_npy(dst)
        print("limit", limit, "matrix", nbytes)
''')


def test_npy_cholesky_npy_on_a_matrix_larger_than_the_clients_memory_limit(tmp_path):
    n, b = 8192, 1024
    nbytes = n * n * 8
    A = np.lib.format.open_memmap(tmp_path / "a.npy", mode="w+", dtype=np.float64, shape=(n, n))
    g = n // b
    for i in range(g):
        for j in range(g):
            A[i * b:(i + 1) * b, j * b:(j + 1) * b] = spd_tile(i, j, b, b, n, 7)  # symmetric, SPD
    A.flush()
    env = {**os.environ, "MALLOC_ARENA_MAX": "2", "OPENBLAS_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CLIENT, str(tmp_path / "a.npy"), str(tmp_path / "l.npy"),
                          str(nbytes)], capture_output=True, text=True, env=env, timeout=280)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "limit" in out.stdout
    L = np.load(tmp_path / "l.npy", mmap_mode="r")
    assert L.shape == (n, n) and L.dtype == np.float64
    # tile by tile: L is lower triangular with a positive diagonal, and L (Lᵀ x) = A x for random x
    x = np.random.default_rng(0).standard_normal(n)
    z = np.zeros(n)
    for i in range(g):
        for j in range(g):
            t = np.asarray(L[i * b:(i + 1) * b, j * b:(j + 1) * b])
            if j > i:
                assert not t.any(), f"tile ({i}, {j}) above the diagonal is not zero"
            else:
                z[j * b:(j + 1) * b] += t.T @ x[i * b:(i + 1) * b]
            if i == j:
                assert np.allclose(t, np.tril(t)) and (np.diagonal(t) > 0).all()
    for i in range(g):
        rows = slice(i * b, (i + 1) * b)
        lz = sum(np.asarray(L[rows, j * b:(j + 1) * b]) @ z[j * b:(j + 1) * b] for j in range(i + 1))
        ax = sum(np.asarray(A[rows, j * b:(j + 1) * b]) @ x[j * b:(j + 1) * b] for j in range(g))
        assert np.allclose(lz, ax, rtol=1e-9, atol=1e-8 * n), f"block row {i}"


def test_zarr_on_s3_through_fsspec_urls(moto_server, redis_server):
    """``from_zarr("s3://...")`` / ``to_zarr`` against moto_server through s3fs: the executors read and write the
    chunks; tiles are chunks, so each chunk is one object read or written whole."""
    import s3fs

    bucket = f"zarr-{os.urandom(4).hex()}"
    fs = s3fs.S3FileSystem(endpoint_url=moto_server.endpoint)
    fs.mkdir(bucket)
    X = data((10, 7), 5)
    src = zarr.create_array(store=f"s3://{bucket}/x.zarr", shape=X.shape, chunks=(4, 3), dtype=X.dtype,
                            storage_options={"endpoint_url": moto_server.endpoint})
    src[:] = X
    store, redis = f"s3://{bucket}/tiles?endpoint_url={moto_server.endpoint}", f"{redis_server.url}?prefix={bucket}:"
    # the endpoint comes from the runtime's S3 store
    with npw.runtime(store=store, queue=redis, state=redis, executors=2):
        A = npw.BigMatrix.from_zarr(f"s3://{bucket}/x.zarr")
        assert A.block_size == (4, 3) and np.array_equal(A.numpy(), X)
        A.to_zarr(f"s3://{bucket}/y.zarr")
    fs.invalidate_cache()
    chunk_objects = [k for k in fs.find(f"{bucket}/y.zarr") if not k.endswith("zarr.json")]
    assert len(chunk_objects) == 3 * 3, "one object per tile"
    y = zarr.open_array(f"s3://{bucket}/y.zarr", mode="r", storage_options={"endpoint_url": moto_server.endpoint})
    assert y.chunks == (4, 3) and np.array_equal(y[:], X)
    with pytest.raises(ValueError, match="credentials in their environment"):
        npw.BigMatrix.from_zarr(f"s3://{bucket}/y.zarr", storage_options={"secret": "s", "key": "k"})


def test_where_a_zarr_url_takes_its_endpoint_from(rt, monkeypatch):
    """The endpoint of an ``s3://`` zarr URL: storage_options, the URL's query, the runtime's S3 store (above),
    ``$AWS_ENDPOINT_URL``; a local path has no storage options."""
    from numpywren2.client.io import zarr_location

    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:7")
    assert zarr_location("s3://b/a.zarr") == ("s3://b/a.zarr", {"endpoint_url": "http://127.0.0.1:7"})
    assert zarr_location("s3://b/a.zarr?endpoint_url=http://h:1")[1] == {"endpoint_url": "http://h:1"}
    assert zarr_location("s3://b/a.zarr?endpoint_url=http://h:1", {"endpoint_url": "http://o:2"})[1] == {
        "endpoint_url": "http://o:2"}
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    assert zarr_location("s3://b/a.zarr") == ("s3://b/a.zarr", {})  # AWS itself
    assert zarr_location("rel/a.zarr") == (os.path.abspath("rel/a.zarr"), None)
    with pytest.raises(ValueError, match="for URLs"):
        zarr_location("rel/a.zarr", {"endpoint_url": "http://h:1"})
