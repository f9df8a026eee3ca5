"""Built-in kernels: thin wrappers over scipy's BLAS/LAPACK, by family.

Every kernel takes and returns numpy tiles (2-D arrays) and works for float32 and float64.  Edge tiles
may be smaller than the block size.  ``BUILTIN`` maps each built-in kernel's name to it: the only
kernels a job description may name by reference (``numpywren2.core.jobspec``).
"""

import lambdapack as lp

from .band import (
    bidiagonal_vectors,
    embedded_product,
    hstack,
    lower_band_columns,
    lower_band_columns_before,
    padded_row_block,
    row_block,
    symmetric_band_eigenvalues_of,
    symmetric_band_tridiagonal_of,
    tridiagonal_eigenvectors,
    upper_band_bidiagonal_of,
    upper_band_columns,
    upper_band_columns_after,
    upper_band_singular_values,
    zero_columns,
)
from .blas import (
    add,
    chol,
    copy,
    gemm_add,
    gemm_nt,
    gemm_tn_add,
    gemm_update,
    matmul,
    matmul_nt,
    matmul_tn,
    neg_matmul,
    syrk,
    transpose,
    trsm,
    trsm_left,
    trtri_lower,
    vstack,
)
from .checks import (
    asymmetry,
    diagonal_of,
    first_asymmetry,
    require_symmetric,
)
from .eig import (
    symmetrized,
)
from .elementwise import (
    axpby,
    cast,
    cut,
    diag_tile,
    diagonal_column,
    place,
    scale,
    zero_tile,
)
from .householder import (
    householder_below,
    householder_diagonal,
    householder_right,
    pivoted_qr,
)
from .io import (
    read_block,
    write_block,
)
from .lu import (
    add_solve_unit_lower,
    add_tail,
    lu_diagonal,
    lu_last_diagonal,
    lu_panel,
    lu_pivots,
    lu_update,
    permuted_rows,
    pick_rows,
    settled_rows,
    solve_settled_rows,
    swap_rows,
    tslu_leaf,
    tslu_merge,
    tslu_root,
    tslu_tile,
    unit_lower_of,
    upper_of,
    zeros_like,
)
from .norms import (
    column_parts,
    row_abs_sums,
    scale_rows,
    scaled_transpose,
)
from .qr import (
    form_q,
    form_q_pair,
    gelqt,
    gemlqt,
    gemqrt,
    gemqrt_transposed,
    geqrt,
    identity,
    stacked_qrt,
    ttlqt,
    ttmlqt,
    ttmqrt,
    ttqrt,
)
from .random import (
    eye_tile,
    normal_tile,
    spd_tile,
)
from .stats import (
    add_and_divide,
    center_tile,
    column_means,
    column_sums,
)
from .svd import (
    left_vectors_of,
    merge_left_svd,
    right_vectors_of,
    singular_values_of,
    truncated_left_svd,
)

BUILTIN: dict[str, lp.Kernel] = {k.fn.__name__: k for k in globals().values() if isinstance(k, lp.Kernel)}

__all__ = ["BUILTIN", "add", "add_and_divide", "asymmetry", "center_tile", "chol", "column_means", "column_sums", "copy", "diagonal_of", "eye_tile", "first_asymmetry", "form_q", "form_q_pair", "gelqt", "gemlqt", "gemm_add", "gemm_nt", "gemm_tn_add", "gemm_update", "gemqrt", "gemqrt_transposed", "geqrt", "identity", "left_vectors_of", "matmul", "matmul_nt", "matmul_tn", "merge_left_svd", "neg_matmul", "normal_tile", "require_symmetric", "right_vectors_of", "singular_values_of", "spd_tile", "stacked_qrt", "syrk", "transpose", "trsm", "trsm_left", "trtri_lower", "truncated_left_svd", "ttlqt", "ttmlqt", "ttmqrt", "ttqrt", "vstack"]  # noqa: E501
__all__ += ["add_solve_unit_lower", "add_tail", "lu_diagonal", "lu_last_diagonal", "lu_panel", "lu_pivots", "lu_update",
            "permuted_rows", "pick_rows", "settled_rows", "solve_settled_rows", "swap_rows", "tslu_leaf", "tslu_merge",
            "tslu_root", "tslu_tile", "unit_lower_of", "upper_of", "zeros_like"]
__all__ += ["lower_band_columns", "lower_band_columns_before", "symmetric_band_eigenvalues_of"]
__all__ += ["row_block", "symmetric_band_tridiagonal_of", "tridiagonal_eigenvectors"]
__all__ += ["bidiagonal_vectors", "embedded_product", "padded_row_block", "upper_band_bidiagonal_of", "zero_columns"]
__all__ += ["hstack", "symmetrized", "upper_band_columns", "upper_band_columns_after", "upper_band_singular_values"]
__all__ += ["axpby", "cast", "cut", "diag_tile", "diagonal_column", "place", "read_block", "scale", "write_block",
            "zero_tile"]
__all__ += ["column_parts", "pivoted_qr", "row_abs_sums", "scale_rows", "scaled_transpose"]
__all__ += ["householder_below", "householder_diagonal", "householder_right"]
