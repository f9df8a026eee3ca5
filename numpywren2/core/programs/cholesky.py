"""Right-looking tiled Cholesky factorization."""

import lambdapack as lp
from numpywren2.core.kernels import chol, gemm_nt, syrk, trsm


@lp.program
def cholesky(A: lp.Matrix, L: lp.Matrix, S: lp.Matrix, N: int):
    """A = L Lᵀ on an N×N grid of tiles (lower triangle of A read).

    S[i, j, k] is tile (i, j) of the trailing matrix after k steps; step k = 0
    reads A itself, so S holds only updated tiles.
    """
    for k in range(N):
        if k == 0:
            L[k, k] = chol(A[k, k])
        else:
            L[k, k] = chol(S[k, k, k])
        for i in range(k + 1, N):
            if k == 0:
                L[i, k] = trsm(L[k, k], A[i, k])
            else:
                L[i, k] = trsm(L[k, k], S[i, k, k])
        for j in range(k + 1, N):
            if k == 0:
                S[j, j, k + 1] = syrk(A[j, j], L[j, k])
            else:
                S[j, j, k + 1] = syrk(S[j, j, k], L[j, k])
            for i in range(j + 1, N):
                if k == 0:
                    S[i, j, k + 1] = gemm_nt(A[i, j], L[i, k], L[j, k])
                else:
                    S[i, j, k + 1] = gemm_nt(S[i, j, k], L[i, k], L[j, k])
