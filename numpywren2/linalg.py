"""The numpy/scipy-style user API: each call runs a LAmbdaPACK program on the current runtime."""

from __future__ import annotations

import numpy as np

from . import programs
from .job import as_bigmatrix, submit
from .matrix import BigMatrix


def cholesky(A, lower: bool = True, block_size: int | None = None, workers: int | None = None) -> BigMatrix:
    """Cholesky factor of a symmetric positive definite matrix.

    Parameters
    ----------
    A : (n, n) array_like or BigMatrix
        Only its lower triangle is read.
    lower : bool
        Return L with ``A = L @ L.T`` (default) or, if False, the upper factor ``U = L.T``
        (computed from L on the client).
    block_size : int, optional
        Tile size when ``A`` is a numpy array.
    workers : int, optional
        Executors for this job (default: the runtime's).

    Returns
    -------
    BigMatrix

    Raises
    ------
    numpy.linalg.LinAlgError
        If the matrix is not positive definite (naming the failing task and line).
    """
    A = as_bigmatrix(A, block_size)
    n, m = A.shape
    if n != m:
        raise ValueError(f"cholesky needs a square matrix, got shape {A.shape}")
    if A.block_size[0] != A.block_size[1]:
        raise ValueError(f"cholesky needs square tiles, got block_size {A.block_size}")
    L = BigMatrix.empty(A.shape, A.block_size, A.dtype, store=A.store)
    submit(programs.cholesky, A=A, L=L, N=A.grid[0], workers=workers).wait()
    if lower:
        return L
    return BigMatrix.from_numpy(L.numpy().T, A.block_size, store=A.store)


def matmul(A, B, block_size: int | None = None, workers: int | None = None) -> BigMatrix:
    """``A @ B`` for 2-D matrices (numpy arrays or BigMatrix with compatible tiling)."""
    if not isinstance(A, BigMatrix) and not isinstance(B, BigMatrix) and block_size is None:
        block_size = max(np.shape(A)[0], np.shape(A)[1], np.shape(B)[1]) // 4 or 1
    A = as_bigmatrix(A, block_size)
    B = as_bigmatrix(B, block_size if block_size is not None else (A.block_size[1], A.block_size[1]))
    if A.shape[1] != B.shape[0]:
        raise ValueError(f"matmul: shapes {A.shape} and {B.shape} are not aligned")
    if A.block_size[1] != B.block_size[0]:
        raise ValueError(f"matmul: A's column tiles ({A.block_size[1]}) differ from B's row tiles "
                         f"({B.block_size[0]})")
    C = BigMatrix.empty((A.shape[0], B.shape[1]), (A.block_size[0], B.block_size[1]),
                        np.result_type(A.dtype, B.dtype), store=A.store)
    submit(programs.gemm, A=A, B=B, C=C, M=A.grid[0], N=B.grid[1], K=A.grid[1], workers=workers).wait()
    return C


gemm = matmul


def tsqr(A, block_size: int | None = None, workers: int | None = None) -> tuple[BigMatrix, BigMatrix]:
    """Reduced QR of a tall-skinny matrix by a TSQR tree: ``(Q, R)`` like ``numpy.linalg.qr``.

    ``A`` is tiled in row blocks of ``block_size`` rows and one block column.
    """
    if isinstance(A, BigMatrix):
        if A.grid[1] != 1:
            raise ValueError(f"tsqr needs a single block column; {A.name} has {A.grid[1]}")
    else:
        X = np.asarray(A)
        if X.ndim != 2:
            raise ValueError(f"tsqr needs a 2-D matrix, got shape {X.shape}")
        rows = block_size or max(X.shape[1], -(-X.shape[0] // 8))
        A = BigMatrix.from_numpy(X, (rows, max(1, X.shape[1])))
    m, n = A.shape
    k = min(m, n)
    Q = BigMatrix.empty((m, k), (A.block_size[0], max(k, 1)), A.dtype, store=A.store)
    R = BigMatrix.empty((k, n), (max(k, 1), max(n, 1)), A.dtype, store=A.store)
    submit(programs.tsqr, A=A, Q=Q, R=R, N=A.grid[0], workers=workers).wait()
    return Q, R
