"""dask interop: chunks computed by the executors into tiles, tiles read lazily as dask chunks."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

import numpywren2 as npw


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


def test_from_dask_computes_each_chunk_in_the_executors(rt, monkeypatch):
    x = da.random.default_rng(0).standard_normal((10, 7), chunks=(3, 4)) * 2 + 1
    want = x.compute()

    def no_gather(*a, **k):
        raise AssertionError("the client computed the dask array")

    with monkeypatch.context() as m:  # in the client only: the executors are other processes
        m.setattr(da.Array, "compute", no_gather)
        m.setattr(da.Array, "__array__", no_gather)
        m.setattr(dask, "compute", no_gather)
        A = npw.from_dask(x, (4, 3))  # rechunked to the tiles in the graph
        B = npw.from_dask(x.astype(np.float32))  # tiled as its chunks
    assert A.block_size == (4, 3) and A.dtype == np.float64
    assert np.allclose(A.numpy(), want)
    assert B.block_size == (3, 4) and B.dtype == np.float32 and np.allclose(B.numpy(), want, rtol=1e-6)
    with pytest.raises(TypeError, match="2-D dask array"):
        npw.from_dask(np.ones((2, 2)))


def test_a_dask_pipeline_hands_a_matrix_to_cholesky_and_takes_the_factor_back(rt):
    g = da.random.default_rng(1).standard_normal((12, 12), chunks=4)
    s = g @ g.T + 12 * da.eye(12, chunks=4)
    L = npw.cholesky(npw.from_dask(s))
    d = L.to_dask()
    assert d.chunks == ((4, 4, 4), (4, 4, 4)) and d.dtype == np.float64
    S = s.compute()
    assert np.allclose(d.compute(), np.linalg.cholesky(S))  # the tiles above the diagonal read as zeros
    assert np.allclose((d @ d.T).compute(), S)


def test_to_dask_reads_tiles_lazily(rt):
    X = np.arange(70.0).reshape(10, 7)
    A = npw.BigMatrix.from_numpy(X, (4, 3))
    d = A.to_dask()
    assert d.chunks == ((4, 4, 2), (3, 3, 1))
    A.put_tile(0, 0, np.full((4, 3), -1.0))  # after to_dask: read when computed
    want = X.copy()
    want[:4, :3] = -1
    assert np.array_equal(d.compute(), want)
    V = A[4:10, 3:7]  # a view: the parent's tiles
    assert np.array_equal(V.to_dask().compute(), want[4:10, 3:7])
