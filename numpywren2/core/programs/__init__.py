"""The tiled algorithms, each a plain ``@lp.program``.

The algorithms' integer parameters are grid sizes; the generators (``normal``,
``spd``) also take the matrix shape, block size and seed.
"""

from .checks import check_symmetric
from .cholesky import cholesky
from .gemm import gemm
from .generators import eye, normal, spd
from .qr import qr
from .svd import (
    apply_reflectors,
    band_reduction,
    center_columns,
    gemm_tn,
    low_rank_factors,
    randomized_range,
    transpose_tiles,
    tree_svd,
)
from .triangular import posv, spd_inverse, transpose_lower, trsm_backward, trsm_forward
from .tsqr import tsqr

__all__ = [
    "apply_reflectors", "band_reduction", "center_columns", "check_symmetric", "cholesky", "eye", "gemm", "gemm_tn",
    "low_rank_factors", "normal", "posv", "qr", "randomized_range", "spd", "spd_inverse", "transpose_lower",
    "transpose_tiles", "tree_svd", "trsm_backward", "trsm_forward", "tsqr",
]
