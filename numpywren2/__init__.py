"""numpywren2: tiled dense linear algebra on elastic, stateless compute."""

from . import kernels, programs, random
from .decomposition import PCA, pca, svd
from .job import Job, JobFailedError, TileSpace, submit
from .linalg import cholesky, gemm, inv, lstsq, matmul, qr, solve, solve_triangular, tsqr
from .matrix import BigMatrix, MatrixNotFoundError
from .runtime import Runtime, current_runtime, runtime

__all__ = [
    "PCA", "BigMatrix", "Job", "JobFailedError", "MatrixNotFoundError", "Runtime", "TileSpace", "cholesky",
    "current_runtime", "gemm", "inv", "kernels", "lstsq", "matmul", "pca", "programs", "qr", "random", "runtime",
    "solve", "solve_triangular", "submit", "svd", "tsqr",
]
__version__ = "0.1.0"
