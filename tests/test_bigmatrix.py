"""BigMatrix: tiles in a store, any shape, float32/float64, square or rectangular tiles."""

from __future__ import annotations

import os

import numpy as np
import pytest

import numpywren2 as npw
from numpywren2.core.backends import LocalFileStore


@pytest.fixture
def store(tmp_path):
    return LocalFileStore(tmp_path)


@pytest.mark.parametrize("shape, block", [((10, 7), 3), ((10, 7), (4, 5)), ((1, 1), 8), ((64, 64), 64),
                                          ((0, 5), 2), ((33, 1), (10, 1))])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_round_trip(store, shape, block, dtype):
    X = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    A = npw.BigMatrix.from_numpy(X, block, store=store)
    assert A.shape == shape and A.dtype == dtype
    assert A.grid == (-(-shape[0] // A.block_size[0]), -(-shape[1] // A.block_size[1]))
    assert np.array_equal(A.numpy(), X) and np.array_equal(np.asarray(A), X)
    B = npw.BigMatrix.open(store, A.name)
    assert (B.shape, B.block_size, B.dtype) == (A.shape, A.block_size, A.dtype)
    assert np.array_equal(B.numpy(), X)


def test_tiles_edges_and_zeros(store):
    A = npw.BigMatrix.empty((10, 7), (4, 3), store=store, name="M")
    assert A.grid == (3, 3) and A.tile_shape(2, 2) == (2, 1)
    assert np.array_equal(A.get_tile(2, 2), np.zeros((2, 1)))  # never written: zeros
    A.put_tile(2, 2, np.ones((2, 1)))
    assert A.get_tile(2, 2).sum() == 2 and A.numpy().sum() == 2
    with pytest.raises(ValueError, match=r"has shape \(4, 3\), not \(3, 3\)"):
        A.put_tile(0, 0, np.ones((3, 3)))
    with pytest.raises(IndexError, match="outside the 3x3 grid"):
        A.get_tile(3, 0)
    A.delete()
    with pytest.raises(KeyError, match="no matrix named 'M'"):
        npw.BigMatrix.open(store, "M")


def test_bad_inputs(store):
    with pytest.raises(ValueError, match="2-D"):
        npw.BigMatrix.from_numpy(np.ones(3), 2, store=store)
    with pytest.raises(TypeError, match="float32 and float64"):
        npw.BigMatrix.empty((2, 2), 1, np.int32, store=store)
    with pytest.raises(ValueError, match="block_size must be a positive int"):
        npw.BigMatrix.empty((2, 2), 0, store=store)
    ints = npw.BigMatrix.from_numpy(np.arange(6).reshape(2, 3), 2, store=store)
    assert ints.dtype == np.float64 and np.array_equal(ints.numpy(), np.arange(6).reshape(2, 3))


# --------------------------------------------------------------------------- packs: a matrix in one file


def test_a_matrix_is_one_pack_file_whose_slots_are_its_tiles(store):
    X = np.random.default_rng(1).standard_normal((700, 500))
    A = npw.BigMatrix.from_numpy(X, 256, store=store)  # 3x2 tiles of 512 KiB at most: memory-mapped slots
    root = store.root / A.name
    assert sorted(p.name for p in root.iterdir()) == [".pack", "meta.tile"], "no file per tile"
    assert store.list(f"{A.name}/") == sorted([f"{A.name}/meta"] + [A.tile_key(i, j) for i in range(3)
                                                                        for j in range(2)])
    t = store.get(A.tile_key(2, 1))
    assert not t.flags.writeable and np.array_equal(t, X[512:, 256:])
    assert np.array_equal(A.numpy(), X)
    path, offset, size = store.tile_location(A.tile_key(1, 0))
    assert path == str(root / ".pack") and offset % 4096 == 0 and size == 64 + 256 * 256 * 8


def test_pack_slots_are_written_once_and_read_as_missing_until_then(store):
    L = npw.BigMatrix.empty((8, 8), 4, store=store)
    key = L.tile_key(1, 0)
    assert not store.exists(key) and store.list(f"{L.name}/") == [f"{L.name}/meta"]
    with pytest.raises(npw.core.backends.TileNotFoundError):
        store.get(key)
    assert np.array_equal(L.get_tile(1, 0), np.zeros((4, 4)))  # never written: zeros, as for tile files
    tile = np.arange(16.0).reshape(4, 4)
    assert store.put(key, tile) > 0 and store.exists(key)
    assert store.put(key, tile.copy()) == 0, "a re-run's identical tile writes nothing"
    assert store.put(key, tile.T) > 0 and np.array_equal(store.get(key), tile.T), "another tile replaces it"
    with pytest.raises(ValueError, match="does not fit its slot"):
        store.put(key, np.ones((4, 3)))
    assert store.delete(key) and not store.exists(key) and not store.delete(key)
    L.delete()
    assert not (store.root / L.name).exists()


def test_a_corrupt_or_cut_short_pack_slot_is_a_corrupt_tile(store):
    from numpywren2.core.backends.base import CorruptTileError

    A = npw.BigMatrix.from_numpy(np.ones((8, 8)), 4, store=store)
    path, offset, size = store.tile_location(A.tile_key(0, 1))
    with open(path, "r+b") as f:
        f.seek(offset + 100)
        f.write(b"\x7f")
    with pytest.raises(CorruptTileError, match="checksum mismatch"):
        store.get(A.tile_key(0, 1))
    path, offset, size = store.tile_location(A.tile_key(1, 1))
    os.truncate(path, offset + size - 40)
    with pytest.raises(CorruptTileError, match="truncated or over-long"):
        store.get(A.tile_key(1, 1))
    assert np.array_equal(store.get(A.tile_key(1, 0)), np.ones((4, 4)))


# --------------------------------------------------------------------------- small numpy Cholesky in-process


def spd(n: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_small_numpy_cholesky_runs_lapack_in_process(monkeypatch, dtype):
    from numpywren2.client import call, linalg

    def no_job(*a, **k):
        raise AssertionError("a job was submitted")

    X = spd(300).astype(dtype)
    X[np.triu_indices(300, 1)] = 7.0  # only the lower triangle is read
    with npw.runtime(executors=1):
        monkeypatch.setattr(call, "submit", no_job)
        L = npw.cholesky(X)
        ref = np.linalg.cholesky(np.tril(X) + np.tril(X, -1).T)
        assert isinstance(L, npw.BigMatrix) and L.dtype == dtype and L.block_size == (75, 75)
        assert np.allclose(L.numpy(), ref, atol=1e-4 if dtype == np.float32 else 1e-10)
        assert np.allclose(npw.cholesky(X, lower=False).numpy(), ref.T, atol=1e-4 if dtype == np.float32 else 1e-10)
        bad = spd(300)
        bad[100, 100] = -1.0
        with pytest.raises(np.linalg.LinAlgError, match="not positive definite: its leading minor of order 101"):
            npw.cholesky(bad)
        assert linalg.IN_PROCESS_MAX_N > 300
        monkeypatch.undo()
        # a BigMatrix input, or a tiling asked for, runs as a job
        submitted = []
        real = call.submit
        monkeypatch.setattr(call, "submit", lambda *a, **k: submitted.append(1) or real(*a, **k))
        X = spd(64)
        assert np.allclose(npw.cholesky(npw.BigMatrix.from_numpy(X, 32)).numpy(), np.linalg.cholesky(X))
        assert np.allclose(npw.cholesky(X, block_size=32).numpy(), np.linalg.cholesky(X))
        assert len(submitted) == 2
