"""The client: runtimes, jobs, ``BigMatrix`` and the numpy/scipy-style API.

It sits on top of the other layers: it stores jobs through the core's backends and starts each job's
provisioner, which launches executors.  Nothing below imports it (``tests/test_layers.py``).
"""

from . import io, random
from .array_ops import MatrixView, diag, eye, zeros
from .decomposition import PCA, pca, svd
from .job import Job, JobFailedError, TileSpace, submit
from .linalg import cholesky, gemm, inv, lstsq, matmul, qr, solve, solve_triangular, tsqr
from .matrix import BigMatrix, MatrixNotFoundError
from .runtime import Runtime, current_runtime, runtime

__all__ = [
    "PCA", "BigMatrix", "Job", "JobFailedError", "MatrixNotFoundError", "MatrixView", "Runtime", "TileSpace",
    "cholesky", "current_runtime", "diag", "eye", "gemm", "inv",
    "lstsq", "matmul", "pca", "qr", "random", "runtime", "solve", "solve_triangular", "submit", "svd", "tsqr", "zeros",
]
