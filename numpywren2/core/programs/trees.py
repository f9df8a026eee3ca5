"""Binary reduction trees shared by the algorithms."""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import add, copy, hstack


@lp.program
def sum_tree(T: lp.Matrix, Out: lp.Matrix, N: int):
    """Out[0, 0] = T[0, 0] + T[1, 0] + ... + T[N - 1, 0] up a binary tree (N ≥ 2; N = 1 writes nothing).

    T[node, level] is a node of the tree: level 0 holds the N terms (the caller writes them),
    and node i of level + 1 is the sum of nodes i and i + 2**level; a node without a partner
    moves up with a copy, and the root goes to Out. Pass views, e.g. ``sum_tree(T[i, j, :, :],
    C[i:, j:], K)`` for the K partial products of tile C[i, j].
    """
    depth = ceil(log2(N))
    for level in range(depth):
        for node in range(0, N, 2 ** (level + 1)):
            if level == depth - 1:
                Out[0, 0] = add(T[node, level], T[node + 2**level, level])
            elif node + 2**level < N:
                T[node, level + 1] = add(T[node, level], T[node + 2**level, level])
            else:
                T[node, level + 1] = copy(T[node, level])


@lp.program
def hstack_tree(H: lp.Matrix, N: int):
    """H[0, ceil(log2(N))] = the N pieces H[0, 0] .. H[N - 1, 0] side by side, up a binary tree of ``hstack``.

    Node k of level + 1 joins nodes k and k + 2**level; a node without a partner moves up with a copy
    (N = 1 writes nothing: the root is H[0, 0]). The band programs gather a band's storage so.
    """
    for level in range(ceil(log2(N))):
        for k in range(0, N, 2 ** (level + 1)):
            if k + 2**level < N:
                H[k, level + 1] = hstack(H[k, level], H[k + 2**level, level])
            else:
                H[k, level + 1] = copy(H[k, level])
