"""Tiled matrix multiply: a binary-tree reduction over the inner dimension (``gemm``) or a chain of
accumulating products (``gemm_chain``), and the rule that picks one (``gemm_program``)."""

import lambdapack as lp
from numpywren2.core.kernels import gemm_add, matmul

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


@lp.program
def gemm_chain(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, T: lp.Matrix, M: int, N: int, K: int):
    """C = A B with A on an M×K grid of tiles and B on K×N, each output tile accumulated along k.

    T[i, j, k] = A[i, 0] B[0, j] + … + A[i, k] B[k, j] for k < K − 1 (``gemm_add``: c + a b, one BLAS
    call); the last step writes C.  Per output tile: K tasks, 2K tile reads and one tile written each,
    against gemm's 2K − 1 tasks and 4K − 2 reads; the price is a chain of K dependent tasks instead of
    1 + ⌈log₂ K⌉, so the parallelism is M·N tasks at a time.
    """
    for i in range(M):
        for j in range(N):
            if K == 1:
                C[i, j] = matmul(A[i, 0], B[0, j])
            else:
                T[i, j, 0] = matmul(A[i, 0], B[0, j])
                for k in range(1, K - 1):
                    T[i, j, k] = gemm_add(T[i, j, k - 1], A[i, k], B[k, j])
                C[i, j] = gemm_add(T[i, j, K - 2], A[i, K - 1], B[K - 1, j])


# The longest chain: one output tile's K steps, 2 b³ flops each (checked in tests/test_cost.py).
gemm_chain.critical_path_formula = {
    "tasks": "Piecewise((K, (M >= 1) & (N >= 1) & (K >= 1)), (0, True))",
    "flops": "Piecewise((2*K*b**3, (M >= 1) & (N >= 1) & (K >= 1)), (0, True))",
}


def gemm_program(M: int, N: int, K: int, executors: int) -> lp.Program:
    """The program ``npw.matmul`` runs for an M×K by K×N grid on up to ``executors`` executors.

    ``gemm_chain`` when the output tiles alone keep every executor busy twice over (M·N ≥ 2 ×
    executors): it reads and writes half the tiles of the tree and runs K − 1 fewer tasks per output
    tile.  Otherwise ``gemm``, whose tree over k gives K products per output tile at once (a tall inner
    dimension with few output tiles would leave executors idle along a chain).
    """
    return gemm_chain if M * N >= 2 * max(1, executors) else gemm
