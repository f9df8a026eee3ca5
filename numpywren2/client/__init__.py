"""The client: runtimes, jobs, ``BigMatrix`` and the numpy/scipy-style API.

It sits on top of the other layers: it stores jobs through the core's backends and starts each job's
provisioner, which launches executors.  Nothing below imports it (``tests/test_layers.py``).
"""

from . import random
from .decomposition import PCA, pca, svd
from .job import Job, JobFailedError, TileSpace, submit
from .linalg import cholesky, gemm, inv, lstsq, matmul, qr, solve, solve_triangular, tsqr
from .lu import cho_factor, cho_solve, det, lu, lu_factor, lu_solve, slogdet
from .matrix import BigMatrix, MatrixNotFoundError
from .runtime import Runtime, current_runtime, runtime

__all__ = [
    "PCA", "BigMatrix", "Job", "JobFailedError", "MatrixNotFoundError", "Runtime", "TileSpace", "cholesky",
    "current_runtime", "gemm", "inv",
    "lstsq", "matmul", "pca", "qr", "random", "runtime", "solve", "solve_triangular", "submit", "svd", "tsqr",
]
__all__ += ["cho_factor", "cho_solve", "det", "lu", "lu_factor", "lu_solve", "slogdet"]
