"""The products that turn an SVD ``A = U diag(s) Vt`` into a least-squares solution or a pseudo-inverse
(``npw.lstsq``, ``npw.pinv``), each one job composed of ``gemm_tn``, ``gemm`` and the diagonal scalings.

``d`` is the column of inverted singular values ``s⁺`` (zeros for those below the cutoff), tiled like the
k singular triplets.
"""

import lambdapack as lp
from numpywren2.core.kernels import gemm_update, scale_rows, scaled_transpose

from .norms import column_norms
from .svd import gemm_tn


@lp.program
def scale_rows_by(D: lp.Matrix, A: lp.Matrix, X: lp.Matrix, M: int, N: int):
    """X = diag(d) A, for A on an M×N grid and the column d in D (tiled like A's rows, one tile column)."""
    for i in range(M):
        for j in range(N):
            X[i, j] = scale_rows(D[i, 0], A[i, j])


@lp.program
def scaled_transpose_of(D: lp.Matrix, U: lp.Matrix, W: lp.Matrix, M: int, N: int):
    """W = diag(d) Uᵀ, for U on an M×N grid and the column d in D (tiled like U's columns)."""
    for i in range(M):
        for j in range(N):
            W[j, i] = scaled_transpose(D[j, 0], U[i, j])


@lp.program
def svd_solve(U: lp.Matrix, D: lp.Matrix, Vt: lp.Matrix, A: lp.Matrix, B: lp.Matrix, X: lp.Matrix, Res: lp.Matrix,
              M: int, K: int, N: int, C: int, RES: int):
    """X = Vtᵀ diag(d) Uᵀ B, for U on an M×K grid, Vt on K×N and B on M×C (the minimum-norm least-squares
    solution when d = s⁺); with ``RES`` 1, also Res[0, c] = the column sums of squares of B − A X (A on M×N).

    Y = Uᵀ B and Z = diag(d) Y are scratch; F[i, c, j] is tile (i, c) of B − A X after the products of the
    first j tile columns of A (a chain of ``gemm_update``; step 0 is B).
    """
    Y = lp.scratch()
    Z = lp.scratch()
    T1 = lp.scratch()
    T2 = lp.scratch()
    F = lp.scratch()
    T3 = lp.scratch()
    F[:, :, 0] = B
    gemm_tn(U, B, Y, T1, K, C, M)
    scale_rows_by(D, Y, Z, K, C)
    gemm_tn(Vt, Z, X, T2, N, C, K)
    if RES == 1:
        for i in range(M):
            for c in range(C):
                for j in range(N):
                    F[i, c, j + 1] = gemm_update(F[i, c, j], A[i, j], X[j, c], 0)
        column_norms(F[:, :, N], Res, T3, M, C, 1)


@lp.program
def pinv_from_svd(U: lp.Matrix, D: lp.Matrix, Vt: lp.Matrix, X: lp.Matrix, M: int, K: int, N: int):
    """X = Vtᵀ diag(d) Uᵀ (the pseudo-inverse when d = s⁺), for U on an M×K grid and Vt on K×N; W = diag(d) Uᵀ
    is scratch."""
    W = lp.scratch()
    T = lp.scratch()
    scaled_transpose_of(D, U, W, M, K)
    gemm_tn(Vt, W, X, T, N, M, K)
