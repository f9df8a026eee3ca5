"""Time and accuracy of npw.svd and npw.pca against numpy/scipy on the same matrices, in the same run.

Matrices are built with known singular values, so both sides are measured against the truth:

- well-conditioned: U diag(σ) Vᵀ with random orthonormal U, V and σ evenly spaced in [1, 10];
- the test matrix of "Randomized SVD for Serverless Systems": σ1 = 100, σi = 2^(1−i)·σ1.  It is built
  from its leading 64 triplets (σ65 < 1e-17·σ1, below double precision rounding of the matrix), with
  columns of U orthogonal to the ones vector so that the column means are known (the PCA cases add an
  offset of 5 to every entry, which centering must remove); the exact explained variance ratios are
  σi² / Σσ².

Each case stores its matrix as a BigMatrix (not timed), times the npw call on the current runtime
(from the first job's submission to the last one's end; reading results back is not timed), times the
reference in this process (numpy/scipy with OpenBLAS's default threads), and measures one metric for
both.  ``CASES`` is a list of functions, each returning one row::

    {"algorithm", "shape", "block", "npw_s", "ref_s", "metric", "npw_err", "ref_err"}

``bench/algorithms.py`` runs these cases with its own; alone:

    python bench/algorithms_svd.py [--quick] [--only NAME ...] [--executors 2]
"""

from __future__ import annotations

import argparse
import functools
import os
import platform
import sys
import time

import numpy as np
import scipy.linalg as sl
import scipy.sparse.linalg as ssl

import numpywren2 as npw

QUICK = False  # --quick: small sizes, to check that the script runs


def size(full: int, quick: int) -> int:
    main_quick = getattr(sys.modules.get("__main__"), "QUICK", False)  # bench/algorithms.py --quick
    return quick if (QUICK or main_quick) else full


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def orthonormal(rows: int, cols: int, rng, centered: bool = False) -> np.ndarray:
    g = rng.standard_normal((rows, cols))
    if centered:
        g -= g.mean(axis=0)
    return np.linalg.qr(g)[0]


def with_singular_values(m: int, n: int, sigma: np.ndarray, seed: int, centered: bool = False) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = sigma.size
    return (orthonormal(m, r, rng, centered) * sigma) @ orthonormal(n, r, rng).T


def paper_sigma(r: int = 64) -> np.ndarray:
    return 100.0 * 2.0 ** -np.arange(r)


def rel_err(s: np.ndarray, truth: np.ndarray) -> float:
    return float(np.max(np.abs(s - truth) / truth))


def svd_error(A: np.ndarray, U: np.ndarray, s: np.ndarray, Vt: np.ndarray) -> float:
    r = s.size
    return max(np.linalg.norm(A - (U * s) @ Vt) / np.linalg.norm(A), np.linalg.norm(U.T @ U - np.eye(r)),
               np.linalg.norm(Vt @ Vt.T - np.eye(r)))


def case_svd_values_square() -> dict:
    n, b = size(3000, 400), size(750, 100)
    sigma = np.linspace(10.0, 1.0, n)
    X = with_singular_values(n, n, sigma, seed=1)
    A = npw.BigMatrix.from_numpy(X, b)
    s, t = timed(lambda: npw.svd(A, compute_uv=False))
    sr, tr = timed(lambda: sl.svdvals(X))
    return {"algorithm": "svd values (band)", "shape": f"{n}x{n}", "block": str(b), "npw_s": t, "ref_s": tr,
            "metric": "max |s−σ|/σ (known σ)", "npw_err": rel_err(s, sigma), "ref_err": rel_err(sr, sigma)}


def case_svd_values_tall() -> dict:
    m, n, b = size(16000, 1600), size(1600, 200), size(800, 100)
    sigma = np.linspace(10.0, 1.0, n)
    X = with_singular_values(m, n, sigma, seed=2)
    A = npw.BigMatrix.from_numpy(X, b)
    s, t = timed(lambda: npw.svd(A, compute_uv=False))
    sr, tr = timed(lambda: sl.svdvals(X))
    return {"algorithm": "svd values (band)", "shape": f"{m}x{n}", "block": str(b), "npw_s": t, "ref_s": tr,
            "metric": "max |s−σ|/σ (known σ)", "npw_err": rel_err(s, sigma), "ref_err": rel_err(sr, sigma)}


def case_svd_vectors() -> dict:
    m, n, b = size(4000, 500), size(2000, 250), size(500, 100)
    X = np.random.default_rng(3).standard_normal((m, n))
    A = npw.BigMatrix.from_numpy(X, b)
    (U, s, Vt), t = timed(lambda: npw.svd(A))
    (Ur, sr, Vtr), tr = timed(lambda: np.linalg.svd(X, full_matrices=False))
    return {"algorithm": "svd U,s,Vt (band)", "shape": f"{m}x{n}", "block": str(b), "npw_s": t, "ref_s": tr,
            "metric": "max(‖A−USVᵀ‖/‖A‖, ‖UᵀU−I‖, ‖VᵀV−I‖)", "npw_err": svd_error(X, U.numpy(), s, Vt.numpy()),
            "ref_err": svd_error(X, Ur, sr, Vtr)}


def case_randomized_svd() -> dict:
    m, n, bm, bn, k = size(20000, 4000), size(2000, 800), size(5000, 1000), size(1000, 400), 10
    sigma = paper_sigma()
    X = with_singular_values(m, n, sigma, seed=4)
    A = npw.BigMatrix.from_numpy(X, (bm, bn))
    (_U, s, _Vt), t = timed(lambda: npw.svd(A, k=k))
    (_Ur, sr, _Vtr), tr = timed(lambda: ssl.svds(X, k=k, random_state=0))
    order = np.argsort(sr)[::-1]
    return {"algorithm": "svd k=10 randomized", "shape": f"{m}x{n}", "block": f"{bm}x{bn}", "npw_s": t,
            "ref_s": tr, "metric": "top-10 max |s−σ|/σ; ref: svds", "npw_err": rel_err(s, sigma[:k]),
            "ref_err": rel_err(sr[order], sigma[:k])}


def paper_pca_data(m: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    sigma = paper_sigma()
    X = with_singular_values(m, n, sigma, seed=seed, centered=True) + 5.0
    return X, sigma**2 / np.sum(sigma**2)


def exact_pca_ratios(X: np.ndarray, k: int) -> np.ndarray:
    s = np.linalg.svd(X - X.mean(axis=0), compute_uv=False)
    return s[:k] ** 2 / np.sum(s**2)


@functools.cache
def exact_pca_timed(m: int, n: int, k: int) -> tuple[np.ndarray, float]:
    """The exact PCA of the tree cases' matrix and its time, measured once for all block counts."""
    X, _truth = paper_pca_data(m, n, seed=6)
    return timed(lambda: exact_pca_ratios(X, k))


def case_pca_randomized() -> dict:
    m, n, bm, bn, k = size(20000, 4000), size(2000, 400), size(5000, 1000), size(1000, 200), 10
    X, truth = paper_pca_data(m, n, seed=5)
    A = npw.BigMatrix.from_numpy(X, (bm, bn))
    P, t = timed(lambda: npw.pca(A, k))
    ref, tr = timed(lambda: exact_pca_ratios(X, k))
    return {"algorithm": "pca k=10 randomized", "shape": f"{m}x{n}", "block": f"{bm}x{bn}", "npw_s": t,
            "ref_s": tr, "metric": "top-10 EVR rel err; ref: exact", "npw_err": rel_err(P.explained_variance_ratio_,
                                                                                        truth[:k]),
            "ref_err": rel_err(ref, truth[:k])}


def tree_case(blocks: int, p: int = 0):
    def case_pca_tree() -> dict:
        m, n, k = size(16000, 4000), size(1024, 256), 10
        bm, bn = size(8000, 1000), -(-n // blocks)
        X, truth = paper_pca_data(m, n, seed=6)
        A = npw.BigMatrix.from_numpy(X, (bm, bn))
        P, t = timed(lambda: npw.pca(A, k, method="tree", p=p))
        (ref, tr) = exact_pca_timed(m, n, k)
        return {"algorithm": f"pca tree {blocks} blk p={p}", "shape": f"{m}x{n}", "block": f"{bm}x{bn}", "npw_s": t,
                "ref_s": tr, "metric": "top-10 EVR rel err; ref: exact",
                "npw_err": rel_err(P.explained_variance_ratio_, truth[:k]), "ref_err": rel_err(ref, truth[:k])}

    case_pca_tree.__name__ = f"case_pca_tree_{blocks}_p{p}"
    return case_pca_tree


CASES = [case_svd_values_square, case_svd_values_tall, case_svd_vectors, case_randomized_svd, case_pca_randomized,
         *(tree_case(b) for b in (1, 2, 4, 8, 16)), tree_case(4, p=10), tree_case(16, p=10)]


def print_row(row: dict) -> None:
    ratio = row["npw_s"] / row["ref_s"] if row["ref_s"] > 0 else float("inf")
    print(f"{row['algorithm']:<22} {row['shape']:<11} {row['block']:>10} {row['npw_s']:>8.2f} {row['ref_s']:>8.2f} "
          f"{ratio:>7.1f}  {row['metric']:<38} {row['npw_err']:>9.1e} {row['ref_err']:>9.1e}", flush=True)


def main() -> None:
    global QUICK
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a check that everything runs)")
    parser.add_argument("--only", nargs="*", help="run only cases whose function name contains one of these")
    parser.add_argument("--executors", type=int, default=2, help="executor processes (default 2)")
    args = parser.parse_args()
    QUICK = args.quick
    cases = [c for c in CASES if not args.only or any(s in c.__name__ for s in args.only)]
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}; npw: embedded runtime, {args.executors} executors x 1 BLAS thread; "
          f"reference: numpy/scipy in this process, BLAS threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    print(f"{'algorithm':<22} {'shape':<11} {'block':>10} {'npw s':>8} {'ref s':>8} {'ratio':>7}  {'metric':<38} "
          f"{'npw err':>9} {'ref err':>9}")
    print("-" * 130)
    with npw.runtime(executors=args.executors):
        for case in cases:
            print_row(case())


if __name__ == "__main__":
    main()
