"""Accuracy tables of docs/algorithms.md for npw.eigh and npw.svd with vectors, beside numpy on the same matrices.

Small matrices (n ≤ 200: seconds), printed as the Markdown tables of the "Symmetric eigenproblem" and
"compute_uv with the band method" sections.

    python bench/accuracy_eig_svd.py
"""

from __future__ import annotations

import numpy as np

import numpywren2 as npw


def eig_errors(A: np.ndarray, w: np.ndarray, V: np.ndarray) -> tuple[float, float]:
    n, eps = A.shape[0], np.finfo(A.dtype).eps
    A, w, V = A.astype(float), w.astype(float), V.astype(float)
    return (np.linalg.norm(A @ V - V * w) / (np.linalg.norm(A) * n * eps),
            np.linalg.norm(V.T @ V - np.eye(V.shape[1])) / (n * eps))


def svd_errors(X: np.ndarray, U: np.ndarray, s: np.ndarray, Vt: np.ndarray) -> tuple[float, float, float]:
    k, eps = max(X.shape), np.finfo(X.dtype).eps
    X, U, s, Vt = (x.astype(float) for x in (X, U, s, Vt))
    return (np.linalg.norm(X - (U * s) @ Vt) / np.linalg.norm(X) / (k * eps),
            np.linalg.norm(U.T @ U - np.eye(U.shape[1])) / (k * eps),
            np.linalg.norm(Vt @ Vt.T - np.eye(Vt.shape[0])) / (k * eps))


def symmetric(n: int, seed: int, lam=None) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    if lam is None:
        return g + g.T
    Q = np.linalg.qr(g)[0]
    A = (Q * lam) @ Q.T
    return (A + A.T) / 2


def rectangular(m: int, n: int, seed: int, sv=None) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if sv is None:
        return rng.standard_normal((m, n))
    r = min(m, n)
    U = np.linalg.qr(rng.standard_normal((m, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    return (U * sv) @ V.T


EIG_ROWS = [("random symmetric", 200, 32, np.float64, None), ("random, ragged", 150, 40, np.float64, None),
            ("random", 150, 40, np.float32, None),
            ("clustered: 1 ± 1e-10 (half each)", 120, 32, np.float64,
             np.r_[np.full(60, 1 - 1e-10), np.full(60, 1 + 1e-10)]),
            ("rank 10 (90 zero eigenvalues)", 100, 16, np.float64, np.r_[np.zeros(90), np.arange(1, 11.0)]),
            ("graded: eigenvalues 10^(−12..0)", 100, 16, np.float64, np.logspace(-12, 0, 100))]
SVD_ROWS = [("random", 200, 150, 32, np.float64, None), ("random, wide, ragged", 90, 140, 25, np.float64, None),
            ("random", 150, 120, 40, np.float32, None),
            ("rank 10 (110 zero σ)", 150, 120, 32, np.float64, np.r_[np.arange(10, 0, -1.0), np.zeros(110)]),
            ("graded: σ = 10^(0..−12)", 120, 120, 16, np.float64, np.logspace(0, -12, 120)),
            ("clustered: 1 ± 1e-10 (half each)", 130, 100, 32, np.float64,
             np.r_[np.full(50, 1 + 1e-10), np.full(50, 1 - 1e-10)])]


def main() -> None:
    with npw.runtime(executors=2):
        print("| matrix | n | tile | dtype | ‖AV − VΛ‖_F/(‖A‖_F n eps) | numpy, same | ‖VᵀV − I‖_F/(n eps) "
              "| numpy, same | max\\|w − w_numpy\\|/(‖A‖₂ n eps) |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, n, b, dt, lam in EIG_ROWS:
            A = symmetric(n, n, lam).astype(dt)
            w, V = npw.eigh(A, block_size=b)
            wr, Vr = np.linalg.eigh(A)
            o, r = eig_errors(A, w, V.numpy()), eig_errors(A, wr, Vr)
            dw = np.max(np.abs(w.astype(float) - wr)) / (np.abs(wr).max() * n * np.finfo(dt).eps)
            print(f"| {name} | {n} | {b} | {np.dtype(dt).name} | {o[0]:.3g} | {r[0]:.3g} | {o[1]:.3g} | {r[1]:.3g} "
                  f"| {dw:.3g} |")
        print()
        print("| matrix | m×n | tile | dtype | ‖A − USVᵀ‖_F/(‖A‖_F max(m,n) eps) | numpy | ‖UᵀU − I‖ | numpy "
              "| ‖VᵀV − I‖ | numpy | max\\|s − s_numpy\\|/(s₁ n eps) |")
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for name, m, n, b, dt, sv in SVD_ROWS:
            X = rectangular(m, n, m + n, sv).astype(dt)
            U, s, Vt = npw.svd(X, block_size=b)
            Ur, sr, Vtr = np.linalg.svd(X, full_matrices=False)
            o, r = svd_errors(X, U.numpy(), s, Vt.numpy()), svd_errors(X, Ur, sr, Vtr)
            ds = np.max(np.abs(s.astype(float) - sr)) / (sr[0] * min(m, n) * np.finfo(dt).eps)
            print(f"| {name} | {m}×{n} | {b} | {np.dtype(dt).name} | {o[0]:.3g} | {r[0]:.3g} | {o[1]:.3g} | {r[1]:.3g} "
                  f"| {o[2]:.3g} | {r[2]:.3g} | {ds:.3g} |")


if __name__ == "__main__":
    main()
