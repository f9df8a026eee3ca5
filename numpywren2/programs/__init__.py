"""The tiled algorithms, each a plain ``@lp.program``.

The algorithms' integer parameters are grid sizes; the generators (``normal``,
``spd``) also take the matrix shape, block size and seed.
"""

from .cholesky import cholesky
from .gemm import gemm
from .generators import normal, spd
from .qr import qr
from .triangular import posv, spd_inverse, trsm_backward, trsm_forward
from .tsqr import tsqr

__all__ = ["cholesky", "gemm", "normal", "posv", "qr", "spd", "spd_inverse", "trsm_backward", "trsm_forward", "tsqr"]
