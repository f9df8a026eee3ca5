"""The tiled algorithms, each a plain ``@lp.program``.

The algorithms' integer parameters are grid sizes; the generators (``normal``,
``spd``) also take the matrix shape, block size and seed.  Programs call one another
(``posv`` calls ``cholesky`` and the triangular solves; the reductions share
``sum_tree`` and ``tsqr_up`` / ``tsqr_down``; ``qr_lstsq`` calls ``qr_factor`` and the backward
substitution).
"""

from .arrays import (
    astype,
    combine,
    copy_all,
    densify,
    diag_matrix,
    diagonal,
    eye_rect,
    load,
    retile,
    save,
    scaled,
    transpose_all,
    zeros,
)
from .checks import check_symmetric
from .cholesky import cholesky
from .eig import sym_band_eigenvalues, sym_band_eigenvectors, sym_band_reduction
from .gemm import gemm, gemm_chain
from .generators import eye, normal, spd
from .householder import householder_lu, pivoted_qr_of
from .least_squares import pinv_from_svd, scale_rows_by, scaled_transpose_of, svd_solve
from .lu import lu, lu_solve, lu_split, permute_rows
from .norms import column_norms, row_norms
from .qr import qr_factor, qr_form_q, qr_lstsq
from .svd import (
    apply_reflectors,
    band_reduction,
    band_singular_values,
    band_singular_vectors,
    center_columns,
    gemm_tn,
    low_rank_factors,
    randomized_range,
    transpose_tiles,
    tree_svd,
)
from .trees import sum_tree
from .triangular import posv, spd_inverse, transpose_lower, trsm_backward, trsm_forward
from .tsqr import tsqr, tsqr_down, tsqr_up

__all__ = [
    "apply_reflectors", "astype", "band_reduction", "center_columns", "check_symmetric", "cholesky", "combine",
    "copy_all", "densify", "diag_matrix", "diagonal", "eye", "eye_rect", "gemm", "gemm_chain",
    "gemm_tn", "load",
    "low_rank_factors", "normal", "posv", "qr_factor", "qr_form_q", "qr_lstsq", "randomized_range", "retile",
    "save", "scaled", "spd", "spd_inverse", "sum_tree", "transpose_all", "transpose_lower", "transpose_tiles",
    "tree_svd", "trsm_backward", "trsm_forward", "tsqr", "tsqr_down", "tsqr_up", "zeros",
]
__all__ += ["band_singular_values", "band_singular_vectors", "sym_band_eigenvalues", "sym_band_eigenvectors",
            "sym_band_reduction"]
__all__ += ["lu", "lu_solve", "lu_split", "permute_rows"]
__all__ += ["column_norms", "pinv_from_svd", "pivoted_qr_of", "row_norms", "scale_rows_by", "scaled_transpose_of",
            "svd_solve"]
__all__ += ["householder_lu"]
