"""Array operations as jobs: transposes, linear combinations, casts, retiling, zeros, identities, diagonals,
and the reading and writing of files by the executors (``load``, ``save``: ``core/kernels/io.py``).

Every program here writes each tile of its result once, from tiles of its inputs, in the executors: the
client only submits it (``numpywren2/client/array_ops.py``).  Shapes are given in rows and columns and
tilings in block rows (``BR``) and columns (``BC``), so that edge tiles get their smaller shapes.
"""

import lambdapack as lp
from numpywren2.core.kernels import (
    axpby,
    cast,
    copy,
    cut,
    diag_tile,
    diagonal_column,
    eye_tile,
    place,
    read_block,
    scale,
    transpose,
    write_block,
    zero_tile,
)


@lp.program
def transpose_all(A: lp.Matrix, X: lp.Matrix, GR: int, GC: int):
    """X = Aᵀ, A on a GR×GC grid of tiles (X on GC×GR, tiled (BC, BR))."""
    for i in range(GR):
        for j in range(GC):
            X[j, i] = transpose(A[i, j])


@lp.program
def combine(A: lp.Matrix, B: lp.Matrix, X: lp.Matrix, GR: int, GC: int, ALPHA: int, BETA: int, SINGLE: int):
    """X = alpha A + beta B, tile by tile (all three tiled alike; ``ALPHA``, ``BETA``: the scalars' bits)."""
    for i in range(GR):
        for j in range(GC):
            X[i, j] = axpby(A[i, j], B[i, j], ALPHA, BETA, SINGLE)


@lp.program
def scaled(A: lp.Matrix, X: lp.Matrix, GR: int, GC: int, ALPHA: int, SINGLE: int):
    """X = alpha A (``ALPHA``: the scalar's bits), in float32 if ``SINGLE``."""
    for i in range(GR):
        for j in range(GC):
            X[i, j] = scale(A[i, j], ALPHA, SINGLE)


@lp.program
def astype(A: lp.Matrix, X: lp.Matrix, GR: int, GC: int, SINGLE: int):
    """X = A as float32 (``SINGLE``) or float64."""
    for i in range(GR):
        for j in range(GC):
            X[i, j] = cast(A[i, j], SINGLE)


@lp.program
def copy_all(A: lp.Matrix, X: lp.Matrix, GR: int, GC: int):
    """X = A, tile by tile (materialises a view)."""
    for i in range(GR):
        for j in range(GC):
            X[i, j] = copy(A[i, j])


@lp.program
def densify(A: lp.Matrix, X: lp.Matrix, ROWS: int, COLS: int, BR: int, BC: int, LOWER: int, D: int, SINGLE: int):
    """X = A, where A holds only the tiles (i, j) with ``j - i <= D`` (``LOWER``) or ``j - i >= D`` (else):
    the others, which read as zeros, are written as zero tiles (the factor of a Cholesky, for instance)."""
    for i in range((ROWS + BR - 1) // BR):
        for j in range((COLS + BC - 1) // BC):
            if (LOWER == 1 and j - i <= D) or (LOWER == 0 and j - i >= D):
                X[i, j] = copy(A[i, j])
            else:
                X[i, j] = zero_tile(min(BR, ROWS - i * BR), min(BC, COLS - j * BC), SINGLE)


@lp.program
def retile(A: lp.Matrix, X: lp.Matrix, T: lp.Matrix, ROWS: int, COLS: int, BR1: int, BC1: int, BR2: int,
           BC2: int, R0: int, C0: int):
    """X (ROWS×COLS in BR2×BC2 tiles) = the block of A (in BR1×BC1 tiles) whose first entry is (R0, C0).

    Tile (I, J) of X overlaps NP×NQ tiles of A, from (P0, Q0); a tile inside one tile of A is cut from it,
    any other is put together along a chain T[I, J, k] that places one overlapping tile of A after the other.
    """
    for I in range((ROWS + BR2 - 1) // BR2):
        for J in range((COLS + BC2 - 1) // BC2):
            r0 = R0 + I * BR2
            c0 = C0 + J * BC2
            rows = min(BR2, ROWS - I * BR2)
            cols = min(BC2, COLS - J * BC2)
            P0 = r0 // BR1
            Q0 = c0 // BC1
            NP = (r0 + rows - 1) // BR1 - P0 + 1
            NQ = (c0 + cols - 1) // BC1 - Q0 + 1
            if NP * NQ == 1:
                X[I, J] = cut(A[P0, Q0], r0, c0, rows, cols, P0 * BR1, Q0 * BC1)
            else:
                T[I, J, 0] = cut(A[P0, Q0], r0, c0, rows, cols, P0 * BR1, Q0 * BC1)
                for k in range(1, NP * NQ - 1):
                    T[I, J, k] = place(T[I, J, k - 1], A[P0 + k // NQ, Q0 + k % NQ], r0, c0,
                                       (P0 + k // NQ) * BR1, (Q0 + k % NQ) * BC1)
                X[I, J] = place(T[I, J, NP * NQ - 2], A[P0 + NP - 1, Q0 + NQ - 1], r0, c0,
                                (P0 + NP - 1) * BR1, (Q0 + NQ - 1) * BC1)


@lp.program
def zeros(X: lp.Matrix, ROWS: int, COLS: int, BR: int, BC: int, SINGLE: int):
    """X = zeros (ROWS×COLS in BR×BC tiles)."""
    for i in range((ROWS + BR - 1) // BR):
        for j in range((COLS + BC - 1) // BC):
            X[i, j] = zero_tile(min(BR, ROWS - i * BR), min(BC, COLS - j * BC), SINGLE)


@lp.program
def eye_rect(X: lp.Matrix, ROWS: int, COLS: int, B: int, SINGLE: int):
    """X = the ROWS×COLS identity in B×B tiles."""
    for i in range((ROWS + B - 1) // B):
        for j in range((COLS + B - 1) // B):
            X[i, j] = eye_tile(i, j, min(B, ROWS - i * B), min(B, COLS - j * B), SINGLE)


@lp.program
def diag_matrix(V: lp.Matrix, X: lp.Matrix, N: int, B: int, SINGLE: int):
    """X = the N×N matrix with the column V (N×1 in B×1 tiles) on its diagonal, in B×B tiles."""
    for i in range((N + B - 1) // B):
        for j in range((N + B - 1) // B):
            if i == j:
                X[i, j] = diag_tile(V[i, 0], min(B, N - i * B), min(B, N - j * B), SINGLE)
            else:
                X[i, j] = zero_tile(min(B, N - i * B), min(B, N - j * B), SINGLE)


@lp.program
def diagonal(A: lp.Matrix, V: lp.Matrix, G: int):
    """V (a column in B×1 tiles) = the diagonal of A (square tiles, G diagonal tiles)."""
    for i in range(G):
        V[i, 0] = diagonal_column(A[i, i])


@lp.program
def load(SRC: lp.Matrix, X: lp.Matrix, ROWS: int, COLS: int, BR: int, BC: int, SINGLE: int):
    """X (ROWS×COLS in BR×BC tiles) = the array the descriptor tile SRC[0, 0] names, each tile read by its task."""
    for i in range((ROWS + BR - 1) // BR):
        for j in range((COLS + BC - 1) // BC):
            X[i, j] = read_block(SRC[0, 0], i * BR, j * BC, min(BR, ROWS - i * BR), min(BC, COLS - j * BC), SINGLE)


@lp.program
def save(A: lp.Matrix, DST: lp.Matrix, W: lp.Matrix, GR: int, GC: int, BR: int, BC: int):
    """Write each tile of A (GR×GC tiles of BR×BC) into the array the descriptor tile DST[0, 0] names;
    W holds the tasks' 1×1 markers (scratch)."""
    for i in range(GR):
        for j in range(GC):
            W[i, j] = write_block(DST[0, 0], A[i, j], i * BR, j * BC)
