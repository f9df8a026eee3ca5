"""Tiled LU (square or rectangular) with tournament pivoting (CALU: TSLU panels), row permutations, and the LU solve.

The representation of a step's row permutation across tiles (factor tiles, candidate tiles) is
described in ``numpywren2.core.kernels.lu``; the algorithm and its task count in
``docs/algorithms.md``.
"""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import (
    add,
    add_solve_unit_lower,
    add_tail,
    copy,
    lu_diagonal,
    lu_last_diagonal,
    lu_panel,
    lu_pivots,
    lu_update,
    permuted_rows,
    pick_rows,
    settled_rows,
    solve_settled_rows,
    swap_rows,
    tslu_leaf,
    tslu_merge,
    tslu_root,
    tslu_tile,
    unit_lower_of,
    upper_of,
    zeros_like,
)

from .trees import sum_tree
from .triangular import trsm_backward, trsm_forward


@lp.program
def lu(A: lp.Matrix, LU: lp.Matrix, P: lp.Matrix, S: lp.Matrix, C: lp.Matrix, D: lp.Matrix, G: lp.Matrix,
       MT: int, NT: int, BS: int, ZERO_PIVOTS: int):
    """P A = L U for an M×N A on an MT×NT grid of BS×BS tiles (the last ones may be smaller), as getrf.

    LU (M×N) receives L\\U packed as LAPACK does (L unit lower, its rows in their final order). P (a
    2×K float64 matrix of 2×BS tiles, K = min(M, N)) receives per step k the global rows of A's current
    rows that step k moves into tile row k, in order (row 0), and U's diagonal (row 1). An exactly zero
    pivot raises (ZERO_PIVOTS = 0) or is kept, as getrf keeps it (1).

    S[i, j, k]: tile (i, j) at the start of step k — of the trailing matrix for j ≥ k, of L (rows in the
    order of step k) for j < k; step 0 is A. Step k < min(MT, NT): a tournament over the panel (C[k, t,
    level]: candidate tiles, t the tile row - k) gives the factor tile D[k, 0]; every other tile column
    gathers its new tile row k up a tree of picked rows (G[k, j, t, level]) — solved by L_kk into U for
    j > k, final rows of L for j < k — and its tiles below are swapped (j < k), or swapped and updated
    by the GEMM of step k (j > k); the panel's tiles below become L's. A tall matrix's last step
    (k = NT - 1) writes the tiles below tile row k as final tiles of L; its tile row k may have more
    rows than pivots, and a wide matrix's last tile row fewer (``numpywren2.core.kernels.lu``).
    """
    S[:, :, 0] = A
    for k in range(min(MT, NT)):
        depth = ceil(log2(max(MT - k, 1)))  # max: symbolic counts evaluate every case of min(MT, NT)
        for t in range(MT - k):
            if k < MT - 1:
                C[k, t, 0] = tslu_leaf(S[k + t, k, k], (k + t) * BS)
        for level in range(depth):
            for t in range(0, MT - k, 2 ** (level + 1)):
                if level == depth - 1:
                    D[k, 0] = tslu_root(C[k, 0, level], C[k, 2**level, level], k * BS, ZERO_PIVOTS)
                elif t + 2**level < MT - k:
                    C[k, t, level + 1] = tslu_merge(C[k, t, level], C[k, t + 2**level, level])
                else:
                    C[k, t, level + 1] = copy(C[k, t, level])
        if k == MT - 1:
            D[k, 0] = tslu_tile(S[k, k, k], k * BS, k * BS, ZERO_PIVOTS)
        if k == NT - 1:
            LU[k, k] = lu_last_diagonal(D[k, 0], S[k, k, k], k * BS)
        else:
            LU[k, k] = lu_diagonal(D[k, 0])
        P[0, k] = lu_pivots(D[k, 0])
        for i in range(k + 1, MT):
            if k == NT - 1:
                LU[i, k] = lu_panel(S[i, k, k], S[k, k, k], D[k, 0], k * BS, i * BS)
            else:
                S[i, k, k + 1] = lu_panel(S[i, k, k], S[k, k, k], D[k, 0], k * BS, i * BS)
        for j in range(NT):
            if j != k:
                for t in range(MT - k):
                    if k == MT - 1 and j < k:
                        LU[k, j] = settled_rows(S[k, j, k], D[k, 0], k * BS)
                    elif k == MT - 1:
                        LU[k, j] = solve_settled_rows(S[k, j, k], D[k, 0], k * BS)
                    else:
                        G[k, j, t, 0] = pick_rows(S[k + t, j, k], D[k, 0], k * BS, (k + t) * BS)
                for level in range(depth):
                    for t in range(0, MT - k, 2 ** (level + 1)):
                        if level == depth - 1 and j < k and k == NT - 1:
                            LU[k, j] = add_tail(G[k, j, 0, level], G[k, j, 2**level, level], S[k, j, k], D[k, 0],
                                                k * BS)
                        elif level == depth - 1 and j < k:
                            LU[k, j] = add(G[k, j, 0, level], G[k, j, 2**level, level])
                        elif level == depth - 1:
                            LU[k, j] = add_solve_unit_lower(G[k, j, 0, level], G[k, j, 2**level, level], D[k, 0])
                        elif t + 2**level < MT - k:
                            G[k, j, t, level + 1] = add(G[k, j, t, level], G[k, j, t + 2**level, level])
                        else:
                            G[k, j, t, level + 1] = copy(G[k, j, t, level])
                for i in range(k + 1, MT):
                    if j < k and k == NT - 1:
                        LU[i, j] = swap_rows(S[i, j, k], S[k, j, k], D[k, 0], k * BS, i * BS)
                    elif j < k:
                        S[i, j, k + 1] = swap_rows(S[i, j, k], S[k, j, k], D[k, 0], k * BS, i * BS)
                    else:
                        S[i, j, k + 1] = lu_update(S[i, j, k], S[k, j, k], D[k, 0], S[i, k, k + 1], LU[k, j],
                                                   k * BS, i * BS)


@lp.program
def permute_rows(B: lp.Matrix, Perm: lp.Matrix, X: lp.Matrix, T: lp.Matrix, N: int, C: int, BS: int):
    """X = B[p] for B on an N×C grid of tiles BS rows high, p a permutation of its rows.

    Perm is 1×(rows of B) tiled in 1×BS: tile (0, i) lists the source rows of X's tile row i. Each tile
    of X is the sum, up a binary tree (``sum_tree``), of the rows every tile of its column contributes
    (``permuted_rows``: exact, the contributions are disjoint and the rest zeros).
    """
    for i in range(N):
        for c in range(C):
            for t in range(N):
                if N == 1:
                    X[i, c] = permuted_rows(B[t, c], Perm[0, i], t * BS)
                else:
                    T[i, c, t, 0] = permuted_rows(B[t, c], Perm[0, i], t * BS)
            sum_tree(T[i, c, :, :], X[i:, c:], N)


@lp.program
def lu_solve(LU: lp.Matrix, B: lp.Matrix, Perm: lp.Matrix, X: lp.Matrix, W: lp.Matrix, Y: lp.Matrix,
             T: lp.Matrix, F: lp.Matrix, H: lp.Matrix, N: int, C: int, TRANS: int, BS: int):
    """Solve A X = B (TRANS=0) or Aᵀ X = B (TRANS=1) from the packed factors LU of P A = L U.

    TRANS=0: W = P B (Perm: the rows of B in the order of P A), L Y = W, U X = Y.
    TRANS=1: Uᵀ Y = B, Lᵀ W = Y, X = Pᵀ W (Perm: the inverse permutation).
    """
    if TRANS == 0:
        permute_rows(B, Perm, W, T, N, C, BS)
        trsm_forward(LU, W, Y, F, N, C, 0, 1, BS)
        trsm_backward(LU, Y, X, H, N, C, 0, 0, BS)
    else:
        trsm_forward(LU, B, Y, F, N, C, 1, 0, BS)
        trsm_backward(LU, Y, W, H, N, C, 1, 1, BS)
        permute_rows(W, Perm, X, T, N, C, BS)


@lp.program
def lu_split(LU: lp.Matrix, L: lp.Matrix, U: lp.Matrix, MT: int, NT: int, K: int, BS: int):
    """L (M×K, unit lower) and U (K×N, upper) from a packed M×N LU on an MT×NT grid, K = min(M, N), every
    tile written (zeros in L above its diagonal and in U below: later jobs may read any tile, e.g. to
    permute L's rows). L has min(MT, NT) tile columns and U as many tile rows."""
    for i in range(MT):
        if i < min(MT, NT):
            L[i, i] = unit_lower_of(LU[i, i])
        for j in range(min(i, NT)):
            L[i, j] = copy(LU[i, j])
        for j in range(i + 1, min(MT, NT)):
            L[i, j] = zeros_like(LU[i, j], BS, K - j * BS)
    for i in range(min(MT, NT)):
        U[i, i] = upper_of(LU[i, i])
        for j in range(i):
            U[i, j] = zeros_like(LU[i, j], K - i * BS, BS)
        for j in range(i + 1, NT):
            U[i, j] = copy(LU[i, j])
