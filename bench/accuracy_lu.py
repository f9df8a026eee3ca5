"""Accuracy table of docs/algorithms.md for npw.lu (square and rectangular), beside scipy's getrf on the same matrices.

Small matrices (at most 300 rows or columns), factored by ``npw.lu`` on the embedded runtime (real jobs,
2 executors), printed as the Markdown table of the "LU with tournament pivoting" section. The backward
error is scaled by max(m, n)·eps of the dtype.

    python bench/accuracy_lu.py
"""

from __future__ import annotations

import numpy as np
import scipy.linalg as sl

import numpywren2 as npw


def wilkinson(n: int) -> np.ndarray:
    W = np.eye(n) - np.tril(np.ones((n, n)), -1)
    W[:, -1] = 1
    return W


def exchange(n: int) -> np.ndarray:
    return np.fliplr(np.eye(n)) + 0.01 * np.random.default_rng(0).standard_normal((n, n))


def normal(m: int, n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((m, n))


def with_zero_column(m: int, n: int, column: int) -> np.ndarray:
    A = normal(m, n, 5)
    A[:, column] = 0.0
    return A


CASES = [  # (name, matrix, tile, dtype)
    ("random normal", normal(200, 200, 1), 32, np.float64),
    ("random, ragged", normal(150, 150, 2), 40, np.float64),
    ("random", normal(150, 150, 3), 40, np.float32),
    ("Wilkinson (growth 2^(n−1))", wilkinson(60), 16, np.float64),
    ("exchange matrix + 0.01·noise (a swap in every column)", exchange(150), 40, np.float64),
    ("random, tall", normal(300, 120, 6), 32, np.float64),
    ("random, tall, ragged", normal(250, 90, 7), 40, np.float32),
    ("random, wide, ragged", normal(90, 250, 8), 40, np.float64),
    ("random, wide", normal(120, 300, 9), 32, np.float32),
    ("tall, zero column 50 (U[50, 50] = 0, kept)", with_zero_column(300, 120, 50), 32, np.float64),
]


def errors(A: np.ndarray, p: np.ndarray, L: np.ndarray, U: np.ndarray) -> tuple[float, float, float]:
    eps = np.finfo(A.dtype).eps
    A64, L64, U64 = (x.astype(np.float64) for x in (A, L, U))
    err = np.linalg.norm(A64 - L64[p] @ U64) / (np.linalg.norm(A64) * max(A.shape) * eps)
    return float(err), float(np.abs(U64).max() / np.abs(A64).max()), float(np.abs(L64).max())


def main() -> None:
    print("| matrix | m×n | tile | dtype | ‖PA − LU‖_F/(‖A‖_F·max(m,n)·eps) | scipy getrf, same "
          "| growth max\\|U\\|/max\\|A\\| | scipy's growth | max\\|L\\| |")
    print("|---|---|---|---|---|---|---|---|---|")
    with npw.runtime(executors=2):
        for name, X, tile, dtype in CASES:
            A = X.astype(dtype)
            p, L, U = npw.lu(A, p_indices=True, block_size=tile)
            err, grow, lmax = errors(A, p, L.numpy(), U.numpy())
            p0, L0, U0 = sl.lu(A, p_indices=True)
            err0, grow0, _ = errors(A, p0, L0, U0)
            print(f"| {name} | {A.shape[0]}×{A.shape[1]} | {tile} | {np.dtype(dtype).name} | {err:.3g} | {err0:.3g} "
                  f"| {grow:.3g} | {grow0:.3g} | {lmax:.3g} |", flush=True)


if __name__ == "__main__":
    main()
