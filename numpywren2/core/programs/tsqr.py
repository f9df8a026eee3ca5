"""Tall-skinny QR: a binary tree of QR factorizations over one block column."""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import copy, identity, matmul, qr_factor, qr_pair


@lp.program
def tsqr(A: lp.Matrix, Q: lp.Matrix, R: lp.Matrix, Y: lp.Matrix, Yb: lp.Matrix, Rt: lp.Matrix,
         C: lp.Matrix, N: int):
    """A = Q R for A on an N×1 grid of tiles (any N ≥ 1).

    Up-sweep: leaf QRs, then R factors merged pairwise up a tree of height
    ceil(log2(N)); a node without a partner moves up with a copy.  Down-sweep:
    C[i, level] maps the tree's Q factors back to the leaves, and
    Q[i, 0] = Y[i, 0] @ C[i, 0].  R[0, 0] is the final R.
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
    R[0, 0] = copy(Rt[0, depth])
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
