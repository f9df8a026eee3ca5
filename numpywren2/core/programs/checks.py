"""Checks of a matrix argument that run in the executors before an algorithm that relies on them."""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import asymmetry, copy, diagonal_of, first_asymmetry, require_symmetric


@lp.program
def check_symmetric(A: lp.Matrix, Diag: lp.Matrix, F: lp.Matrix, H: lp.Matrix, Verdict: lp.Matrix, N: int,
                    BS: int):
    """Fail, naming the first asymmetric tile pair, unless A (N×N grid of BS×BS tiles) is symmetric.

    Diag[i, 0] is the diagonal of tile row i (the scale of the tolerance, see ``kernels.asymmetry``).
    Tile (i, j) of the lower triangle is compared with the transpose of tile (j, i) (a diagonal tile
    with its own transpose) into a report F[i, j, 0]; the reports of tile column j are reduced down a
    binary tree over i (F[i, j, level], node i with i + 2**level), whose root is H[j, 0]; those are
    reduced up a binary tree over j (H[j, level]). Each merge keeps the first bad pair in column-major
    order, so the root names the same tile pair whatever order the tasks ran in, and ``Verdict``
    raises from it.
    """
    for i in range(N):
        Diag[i, 0] = diagonal_of(A[i, i])
    for j in range(N):
        d = ceil(log2(N - j))
        for i in range(j, N):
            if d == 0:
                H[j, 0] = asymmetry(A[i, j], A[j, i], Diag[i, 0], Diag[j, 0], i, j, BS)
            else:
                F[i, j, 0] = asymmetry(A[i, j], A[j, i], Diag[i, 0], Diag[j, 0], i, j, BS)
        for level in range(d):
            for i in range(j, N, 2 ** (level + 1)):
                if i + 2**level < N:
                    if level == d - 1:
                        H[j, 0] = first_asymmetry(F[i, j, level], F[i + 2**level, j, level])
                    else:
                        F[i, j, level + 1] = first_asymmetry(F[i, j, level], F[i + 2**level, j, level])
                else:
                    F[i, j, level + 1] = copy(F[i, j, level])
    depth = ceil(log2(N))
    for level in range(depth):
        for j in range(0, N, 2 ** (level + 1)):
            if j + 2**level < N:
                H[j, level + 1] = first_asymmetry(H[j, level], H[j + 2**level, level])
            else:
                H[j, level + 1] = copy(H[j, level])
    Verdict[0, 0] = require_symmetric(H[0, depth])
