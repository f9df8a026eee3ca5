"""The QR modes beyond the tiled factorization: the Householder vectors of an orthogonal factor
(``npw.qr(mode="raw")``) and the pivoted QR of a triangular factor (``npw.qr(pivoting=True)``).

``householder_lu``: LAPACK ``geqrf``'s (h, tau) from the Q and R of the tiled QR, by the reconstruction
of Ballard et al. (2015).
For Q (m×k) with orthonormal columns, the LU factorization without pivoting ``Q − S = L U`` (S diagonal,
k×k on top, its signs chosen as the elimination reaches each column) gives the Householder vectors
``Y = L`` (unit lower trapezoidal), ``tau_j = −s_j U_jj`` and ``R_geqrf = S R``: in exact arithmetic the
reflectors of Householder QR of ``A = Q R``. Every pivot has magnitude ≥ 1, so the elimination is stable
without pivoting.
"""

import lambdapack as lp
from numpywren2.core.kernels import gemm_update, householder_below, householder_diagonal, householder_right, pivoted_qr


@lp.program
def householder_lu(Q: lp.Matrix, LU: lp.Matrix, S: lp.Matrix, W: lp.Matrix, M: int, K: int):
    """LU[i, j] = the packed L\\U of ``Q − S`` (Q on an M×K grid of square tiles, M ≥ K), S[c, 0] the signs
    of tile column c; W[i, j, c] is tile (i, j) of the trailing matrix after c steps (step 0 is Q)."""
    W[:, :, 0] = Q
    for c in range(K):
        LU[c, c], S[c, 0] = householder_diagonal(W[c, c, c], M - 1 - c)
        for i in range(c + 1, M):
            LU[i, c] = householder_below(LU[c, c], W[i, c, c])
        for j in range(c + 1, K):
            LU[c, j] = householder_right(LU[c, c], W[c, j, c])
            for i in range(c + 1, M):
                W[i, j, c + 1] = gemm_update(W[i, j, c], LU[i, c], LU[c, j], 0)


@lp.program
def pivoted_qr_of(R: lp.Matrix, Q: lp.Matrix, Rp: lp.Matrix, P: lp.Matrix):
    """Q Rp = R[:, P] with |Rp_kk| non-increasing (LAPACK ``geqp3``), R a single k×n tile: one task."""
    Q[0, 0], Rp[0, 0], P[0, 0] = pivoted_qr(R[0, 0])
