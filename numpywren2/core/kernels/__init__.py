"""Built-in kernels: thin wrappers over scipy's BLAS/LAPACK, by family.

Every kernel takes and returns numpy tiles (2-D arrays) and works for float32 and float64.  Edge tiles
may be smaller than the block size.  ``BUILTIN`` maps each built-in kernel's name to it: the only
kernels a job description may name by reference (``numpywren2.core.jobspec``).
"""

import lambdapack as lp

from .blas import (
    add,
    chol,
    copy,
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
from .io import (
    read_block,
    write_block,
)
from .qr import (
    apply_lq_right,
    apply_lq_right_pair,
    apply_q,
    apply_q_pair,
    apply_q_transposed,
    apply_qt,
    apply_qt_pair,
    gemqrt,
    geqrt,
    householder_lq,
    householder_lq_pair,
    householder_qr,
    householder_qr_pair,
    identity,
    qr_factor,
    qr_pair,
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

__all__ = ["BUILTIN", "add", "add_and_divide", "apply_lq_right", "apply_lq_right_pair", "apply_q", "apply_q_pair", "apply_q_transposed", "apply_qt", "apply_qt_pair", "asymmetry", "axpby", "cast", "center_tile", "chol", "column_means", "column_sums", "copy", "cut", "diag_tile", "diagonal_column", "diagonal_of", "eye_tile", "first_asymmetry", "gemm_nt", "gemm_tn_add", "gemm_update", "gemqrt", "geqrt", "householder_lq", "householder_lq_pair", "householder_qr", "householder_qr_pair", "identity", "left_vectors_of", "matmul", "matmul_nt", "matmul_tn", "merge_left_svd", "neg_matmul", "normal_tile", "place", "qr_factor", "qr_pair", "read_block", "require_symmetric", "right_vectors_of", "scale", "singular_values_of", "spd_tile", "syrk", "transpose", "trsm", "trsm_left", "trtri_lower", "truncated_left_svd", "ttmqrt", "ttqrt", "vstack", "write_block", "zero_tile"]  # noqa: E501
