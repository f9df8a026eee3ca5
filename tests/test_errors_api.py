"""The API rules of every entry point: a right answer or a clear error, never a silent wrong answer.

- solve / inv default to a general matrix (scipy's assume_a=None) and are solved by the tiled LU;
  assume_a="pos" verifies symmetry in the executors and names the first asymmetric tile pair;
- complex and object inputs are a TypeError naming the argument and the dtype;
- check_finite=True everywhere (client-side for numpy inputs, executor-side for BigMatrix ones);
- one block_size rule (int or (rows, cols)), never silently ignored for a BigMatrix input;
- the copies uploaded from numpy inputs and every intermediate matrix are freed when a call returns
  or raises;
- the examples of decomposition.py run.

Backward errors are scaled by n·eps of the dtype; sizes are ragged (n not a multiple of the tile).
"""

from __future__ import annotations

import doctest
import textwrap

import numpy as np
import pytest
import scipy.linalg as sl
from gates import gated_double

import lambdapack as lp
import numpywren2 as npw
import numpywren2.client.decomposition
from lambdapack import interpret
from numpywren2.core import kernels, programs
from numpywren2.core.tiling import split


@pytest.fixture(scope="module")
def rt():
    with npw.runtime(executors=2) as r:
        yield r


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


def nonsymmetric(n: int, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """A well-conditioned non-symmetric matrix whose lower triangle is that of an SPD matrix: the Cholesky
    path of the original code factored it without complaint and returned a wrong answer."""
    g = np.random.default_rng(seed).standard_normal((n, n))
    return (g + 2 * n * np.eye(n)).astype(dtype)


def spd(n: int, seed: int = 0, dtype=np.float64) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return (g @ g.T / n + np.eye(n)).astype(dtype)


# ------------------------------------------------------------------ item 1: general solve and inverse

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, block", [(45, 16), (37, 10)])
def test_solve_of_a_nonsymmetric_matrix_is_right_by_default(rt, n, block, dtype):
    A = nonsymmetric(n, n, dtype)
    b = np.random.default_rng(1).standard_normal(n).astype(dtype)
    x = npw.solve(A, b, block_size=block)
    assert x.shape == (n,) and x.dtype == dtype
    A64, b64 = A.astype(float), b.astype(float)
    tol = 10 * n * eps(dtype)
    assert np.linalg.norm(A64 @ x - b64) / np.linalg.norm(b64) <= tol
    xs = sl.solve(A64, b64)
    assert np.linalg.norm(A64 @ xs - b64) / np.linalg.norm(b64) <= tol
    assert np.linalg.norm(x - xs) / np.linalg.norm(xs) <= tol * np.linalg.cond(A64)
    B = np.random.default_rng(2).standard_normal((n, 3)).astype(dtype)  # several right-hand sides, BigMatrix a
    X = npw.solve(npw.BigMatrix.from_numpy(A, block), B, assume_a="gen")
    assert isinstance(X, npw.BigMatrix) and X.shape == (n, 3)
    assert np.linalg.norm(A64 @ X.numpy() - B) / np.linalg.norm(B) <= tol


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_inv_of_a_nonsymmetric_matrix_is_right_by_default(rt, dtype):
    n = 41
    A = nonsymmetric(n, 3, dtype)
    X = npw.inv(A, block_size=16)
    assert isinstance(X, npw.BigMatrix) and X.dtype == dtype and X.block_size == (16, 16)
    Xn = X.numpy().astype(float)
    assert np.linalg.norm(A.astype(float) @ Xn - np.eye(n)) <= 10 * n * eps(dtype) * np.linalg.cond(A.astype(float))


def test_a_singular_general_matrix_is_an_error_naming_the_column(rt):
    A = nonsymmetric(30, 4)
    A[:, 9] = 0.0  # an exactly zero column: the LU's pivot of column 9 (in tile column 2 of 4-tiles) is zero
    with pytest.raises(np.linalg.LinAlgError, match=r"solve: a is singular.*pivot of column 9 is exactly zero"):
        npw.solve(A, np.ones(30), block_size=4)
    with pytest.raises(np.linalg.LinAlgError, match=r"inv: a is singular.*pivot of column 9 is exactly zero"):
        npw.inv(A, block_size=4)


def asymmetric_spd(n: int) -> np.ndarray:
    """SPD, but entries (30, 5) and (40, 20) differ from their mirror images, and its leading entry is
    negative: a Cholesky started at once would fail with "not positive definite" on its first task."""
    A = spd(n, 5)
    A[30, 5] += 1e-3   # tile (1, 0) of 16-tiles: the first asymmetric pair by tile column
    A[40, 20] += 1e-3  # tile (2, 1)
    A[0, 0] = -1.0
    return A


@pytest.mark.parametrize("call", ["solve", "inv", "solve_bigmatrix"])
def test_assume_pos_verifies_symmetry_and_names_the_first_tile_pair(rt, call):
    A = asymmetric_spd(45)
    match = (r"a is not symmetric, as assume_a='pos' requires.*tile \(1, 0\) is not the transpose of tile \(0, 1\)"
             r".*entry \[30, 5\]")
    for _ in range(2):  # the same pair every time, never "not positive definite"
        with pytest.raises(np.linalg.LinAlgError, match=match):
            if call == "solve":
                npw.solve(A, np.ones(45), assume_a="pos", block_size=16)
            elif call == "inv":
                npw.inv(A, assume_a="pos", block_size=16)
            else:
                npw.solve(npw.BigMatrix.from_numpy(A, 16), np.ones(45), assume_a="positive definite")


def test_assume_pos_accepts_rounding_level_asymmetry_and_is_right(rt):
    n = 50
    g = np.random.default_rng(6).standard_normal((n, n))
    A = g.T @ np.diag(np.linspace(1, 3, n)) @ g / n + np.eye(n)  # symmetric up to rounding only
    assert not np.array_equal(A, A.T)
    b = np.random.default_rng(7).standard_normal(n)
    x = npw.solve(A, b, assume_a="pos", block_size=16)
    assert np.linalg.norm(A @ x - b) / (np.linalg.norm(A) * np.linalg.norm(x)) <= 10 * n * eps(np.float64)
    X = npw.inv(A.astype(np.float32), assume_a="pos", block_size=16).numpy()
    assert np.linalg.norm(A @ X - np.eye(n)) <= 10 * n * eps(np.float32) * np.linalg.cond(A)


def test_symmetry_check_program_reports_the_first_pair_whatever_the_size():
    rng = np.random.default_rng(8)
    for n, b in [(1, 1), (7, 7), (10, 3), (23, 4), (20, 3)]:
        A = rng.standard_normal((n, n))
        A = A + A.T
        bound = programs.check_symmetric.bind(N=-(-n // b), BS=b)
        interpret(bound, {"A": split(A, b)})  # symmetric: no error
        if n == 1:
            continue
        B = A.copy()
        B[n - 1, n - 2] += 1.0  # a later tile column, run first by the serial interpreter
        B[n - 1, 0] += 1.0      # tile (last, 0): the first pair by tile column
        with pytest.raises(Exception, match=rf"entry \[{n - 1}, 0\]"):
            interpret(bound, {"A": split(B, b)})


def copies(P: int) -> int:
    """u(P) of docs/algorithms.md: levels of a binary tree over P leaves at which the node count is odd."""
    levels = (P - 1).bit_length()
    return sum(1 for level in range(levels) if -(-P // 2**level) % 2)


@pytest.mark.parametrize("N", [1, 2, 3, 4, 5, 7, 8, 13])
def test_task_counts_of_the_new_programs(N):
    sym = N * N + 2 * N + sum(copies(P) for P in range(1, N + 1)) + copies(N)
    assert programs.check_symmetric.bind(N=N, BS=4).num_tasks() == sym
    assert programs.eye.bind(N=4 * N - 1, B=4, SINGLE=0).num_tasks() == N * N
    assert programs.transpose_lower.bind(N=N).num_tasks() == N * (N + 1) // 2


def test_asymmetry_kernel_tolerance_nan_inf_and_float32():
    a = np.array([[4.0, 1.0], [1.0, 9.0]])
    d = kernels.diagonal_of(a)
    assert kernels.asymmetry(a, a, d, d, 0, 0, 2)[0, 0] == 0
    small = a.copy()
    small[1, 0] += 50 * eps(np.float64)  # within 100·eps·(|a| + sqrt(a_00 a_11)) = 100·eps·(1 + 6)
    assert kernels.asymmetry(small, small, d, d, 0, 0, 2)[0, 0] == 0
    big = a.copy()
    big[1, 0] += 1000 * eps(np.float64)
    report = kernels.asymmetry(big, big, d, d, 0, 0, 2)[0]
    assert report[:5].tolist() == [1, 0, 0, 1, 0]
    for bad in (np.nan, np.inf):  # not called asymmetric: check_finite reports them
        odd = a.copy()
        odd[1, 0] = bad
        assert kernels.asymmetry(odd, odd, d, d, 0, 0, 2)[0, 0] == 0
    a32 = (a + np.array([[0, 0], [20 * eps(np.float32), 0]])).astype(np.float32)  # float32's eps sets the scale
    assert kernels.asymmetry(a32, a32, d.astype(np.float32), d.astype(np.float32), 0, 0, 2)[0, 0] == 0


def test_assume_a_names(rt):
    with pytest.raises(ValueError, match="not a recognized matrix structure"):
        npw.solve(np.eye(3), np.ones(3), assume_a="spd")
    with pytest.raises(ValueError, match="not a recognized matrix structure"):
        npw.inv(np.eye(3), assume_a=3)
    U = np.triu(nonsymmetric(12, 9))
    x = npw.solve(U, np.ones(12), assume_a="upper triangular", block_size=5)
    assert np.allclose(U @ x, 1.0)


# ------------------------------------------------------------------ item 2: complex and object inputs

def entry_points(X):
    """One call of every entry point with X as its (first) matrix argument."""
    sq = X
    return {
        "cholesky": lambda: npw.cholesky(sq, block_size=2),
        "matmul A": lambda: npw.matmul(X, np.eye(4), block_size=2),
        "matmul B": lambda: npw.matmul(np.eye(4), X, block_size=2),
        "tsqr": lambda: npw.tsqr(X, block_size=(2, 4)),
        "qr": lambda: npw.qr(X, block_size=2),
        "solve a": lambda: npw.solve(sq, np.ones(4), block_size=2),
        "solve b": lambda: npw.solve(np.eye(4), X, block_size=2),
        "solve_triangular": lambda: npw.solve_triangular(sq, np.ones(4), block_size=2),
        "inv": lambda: npw.inv(sq, block_size=2),
        "lstsq": lambda: npw.lstsq(X, np.ones(4), block_size=2),
        "svd": lambda: npw.svd(X, block_size=2),
        "pca": lambda: npw.pca(X, 2, block_size=2),
        "from_numpy": lambda: npw.BigMatrix.from_numpy(X, 2),
    }


@pytest.mark.parametrize("name", list(entry_points(None)))
def test_complex_and_object_inputs_are_rejected_by_every_entry_point(rt, name):
    complex_x = np.eye(4) + 1j * np.eye(4)
    with pytest.raises(TypeError, match=r"(A|B|a|b|X) has dtype complex128; numpywren2 computes with real matrices"):
        entry_points(complex_x)[name]()
    with pytest.raises(TypeError, match=r"(A|B|a|b|X) has dtype complex64"):
        entry_points(complex_x.astype(np.complex64))[name]()
    objects = np.eye(4).astype(object)
    with pytest.raises(TypeError, match="has dtype object, not a real numeric dtype"):
        entry_points(objects)[name]()


def test_integers_and_bools_become_float64(rt):
    C = npw.matmul(np.arange(6).reshape(2, 3), np.ones((3, 2), dtype=bool), block_size=1)
    assert C.dtype == np.float64 and np.array_equal(C.numpy(), np.arange(6).reshape(2, 3) @ np.ones((3, 2)))
    x = npw.solve(np.array([[2, 1], [1, 3]]), np.array([1, 2]), block_size=1)
    assert x.dtype == np.float64 and np.allclose(x, np.linalg.solve([[2, 1], [1, 3]], [1, 2]))


# ------------------------------------------------------------------ item 3: check_finite

@pytest.mark.parametrize("name", list(entry_points(None)))
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_infs_and_nans_in_numpy_inputs_are_rejected_on_the_client(rt, name, bad, monkeypatch):
    X = spd(4)
    X[3, 1] = bad
    if name == "from_numpy":
        pytest.skip("BigMatrix.from_numpy stores any finite or non-finite data; the functions check it")
    monkeypatch.setattr(npw.BigMatrix, "from_numpy", None)  # raised before anything is uploaded
    with pytest.raises(ValueError, match=r"(A|B|a|b|X): array must not contain infs or NaNs"):
        entry_points(X)[name]()


def test_check_finite_false_skips_the_check(rt):
    A = np.eye(4)
    A[2, 2] = np.inf
    C = npw.matmul(A, np.eye(4), block_size=2, check_finite=False).numpy()
    assert np.isinf(C[2, 2])
    L = npw.cholesky(npw.BigMatrix.from_numpy(np.where(np.isinf(A), np.nan, A), 2), check_finite=False).numpy()
    assert np.isnan(L[2, 2])


def with_nan(n: int, block: int, row: int, col: int) -> npw.BigMatrix:
    X = spd(n, 11)
    X[row, col] = np.nan
    return npw.BigMatrix.from_numpy(X, block)


@pytest.mark.parametrize("name", ["cholesky", "matmul", "tsqr", "solve", "solve pos", "lstsq", "svd"])
def test_infs_and_nans_in_bigmatrix_inputs_are_found_by_the_executors(rt, name, monkeypatch):
    A = with_nan(20, 8, 13, 5)  # tile (1, 0)
    tall = with_nan(20, (8, 20), 13, 5)  # tile (1, 0) of one block column
    calls = {
        "cholesky": lambda: npw.cholesky(A),
        "matmul": lambda: npw.matmul(np.eye(20), A),
        "tsqr": lambda: npw.tsqr(tall),
        "solve": lambda: npw.solve(A, np.ones(20)),
        "solve pos": lambda: npw.solve(A, np.ones(20), assume_a="pos"),
        "lstsq": lambda: npw.lstsq(A, np.ones(20)),
        "svd": lambda: npw.svd(A, compute_uv=False),
    }
    monkeypatch.setattr(npw.BigMatrix, "get_tile", None)  # the client never reads the input's tiles
    monkeypatch.setattr(npw.BigMatrix, "numpy", None)
    what = name.split()[0]
    with pytest.raises(ValueError, match=rf"{what}: task .* failed: builtins.ValueError: (A|B|a) \(BigMatrix "
                                         r"m-\w+\): array must not contain infs or NaNs; its tile \(1, 0\) holds"):
        calls[name]()


# ------------------------------------------------------------------ item 13: block_size

BAD_BLOCK_SIZES = [
    (2.5, TypeError), (True, TypeError), ("4", TypeError), ((4, 2.0), TypeError), ((2.5, 2.5), TypeError),
    (0, ValueError), (-3, ValueError), ((4,), ValueError), ((4, 4, 4), ValueError), ((0, 4), ValueError),
]


@pytest.mark.parametrize("block_size, error", BAD_BLOCK_SIZES)
def test_a_bad_block_size_is_one_clear_error_everywhere(block_size, error, monkeypatch):
    monkeypatch.setattr(npw.BigMatrix, "from_numpy", None)  # rejected before anything is uploaded
    X = spd(6)
    b = np.ones(6)
    calls = [
        lambda: npw.cholesky(X, block_size=block_size), lambda: npw.matmul(X, X, block_size=block_size),
        lambda: npw.tsqr(X, block_size=block_size), lambda: npw.qr(X, block_size=block_size),
        lambda: npw.solve(X, b, block_size=block_size), lambda: npw.solve(X, b, assume_a="pos", block_size=block_size),
        lambda: npw.solve_triangular(X, b, block_size=block_size), lambda: npw.inv(X, block_size=block_size),
        lambda: npw.lstsq(X, b, block_size=block_size), lambda: npw.svd(X, block_size=block_size),
        lambda: npw.pca(X, 2, block_size=block_size), lambda: npw.random.normal((6, 6), block_size),
        lambda: npw.random.spd(6, block_size),
    ]
    for call in calls:
        with pytest.raises(error, match=r"block_size must be a positive int or a \(rows, cols\) pair of positive ints"):
            call()
    monkeypatch.undo()
    with pytest.raises(error, match=r"block_size must be a positive int or a \(rows, cols\) pair"):
        npw.BigMatrix.from_numpy(X, block_size)


def test_non_square_block_sizes_where_the_algorithm_allows_them(rt):
    rng = np.random.default_rng(12)
    X = rng.standard_normal((100, 20))
    Q, R = npw.tsqr(X, block_size=(30, 20))  # the example: it raised TypeError
    assert Q.block_size == (30, 20) and np.allclose(Q.numpy() @ R.numpy(), X)
    A, B = rng.standard_normal((23, 17)), rng.standard_normal((17, 9))
    C = npw.matmul(A, B, block_size=(10, 4))
    assert C.block_size == (10, 4) and np.allclose(C.numpy(), A @ B)
    U, s, Vt = npw.svd(X, k=3, p=17, block_size=(30, 7))  # k + p = 20 columns: exact
    assert U.block_size == (30, 3) and Vt.block_size == (3, 7)
    assert np.allclose(s, np.linalg.svd(X, compute_uv=False)[:3], rtol=1e-6)


@pytest.mark.parametrize("call, reason", [
    (lambda X: npw.cholesky(X, block_size=(4, 2)), "cholesky needs square tiles .the factorization pairs"),
    (lambda X: npw.qr(X, block_size=(4, 2)), "qr needs square tiles .the tiled QR keeps triangular"),
    (lambda X: npw.solve(X, np.ones(8), block_size=(4, 2)), "solve needs square tiles"),
    (lambda X: npw.inv(X, block_size=(2, 4)), "inv needs square tiles"),
    (lambda X: npw.solve_triangular(X, np.ones(8), block_size=(4, 2)), "solve_triangular needs square tiles .the "
                                                                        "substitution"),
    (lambda X: npw.lstsq(X, np.ones(8), block_size=(4, 2)), "lstsq needs square tiles"),
    (lambda X: npw.svd(X, block_size=(4, 2)), "svd needs square tiles .the band reduction"),
    (lambda X: npw.tsqr(X, block_size=(4, 2)), r"tsqr factors a single block column: block_size=\(4, 2\).*4 tile "
                                               r"columns; give tiles of at least 8 columns, e.g. block_size=\(4, 8\)"),
    (lambda X: npw.tsqr(X, block_size=4), r"tsqr factors a single block column"),
])
def test_non_square_block_sizes_are_rejected_with_the_reason(call, reason, monkeypatch):
    monkeypatch.setattr(npw.BigMatrix, "from_numpy", None)
    with pytest.raises(ValueError, match=reason):
        call(spd(8))


def test_block_size_with_a_bigmatrix_is_its_tiling_or_a_retiled_copy(rt):
    X = spd(12)
    A = npw.BigMatrix.from_numpy(X, 4)
    assert np.allclose(npw.cholesky(A, block_size=4).numpy(), np.linalg.cholesky(X))  # equal: fine
    assert np.allclose(npw.cholesky(A, block_size=(4, 4)).numpy(), np.linalg.cholesky(X))
    # another block size: A is retiled by a job (a temporary copy), the result is in the tiles asked for
    L = npw.cholesky(A, block_size=6)
    assert L.block_size == (6, 6) and np.allclose(L.numpy(), np.linalg.cholesky(X))
    b = np.ones(12)
    assert np.allclose(npw.solve(A, b, block_size=6), np.linalg.solve(X, b))
    B = npw.BigMatrix.from_numpy(np.ones((12, 2)), (3, 2))  # rows tiled unlike the matrix's: retiled
    assert np.allclose(npw.solve_triangular(A, B, lower=True).numpy(), np.linalg.solve(np.tril(X), np.ones((12, 2))))
    before = {k for k in rt.store.list("") if k.endswith("/meta")}
    C = npw.matmul(A, X, block_size=6)
    assert C.block_size == (6, 6) and np.allclose(C.numpy(), X @ X)
    assert {k for k in rt.store.list("") if k.endswith("/meta")} - before == {f"{C.name}/meta"}  # copies deleted


# ------------------------------------------------------------------ item 12: uploaded copies and intermediates

_rng = np.random.default_rng(13)
SPD, GEN, TALL = spd(20, 14), nonsymmetric(20, 15), _rng.standard_normal((40, 6))
RHS, RHS2 = _rng.standard_normal(20), _rng.standard_normal((20, 2))
CALLS = {  # one call of every entry point, numpy inputs: what it returns (BigMatrix results, numpy, or both)
    "cholesky upper": lambda: npw.cholesky(SPD, lower=False, block_size=8),
    "matmul": lambda: npw.matmul(GEN, SPD, block_size=(8, 4)),
    "tsqr": lambda: npw.tsqr(TALL, block_size=(16, 6)),
    "qr complete": lambda: npw.qr(TALL, mode="complete", block_size=16),
    "qr reduced": lambda: npw.qr(GEN, block_size=8),
    "qr r": lambda: npw.qr(TALL, mode="r", block_size=16),
    "solve vector": lambda: npw.solve(GEN, RHS, block_size=8),
    "solve pos": lambda: npw.solve(SPD, RHS2, assume_a="pos", block_size=8),
    "solve_triangular": lambda: npw.solve_triangular(np.tril(GEN), RHS2, lower=True, block_size=8),
    "inv": lambda: npw.inv(GEN, block_size=8),
    "inv pos": lambda: npw.inv(SPD, assume_a="pos", block_size=8),
    "lstsq": lambda: npw.lstsq(TALL, _rng.standard_normal((40, 2)), block_size=16),
    "svd band, wide": lambda: npw.svd(TALL.T.copy(), block_size=4),
    "svd randomized": lambda: npw.svd(GEN, k=3, block_size=8),
    "svd tree": lambda: npw.svd(GEN, k=3, method="tree", block_size=(20, 8)),
    "pca": lambda: npw.pca(TALL, 2, block_size=(16, 3)),
    "cholesky fails": lambda: npw.cholesky(-SPD, block_size=8),
    "solve fails": lambda: npw.solve(SPD - SPD, RHS, block_size=8),
    "solve pos fails": lambda: npw.solve(GEN, RHS, assume_a="pos", block_size=8),
}


def _wait_for_executors(rt, timeout: float = 60) -> None:
    """Wait for every executor process the runtime's provisioners launched to exit (each exits once it
    reads its job's end)."""
    for prov in rt.provisioners:
        for proc in list(prov.launcher.processes.values()):
            proc.wait(timeout=timeout)


@pytest.mark.parametrize("name", list(CALLS))
def test_entry_points_free_what_they_uploaded_and_created(rt, name):
    """After a call, the store holds only the tiles of the BigMatrices it returned (success or error)."""
    before = set(rt.store.list(""))
    if name.endswith("fails"):
        with pytest.raises(np.linalg.LinAlgError):
            CALLS[name]()
        returned = ()
    else:
        returned = CALLS[name]()
    results = [m for m in (returned if isinstance(returned, tuple) else (returned,)) if isinstance(m, npw.BigMatrix)]
    owned = {m.name for m in results}
    _wait_for_executors(rt)  # one that wrote after the job's clean-up (a watermark) deletes it before it exits
    new = set(rt.store.list("")) - before
    assert {k.split("/")[0] for k in new} == owned, name
    for m in results:
        m.delete()


def test_a_call_that_raises_cancels_its_jobs_still_running_and_leaves_nothing(gates):
    """Two jobs side by side (as the band SVD's back-transformations): the first fails while the second is
    held at a gate; the call raises with its name, cancels the second, and nothing of either stays."""
    from numpywren2.client.call import Call

    held = lp.Program.from_source(textwrap.dedent("""
        def held(X: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = gated_double(X[i, 0], 0.0, 3)
    """), {"gated_double": gated_double}, filename="held.py")
    with npw.runtime(executors=1) as r:
        before = set(r.store.list(""))
        with pytest.raises(np.linalg.LinAlgError, match=r"^side by side: not PD: "):
            with Call("side by side") as call:
                X = call.upload(np.ones((2, 1)), (1, 1))
                Y = call.empty((2, 1), (1, 1), np.float64)
                slow = call.submit(held, X=X, Y=Y, N=2)
                gates.wait_started(3)  # its first task is running, held
                A = call.upload(-SPD, 8)
                call.run(programs.cholesky, {np.linalg.LinAlgError: "not PD: "}, A=A,
                         L=call.empty(A.shape, 8, A.dtype), N=A.grid[0])
        assert slow.status() == "cancelled"
        assert set(r.store.list("")) == before  # uploads, results and scratch of both jobs are gone
        executors = slow.local_executors
        gates.open(3)  # the held task finishes and learns that its job was cancelled
        for p in executors:
            p.wait(timeout=120)
        # Known limit of the executor (executor/worker.py, _discard): a task that outlives its job deletes its
        # scratch output, not a tile of a result matrix, so the held task's one output tile reappears in Y,
        # which the call has deleted; nothing else does.
        late = set(r.store.list("")) - before
        assert late <= {Y.tile_key(0, 0)}
        for k in late:
            r.store.delete(k)


# ------------------------------------------------------------------ item 15: decomposition.py's examples run

def test_decomposition_examples_are_not_skipped():
    tests = doctest.DocTestFinder().find(numpywren2.client.decomposition)
    examples = [e for t in tests for e in t.examples]
    assert len(examples) >= 10
    assert not [e.source for e in examples if e.options.get(doctest.SKIP)]
    assert {t.name.rsplit(".", 1)[-1] for t in tests if t.examples} >= {"svd", "pca"}
