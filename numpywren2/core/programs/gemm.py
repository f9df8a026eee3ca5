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
