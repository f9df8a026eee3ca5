"""Tiled matrix multiply with a binary-tree reduction over the inner dimension."""

import lambdapack as lp
from numpywren2.core.kernels import matmul

from .trees import sum_tree


@lp.program
def gemm(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, T: lp.Matrix, M: int, N: int, K: int):
    """C = A B with A on an M×K grid of tiles and B on K×N.

    T[i, j, k, level] is a partial sum of level-`level` of the reduction tree over
    k (``sum_tree``); its root is written straight into C.
    """
    for i in range(M):
        for j in range(N):
            if K == 1:
                C[i, j] = matmul(A[i, 0], B[0, j])
            else:
                for k in range(K):
                    T[i, j, k, 0] = matmul(A[i, k], B[k, j])
                sum_tree(T[i, j, :, :], C[i:, j:], K)


# The longest chain: a product matmul, then the reduction tree's node 0 at every level (always an
# add): 1 + ceil(log2(K)) tasks, 2 b³ + ceil(log2(K)) b² flops (checked in tests/test_cost.py).
gemm.critical_path_formula = {
    "tasks": "Piecewise((1 + ceil_log2(K), (M >= 1) & (N >= 1) & (K >= 1)), (0, True))",
    "flops": "Piecewise((2*b**3 + ceil_log2(K)*b**2, (M >= 1) & (N >= 1) & (K >= 1)), (0, True))",
}
