"""Programs of the SVD: reduction to band form, its back-transformation, the tree-merged truncated SVD,
and the helpers of the randomized SVD and PCA (Aᵀ B, transpose, column centering)."""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import (
    add,
    add_and_divide,
    bidiagonal_vectors,
    center_tile,
    column_means,
    column_sums,
    copy,
    embedded_product,
    gelqt,
    gemlqt,
    gemqrt,
    gemqrt_transposed,
    geqrt,
    left_vectors_of,
    matmul,
    matmul_nt,
    matmul_tn,
    merge_left_svd,
    normal_tile,
    padded_row_block,
    right_vectors_of,
    row_block,
    singular_values_of,
    transpose,
    truncated_left_svd,
    ttlqt,
    ttmlqt,
    ttmqrt,
    ttqrt,
    upper_band_bidiagonal_of,
    upper_band_columns,
    upper_band_columns_after,
    upper_band_singular_values,
    vstack,
    zero_columns,
)

from .trees import hstack_tree, sum_tree
from .tsqr import tsqr_down, tsqr_up


@lp.program
def band_reduction(A: lp.Matrix, B: lp.Matrix, S: lp.Matrix, W: lp.Matrix, X: lp.Matrix, Vq: lp.Matrix,
                   Tq: lp.Matrix, Rq: lp.Matrix, Vl: lp.Matrix, Tl: lp.Matrix, Ll: lp.Matrix, M: int, N: int):
    """A = Q B Pᵀ with B upper banded (bandwidth one tile), for A on an M×N grid of square tiles, M ≥ N.

    Step k factors tile column k (rows k..M-1) by a TSQR tree and applies Qᵀ to the trailing tile
    columns, then factors tile row k (columns k+1..N-1) by an LQ tree and applies it from the right
    to the trailing tile rows.  B[k, k] is the R of step k, B[k, k+1] the L.

    S[i, j, s] is tile (i, j) after s half-steps (s = 2k+1 after the QR of step k, 2k+2 after its LQ);
    W[i, j, k, level] and X[i, j, k, level] are tiles inside the QR and LQ trees of step k.  A tree node
    i merges with i + 2**level; the partner's tile is then final and goes straight to S, and so does
    the root's at the last level.  (Vq, Tq)[i, k, level] and (Vl, Tl)[j, k, level] hold the Householder
    reflectors in compact WY form (kept when Q and P are wanted); Rq and Ll the triangles moving up the
    trees.  Step 0 of S is A.
    """
    S[:, :, 0] = A
    for k in range(N):
        dq = ceil(log2(M - k))
        # ---- QR of tile column k
        for i in range(k, M):
            if dq == 0:
                Vq[i, k, 0], Tq[i, k, 0], B[k, k] = geqrt(S[i, k, 2 * k])
            else:
                Vq[i, k, 0], Tq[i, k, 0], Rq[i, k, 0] = geqrt(S[i, k, 2 * k])
                for j in range(k + 1, N):
                    W[i, j, k, 0] = gemqrt(Vq[i, k, 0], Tq[i, k, 0], S[i, j, 2 * k], 1)
        for level in range(dq):
            for i in range(k, M, 2 ** (level + 1)):
                if i + 2**level < M:
                    if level == dq - 1:
                        Vq[i, k, level + 1], Tq[i, k, level + 1], B[k, k] = ttqrt(Rq[i, k, level],
                                                                                  Rq[i + 2**level, k, level])
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
        # ---- LQ of tile row k (columns k+1..N-1)
        if k < N - 1:
            dl = ceil(log2(max(N - k - 1, 1)))  # max: the analysis may evaluate it before the guard
            for j in range(k + 1, N):
                if dl == 0:
                    Vl[j, k, 0], Tl[j, k, 0], B[k, j] = gelqt(S[k, j, 2 * k + 1])
                    for i in range(k + 1, M):
                        S[i, j, 2 * k + 2] = gemlqt(Vl[j, k, 0], Tl[j, k, 0], S[i, j, 2 * k + 1])
                else:
                    Vl[j, k, 0], Tl[j, k, 0], Ll[j, k, 0] = gelqt(S[k, j, 2 * k + 1])
                    for i in range(k + 1, M):
                        X[i, j, k, 0] = gemlqt(Vl[j, k, 0], Tl[j, k, 0], S[i, j, 2 * k + 1])
            for level in range(dl):
                for j in range(k + 1, N, 2 ** (level + 1)):
                    if j + 2**level < N:
                        if level == dl - 1:
                            Vl[j, k, level + 1], Tl[j, k, level + 1], B[k, j] = ttlqt(Ll[j, k, level],
                                                                                      Ll[j + 2**level, k, level])
                            for i in range(k + 1, M):
                                S[i, j, 2 * k + 2], S[i, j + 2**level, 2 * k + 2] = ttmlqt(
                                    Vl[j, k, level + 1], Tl[j, k, level + 1], X[i, j, k, level],
                                    X[i, j + 2**level, k, level])
                        else:
                            Vl[j, k, level + 1], Tl[j, k, level + 1], Ll[j, k, level + 1] = ttlqt(
                                Ll[j, k, level], Ll[j + 2**level, k, level])
                            for i in range(k + 1, M):
                                X[i, j, k, level + 1], S[i, j + 2**level, 2 * k + 2] = ttmlqt(
                                    Vl[j, k, level + 1], Tl[j, k, level + 1], X[i, j, k, level],
                                    X[i, j + 2**level, k, level])
                    else:
                        Ll[j, k, level + 1] = copy(Ll[j, k, level])
                        for i in range(k + 1, M):
                            X[i, j, k, level + 1] = copy(X[i, j, k, level])


@lp.program
def gemm_tn(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, T: lp.Matrix, M: int, N: int, K: int):
    """C = Aᵀ B with A on a K×M grid of tiles and B on K×N (the products summed by ``sum_tree``, as gemm)."""
    for i in range(M):
        for j in range(N):
            if K == 1:
                C[i, j] = matmul_tn(A[0, i], B[0, j])
            else:
                for k in range(K):
                    T[i, j, k, 0] = matmul_tn(A[k, i], B[k, j])
                sum_tree(T[i, j, :, :], C[i:, j:], K)


@lp.program
def transpose_tiles(A: lp.Matrix, At: lp.Matrix, M: int, N: int):
    """At = Aᵀ for A on an M×N grid (At's tiles are the transposed tiles of A)."""
    for i in range(M):
        for j in range(N):
            At[j, i] = transpose(A[i, j])


@lp.program
def tree_svd(A: lp.Matrix, U: lp.Matrix, S: lp.Matrix, Vt: lp.Matrix, P: lp.Matrix, T: lp.Matrix,
             M: int, N: int, RANK: int, K: int, BR: int, ROWS: int, VEC: int):
    """Truncated SVD of A (M×N grid, tiles BR rows high, ROWS rows in all) by merging column blocks.

    Column block j (tile column j, all rows) is assembled from its tiles up a binary tree of vstacks
    (P[i, j, level]); its leading RANK left singular vectors, scaled by the singular values, are
    T[j, 0].  Pairs are merged up a binary tree over j: T[j, level + 1] holds U diag(s) of the leading
    RANK triplets of [T[j, level], T[j + 2**level, level]]; a node without partner moves up with a copy.
    From the root: S[0, 0] the first K singular values, U[i, 0] the rows of U in tile row i, and
    Vt[0, j] = diag(s)⁻¹ Uᵀ A[:, j] for each column block (U and Vt only if VEC = 1).  Level 0 of P is A.
    """
    P[:, :, 0] = A
    dm = ceil(log2(M))
    dn = ceil(log2(N))
    for j in range(N):
        for level in range(dm):
            for i in range(0, M, 2 ** (level + 1)):
                if i + 2**level < M:
                    P[i, j, level + 1] = vstack(P[i, j, level], P[i + 2**level, j, level])
                else:
                    P[i, j, level + 1] = copy(P[i, j, level])
        T[j, 0] = truncated_left_svd(P[0, j, dm], RANK)
    for level in range(dn):
        for j in range(0, N, 2 ** (level + 1)):
            if j + 2**level < N:
                T[j, level + 1] = merge_left_svd(T[j, level], T[j + 2**level, level], RANK)
            else:
                T[j, level + 1] = copy(T[j, level])
    S[0, 0] = singular_values_of(T[0, dn], K)
    if VEC == 1:
        for i in range(M):
            U[i, 0] = left_vectors_of(T[0, dn], i * BR, min(BR, ROWS - i * BR), K)
        for j in range(N):
            Vt[0, j] = right_vectors_of(T[0, dn], P[0, j, dm], K)


@lp.program
def center_columns(X: lp.Matrix, Xc: lp.Matrix, Mean: lp.Matrix, Sq: lp.Matrix, Cs: lp.Matrix, Ct: lp.Matrix,
                   M: int, N: int, ROWS: int):
    """Xc = X minus its column means, for X on an M×N grid with ROWS rows in all.

    Mean[0, j] (1 × tile width) is the mean of the columns of tile column j, reduced over tile rows up
    a binary tree of column sums (Cs[i, j, level]); Sq[0, j] the sums of squares of the centered
    columns (reduced the same way in Ct), whose total is (ROWS - 1) times the total variance.
    """
    depth = ceil(log2(M))
    for j in range(N):
        if M == 1:
            Mean[0, j] = column_means(X[0, j], ROWS)
            Xc[0, j], Sq[0, j] = center_tile(X[0, j], Mean[0, j])
        else:
            for i in range(M):
                Cs[i, j, 0] = column_sums(X[i, j])
            for level in range(depth):
                for i in range(0, M, 2 ** (level + 1)):
                    if level == depth - 1:
                        Mean[0, j] = add_and_divide(Cs[i, j, level], Cs[i + 2**level, j, level], ROWS)
                    elif i + 2**level < M:
                        Cs[i, j, level + 1] = add(Cs[i, j, level], Cs[i + 2**level, j, level])
                    else:
                        Cs[i, j, level + 1] = copy(Cs[i, j, level])
            for i in range(M):
                Xc[i, j], Ct[i, j, 0] = center_tile(X[i, j], Mean[0, j])
            sum_tree(Ct[:, j, :], Sq[:, j:], M)


@lp.program
def apply_reflectors(C: lp.Matrix, V: lp.Matrix, T: lp.Matrix, Out: lp.Matrix, G: lp.Matrix, Y: lp.Matrix,
                     R: int, NC: int, K: int, OFF: int, TRANS: int):
    """Out = H_0 H_1 ⋯ H_{K-1} C: the orthogonal factors of a band reduction applied to C (R×NC grid).

    H_k is the orthogonal factor of the TSQR tree of step k whose reflectors (V, T)[i, k, level] were kept
    by ``band_reduction`` (Vq, Tq for Q with OFF = 0; Vl, Tl for P with OFF = 1); it acts on tile rows
    k + OFF .. R-1.  The factors are applied in reverse (k = K-1 first), each as a down-sweep of its
    tree: root level first, then the leaves.  G[i, j, k] is tile (i, j) after H_k; Y[i, j, k, level]
    a tile inside the down-sweep of step k.  TRANS = 1 writes the transpose (Out[j, i] = tile (i, j)ᵀ).
    """
    G[:, :, K] = C  # "after H_K" is C itself
    for i in range(OFF):
        for j in range(NC):
            if TRANS == 1:
                Out[j, i] = transpose(C[i, j])
            else:
                Out[i, j] = copy(C[i, j])
    for k in range(K - 1, -1, -1):
        d = ceil(log2(max(R - k - OFF, 1)))  # max: the analysis may evaluate it for any k
        for level in range(d - 1, -1, -1):
            for i in range(k + OFF, R, 2 ** (level + 1)):
                if i + 2**level < R:
                    for j in range(NC):
                        if level == d - 1:
                            Y[i, j, k, level], Y[i + 2**level, j, k, level] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], C[i, j], G[i + 2**level, j, k + 1], 0)
                        else:
                            Y[i, j, k, level], Y[i + 2**level, j, k, level] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], Y[i, j, k, level + 1],
                                G[i + 2**level, j, k + 1], 0)
                else:
                    for j in range(NC):
                        Y[i, j, k, level] = copy(Y[i, j, k, level + 1])
        for i in range(k + OFF, R):
            for j in range(NC):
                if d == 0:
                    if k > 0:
                        G[i, j, k] = gemqrt(V[i, k, 0], T[i, k, 0], C[i, j], 0)
                    elif TRANS == 1:
                        Out[j, i] = gemqrt_transposed(V[i, k, 0], T[i, k, 0], C[i, j])
                    else:
                        Out[i, j] = gemqrt(V[i, k, 0], T[i, k, 0], C[i, j], 0)
                else:
                    if k > 0:
                        G[i, j, k] = gemqrt(V[i, k, 0], T[i, k, 0], Y[i, j, k, 0], 0)
                    elif TRANS == 1:
                        Out[j, i] = gemqrt_transposed(V[i, k, 0], T[i, k, 0], Y[i, j, k, 0])
                    else:
                        Out[i, j] = gemqrt(V[i, k, 0], T[i, k, 0], Y[i, j, k, 0], 0)


@lp.program
def randomized_range(A: lp.Matrix, Q: lp.Matrix, Qb: lp.Matrix, Rb: lp.Matrix,
                     Om: lp.Matrix, Ty: lp.Matrix, Yt: lp.Matrix, Fy: lp.Matrix, Fyb: lp.Matrix, Hy: lp.Matrix,
                     Ry: lp.Matrix, Cy: lp.Matrix, Qy: lp.Matrix, Tz: lp.Matrix, Zt: lp.Matrix, Fz: lp.Matrix,
                     Fzb: lp.Matrix, Hz: lp.Matrix, Rz: lp.Matrix, Cz: lp.Matrix, Qz: lp.Matrix,
                     M: int, N: int, L: int, QIT: int, COLS: int, BC: int, SEED: int):
    """Randomized range finder with QIT power iterations, for A on an M×N grid (tiles BC wide, COLS columns).

    Om (N×1 tiles, L columns) is Gaussian.  Iteration t = 0..QIT: Yt[:, t] = A·Om (t = 0) or A·Qz[:, t-1],
    reduced over tile columns by ``sum_tree`` (Ty); Qy[:, t] its Q by TSQR (Fy, Fyb, Hy, Ry, Cy as Y, Yb, T,
    Rt, C in ``tsqr``); Zt[:, t] = Aᵀ·Qy[:, t] reduced over tile rows (Tz); Qz[:, t] and Rz its TSQR.
    Outputs: Q (M×1) the orthonormal basis of the range, Qb (N×1) and Rb with Aᵀ Q = Qb Rb.
    """
    dn = ceil(log2(N))
    for j in range(N):
        Om[j, 0] = normal_tile(j, 0, min(BC, COLS - j * BC), L, SEED)
    for t in range(QIT + 1):
        # ---- Yt = A Om (t = 0) or A Qz[t-1]: tree over tile columns
        for i in range(M):
            for j in range(N):
                if N == 1:
                    if t == 0:
                        Yt[i, t] = matmul(A[i, j], Om[j, 0])
                    else:
                        Yt[i, t] = matmul(A[i, j], Qz[j, t - 1])
                else:
                    if t == 0:
                        Ty[i, j, 0, t] = matmul(A[i, j], Om[j, 0])
                    else:
                        Ty[i, j, 0, t] = matmul(A[i, j], Qz[j, t - 1])
            sum_tree(Ty[i, :, :, t], Yt[i:, t:], N)
        # ---- Qy = Q of the TSQR of Yt
        tsqr_up(Yt[:, t:], Fy[:, :, t], Fyb[:, :, t], Hy[:, :, t], Ry[:, :, t], M)
        tsqr_down(Fy[:, :, t], Fyb[:, :, t], Hy[:, :, t], Ry[:, :, t], Cy[:, :, t], Qy[:, t:], M)
        # ---- Zt = Aᵀ Qy: tree over tile rows
        for j in range(N):
            for i in range(M):
                if M == 1:
                    Zt[j, t] = matmul_tn(A[i, j], Qy[i, t])
                else:
                    Tz[j, i, 0, t] = matmul_tn(A[i, j], Qy[i, t])
            sum_tree(Tz[j, :, :, t], Zt[j:, t:], M)
        # ---- Qz, Rz = TSQR of Zt
        tsqr_up(Zt[:, t:], Fz[:, :, t], Fzb[:, :, t], Hz[:, :, t], Rz[:, :, t], N)
        tsqr_down(Fz[:, :, t], Fzb[:, :, t], Hz[:, :, t], Rz[:, :, t], Cz[:, :, t], Qz[:, t:], N)
    for i in range(M):
        Q[i, 0] = copy(Qy[i, QIT])
    for j in range(N):
        Qb[j, 0] = copy(Qz[j, QIT])
    Rb[0, 0] = copy(Rz[0, dn, QIT])


@lp.program
def low_rank_factors(Q: lp.Matrix, Qb: lp.Matrix, Wl: lp.Matrix, Wrt: lp.Matrix, U: lp.Matrix, Vt: lp.Matrix,
                     M: int, N: int):
    """U = Q·Wl (Q on M×1 tiles) and Vt = Wrt·Qbᵀ (Qb on N×1 tiles): the singular vectors from small factors."""
    for i in range(M):
        U[i, 0] = matmul(Q[i, 0], Wl[0, 0])
    for j in range(N):
        Vt[0, j] = matmul_nt(Wrt[0, 0], Qb[j, 0])


@lp.program
def band_singular_values(B: lp.Matrix, S: lp.Matrix, H: lp.Matrix, N: int, BS: int):
    """S[0, 0] (1×n) = the singular values of the upper band matrix B (bandwidth BS, the tile size) on N×N
    tiles, of which the diagonal tiles B[k, k] and those above them B[k-1, k] are read.

    Each tile column's band storage (H[k, 0], (BS+1) rows) is cut from its two tiles, the pieces put
    together up a binary tree of ``hstack`` (node k merges with k + 2**level, a node without partner
    moves up with a copy), and one task computes the singular values of the whole band
    (``upper_band_singular_values``: bandwidth halving, LAPACK ``gbbrd`` and ``bdsqr``).
    """
    d = ceil(log2(N))
    H[0, 0] = upper_band_columns(B[0, 0], BS)
    for k in range(1, N):
        H[k, 0] = upper_band_columns_after(B[k - 1, k], B[k, k], BS)
    hstack_tree(H, N)
    S[0, 0] = upper_band_singular_values(H[0, d])


@lp.program
def band_singular_vectors(B: lp.Matrix, S: lp.Matrix, Cu: lp.Matrix, Cv: lp.Matrix, H: lp.Matrix, T: lp.Matrix,
                          L: lp.Matrix, Rt: lp.Matrix, Lr: lp.Matrix, Rr: lp.Matrix, Uz: lp.Matrix, Vz: lp.Matrix,
                          M: int, N: int, NCU: int, NCR: int, BS: int, R: int, ROWS: int, COLS: int, NB: int):
    """The leading R singular triplets of the n×n upper band matrix B (bandwidth BS, tiles B[k, k] and
    B[k-1, k], n = NB): S (1×R, tiles 1×BS), Cv (n×R) = the right vectors, and Cu (ROWS×COLS on M×NCU
    tiles) = [[L Ub, 0], [0, I]] cut to COLS columns: the left vectors on top of zero rows, and with
    COLS = ROWS (a full U) the identity on the rows and columns ≥ n.  NCR = ⌈R/BS⌉.

    The band is gathered as in ``band_singular_values`` (H); one task reduces it to bidiagonal form
    B = L Bd Rtᵀ and keeps L and Rt (``upper_band_bidiagonal_of``: halving passes, LAPACK ``gbbrd``);
    M + N tasks cut L and Rt into row blocks; NCR tasks compute BS triplets of the bidiagonal each (the
    Golub–Kahan tridiagonal, ``bidiagonal_vectors``); M·NCU + N·NCR tasks multiply Cu = L Ub and Cv = Rt Vb
    tile by tile.  The client reads S only.
    """
    d = ceil(log2(N))
    H[0, 0] = upper_band_columns(B[0, 0], BS)
    for k in range(1, N):
        H[k, 0] = upper_band_columns_after(B[k - 1, k], B[k, k], BS)
    hstack_tree(H, N)
    T[0, 0], L[0, 0], Rt[0, 0] = upper_band_bidiagonal_of(H[0, d])
    for i in range(M):
        Lr[i, 0] = padded_row_block(L[0, 0], i, BS, ROWS)
    for i in range(N):
        Rr[i, 0] = row_block(Rt[0, 0], i, BS)
    for j in range(NCR):
        S[0, j], Uz[j, 0], Vz[j, 0] = bidiagonal_vectors(T[0, 0], j, R, COLS, BS)
    for j in range(NCR, NCU):
        Uz[j, 0] = zero_columns(T[0, 0], j, COLS, BS)
    for i in range(M):
        for j in range(NCU):
            Cu[i, j] = embedded_product(Lr[i, 0], Uz[j, 0], i, j, NB, BS)
    for i in range(N):
        for j in range(NCR):
            Cv[i, j] = matmul(Rr[i, 0], Vz[j, 0])
