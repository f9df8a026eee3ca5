"""The client: runtimes, jobs, ``BigMatrix`` and the numpy/scipy-style API.

It sits on top of the other layers: it stores jobs through the core's backends and starts each job's
provisioner, which launches executors.  Nothing below imports it (``tests/test_layers.py``).
"""

from . import random
from .config import config
from .decomposition import PCA, pca, svd
from .job import Job, JobFailedError, TileSpace, last_job, submit
from .linalg import cholesky, gemm, inv, lstsq, matmul, qr, solve, solve_triangular, tsqr
from .matrix import BigMatrix, MatrixNotFoundError
from .runtime import Runtime, current_runtime, runtime

__all__ = [
    "PCA", "BigMatrix", "Job", "JobFailedError", "MatrixNotFoundError", "Runtime", "TileSpace", "cholesky",
    "config", "current_runtime", "gemm", "inv",
    "last_job", "lstsq", "matmul", "pca", "qr", "random", "runtime", "solve", "solve_triangular", "submit", "svd",
    "tsqr",
]
