"""Tall-skinny QR: a binary tree of Householder QR factorizations over one block column.

The reflectors are kept in compact WY form (docs/kernels.md): the leaves' V and T from ``geqrt``,
each merge's from ``stacked_qrt`` (V split by tile into Y, the top tile's rows, and Yb, the bottom
tile's). Q is formed by a down-sweep that applies them, root first, to the columns of an identity.
"""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import copy, form_q, form_q_pair, geqrt, identity, stacked_qrt


@lp.program
def tsqr_up(A: lp.Matrix, Y: lp.Matrix, Yb: lp.Matrix, T: lp.Matrix, Rt: lp.Matrix, N: int):
    """Up-sweep of TSQR for A on an N×1 grid: leaf QRs, then R factors merged pairwise.

    Rt[i, level] is the R of tree node (i, level); Y[i, level] (and, for a merge, Yb[i, level]) and
    T[i, level] its reflectors; a node without a partner moves up with a copy of its R. The final R
    is Rt[0, ceil(log2(N))].
    """
    depth = ceil(log2(N))
    for i in range(N):
        Y[i, 0], T[i, 0], Rt[i, 0] = geqrt(A[i, 0])
    for level in range(depth):
        for i in range(0, N, 2 ** (level + 1)):
            if i + 2**level < N:
                Y[i, level + 1], Yb[i, level + 1], T[i, level + 1], Rt[i, level + 1] = stacked_qrt(
                    Rt[i, level], Rt[i + 2**level, level])
            else:
                Rt[i, level + 1] = copy(Rt[i, level])


@lp.program
def tsqr_down(Y: lp.Matrix, Yb: lp.Matrix, T: lp.Matrix, Rt: lp.Matrix, C: lp.Matrix, Q: lp.Matrix, N: int):
    """Down-sweep of TSQR: C[i, level] (as many rows as node (i, level)'s R) is the node's block of the tree's
    Q, from the root's identity down; Q[i, 0] = Q_i [C[i, 0]; 0], Q_i the leaf's orthogonal factor."""
    depth = ceil(log2(N))
    C[0, depth] = identity(Rt[0, depth])
    for level in range(depth - 1, -1, -1):
        for i in range(0, N, 2 ** (level + 1)):
            if i + 2**level < N:
                C[i, level], C[i + 2**level, level] = form_q_pair(Y[i, level + 1], Yb[i, level + 1],
                                                                  T[i, level + 1], C[i, level + 1])
            else:
                C[i, level] = copy(C[i, level + 1])
    for i in range(N):
        Q[i, 0] = form_q(Y[i, 0], T[i, 0], C[i, 0])


@lp.program
def tsqr(A: lp.Matrix, Q: lp.Matrix, R: lp.Matrix, Y: lp.Matrix, Yb: lp.Matrix, T: lp.Matrix, Rt: lp.Matrix,
         C: lp.Matrix, N: int):
    """A = Q R for A on an N×1 grid of tiles (any N ≥ 1, tiles of any height): ``tsqr_up``, R[0, 0], ``tsqr_down``.

    The tree has height ceil(log2(N)); R[0, 0] is the final R.
    """
    tsqr_up(A, Y, Yb, T, Rt, N)
    R[0, 0] = copy(Rt[0, ceil(log2(N))])
    tsqr_down(Y, Yb, T, Rt, C, Q, N)


# The longest chain, d = ceil(log2(N)): the leaf QR of tile 0 (geqrt, 4b³/3), the d merges up at node 0
# (stacked_qrt of two b×b R factors, 4b³ each), the root's identity, the d merges down at node 0
# (form_q_pair, 8b³ each) and the leaf's form_q (2b³): 2d + 3 tasks and (12d + 10/3) b³ flops.  Node 0
# merges at every level, so no chain is longer or heavier (checked against the unrolled graph in
# tests/test_cost.py).
tsqr.critical_path_formula = {
    "tasks": "Piecewise((2*ceil_log2(N) + 3, N >= 1), (0, True))",
    "flops": "Piecewise(((12*ceil_log2(N) + 10/3)*b**3, N >= 1), (0, True))",
}
