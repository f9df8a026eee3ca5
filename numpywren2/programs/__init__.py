"""The tiled algorithms, each a plain ``@lp.program`` whose integer parameters are grid sizes."""

from .cholesky import cholesky
from .gemm import gemm
from .tsqr import tsqr

__all__ = ["cholesky", "gemm", "tsqr"]
