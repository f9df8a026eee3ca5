"""The serial reference interpreter runs the built-in programs to numpy's answers."""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

import lambdapack as lp
from numpywren2.testing import reference


def spd(n: int, dtype, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return (g @ g.T / n + np.eye(n)).astype(dtype)


def eps(dtype) -> float:
    return float(np.finfo(dtype).eps)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("n, block", [(64, 16), (67, 16), (50, 50), (50, 64), (101, 7), (1, 3)])
def test_cholesky(n, block, dtype):
    X = spd(n, dtype)
    L = reference.cholesky(X, block)
    assert L.dtype == dtype
    assert np.allclose(np.triu(L, 1), 0)
    backward = np.linalg.norm(X - L @ L.T) / np.linalg.norm(X)
    assert backward <= 10 * n * eps(dtype), backward
    ref = np.linalg.cholesky(X.astype(np.float64))
    assert np.linalg.norm(L - ref) / np.linalg.norm(ref) <= 100 * n * eps(dtype)


def test_cholesky_of_non_spd_fails_naming_the_task():
    X = spd(40, np.float64)
    X[25, 25] = -100.0
    with pytest.raises(lp.InterpretError, match=r"chol@L18\(k=2\).*not positive definite"):
        reference.cholesky(X, 10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, k, n, block", [(32, 32, 32, 8), (33, 70, 21, 8), (5, 100, 3, 16), (40, 9, 40, 10),
                                            (16, 16, 16, 16), (17, 129, 5, 16)])
def test_matmul(m, k, n, block, dtype):
    rng = np.random.default_rng(1)
    A = rng.standard_normal((m, k)).astype(dtype)
    B = rng.standard_normal((k, n)).astype(dtype)
    C = reference.matmul(A, B, block)
    ref = A.astype(np.float64) @ B.astype(np.float64)
    err = np.linalg.norm(C - ref) / (np.linalg.norm(A) * np.linalg.norm(B))
    assert C.shape == (m, n) and C.dtype == dtype
    assert err <= 10 * k * eps(dtype), err


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("m, n, rows", [(64, 8, 8), (100, 7, 16), (37, 5, 6), (50, 10, 4), (9, 12, 4), (30, 30, 30),
                                        (23, 3, 3), (1000, 20, 64)])
def test_tsqr(m, n, rows, dtype):
    A = np.random.default_rng(2).standard_normal((m, n)).astype(dtype)
    Q, R = reference.tsqr(A, rows)
    k = min(m, n)
    assert Q.shape == (m, k) and R.shape == (k, n)
    tol = 20 * m * eps(dtype)
    assert np.linalg.norm(A - Q @ R) / np.linalg.norm(A) <= tol
    assert np.linalg.norm(Q.T @ Q - np.eye(k)) <= tol
    assert np.allclose(np.tril(R, -1), 0, atol=tol)
    R_ref = np.linalg.qr(A.astype(np.float64), mode="r")
    signs = np.sign(np.diag(R)) * np.sign(np.diag(R_ref))
    assert np.allclose(signs[:, None] * R, R_ref, atol=tol * np.abs(R_ref).max())


def test_user_program_with_user_kernel():
    @lp.kernel
    def scale_add(a, b, alpha):
        return a + alpha * b

    src = textwrap.dedent("""
        def prefix(X: lp.Matrix, P: lp.Matrix, N: int):
            P[0] = scale_add(X[0], X[0], -1.0)
            for i in range(1, N):
                P[i] = scale_add(P[i - 1], X[i], 2.0)
    """)
    p = lp.Program.from_source(src, {"scale_add": scale_add})
    xs = {(i,): np.full((2, 2), float(i + 1)) for i in range(5)}
    out = lp.interpret(p.bind(N=5), {"X": xs})
    expected = 0.0
    for i in range(5):
        expected = 0.0 if i == 0 else expected + 2.0 * (i + 1)
        assert np.allclose(out["P"][(i,)], expected)


def test_missing_input_is_a_clear_error():
    from numpywren2.core.programs import cholesky

    with pytest.raises(lp.InterpretError, match="no tiles given for input tile space"):
        lp.interpret(cholesky.bind(N=2), {})
