"""Right-looking tiled Cholesky factorization."""

import lambdapack as lp
from numpywren2.core.kernels import chol, gemm_nt, syrk, trsm


@lp.program
def cholesky(A: lp.Matrix, L: lp.Matrix, S: lp.Matrix, N: int):
    """A = L Lᵀ on an N×N grid of tiles (lower triangle of A read).

    S[i, j, k] is tile (i, j) of the trailing matrix after k steps. Step 0 of S is A
    itself (an alias: no copy, and S holds only updated tiles), so each kernel call
    reads A at k = 0 and S after; the compiled program states both cases.
    Diagonal tiles get a syrk update, the others a gemm.
    """
    S[:, :, 0] = A
    for k in range(N):
        L[k, k] = chol(S[k, k, k])
        for i in range(k + 1, N):
            L[i, k] = trsm(L[k, k], S[i, k, k])
        for j in range(k + 1, N):
            S[j, j, k + 1] = syrk(S[j, j, k], L[j, k])
            for i in range(j + 1, N):
                S[i, j, k + 1] = gemm_nt(S[i, j, k], L[i, k], L[j, k])


# The longest chain (checked against the unrolled graph in tests/test_cost.py): step k's chol, its
# trsm of tile row k + 1 and that tile's syrk, then the next chol: 3N - 2 tasks.  In flops the
# heaviest chain runs through the gemm updates instead (trsm, gemm_nt, trsm, ...): 3 b³ per step.
cholesky.critical_path_formula = {
    "tasks": "Piecewise((3*N - 2, N >= 1), (0, True))",
    "flops": "Piecewise((b**3/3, Eq(N, 1)), (3*N*b**3 - 10*b**3/3, N >= 2), (0, True))",
}
