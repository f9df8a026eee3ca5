"""Tiled matrix multiply with a binary-tree reduction over the inner dimension."""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import add, copy, matmul


@lp.program
def gemm(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, T: lp.Matrix, M: int, N: int, K: int):
    """C = A B with A on an M×K grid of tiles and B on K×N.

    T[i, j, k, level] is a partial sum of level-`level` of the reduction tree over
    k; its root is written straight into C.  An odd node out moves up with a copy.
    """
    depth = ceil(log2(K))
    for i in range(M):
        for j in range(N):
            if K == 1:
                C[i, j] = matmul(A[i, 0], B[0, j])
            else:
                for k in range(K):
                    T[i, j, k, 0] = matmul(A[i, k], B[k, j])
                for level in range(depth):
                    for k in range(0, K, 2 ** (level + 1)):
                        if level == depth - 1:
                            C[i, j] = add(T[i, j, k, level], T[i, j, k + 2**level, level])
                        elif k + 2**level < K:
                            T[i, j, k, level + 1] = add(T[i, j, k, level], T[i, j, k + 2**level, level])
                        else:
                            T[i, j, k, level + 1] = copy(T[i, j, k, level])
