"""BigMatrix as an array: operations run as jobs, views, retiling, constructors, numpy protocols."""

from __future__ import annotations

import numpy as np
import pytest

import numpywren2 as npw
from numpywren2.client.array_ops import MatrixView


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


def data(shape, seed=0, dtype=np.float64):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def tol(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


class NoTileReads:
    """Fails a test if the client reads a tile of the store (executors, other processes, are not counted)."""

    def __init__(self, store, monkeypatch):
        self.reads = []
        get = store.get

        def counted(key, *a, **k):
            if not key.endswith("/meta"):
                self.reads.append(key)
            return get(key, *a, **k)

        monkeypatch.setattr(store, "get", counted)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_elementwise_operations_match_numpy_on_ragged_mismatched_tilings(rt, dtype, monkeypatch):
    X, Y = data((10, 7), 0, dtype), data((10, 7), 1, dtype)
    A = npw.BigMatrix.from_numpy(X, (4, 3))
    B = npw.BigMatrix.from_numpy(Y, (3, 5))  # tiled otherwise: retiled by a job
    guard = NoTileReads(rt.store, monkeypatch)
    results = {"A + B": (A + B, X + Y), "A - B": (A - B, X - Y), "2.5 * A": (2.5 * A, 2.5 * X),
               "A * -1.5": (A * -1.5, X * -1.5), "-A": (-A, -X), "A / 4": (A / 4, X / 4), "A.T": (A.T, X.T)}
    assert guard.reads == []  # every operation ran in the executors
    for what, (got, want) in results.items():
        assert got.dtype == dtype and got.shape == want.shape, what
        np.testing.assert_allclose(got.numpy(), want, err_msg=what, **tol(dtype))
    assert results["A.T"][0].block_size == (3, 4)
    assert results["A + B"][0].block_size == (4, 3)
    other = np.float64 if dtype == np.float32 else np.float32
    C = A.astype(other)
    assert C.dtype == other and np.array_equal(C.numpy(), X.astype(other))
    mixed = A + B.astype(other)
    assert mixed.dtype == np.float64  # numpy's result_type
    np.testing.assert_allclose(mixed.numpy(), X.astype(np.float64) + Y.astype(other).astype(np.float64), rtol=1e-6)


def test_numpy_operands_and_shape_errors(rt):
    X, Y = data((6, 5), 2), data((6, 5), 3)
    A = npw.BigMatrix.from_numpy(X, 4)
    np.testing.assert_allclose((A + Y).numpy(), X + Y)
    np.testing.assert_allclose((A - Y).numpy(), X - Y)
    with pytest.raises(ValueError, match=r"shapes \(6, 5\) and \(5, 6\) differ"):
        A + A.T
    with pytest.raises(TypeError):
        A + 1.0  # no broadcasting of scalars
    with pytest.raises(TypeError):
        A * A  # elementwise products are not among the operations


@pytest.mark.parametrize("old, new", [((4, 3), (3, 5)), (4, (10, 7)), ((2, 7), 3), ((10, 1), (1, 10))])
def test_rechunk_is_exact(rt, old, new):
    X = data((10, 7), 4)
    A = npw.BigMatrix.from_numpy(X, old)
    R = A.rechunk(new)
    assert R.block_size == npw.BigMatrix.empty((1, 1), new).block_size
    assert np.array_equal(R.numpy(), X)
    assert A.rechunk(old) is A


def test_aligned_slices_are_views_that_every_program_reads(rt, monkeypatch):
    g = data((12, 12), 5)
    S = g @ g.T + 12 * np.eye(12)
    A = npw.BigMatrix.from_numpy(S, 3)
    keys = set(rt.store.list(f"{A.name}/"))
    guard = NoTileReads(rt.store, monkeypatch)
    V = A[3:12, 3:12]
    W = A[0:6, 9:12]
    assert isinstance(V, MatrixView) and isinstance(W, MatrixView) and guard.reads == []
    assert set(rt.store.list(f"{A.name}/")) == keys  # no tile copied
    assert V.shape == (9, 9) and V.tile_offset == (1, 1) and W.tile_offset == (0, 3)
    assert np.array_equal(V.numpy(), S[3:12, 3:12]) and np.array_equal(W.numpy(), S[0:6, 9:12])
    L = npw.cholesky(V)  # a program of the library, addressing the view through the job's tile offsets
    np.testing.assert_allclose(L.numpy(), np.linalg.cholesky(S[3:12, 3:12]), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose((W.T @ A[0:6, 3:12]).numpy(), S[0:6, 9:12].T @ S[0:6, 3:12], rtol=1e-12)
    VV = V[3:9, 0:3]  # a view of a view is a view of A
    assert VV.tile_offset == (2, 1) and VV.parent is A
    assert np.array_equal(VV.numpy(), S[6:12, 3:6])
    assert A[0:12, 0:12] is A
    with pytest.raises(TypeError, match="holds no tiles of its own"):
        V.delete()
    copy = V.copy()
    assert not isinstance(copy, MatrixView) and np.array_equal(copy.numpy(), S[3:12, 3:12])


@pytest.mark.parametrize("rows, cols", [(slice(1, 9), slice(2, 6)), (slice(0, 5), slice(None)),
                                        (slice(-3, None), slice(4, 5)), (slice(7, 8), slice(0, 7))])
def test_unaligned_slices_are_retiled_copies(rt, rows, cols):
    X = data((10, 7), 6, np.float32)
    A = npw.BigMatrix.from_numpy(X, (4, 3))
    B = A[rows, cols]
    assert not isinstance(B, MatrixView) and B.block_size == (4, 3) and B.dtype == np.float32
    assert np.array_equal(B.numpy(), X[rows, cols])
    with pytest.raises(TypeError, match="indexed with slices"):
        A[1, 2]
    with pytest.raises(ValueError, match="step"):
        A[::2, :]


def test_matmul_retiles_a_mismatched_input_and_reads_triangular_factors(rt):
    X, Y = data((10, 7), 7), data((7, 5), 8)
    A = npw.BigMatrix.from_numpy(X, (4, 3))
    B = npw.BigMatrix.from_numpy(Y, (2, 2))  # its row tiles are not A's column tiles
    C = A @ B
    assert C.block_size == (4, 2)
    np.testing.assert_allclose(C.numpy(), X @ Y, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(npw.matmul(A, B).numpy(), X @ Y, rtol=1e-12, atol=1e-12)
    g = data((9, 9), 9)
    S = g @ g.T + 9 * np.eye(9)
    L = npw.cholesky(S, block_size=4)  # no tiles above the diagonal: read as zeros
    np.testing.assert_allclose((L @ L.T).numpy(), S, rtol=1e-10, atol=1e-10)
    U = npw.cholesky(S, lower=False, block_size=4)
    np.testing.assert_allclose((U.T @ U - S).numpy(), 0, atol=1e-10)


def test_a_matrix_missing_arbitrary_tiles_is_an_error(rt):
    A = npw.BigMatrix.empty((6, 6), 3)
    A.put_tile(0, 1, np.ones((3, 3)))
    A.put_tile(1, 0, np.ones((3, 3)))
    with pytest.raises(ValueError, match="lacks 2 of its 4 tiles"):
        A.transpose()
    Z = npw.BigMatrix.empty((5, 4), 2)  # no tiles at all: zeros
    assert np.array_equal((Z + np.ones((5, 4))).numpy(), np.ones((5, 4)))


def test_constructors(rt):
    assert np.array_equal(npw.eye(7, block_size=3).numpy(), np.eye(7))
    E = npw.eye(5, 8, block_size=3, dtype=np.float32)
    assert E.dtype == np.float32 and np.array_equal(E.numpy(), np.eye(5, 8))
    Z = npw.zeros((5, 3), (2, 3), dtype=np.float32)
    assert Z.block_size == (2, 3) and np.array_equal(Z.numpy(), np.zeros((5, 3))) and len(set(
        rt.store.list(f"{Z.name}/"))) == 4  # meta and every tile: an input for any job
    v = np.arange(1.0, 8.0)
    D = npw.diag(v, block_size=3)
    assert np.array_equal(D.numpy(), np.diag(v))
    X = data((7, 5), 10)
    assert np.array_equal(npw.diag(npw.BigMatrix.from_numpy(X, (3, 2))), np.diag(X))
    assert np.array_equal(npw.diag(npw.BigMatrix.from_numpy(X.T, 2)), np.diag(X.T))


def test_numpy_protocols(rt):
    X = data((10, 7), 11, np.float32)
    A = npw.BigMatrix.from_numpy(X, 4)
    assert (A.shape, A.ndim, A.dtype, A.size, len(A), A.nbytes) == ((10, 7), 2, np.float32, 70, 10, 280)
    assert np.array_equal(np.asarray(A), X) and np.asarray(A, dtype=np.float64).dtype == np.float64
    assert bool(npw.BigMatrix.empty((0, 3), 2))


def test_named_matrices_open_in_another_runtime_and_are_listed(tmp_path):
    root = tmp_path / "tiles"
    X = data((6, 5), 12, np.float32)
    urls = {"store": f"file://{root}", "queue": f"sqlite://{tmp_path}/q.db", "state": f"sqlite://{tmp_path}/q.db"}
    with npw.runtime(**urls, executors=1):
        A = npw.BigMatrix.from_numpy(X, (4, 2), name="x")
        B = (2 * A).persist()  # an anonymous result, kept
        tmp = npw.zeros((3, 3), 2)  # anonymous: freed when its runtime closes
        assert {m.name for m in npw.ls()} == {"x", B.name, tmp.name}
        kept = B.name
    with npw.runtime(**urls, executors=0):  # another runtime on the same store
        listed = npw.ls()
        assert [m.name for m in listed] == sorted(["x", kept])
        x = next(m for m in listed if m.name == "x")
        assert x == npw.MatrixInfo("x", (6, 5), (4, 2), np.dtype(np.float32), 6 * 5 * 4)
        assert np.array_equal(npw.open("x").numpy(), X) and np.array_equal(npw.open(kept).numpy(), 2 * X)
    assert np.array_equal(npw.open("x", store=f"file://{root}").numpy(), X)  # by URL, outside any runtime
    with pytest.raises(KeyError, match="no matrix named 'y'"):
        npw.open("y", store=f"file://{root}")
