"""Programs of the symmetric eigenproblem: the two-sided reduction of a symmetric matrix to band form, the
eigenvalues of that band in one task, and its eigenvectors (``sym_band_eigenvectors``).

The eigenvectors are back-transformed by ``apply_reflectors`` (``programs.svd``) with ``OFF = 1``: the
reflectors this reduction keeps are indexed as the band SVD's right-hand (LQ) ones.
"""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import (
    copy,
    gemlqt,
    gemqrt,
    geqrt,
    lower_band_columns,
    lower_band_columns_before,
    matmul,
    row_block,
    symmetric_band_eigenvalues_of,
    symmetric_band_tridiagonal_of,
    symmetrized,
    transpose,
    tridiagonal_eigenvectors,
    ttmlqt,
    ttmqrt,
    ttqrt,
)

from .trees import hstack_tree


@lp.program
def sym_band_reduction(A: lp.Matrix, B: lp.Matrix, S: lp.Matrix, W: lp.Matrix, X: lp.Matrix, Vq: lp.Matrix,
                       Tq: lp.Matrix, Rq: lp.Matrix, N: int, LOWER: int):
    """A = Q B Qᵀ with B symmetric banded (lower bandwidth one tile), for a symmetric A on N×N square tiles.

    Only one triangle of A is read, the lower one if LOWER = 1 (as LAPACK's ``uplo``): step 0 of S is
    the symmetric matrix it defines (the diagonal tiles ``symmetrized``, the other triangle's tiles the
    transposes of their mirrors).

    Step k factors the panel below the diagonal tile, tile column k rows k+1..N-1, by a TSQR tree
    (leaves ``geqrt``, nodes ``ttqrt``; node i merges with i + 2**level, a node without partner moves up
    with a copy), applies its Qᵀ from the left to the trailing tile columns k+1..N-1 (``gemqrt`` at the
    leaves, ``ttmqrt`` at the nodes) and then the same Q from the right to the trailing tile rows, over
    the same tree on tile columns (``gemlqt``, ``ttmlqt``): the trailing matrix becomes Qᵀ A₂₂ Q.  Both
    sides are updated in full (every trailing tile, not one triangle).

    B[k, k] is the diagonal tile after step k-1 (final then), B[k+1, k] the R of step k (upper
    triangular); B holds the lower band only.  S[i, j, s] is tile (i, j) after s half-steps (2k+1 after
    the left update of step k, 2k+2 after the right one); W[i, j, k, level] and X[i, j, k, level] are
    tiles inside the left and right trees; Rq the triangles moving up the tree.  (Vq, Tq)[i, k, level]
    hold the reflectors in compact WY form, indexed by tile row i: H_k of ``apply_reflectors`` with
    OFF = 1.
    """
    for i in range(N):
        for j in range(N):
            if i == j:
                S[i, i, 0] = symmetrized(A[i, i], LOWER)
            elif (i > j and LOWER == 1) or (i < j and LOWER == 0):
                S[i, j, 0] = copy(A[i, j])
            else:
                S[i, j, 0] = transpose(A[j, i])
    for k in range(N):
        B[k, k] = copy(S[k, k, 2 * k])
        if k < N - 1:
            dq = ceil(log2(max(N - k - 1, 1)))  # max: the analysis may evaluate it before the guard
            # ---- QR of the panel, Qᵀ applied from the left to tile columns k+1..N-1
            for i in range(k + 1, N):
                if dq == 0:
                    Vq[i, k, 0], Tq[i, k, 0], B[k + 1, k] = geqrt(S[i, k, 2 * k])
                    for j in range(k + 1, N):
                        S[i, j, 2 * k + 1] = gemqrt(Vq[i, k, 0], Tq[i, k, 0], S[i, j, 2 * k], 1)
                else:
                    Vq[i, k, 0], Tq[i, k, 0], Rq[i, k, 0] = geqrt(S[i, k, 2 * k])
                    for j in range(k + 1, N):
                        W[i, j, k, 0] = gemqrt(Vq[i, k, 0], Tq[i, k, 0], S[i, j, 2 * k], 1)
            for level in range(dq):
                for i in range(k + 1, N, 2 ** (level + 1)):
                    if i + 2**level < N:
                        if level == dq - 1:
                            Vq[i, k, level + 1], Tq[i, k, level + 1], B[k + 1, k] = ttqrt(
                                Rq[i, k, level], Rq[i + 2**level, k, level])
                            for j in range(k + 1, N):
                                S[i, j, 2 * k + 1], S[i + 2**level, j, 2 * k + 1] = ttmqrt(
                                    Vq[i, k, level + 1], Tq[i, k, level + 1], W[i, j, k, level],
                                    W[i + 2**level, j, k, level], 1)
                        else:
                            Vq[i, k, level + 1], Tq[i, k, level + 1], Rq[i, k, level + 1] = ttqrt(
                                Rq[i, k, level], Rq[i + 2**level, k, level])
                            for j in range(k + 1, N):
                                W[i, j, k, level + 1], S[i + 2**level, j, 2 * k + 1] = ttmqrt(
                                    Vq[i, k, level + 1], Tq[i, k, level + 1], W[i, j, k, level],
                                    W[i + 2**level, j, k, level], 1)
                    else:
                        Rq[i, k, level + 1] = copy(Rq[i, k, level])
                        for j in range(k + 1, N):
                            W[i, j, k, level + 1] = copy(W[i, j, k, level])
            # ---- the same Q applied from the right to tile rows k+1..N-1, the tree over tile columns
            for j in range(k + 1, N):
                for i in range(k + 1, N):
                    if dq == 0:
                        S[i, j, 2 * k + 2] = gemlqt(Vq[j, k, 0], Tq[j, k, 0], S[i, j, 2 * k + 1])
                    else:
                        X[i, j, k, 0] = gemlqt(Vq[j, k, 0], Tq[j, k, 0], S[i, j, 2 * k + 1])
            for level in range(dq):
                for j in range(k + 1, N, 2 ** (level + 1)):
                    if j + 2**level < N:
                        for i in range(k + 1, N):
                            if level == dq - 1:
                                S[i, j, 2 * k + 2], S[i, j + 2**level, 2 * k + 2] = ttmlqt(
                                    Vq[j, k, level + 1], Tq[j, k, level + 1], X[i, j, k, level],
                                    X[i, j + 2**level, k, level])
                            else:
                                X[i, j, k, level + 1], S[i, j + 2**level, 2 * k + 2] = ttmlqt(
                                    Vq[j, k, level + 1], Tq[j, k, level + 1], X[i, j, k, level],
                                    X[i, j + 2**level, k, level])
                    else:
                        for i in range(k + 1, N):
                            X[i, j, k, level + 1] = copy(X[i, j, k, level])


@lp.program
def sym_band_eigenvalues(B: lp.Matrix, W: lp.Matrix, H: lp.Matrix, N: int, BS: int):
    """W[0, 0] (1×n) = the eigenvalues, ascending, of the symmetric band matrix whose lower band
    ``sym_band_reduction`` wrote to B (half-bandwidth BS, the tile size; tiles B[k, k] and B[k+1, k]).

    Each tile column's lower band storage (H[k, 0], BS+1 rows) is cut from its two tiles, the pieces put
    together up a binary tree of ``hstack`` (node k merges with k + 2**level, a node without partner
    moves up with a copy), and one task computes the eigenvalues of the whole band
    (``symmetric_band_eigenvalues_of``: bandwidth halving, then LAPACK ``sbevd`` on the narrow band).
    """
    d = ceil(log2(N))
    for k in range(N - 1):
        H[k, 0] = lower_band_columns_before(B[k, k], B[k + 1, k], BS)
    H[N - 1, 0] = lower_band_columns(B[N - 1, N - 1], BS)
    hstack_tree(H, N)
    W[0, 0] = symmetric_band_eigenvalues_of(H[0, d])


@lp.program
def sym_band_eigenvectors(B: lp.Matrix, W: lp.Matrix, Z: lp.Matrix, H: lp.Matrix, T: lp.Matrix, Q: lp.Matrix,
                          Qr: lp.Matrix, Zt: lp.Matrix, N: int, NC: int, BS: int, LO: int, R: int):
    """W (1×R, tiles 1×BS) and Z (n×R, BS×BS tiles) = the eigenpairs LO .. LO+R−1 (ascending) of the
    symmetric band matrix whose lower band ``sym_band_reduction`` wrote to B, NC = ⌈R/BS⌉.

    The band is gathered as in ``sym_band_eigenvalues`` (H); one task reduces it to tridiagonal form T and
    accumulates the orthogonal Q (n×n) of that reduction (``symmetric_band_tridiagonal_of``: halving passes
    and LAPACK ``sbtrd``); N tasks cut Q into row blocks Qr[i]; NC tasks compute the tridiagonal's
    eigenvectors of one block of BS indices each (Zt[j], n×BS, ``tridiagonal_eigenvectors``); N·NC tasks
    multiply Z[i, j] = Qr[i] Zt[j].  Every O(n³) step runs in tasks; nothing goes to the client but W.
    """
    d = ceil(log2(N))
    for k in range(N - 1):
        H[k, 0] = lower_band_columns_before(B[k, k], B[k + 1, k], BS)
    H[N - 1, 0] = lower_band_columns(B[N - 1, N - 1], BS)
    hstack_tree(H, N)
    T[0, 0], Q[0, 0] = symmetric_band_tridiagonal_of(H[0, d])
    for i in range(N):
        Qr[i, 0] = row_block(Q[0, 0], i, BS)
    for j in range(NC):
        W[0, j], Zt[j, 0] = tridiagonal_eigenvectors(T[0, 0], j, LO, R, BS)
    for i in range(N):
        for j in range(NC):
            Z[i, j] = matmul(Qr[i, 0], Zt[j, 0])
