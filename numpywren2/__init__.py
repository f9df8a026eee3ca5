"""numpywren2: tiled dense linear algebra on elastic, stateless compute."""

from . import kernels, programs, random
from .job import Job, JobFailedError, submit
from .linalg import cholesky, gemm, inv, lstsq, matmul, qr, solve, solve_triangular, tsqr
from .matrix import BigMatrix
from .runtime import Runtime, current_runtime, runtime

__all__ = [
    "BigMatrix", "Job", "JobFailedError", "Runtime", "cholesky", "current_runtime", "gemm", "inv", "kernels",
    "lstsq", "matmul", "programs", "qr", "random", "runtime", "solve", "solve_triangular", "submit", "tsqr",
]
__version__ = "0.1.0"
