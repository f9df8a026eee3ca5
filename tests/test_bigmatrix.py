"""BigMatrix: tiles in a store, any shape, float32/float64, square or rectangular tiles."""

from __future__ import annotations

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
