"""The algorithms as they were written before programs could compose: the oracle of tests/test_compose.py.

Every program of ``numpywren2.core.programs`` that is now written with calls, local scratch or
aliases must give the same DAG as its hand-written version here (compared on the unrolled
graphs), and ``bench/analysis.py`` times both in one run.
"""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import (
    add,
    add_and_divide,
    center_tile,
    chol,
    column_means,
    column_sums,
    copy,
    eye_tile,
    form_q,
    form_q_pair,
    gelqt,
    gemlqt,
    gemm_nt,
    gemm_tn_add,
    gemm_update,
    gemqrt,
    gemqrt_transposed,
    geqrt,
    identity,
    left_vectors_of,
    matmul,
    matmul_nt,
    matmul_tn,
    merge_left_svd,
    neg_matmul,
    normal_tile,
    right_vectors_of,
    singular_values_of,
    stacked_qrt,
    syrk,
    transpose,
    trsm,
    trsm_left,
    trtri_lower,
    truncated_left_svd,
    ttlqt,
    ttmlqt,
    ttmqrt,
    ttqrt,
    vstack,
)


@lp.program
def cholesky(A: lp.Matrix, L: lp.Matrix, S: lp.Matrix, N: int):
    """A = L Lᵀ on an N×N grid of tiles (lower triangle of A read).

    S[i, j, k] is tile (i, j) of the trailing matrix after k steps; step k = 0
    reads A itself, so S holds only updated tiles.
    """
    for k in range(N):
        if k == 0:
            L[k, k] = chol(A[k, k])
        else:
            L[k, k] = chol(S[k, k, k])
        for i in range(k + 1, N):
            if k == 0:
                L[i, k] = trsm(L[k, k], A[i, k])
            else:
                L[i, k] = trsm(L[k, k], S[i, k, k])
        for j in range(k + 1, N):
            if k == 0:
                S[j, j, k + 1] = syrk(A[j, j], L[j, k])
            else:
                S[j, j, k + 1] = syrk(S[j, j, k], L[j, k])
            for i in range(j + 1, N):
                if k == 0:
                    S[i, j, k + 1] = gemm_nt(A[i, j], L[i, k], L[j, k])
                else:
                    S[i, j, k + 1] = gemm_nt(S[i, j, k], L[i, k], L[j, k])


@lp.program
def gemm(A: lp.Matrix, B: lp.Matrix, C: lp.Matrix, T: lp.Matrix, M: int, N: int, K: int):
    """C = A B with A on an M×K grid of tiles and B on K×N.

    T[i, j, k, level] is a partial sum of level-`level` of the reduction tree over
    k; its root is written straight into C.  An odd node out moves up with a copy.
    """
    depth = ceil(log2(K))
    for i in range(M):
        for j in range(N):
            if K == 1:
                C[i, j] = matmul(A[i, 0], B[0, j])
            else:
                for k in range(K):
                    T[i, j, k, 0] = matmul(A[i, k], B[k, j])
                for level in range(depth):
                    for k in range(0, K, 2 ** (level + 1)):
                        if level == depth - 1:
                            C[i, j] = add(T[i, j, k, level], T[i, j, k + 2**level, level])
                        elif k + 2**level < K:
                            T[i, j, k, level + 1] = add(T[i, j, k, level], T[i, j, k + 2**level, level])
                        else:
                            T[i, j, k, level + 1] = copy(T[i, j, k, level])


@lp.program
def tsqr(A: lp.Matrix, Q: lp.Matrix, R: lp.Matrix, Y: lp.Matrix, Yb: lp.Matrix, T: lp.Matrix, Rt: lp.Matrix,
         C: lp.Matrix, N: int):
    """A = Q R for A on an N×1 grid of tiles (any N ≥ 1).

    Up-sweep: leaf QRs, then R factors merged pairwise up a tree of height
    ceil(log2(N)); a node without a partner moves up with a copy.  Down-sweep:
    C[i, level] maps the tree's Q factors back to the leaves, and
    Q[i, 0] = Q_i [C[i, 0]; 0].  R[0, 0] is the final R.  Reflectors (Y, Yb, T) in compact WY form.
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
    R[0, 0] = copy(Rt[0, depth])
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
def trsm_forward(T: lp.Matrix, B: lp.Matrix, X: lp.Matrix, F: lp.Matrix, N: int, C: int, TRANS: int, UNIT: int,
                 BS: int):
    """Solve op(T) X = B where op(T) is lower triangular: T lower (TRANS=0) or T upper, transposed (TRANS=1).

    T on an N×N grid of BS×BS tiles (its other triangle is never read), B and X on N×C.
    F[r, c, i]: tile (r, c) of the right-hand side after the updates of block rows < i.
    """
    for i in range(N):
        for c in range(C):
            if i == 0:
                X[i, c] = trsm_left(T[i, i], B[i, c], 1 - TRANS, TRANS, UNIT, i, i * BS)
            else:
                X[i, c] = trsm_left(T[i, i], F[i, c, i], 1 - TRANS, TRANS, UNIT, i, i * BS)
            for r in range(i + 1, N):
                if i == 0 and TRANS == 0:
                    F[r, c, i + 1] = gemm_update(B[r, c], T[r, i], X[i, c], 0)
                elif i == 0:
                    F[r, c, i + 1] = gemm_update(B[r, c], T[i, r], X[i, c], 1)
                elif TRANS == 0:
                    F[r, c, i + 1] = gemm_update(F[r, c, i], T[r, i], X[i, c], 0)
                else:
                    F[r, c, i + 1] = gemm_update(F[r, c, i], T[i, r], X[i, c], 1)


@lp.program
def trsm_backward(T: lp.Matrix, B: lp.Matrix, X: lp.Matrix, F: lp.Matrix, N: int, C: int, TRANS: int, UNIT: int,
                  BS: int):
    """Solve op(T) X = B where op(T) is upper triangular: T upper (TRANS=0) or T lower, transposed (TRANS=1).

    T on an N×N grid of BS×BS tiles, X on N×C; B on (at least) N×C — when B has more rows
    than T (a least-squares right-hand side Qᵀb), only its first rows are used.
    F[r, c, i]: tile (r, c) of the right-hand side after the updates of block rows ≥ i.
    """
    for i in range(N - 1, -1, -1):
        for c in range(C):
            if i == N - 1:
                X[i, c] = trsm_left(T[i, i], B[i, c], TRANS, TRANS, UNIT, i, i * BS)
            else:
                X[i, c] = trsm_left(T[i, i], F[i, c, i + 1], TRANS, TRANS, UNIT, i, i * BS)
            for r in range(i):
                if i == N - 1 and TRANS == 0:
                    F[r, c, i] = gemm_update(B[r, c], T[r, i], X[i, c], 0)
                elif i == N - 1:
                    F[r, c, i] = gemm_update(B[r, c], T[i, r], X[i, c], 1)
                elif TRANS == 0:
                    F[r, c, i] = gemm_update(F[r, c, i + 1], T[r, i], X[i, c], 0)
                else:
                    F[r, c, i] = gemm_update(F[r, c, i + 1], T[i, r], X[i, c], 1)


@lp.program
def posv(A: lp.Matrix, B: lp.Matrix, X: lp.Matrix, L: lp.Matrix, S: lp.Matrix, Y: lp.Matrix, F: lp.Matrix,
         G: lp.Matrix, N: int, C: int, BS: int):
    """Solve A X = B for symmetric positive definite A (N×N grid, lower triangle read), B on N×C.

    A = L Lᵀ (the statements of ``cholesky``), then L Y = B forward and Lᵀ X = Y backward;
    the solves start on each block row as soon as its tiles of L exist (no barrier between
    the phases). F and G are the right-hand sides of the two substitutions.
    """
    for k in range(N):
        if k == 0:
            L[k, k] = chol(A[k, k])
        else:
            L[k, k] = chol(S[k, k, k])
        for i in range(k + 1, N):
            if k == 0:
                L[i, k] = trsm(L[k, k], A[i, k])
            else:
                L[i, k] = trsm(L[k, k], S[i, k, k])
        for j in range(k + 1, N):
            if k == 0:
                S[j, j, k + 1] = syrk(A[j, j], L[j, k])
            else:
                S[j, j, k + 1] = syrk(S[j, j, k], L[j, k])
            for i in range(j + 1, N):
                if k == 0:
                    S[i, j, k + 1] = gemm_nt(A[i, j], L[i, k], L[j, k])
                else:
                    S[i, j, k + 1] = gemm_nt(S[i, j, k], L[i, k], L[j, k])
    for i in range(N):
        for c in range(C):
            if i == 0:
                Y[i, c] = trsm_left(L[i, i], B[i, c], 1, 0, 0, i, i * BS)
            else:
                Y[i, c] = trsm_left(L[i, i], F[i, c, i], 1, 0, 0, i, i * BS)
            for r in range(i + 1, N):
                if i == 0:
                    F[r, c, i + 1] = gemm_update(B[r, c], L[r, i], Y[i, c], 0)
                else:
                    F[r, c, i + 1] = gemm_update(F[r, c, i], L[r, i], Y[i, c], 0)
    for i in range(N - 1, -1, -1):
        for c in range(C):
            if i == N - 1:
                X[i, c] = trsm_left(L[i, i], Y[i, c], 1, 1, 0, i, i * BS)
            else:
                X[i, c] = trsm_left(L[i, i], G[i, c, i + 1], 1, 1, 0, i, i * BS)
            for r in range(i):
                if i == N - 1:
                    G[r, c, i] = gemm_update(Y[r, c], L[i, r], X[i, c], 1)
                else:
                    G[r, c, i] = gemm_update(G[r, c, i + 1], L[i, r], X[i, c], 1)


@lp.program
def spd_inverse(A: lp.Matrix, X: lp.Matrix, L: lp.Matrix, S: lp.Matrix, W: lp.Matrix, P: lp.Matrix,
                Z: lp.Matrix, N: int, BS: int):
    """X = A⁻¹ for symmetric positive definite A on an N×N grid (lower triangle read), as LAPACK's potri.

    A = L Lᵀ (the statements of ``cholesky``); W = L⁻¹ (lower triangular, column by
    column: P[i, j, p] is tile (i, j) of the right-hand side after block rows < p); then
    X = Wᵀ W, whose lower tiles are chains of products over p ≥ i (Z[i, j, p] the partial
    sums) and whose upper tiles are their transposes. About n³ flops, like LAPACK.
    """
    for k in range(N):
        if k == 0:
            L[k, k] = chol(A[k, k])
        else:
            L[k, k] = chol(S[k, k, k])
        for i in range(k + 1, N):
            if k == 0:
                L[i, k] = trsm(L[k, k], A[i, k])
            else:
                L[i, k] = trsm(L[k, k], S[i, k, k])
        for j in range(k + 1, N):
            if k == 0:
                S[j, j, k + 1] = syrk(A[j, j], L[j, k])
            else:
                S[j, j, k + 1] = syrk(S[j, j, k], L[j, k])
            for i in range(j + 1, N):
                if k == 0:
                    S[i, j, k + 1] = gemm_nt(A[i, j], L[i, k], L[j, k])
                else:
                    S[i, j, k + 1] = gemm_nt(S[i, j, k], L[i, k], L[j, k])
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
def qr_factor(A: lp.Matrix, B: lp.Matrix, R: lp.Matrix, QtB: lp.Matrix, V: lp.Matrix, T: lp.Matrix,
              Rt: lp.Matrix, W: lp.Matrix, S: lp.Matrix, M: int, N: int, C: int):
    """R (and QtB = Qᵀ B when C > 0) of A on an M×N grid of tiles, B on M×C.

    R[k, j]: the upper-trapezoidal factor. Scratch: V[i, k, level], T[i, k, level] reflectors
    of tree node (i, level) at step k (level 0: the leaf QR of tile row i); Rt[i, k, level] the
    node's R; W[i, j, k, level] trailing tile (i, j) after the node's update; S[i, j, k] the
    trailing matrix entering step k (step 0 reads A, and B for the columns j ≥ N).
    """
    K = min(M, N)
    for k in range(K):
        d = ceil(log2(M - k))
        for i in range(k, M):
            if k == 0:
                V[i, k, 0], T[i, k, 0], Rt[i, k, 0] = geqrt(A[i, k])
            else:
                V[i, k, 0], T[i, k, 0], Rt[i, k, 0] = geqrt(S[i, k, k])
            for j in range(k + 1, N + C):
                if k == 0 and j < N:
                    W[i, j, k, 0] = gemqrt(V[i, k, 0], T[i, k, 0], A[i, j], 1)
                elif k == 0:
                    W[i, j, k, 0] = gemqrt(V[i, k, 0], T[i, k, 0], B[i, j - N], 1)
                else:
                    W[i, j, k, 0] = gemqrt(V[i, k, 0], T[i, k, 0], S[i, j, k], 1)
        for level in range(d):
            for i in range(k, M, 2 ** (level + 1)):
                if i + 2**level < M:
                    if level == d - 1:
                        V[i, k, level + 1], T[i, k, level + 1], R[k, k] = ttqrt(
                            Rt[i, k, level], Rt[i + 2**level, k, level])
                    else:
                        V[i, k, level + 1], T[i, k, level + 1], Rt[i, k, level + 1] = ttqrt(
                            Rt[i, k, level], Rt[i + 2**level, k, level])
                    for j in range(k + 1, N + C):
                        if level == d - 1 and j < N:
                            R[k, j], S[i + 2**level, j, k + 1] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                        elif level == d - 1 and k == K - 1:
                            QtB[k, j - N], QtB[i + 2**level, j - N] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                        elif level == d - 1:
                            QtB[k, j - N], S[i + 2**level, j, k + 1] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                        elif k == K - 1:
                            W[i, j, k, level + 1], QtB[i + 2**level, j - N] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                        else:
                            W[i, j, k, level + 1], S[i + 2**level, j, k + 1] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                else:
                    Rt[i, k, level + 1] = copy(Rt[i, k, level])
                    for j in range(k + 1, N + C):
                        W[i, j, k, level + 1] = copy(W[i, j, k, level])
        if d == 0:
            R[k, k] = copy(Rt[k, k, 0])
            for j in range(k + 1, N + C):
                if j < N:
                    R[k, j] = copy(W[k, j, k, 0])
                else:
                    QtB[k, j - N] = copy(W[k, j, k, 0])


@lp.program
def qr_lstsq(A: lp.Matrix, B: lp.Matrix, R: lp.Matrix, QtB: lp.Matrix, X: lp.Matrix, V: lp.Matrix, T: lp.Matrix,
             Rt: lp.Matrix, W: lp.Matrix, S: lp.Matrix, F: lp.Matrix, M: int, N: int, C: int, BS: int):
    """``qr_factor``, then X = R⁻¹ (Qᵀ B)[:COLS] by backward substitution (F[r, c, i]: the right-hand
    side after the updates of block rows ≥ i), all written out by hand."""
    K = min(M, N)
    for k in range(K):
        d = ceil(log2(M - k))
        for i in range(k, M):
            if k == 0:
                V[i, k, 0], T[i, k, 0], Rt[i, k, 0] = geqrt(A[i, k])
            else:
                V[i, k, 0], T[i, k, 0], Rt[i, k, 0] = geqrt(S[i, k, k])
            for j in range(k + 1, N + C):
                if k == 0 and j < N:
                    W[i, j, k, 0] = gemqrt(V[i, k, 0], T[i, k, 0], A[i, j], 1)
                elif k == 0:
                    W[i, j, k, 0] = gemqrt(V[i, k, 0], T[i, k, 0], B[i, j - N], 1)
                else:
                    W[i, j, k, 0] = gemqrt(V[i, k, 0], T[i, k, 0], S[i, j, k], 1)
        for level in range(d):
            for i in range(k, M, 2 ** (level + 1)):
                if i + 2**level < M:
                    if level == d - 1:
                        V[i, k, level + 1], T[i, k, level + 1], R[k, k] = ttqrt(
                            Rt[i, k, level], Rt[i + 2**level, k, level])
                    else:
                        V[i, k, level + 1], T[i, k, level + 1], Rt[i, k, level + 1] = ttqrt(
                            Rt[i, k, level], Rt[i + 2**level, k, level])
                    for j in range(k + 1, N + C):
                        if level == d - 1 and j < N:
                            R[k, j], S[i + 2**level, j, k + 1] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                        elif level == d - 1 and k == K - 1:
                            QtB[k, j - N], QtB[i + 2**level, j - N] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                        elif level == d - 1:
                            QtB[k, j - N], S[i + 2**level, j, k + 1] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                        elif k == K - 1:
                            W[i, j, k, level + 1], QtB[i + 2**level, j - N] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                        else:
                            W[i, j, k, level + 1], S[i + 2**level, j, k + 1] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], W[i, j, k, level],
                                W[i + 2**level, j, k, level], 1)
                else:
                    Rt[i, k, level + 1] = copy(Rt[i, k, level])
                    for j in range(k + 1, N + C):
                        W[i, j, k, level + 1] = copy(W[i, j, k, level])
        if d == 0:
            R[k, k] = copy(Rt[k, k, 0])
            for j in range(k + 1, N + C):
                if j < N:
                    R[k, j] = copy(W[k, j, k, 0])
                else:
                    QtB[k, j - N] = copy(W[k, j, k, 0])
    for i in range(K - 1, -1, -1):
        for c in range(C):
            if i == K - 1:
                X[i, c] = trsm_left(R[i, i], QtB[i, c], 0, 0, 0, i, i * BS)
            else:
                X[i, c] = trsm_left(R[i, i], F[i, c, i + 1], 0, 0, 0, i, i * BS)
            for r in range(i):
                if i == K - 1:
                    F[r, c, i] = gemm_update(QtB[r, c], R[r, i], X[i, c], 0)
                else:
                    F[r, c, i] = gemm_update(F[r, c, i + 1], R[r, i], X[i, c], 0)


@lp.program
def qr_form_q(V: lp.Matrix, T: lp.Matrix, Q: lp.Matrix, E: lp.Matrix, Z: lp.Matrix, G: lp.Matrix, M: int, N: int,
              ROWS: int, BS: int, QC: int, QCOLS: int, SINGLE: int):
    """Q[i, j], the first QCOLS columns (QC tiles) of the orthogonal factor kept by ``qr_factor`` as (V, T).

    E: tiles of the identity; Z[i, j, k, level] and G[i, j, k] the Q accumulation (node level,
    then after the leaves of step k).
    """
    K = min(M, N)
    for i in range(M):
        for j in range(QC):
            E[i, j] = eye_tile(i, j, min(BS, ROWS - i * BS), min(BS, QCOLS - j * BS), SINGLE)
    for k in range(K - 1, -1, -1):
        d = ceil(log2(M - k))
        for level in range(d - 1, -1, -1):
            for i in range(k, M, 2 ** (level + 1)):
                for j in range(k, QC):
                    if i + 2**level < M:
                        if level == d - 1 and (j == k or k == K - 1):
                            Z[i, j, k, level], Z[i + 2**level, j, k, level] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], E[k, j], E[i + 2**level, j], 0)
                        elif level == d - 1:
                            Z[i, j, k, level], Z[i + 2**level, j, k, level] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], E[k, j], G[i + 2**level, j, k + 1], 0)
                        elif j == k or k == K - 1:
                            Z[i, j, k, level], Z[i + 2**level, j, k, level] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], Z[i, j, k, level + 1],
                                E[i + 2**level, j], 0)
                        else:
                            Z[i, j, k, level], Z[i + 2**level, j, k, level] = ttmqrt(
                                V[i, k, level + 1], T[i, k, level + 1], Z[i, j, k, level + 1],
                                G[i + 2**level, j, k + 1], 0)
                    else:
                        Z[i, j, k, level] = copy(Z[i, j, k, level + 1])
        for i in range(k, M):
            for j in range(k, QC):
                if d == 0 and k == 0:
                    Q[i, j] = gemqrt(V[i, k, 0], T[i, k, 0], E[k, j], 0)
                elif d == 0:
                    G[i, j, k] = gemqrt(V[i, k, 0], T[i, k, 0], E[k, j], 0)
                elif k == 0:
                    Q[i, j] = gemqrt(V[i, k, 0], T[i, k, 0], Z[i, j, k, 0], 0)
                else:
                    G[i, j, k] = gemqrt(V[i, k, 0], T[i, k, 0], Z[i, j, k, 0], 0)


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
    reflectors (kept when Q and P are wanted); Rq and Ll the triangles moving up the trees.
    """
    for k in range(N):
        dq = ceil(log2(M - k))
        # ---- QR of tile column k
        for i in range(k, M):
            if dq == 0:
                if k == 0:
                    Vq[i, k, 0], Tq[i, k, 0], B[k, k] = geqrt(A[i, k])
                else:
                    Vq[i, k, 0], Tq[i, k, 0], B[k, k] = geqrt(S[i, k, 2 * k])
            else:
                if k == 0:
                    Vq[i, k, 0], Tq[i, k, 0], Rq[i, k, 0] = geqrt(A[i, k])
                else:
                    Vq[i, k, 0], Tq[i, k, 0], Rq[i, k, 0] = geqrt(S[i, k, 2 * k])
                for j in range(k + 1, N):
                    if k == 0:
                        W[i, j, k, 0] = gemqrt(Vq[i, k, 0], Tq[i, k, 0], A[i, j], 1)
                    else:
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
    """C = Aᵀ B with A on a K×M grid of tiles and B on K×N (a binary-tree reduction over k, as gemm)."""
    depth = ceil(log2(K))
    for i in range(M):
        for j in range(N):
            if K == 1:
                C[i, j] = matmul_tn(A[0, i], B[0, j])
            else:
                for k in range(K):
                    T[i, j, k, 0] = matmul_tn(A[k, i], B[k, j])
                for level in range(depth):
                    for k in range(0, K, 2 ** (level + 1)):
                        if level == depth - 1:
                            C[i, j] = add(T[i, j, k, level], T[i, j, k + 2**level, level])
                        elif k + 2**level < K:
                            T[i, j, k, level + 1] = add(T[i, j, k, level], T[i, j, k + 2**level, level])
                        else:
                            T[i, j, k, level + 1] = copy(T[i, j, k, level])


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
    Vt[0, j] = diag(s)⁻¹ Uᵀ A[:, j] for each column block (U and Vt only if VEC = 1).
    """
    dm = ceil(log2(M))
    dn = ceil(log2(N))
    for j in range(N):
        for level in range(dm):
            for i in range(0, M, 2 ** (level + 1)):
                if level == 0:
                    if i + 1 < M:
                        P[i, j, 1] = vstack(A[i, j], A[i + 1, j])
                    else:
                        P[i, j, 1] = copy(A[i, j])
                else:
                    if i + 2**level < M:
                        P[i, j, level + 1] = vstack(P[i, j, level], P[i + 2**level, j, level])
                    else:
                        P[i, j, level + 1] = copy(P[i, j, level])
        if M == 1:
            T[j, 0] = truncated_left_svd(A[0, j], RANK)
        else:
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
            if M == 1:
                Vt[0, j] = right_vectors_of(T[0, dn], A[0, j], K)
            else:
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
            for level in range(depth):
                for i in range(0, M, 2 ** (level + 1)):
                    if level == depth - 1:
                        Sq[0, j] = add(Ct[i, j, level], Ct[i + 2**level, j, level])
                    elif i + 2**level < M:
                        Ct[i, j, level + 1] = add(Ct[i, j, level], Ct[i + 2**level, j, level])
                    else:
                        Ct[i, j, level + 1] = copy(Ct[i, j, level])


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
                            if k == K - 1:
                                Y[i, j, k, level], Y[i + 2**level, j, k, level] = ttmqrt(
                                    V[i, k, level + 1], T[i, k, level + 1], C[i, j], C[i + 2**level, j], 0)
                            else:
                                Y[i, j, k, level], Y[i + 2**level, j, k, level] = ttmqrt(
                                    V[i, k, level + 1], T[i, k, level + 1], C[i, j], G[i + 2**level, j, k + 1], 0)
                        else:
                            if k == K - 1:
                                Y[i, j, k, level], Y[i + 2**level, j, k, level] = ttmqrt(
                                    V[i, k, level + 1],
                                    T[i, k, level + 1], Y[i, j, k, level + 1], C[i + 2**level, j], 0)
                            else:
                                Y[i, j, k, level], Y[i + 2**level, j, k, level] = ttmqrt(
                                    V[i, k, level + 1],
                                    T[i, k, level + 1], Y[i, j, k, level + 1], G[i + 2**level, j, k + 1], 0)
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
    reduced over tile columns up a binary tree (Ty); Qy[:, t] its Q by TSQR (Fy, Fyb, Hy, Ry, Cy as Y,
    Yb, T, Rt, C in ``tsqr``); Zt[:, t] = Aᵀ·Qy[:, t] reduced over tile rows (Tz); Qz[:, t] and Rz its TSQR.
    Outputs: Q (M×1) the orthonormal basis of the range, Qb (N×1) and Rb with Aᵀ Q = Qb Rb.
    """
    dm = ceil(log2(M))
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
            for level in range(dn):
                for j in range(0, N, 2 ** (level + 1)):
                    if level == dn - 1:
                        Yt[i, t] = add(Ty[i, j, level, t], Ty[i, j + 2**level, level, t])
                    elif j + 2**level < N:
                        Ty[i, j, level + 1, t] = add(Ty[i, j, level, t], Ty[i, j + 2**level, level, t])
                    else:
                        Ty[i, j, level + 1, t] = copy(Ty[i, j, level, t])
        # ---- Qy = Q of the TSQR of Yt
        for i in range(M):
            Fy[i, 0, t], Hy[i, 0, t], Ry[i, 0, t] = geqrt(Yt[i, t])
        for level in range(dm):
            for i in range(0, M, 2 ** (level + 1)):
                if i + 2**level < M:
                    Fy[i, level + 1, t], Fyb[i, level + 1, t], Hy[i, level + 1, t], Ry[i, level + 1, t] = (
                        stacked_qrt(
                        Ry[i, level, t], Ry[i + 2**level, level, t]))
                else:
                    Ry[i, level + 1, t] = copy(Ry[i, level, t])
        Cy[0, dm, t] = identity(Ry[0, dm, t])
        for level in range(dm - 1, -1, -1):
            for i in range(0, M, 2 ** (level + 1)):
                if i + 2**level < M:
                    Cy[i, level, t], Cy[i + 2**level, level, t] = form_q_pair(
                        Fy[i, level + 1, t], Fyb[i, level + 1, t], Hy[i, level + 1, t], Cy[i, level + 1, t])
                else:
                    Cy[i, level, t] = copy(Cy[i, level + 1, t])
        for i in range(M):
            Qy[i, t] = form_q(Fy[i, 0, t], Hy[i, 0, t], Cy[i, 0, t])
        # ---- Zt = Aᵀ Qy: tree over tile rows
        for j in range(N):
            for i in range(M):
                if M == 1:
                    Zt[j, t] = matmul_tn(A[i, j], Qy[i, t])
                else:
                    Tz[j, i, 0, t] = matmul_tn(A[i, j], Qy[i, t])
            for level in range(dm):
                for i in range(0, M, 2 ** (level + 1)):
                    if level == dm - 1:
                        Zt[j, t] = add(Tz[j, i, level, t], Tz[j, i + 2**level, level, t])
                    elif i + 2**level < M:
                        Tz[j, i, level + 1, t] = add(Tz[j, i, level, t], Tz[j, i + 2**level, level, t])
                    else:
                        Tz[j, i, level + 1, t] = copy(Tz[j, i, level, t])
        # ---- Qz, Rz = TSQR of Zt
        for j in range(N):
            Fz[j, 0, t], Hz[j, 0, t], Rz[j, 0, t] = geqrt(Zt[j, t])
        for level in range(dn):
            for j in range(0, N, 2 ** (level + 1)):
                if j + 2**level < N:
                    Fz[j, level + 1, t], Fzb[j, level + 1, t], Hz[j, level + 1, t], Rz[j, level + 1, t] = (
                        stacked_qrt(
                        Rz[j, level, t], Rz[j + 2**level, level, t]))
                else:
                    Rz[j, level + 1, t] = copy(Rz[j, level, t])
        Cz[0, dn, t] = identity(Rz[0, dn, t])
        for level in range(dn - 1, -1, -1):
            for j in range(0, N, 2 ** (level + 1)):
                if j + 2**level < N:
                    Cz[j, level, t], Cz[j + 2**level, level, t] = form_q_pair(
                        Fz[j, level + 1, t], Fzb[j, level + 1, t], Hz[j, level + 1, t], Cz[j, level + 1, t])
                else:
                    Cz[j, level, t] = copy(Cz[j, level + 1, t])
        for j in range(N):
            Qz[j, t] = form_q(Fz[j, 0, t], Hz[j, 0, t], Cz[j, 0, t])
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
