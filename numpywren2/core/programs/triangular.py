"""Triangular solves, the SPD solve through Cholesky and the SPD inverse, as tiled substitutions.

A right-looking substitution: once block row i of the solution is known (a solve with the
diagonal tile), every later block row r of the right-hand side is updated with one GEMM,
``F[r, c, ·] -= op(T)[r, i] @ X[i, c]``. Each tile of the right-hand side is thus a chain
of updates, one per earlier block row, as in LAPACK's blocked ``trsm``; the block rows of
different columns ``c`` are independent.
"""

import lambdapack as lp
from numpywren2.core.kernels import gemm_tn_add, gemm_update, matmul_tn, neg_matmul, transpose, trsm_left, trtri_lower

from .cholesky import cholesky


@lp.program
def trsm_forward(T: lp.Matrix, B: lp.Matrix, X: lp.Matrix, F: lp.Matrix, N: int, C: int, TRANS: int, UNIT: int,
                 BS: int):
    """Solve op(T) X = B where op(T) is lower triangular: T lower (TRANS=0) or T upper, transposed (TRANS=1).

    T on an N×N grid of BS×BS tiles (its other triangle is never read), B and X on N×C.
    F[r, c, i]: tile (r, c) of the right-hand side after the updates of block rows < i;
    step 0 of F is B (an alias).
    """
    F[:, :, 0] = B
    for i in range(N):
        for c in range(C):
            X[i, c] = trsm_left(T[i, i], F[i, c, i], 1 - TRANS, TRANS, UNIT, i, i * BS)
            for r in range(i + 1, N):
                if TRANS == 0:
                    F[r, c, i + 1] = gemm_update(F[r, c, i], T[r, i], X[i, c], 0)
                else:
                    F[r, c, i + 1] = gemm_update(F[r, c, i], T[i, r], X[i, c], 1)


@lp.program
def trsm_backward(T: lp.Matrix, B: lp.Matrix, X: lp.Matrix, F: lp.Matrix, N: int, C: int, TRANS: int, UNIT: int,
                  BS: int):
    """Solve op(T) X = B where op(T) is upper triangular: T upper (TRANS=0) or T lower, transposed (TRANS=1).

    T on an N×N grid of BS×BS tiles, X on N×C; B on (at least) N×C — when B has more rows
    than T (a least-squares right-hand side Qᵀb), only its first rows are used.
    F[r, c, i]: tile (r, c) of the right-hand side after the updates of block rows ≥ i;
    step N of F is B (an alias).
    """
    F[:, :, N] = B
    for i in range(N - 1, -1, -1):
        for c in range(C):
            X[i, c] = trsm_left(T[i, i], F[i, c, i + 1], TRANS, TRANS, UNIT, i, i * BS)
            for r in range(i):
                if TRANS == 0:
                    F[r, c, i] = gemm_update(F[r, c, i + 1], T[r, i], X[i, c], 0)
                else:
                    F[r, c, i] = gemm_update(F[r, c, i + 1], T[i, r], X[i, c], 1)


@lp.program
def posv(A: lp.Matrix, B: lp.Matrix, X: lp.Matrix, L: lp.Matrix, S: lp.Matrix, Y: lp.Matrix, F: lp.Matrix,
         G: lp.Matrix, N: int, C: int, BS: int):
    """Solve A X = B for symmetric positive definite A (N×N grid, lower triangle read), B on N×C.

    A = L Lᵀ (``cholesky``), then L Y = B forward and Lᵀ X = Y backward; the solves start on
    each block row as soon as its tiles of L exist (no barrier between the phases). F and G
    are the right-hand sides of the two substitutions.
    """
    cholesky(A, L, S, N)
    trsm_forward(L, B, Y, F, N, C, 0, 0, BS)
    trsm_backward(L, Y, X, G, N, C, 1, 0, BS)


@lp.program
def spd_inverse(A: lp.Matrix, X: lp.Matrix, L: lp.Matrix, S: lp.Matrix, W: lp.Matrix, P: lp.Matrix,
                Z: lp.Matrix, N: int, BS: int):
    """X = A⁻¹ for symmetric positive definite A on an N×N grid (lower triangle read), as LAPACK's potri.

    A = L Lᵀ (``cholesky``); W = L⁻¹ (lower triangular, column by column: P[i, j, p] is
    tile (i, j) of the right-hand side after block rows < p); then X = Wᵀ W, whose lower
    tiles are chains of products over p ≥ i (Z[i, j, p] the partial sums) and whose upper
    tiles are their transposes. About n³ flops, like LAPACK.
    """
    cholesky(A, L, S, N)
    for j in range(N):
        for p in range(j, N):
            if p == j:
                W[p, j] = trtri_lower(L[p, p], p, p * BS)
            else:
                W[p, j] = trsm_left(L[p, p], P[p, j, p], 1, 0, 0, p, p * BS)
            for i in range(p + 1, N):
                if p == j:
                    P[i, j, p + 1] = neg_matmul(L[i, p], W[p, j])
                else:
                    P[i, j, p + 1] = gemm_update(P[i, j, p], L[i, p], W[p, j], 0)
    for i in range(N):
        for j in range(i + 1):
            for p in range(i, N):
                if p == i and p == N - 1:
                    X[i, j] = matmul_tn(W[p, i], W[p, j])
                elif p == i:
                    Z[i, j, p] = matmul_tn(W[p, i], W[p, j])
                elif p == N - 1:
                    X[i, j] = gemm_tn_add(Z[i, j, p - 1], W[p, i], W[p, j])
                else:
                    Z[i, j, p] = gemm_tn_add(Z[i, j, p - 1], W[p, i], W[p, j])
        for j in range(i):
            X[j, i] = transpose(X[i, j])


@lp.program
def transpose_lower(L: lp.Matrix, U: lp.Matrix, N: int):
    """U = Lᵀ for a lower-triangular L on an N×N grid: only the tiles on and below L's diagonal are read
    (those above are zero and never written, and U's below its diagonal stay unwritten)."""
    for i in range(N):
        for j in range(i + 1):
            U[j, i] = transpose(L[i, j])
