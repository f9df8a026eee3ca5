"""Matrix norms as reductions, and the diagonal scalings of the pseudo-inverse and least squares.

``column_norms`` and ``row_norms`` write one float64 partial result per tile and add them up binary
trees (``sum_tree``) over the tile rows (a 1×n row of column sums) or the tile columns (an m×1 column
of row sums): the 1-, inf- and Frobenius norms are the largest (smallest, for -1 and -inf) entry or the
square root of the sum of that row or column, O(m + n) numbers read by the client.
"""

import lambdapack as lp
from numpywren2.core.kernels import column_parts, pivoted_qr, row_abs_sums, scale_rows, scaled_transpose

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


@lp.program
def scale_rows_by(D: lp.Matrix, A: lp.Matrix, X: lp.Matrix, M: int, N: int):
    """X = diag(d) A, for A on an M×N grid and the column d in D (tiled like A's rows, one tile column)."""
    for i in range(M):
        for j in range(N):
            X[i, j] = scale_rows(D[i, 0], A[i, j])


@lp.program
def scaled_transpose_of(D: lp.Matrix, U: lp.Matrix, W: lp.Matrix, M: int, N: int):
    """W = diag(d) Uᵀ, for U on an M×N grid and the column d in D (tiled like U's columns)."""
    for i in range(M):
        for j in range(N):
            W[j, i] = scaled_transpose(D[j, 0], U[i, j])


@lp.program
def pivoted_qr_of(R: lp.Matrix, Q: lp.Matrix, Rp: lp.Matrix, P: lp.Matrix):
    """Q Rp = R[:, P] with |Rp_kk| non-increasing (LAPACK ``geqp3``), R a single k×n tile: one task."""
    Q[0, 0], Rp[0, 0], P[0, 0] = pivoted_qr(R[0, 0])
