"""Matrix norms as reductions.

``column_norms`` and ``row_norms`` write one float64 partial result per tile and add them up binary
trees (``sum_tree``) over the tile rows (a 1×n row of column sums) or the tile columns (an m×1 column
of row sums): the 1-, inf- and Frobenius norms are the largest (smallest, for -1 and -inf) entry or the
square root of the sum of that row or column, O(m + n) numbers read by the client.
"""

import lambdapack as lp
from numpywren2.core.kernels import column_parts, row_abs_sums

from .trees import sum_tree


@lp.program
def column_norms(A: lp.Matrix, Out: lp.Matrix, T: lp.Matrix, M: int, N: int, KIND: int):
    """Out[0, j] (1 × tile width, float64) = the column sums of |A| (``KIND`` 0) or of A² (``KIND`` 1) over
    tile column j of A (an M×N grid); T[j, i, level] are the nodes of the tree over the tile rows."""
    for j in range(N):
        if M == 1:
            Out[0, j] = column_parts(A[0, j], KIND)
        else:
            for i in range(M):
                T[j, i, 0] = column_parts(A[i, j], KIND)
            sum_tree(T[j, :, :], Out[0:, j:], M)


@lp.program
def row_norms(A: lp.Matrix, Out: lp.Matrix, T: lp.Matrix, M: int, N: int):
    """Out[i, 0] (tile height × 1, float64) = the row sums of |A| over tile row i of A (an M×N grid);
    T[i, j, level] are the nodes of the tree over the tile columns."""
    for i in range(M):
        if N == 1:
            Out[i, 0] = row_abs_sums(A[i, 0])
        else:
            for j in range(N):
                T[i, j, 0] = row_abs_sums(A[i, j])
            sum_tree(T[i, :, :], Out[i:, 0:], N)
