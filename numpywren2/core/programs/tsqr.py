"""Tall-skinny QR: a binary tree of QR factorizations over one block column."""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import copy, identity, matmul, qr_factor, qr_pair


@lp.program
def tsqr_up(A: lp.Matrix, Y: lp.Matrix, Yb: lp.Matrix, Rt: lp.Matrix, N: int):
    """Up-sweep of TSQR for A on an N×1 grid: leaf QRs, then R factors merged pairwise.

    Rt[i, level] is the R of tree node (i, level), Y and Yb the Q factors of a merge (top and
    bottom halves); a node without a partner moves up with a copy. The final R is
    Rt[0, ceil(log2(N))].
    """
    depth = ceil(log2(N))
    for i in range(N):
        Y[i, 0], Rt[i, 0] = qr_factor(A[i, 0])
    for level in range(depth):
        for i in range(0, N, 2 ** (level + 1)):
            if i + 2**level < N:
                Y[i, level + 1], Yb[i, level + 1], Rt[i, level + 1] = qr_pair(Rt[i, level], Rt[i + 2**level, level])
            else:
                Rt[i, level + 1] = copy(Rt[i, level])


@lp.program
def tsqr_down(Y: lp.Matrix, Yb: lp.Matrix, Rt: lp.Matrix, C: lp.Matrix, Q: lp.Matrix, N: int):
    """Down-sweep of TSQR: C[i, level] maps the tree's Q factors back to the leaves, Q[i, 0] = Y[i, 0] @ C[i, 0]."""
    depth = ceil(log2(N))
    C[0, depth] = identity(Rt[0, depth])
    for level in range(depth - 1, -1, -1):
        for i in range(0, N, 2 ** (level + 1)):
            if i + 2**level < N:
                C[i, level] = matmul(Y[i, level + 1], C[i, level + 1])
                C[i + 2**level, level] = matmul(Yb[i, level + 1], C[i, level + 1])
            else:
                C[i, level] = copy(C[i, level + 1])
    for i in range(N):
        Q[i, 0] = matmul(Y[i, 0], C[i, 0])


@lp.program
def tsqr(A: lp.Matrix, Q: lp.Matrix, R: lp.Matrix, Y: lp.Matrix, Yb: lp.Matrix, Rt: lp.Matrix,
         C: lp.Matrix, N: int):
    """A = Q R for A on an N×1 grid of tiles (any N ≥ 1): ``tsqr_up``, R[0, 0], ``tsqr_down``.

    The tree has height ceil(log2(N)); R[0, 0] is the final R.
    """
    tsqr_up(A, Y, Yb, Rt, N)
    R[0, 0] = copy(Rt[0, ceil(log2(N))])
    tsqr_down(Y, Yb, Rt, C, Q, N)


# The longest chain, d = ceil(log2(N)): a leaf QR, d merges up (qr_pair at node 0), the root's
# identity, d matmuls down and the leaf's matmul: 2d + 3 tasks, 2b³ + 4b³ d + 2b³ d + 2b³ flops
# (checked in tests/test_cost.py).
tsqr.critical_path_formula = {
    "tasks": "Piecewise((2*ceil_log2(N) + 3, N >= 1), (0, True))",
    "flops": "Piecewise(((6*ceil_log2(N) + 4)*b**3, N >= 1), (0, True))",
}
