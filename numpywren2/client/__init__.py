"""The client: runtimes, jobs, ``BigMatrix`` and the numpy/scipy-style API.

It sits on top of the other layers: it stores jobs through the core's backends and starts each job's
provisioner, which launches executors.  Nothing below imports it (``tests/test_layers.py``).
"""

from . import io as io  # attaches from_npy, to_npy, ... to BigMatrix
from . import random
from .array_ops import MatrixView, diag, eye, zeros
from .catalog import MatrixInfo, ls, open
from .decomposition import PCA, pca, svd
from .interop import from_dask
from .job import Job, JobFailedError, TileSpace, submit
from .jobs import JobInfo, attach, jobs
from .linalg import cholesky, gemm, inv, lstsq, matmul, qr, solve, solve_triangular, tsqr
from .lu import cho_factor, cho_solve, det, lu, lu_factor, lu_solve, slogdet
from .matrix import BigMatrix, MatrixNotFoundError
from .plan import Plan, plan
from .runtime import Runtime, current_runtime, runtime

__all__ = [
    "PCA",
    "BigMatrix",
    "Job",
    "JobFailedError",
    "JobInfo",
    "MatrixInfo",
    "MatrixNotFoundError",
    "MatrixView",
    "Runtime",
    "TileSpace",
    "attach",
    "cholesky",
    "current_runtime",
    "diag",
    "eye",
    "from_dask",
    "gemm",
    "inv",
    "jobs",
    "ls",
    "lstsq",
    "matmul",
    "open",
    "pca",
    "qr",
    "random",
    "runtime",
    "solve",
    "solve_triangular",
    "submit",
    "svd",
    "tsqr",
    "zeros",
]
__all__ += ["cho_factor", "cho_solve", "det", "lu", "lu_factor", "lu_solve", "slogdet"]
__all__ += ["Plan", "plan"]
