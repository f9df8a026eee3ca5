"""The built-in algorithms run serially by the reference interpreter, on numpy arrays.

These are the oracles that the distributed runtime is tested against (and a way
to see what a program computes without any runtime).
"""

from __future__ import annotations

import numpy as np

from lambdapack import interpret

from ..core import programs
from ..core.tiling import grid_shape, join, split


def cholesky(X: np.ndarray, block_size: int) -> np.ndarray:
    """Lower Cholesky factor of a symmetric positive definite X."""
    if X.ndim != 2 or X.shape[0] != X.shape[1]:
        raise ValueError(f"cholesky needs a square matrix, got shape {X.shape}")
    n = grid_shape(X.shape, block_size)[0]
    out = interpret(programs.cholesky.bind(N=n), {"A": split(X, block_size)})
    return join(out["L"], X.shape, block_size, X.dtype)


def matmul(A: np.ndarray, B: np.ndarray, block_size: int) -> np.ndarray:
    if A.ndim != 2 or B.ndim != 2 or A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul: shapes {A.shape} and {B.shape} are not aligned")
    m, k = grid_shape(A.shape, block_size)
    n = grid_shape(B.shape, block_size)[1]
    out = interpret(programs.gemm.bind(M=m, N=n, K=k), {"A": split(A, block_size), "B": split(B, block_size)})
    return join(out["C"], (A.shape[0], B.shape[1]), block_size, np.result_type(A, B))


def tsqr(A: np.ndarray, block_rows: int) -> tuple[np.ndarray, np.ndarray]:
    """Reduced QR of A by a TSQR tree over row blocks of ``block_rows`` rows (one block column)."""
    bs = (block_rows, A.shape[1])
    n = grid_shape(A.shape, bs)[0]
    out = interpret(programs.tsqr.bind(N=n), {"A": split(A, bs)})
    k = min(A.shape)
    Q = np.vstack([out["Q"][i, 0] for i in range(n)])
    R = out["R"][0, 0]
    assert Q.shape == (A.shape[0], k) and R.shape == (k, A.shape[1])
    return Q, R
