"""Communication-avoiding tiled QR: a TSQR tree for every panel, trailing updates along the same tree.

Step k factors tile column k of the trailing matrix. Every tile of the panel gets a
Householder QR (``geqrt``, the leaves); their R factors are merged pairwise up a binary
tree of height ``d = ceil(log2(M - k))`` (``ttqrt``: triangle on top of a trapezoid), and
each trailing tile row receives the same transformations: ``gemqrt`` at the leaves, then
``ttmqrt`` on the pair of tile rows merged at each tree node. The bottom tile row of a
merge leaves the tree there: its tiles are the trailing matrix of step k + 1. A node with
no partner moves up with a copy. Q is never formed during the factorization: the
reflectors (V, T) stay in scratch tiles; ``qr_form_q`` applies them in reverse order to the first
``QCOLS`` columns of the identity (``min(ROWS, COLS)`` for the reduced Q, ``ROWS`` for the
complete one).

Extra right-hand sides ``B`` (``C`` tile columns, for least squares) are carried along as
trailing columns ``N .. N + C - 1``; the program writes ``QtB = Qᵀ B`` (all ``ROWS`` rows:
the first ``COLS`` rows feed the triangular solve, the rest are the residual).

``qr_factor`` (R and Qᵀ B), ``qr_form_q`` (Q from the kept reflectors, a second job) and
``qr_lstsq`` (factor, then the backward substitution R X = (Qᵀ B)[:COLS], one job) are separate
programs: ``npw.qr`` runs the first two (the first alone for mode "r"), ``npw.lstsq``, ``npw.solve``
and ``npw.inv`` the third. The reflectors are in compact WY form, as every QR kernel keeps them
(docs/kernels.md).
"""

import lambdapack as lp
from lambdapack import ceil, log2
from numpywren2.core.kernels import copy, eye_tile, gemqrt, geqrt, ttmqrt, ttqrt

from .triangular import trsm_backward


@lp.program
def qr_factor(A: lp.Matrix, B: lp.Matrix, R: lp.Matrix, QtB: lp.Matrix, V: lp.Matrix, T: lp.Matrix,
              Rt: lp.Matrix, W: lp.Matrix, S: lp.Matrix, M: int, N: int, C: int):
    """R (and QtB = Qᵀ B when C > 0) of A on an M×N grid of tiles, B on M×C.

    R[k, j]: the upper-trapezoidal factor. Scratch: V[i, k, level], T[i, k, level] the
    reflectors of tree node (i, level) at step k (level 0: the leaf QR of tile row i); Rt[i, k,
    level] the node's R; W[i, j, k, level] trailing tile (i, j) after the node's update; S[i, j,
    k] the trailing matrix entering step k, whose step 0 is A and, for the columns j ≥ N, B.
    """
    S[:, :N, 0] = A
    S[:, N:, 0] = B
    K = min(M, N)
    for k in range(K):
        d = ceil(log2(M - k))
        for i in range(k, M):
            V[i, k, 0], T[i, k, 0], Rt[i, k, 0] = geqrt(S[i, k, k])
            for j in range(k + 1, N + C):
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
def qr_form_q(V: lp.Matrix, T: lp.Matrix, Q: lp.Matrix, E: lp.Matrix, Z: lp.Matrix, G: lp.Matrix, M: int, N: int,
              ROWS: int, BS: int, QC: int, QCOLS: int, SINGLE: int):
    """Q[i, j], the first QCOLS columns (QC tiles) of the orthogonal factor kept by ``qr_factor`` as (V, T).

    E: tiles of the identity (float32 when SINGLE == 1); Z[i, j, k, level] and G[i, j, k] the
    Q accumulation (node level, then after the leaves of step k).
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
def qr_lstsq(A: lp.Matrix, B: lp.Matrix, R: lp.Matrix, QtB: lp.Matrix, X: lp.Matrix, V: lp.Matrix, T: lp.Matrix,
             Rt: lp.Matrix, W: lp.Matrix, S: lp.Matrix, F: lp.Matrix, M: int, N: int, C: int, BS: int):
    """X = R⁻¹ (Qᵀ B)[:COLS], the least-squares solution of A X ≈ B (A on M×N tiles, M ≥ N; B on M×C)."""
    qr_factor(A, B, R, QtB, V, T, Rt, W, S, M, N, C)
    trsm_backward(R, QtB, X, F, min(M, N), C, 0, 0, BS)
