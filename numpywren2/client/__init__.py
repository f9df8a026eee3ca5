"""The client: runtimes, jobs, ``BigMatrix`` and the numpy/scipy-style API.

It sits on top of the other layers: it stores jobs through the core's backends and starts each job's
provisioner, which launches executors.  Nothing below imports it (``tests/test_layers.py``).
"""

from . import io as io  # attaches from_npy, to_npy, ... to BigMatrix
from . import random
from .array_ops import MatrixView, diag, eye, zeros
from .catalog import MatrixInfo, ls, open
from .config import config
from .decomposition import PCA, pca, svd
from .eig import eigh, eigvalsh
from .interop import from_dask
from .job import Job, JobFailedError, TileSpace, last_job, submit
from .jobs import JobInfo, attach, jobs
from .least_squares import lstsq, matrix_rank, pinv
from .linalg import cholesky, gemm, inv, matmul, qr, solve, solve_triangular, tsqr
from .lu import cho_factor, cho_solve, det, lu, lu_factor, lu_solve, slogdet
from .matrix import BigMatrix, MatrixNotFoundError
from .norms import cond, norm
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
    "Plan",
    "Runtime",
    "TileSpace",
    "attach",
    "cho_factor",
    "cho_solve",
    "cholesky",
    "cond",
    "config",
    "current_runtime",
    "det",
    "diag",
    "eigh",
    "eigvalsh",
    "eye",
    "from_dask",
    "gemm",
    "inv",
    "jobs",
    "last_job",
    "ls",
    "lstsq",
    "lu",
    "lu_factor",
    "lu_solve",
    "matmul",
    "matrix_rank",
    "norm",
    "open",
    "pca",
    "pinv",
    "plan",
    "qr",
    "random",
    "runtime",
    "slogdet",
    "solve",
    "solve_triangular",
    "submit",
    "svd",
    "tsqr",
    "zeros",
]
