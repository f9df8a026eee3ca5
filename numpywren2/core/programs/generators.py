"""Matrices generated tile by tile inside the executors (never materialised in the client)."""

import lambdapack as lp
from numpywren2.core.kernels import eye_tile, normal_tile, spd_tile


@lp.program
def normal(X: lp.Matrix, ROWS: int, COLS: int, BR: int, BC: int, SEED: int, SINGLE: int):
    """X (ROWS×COLS in BR×BC tiles) with independent standard normal entries (float32 tiles if SINGLE)."""
    for i in range((ROWS + BR - 1) // BR):
        for j in range((COLS + BC - 1) // BC):
            X[i, j] = normal_tile(i, j, min(BR, ROWS - i * BR), min(BC, COLS - j * BC), SEED, SINGLE)


@lp.program
def spd(X: lp.Matrix, N: int, B: int, SEED: int, SINGLE: int):
    """A symmetric positive definite N×N matrix in B×B tiles (see kernels.spd_tile; float32 if SINGLE)."""
    for i in range((N + B - 1) // B):
        for j in range((N + B - 1) // B):
            X[i, j] = spd_tile(i, j, min(B, N - i * B), min(B, N - j * B), N, SEED, SINGLE)


@lp.program
def eye(X: lp.Matrix, N: int, B: int, SINGLE: int):
    """X = the N×N identity in B×B tiles (float32 if SINGLE == 1, else float64)."""
    for i in range((N + B - 1) // B):
        for j in range((N + B - 1) // B):
            X[i, j] = eye_tile(i, j, min(B, N - i * B), min(B, N - j * B), SINGLE)
