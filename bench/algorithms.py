"""Time and accuracy of the tiled algorithms against numpy/scipy (LAPACK) on the same matrices, same run.

Each case builds its matrices with a fixed seed, stores them as BigMatrix (not timed),
runs the npw function on the embedded runtime (2 executor processes, one BLAS thread
each; the time is from submitting the job to its end, reading the result back is not
timed), runs the numpy/scipy reference in this process (OpenBLAS with its default
threads, i.e. both cores), and measures the same error metric for both. Each side runs
twice and keeps its best time (``--repeats``): on a shared machine the two-thread BLAS of
the reference is easily slowed down by other load.

``CASES`` is a list of functions, each returning one row::

    {"algorithm", "shape", "block", "npw_s", "ref_s", "metric", "npw_err", "ref_err"}

Cases of ``bench/algorithms_svd.py`` (same row format) are run too when that file exists.

    python bench/algorithms.py [--quick] [--only NAME ...] [--repeats 2] [--executors 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

import numpy as np
import scipy.linalg as sl

import numpywren2 as npw

QUICK = False  # --quick: small sizes, to check that the script runs


def size(full: int, quick: int) -> int:
    return quick if QUICK else full


REPEATS = 2  # each side is timed this many times and the best time is kept (--repeats)


def _delete_matrices(out) -> None:
    for x in out if isinstance(out, tuple) else (out,):
        if isinstance(x, npw.BigMatrix):
            x.delete()


def timed(fn):
    """``(result of the last run, best time)`` over ``REPEATS`` runs; earlier BigMatrix results are deleted."""
    best, out = float("inf"), None
    for _ in range(REPEATS):
        if out is not None:
            _delete_matrices(out)
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return out, best


def spd_matrix(n: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def qr_error(A: np.ndarray, Q: np.ndarray, R: np.ndarray) -> float:
    k = Q.shape[1]
    return max(np.linalg.norm(A - Q @ R) / np.linalg.norm(A), np.linalg.norm(Q.T @ Q - np.eye(k)))


def case_qr_square() -> dict:
    n, b = size(4000, 600), size(1000, 150)
    X = np.random.default_rng(1).standard_normal((n, n))
    A = npw.BigMatrix.from_numpy(X, b)
    (Q, R), t = timed(lambda: npw.qr(A))
    (Qr, Rr), tr = timed(lambda: np.linalg.qr(X))
    return {"algorithm": "qr (Q, R)", "shape": f"{n}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max(‖A−QR‖/‖A‖, ‖QᵀQ−I‖)", "npw_err": qr_error(X, Q.numpy(), R.numpy()),
            "ref_err": qr_error(X, Qr, Rr)}


def case_qr_tall() -> dict:
    m, n, b = size(32000, 4000), size(2000, 300), size(2000, 300)
    X = np.random.default_rng(2).standard_normal((m, n))
    A = npw.BigMatrix.from_numpy(X, b)
    (Q, R), t = timed(lambda: npw.qr(A))
    (Qr, Rr), tr = timed(lambda: np.linalg.qr(X))
    return {"algorithm": "qr (Q, R)", "shape": f"{m}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max(‖A−QR‖/‖A‖, ‖QᵀQ−I‖)", "npw_err": qr_error(X, Q.numpy(), R.numpy()),
            "ref_err": qr_error(X, Qr, Rr)}


def r_error(A: np.ndarray, R: np.ndarray) -> float:
    return np.linalg.norm(R.T @ R - A.T @ A) / np.linalg.norm(A) ** 2


def case_qr_r() -> dict:
    n, b = size(4000, 600), size(1000, 150)
    X = np.random.default_rng(3).standard_normal((n, n))
    A = npw.BigMatrix.from_numpy(X, b)
    R, t = timed(lambda: npw.qr(A, mode="r"))
    Rr, tr = timed(lambda: np.linalg.qr(X, mode="r"))
    return {"algorithm": "qr mode='r'", "shape": f"{n}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "‖RᵀR−AᵀA‖/‖A‖²", "npw_err": r_error(X, R.numpy()), "ref_err": r_error(X, Rr)}


def case_solve_triangular() -> dict:
    n, k, b = size(6000, 800), size(2000, 200), size(1000, 200)
    rng = np.random.default_rng(4)
    Lx = np.tril(rng.standard_normal((n, n))) / np.sqrt(n) + 2 * np.eye(n)
    Bx = rng.standard_normal((n, k))
    L = npw.BigMatrix.from_numpy(Lx, b)
    B = npw.BigMatrix.from_numpy(Bx, b)
    X, t = timed(lambda: npw.solve_triangular(L, B, lower=True))
    Xr, tr = timed(lambda: sl.solve_triangular(Lx, Bx, lower=True))

    def err(x):
        return np.linalg.norm(Lx @ x - Bx) / (np.linalg.norm(Lx) * np.linalg.norm(x))

    return {"algorithm": "solve_triangular", "shape": f"{n}x{n}, {k} rhs", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "‖Lx−b‖/(‖L‖‖x‖)", "npw_err": err(X.numpy()), "ref_err": err(Xr)}


def case_solve_spd() -> dict:
    n, b = size(6000, 800), size(1000, 200)
    Ax = spd_matrix(n, 5)
    bx = np.random.default_rng(6).standard_normal(n)
    A = npw.BigMatrix.from_numpy(Ax, b)
    x, t = timed(lambda: npw.solve(A, bx, assume_a="pos"))
    xr, tr = timed(lambda: sl.solve(Ax, bx, assume_a="pos"))

    def err(v):
        return np.linalg.norm(Ax @ v - bx) / (np.linalg.norm(Ax) * np.linalg.norm(v))

    return {"algorithm": "solve (SPD)", "shape": f"{n}x{n}, 1 rhs", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "‖Ax−b‖/(‖A‖‖x‖)", "npw_err": err(x), "ref_err": err(xr)}


def lu_error(A: np.ndarray, p: np.ndarray, L: np.ndarray, U: np.ndarray) -> float:
    """‖A − L[p] U‖_F / ‖A‖_F (scipy's p_indices form: A = L[p] @ U)."""
    return float(np.linalg.norm(A - L[p] @ U) / np.linalg.norm(A))


def _case_lu(m: int, n: int, b: int, seed: int) -> dict:
    X = np.random.default_rng(seed).standard_normal((m, n))
    A = npw.BigMatrix.from_numpy(X, b)
    (p, L, U), t = timed(lambda: npw.lu(A, p_indices=True))
    (pr, Lr, Ur), tr = timed(lambda: sl.lu(X, p_indices=True))
    A.delete()
    err = lu_error(X, p, L.numpy(), U.numpy())
    _delete_matrices((L, U))
    return {"algorithm": "lu (p, L, U)", "shape": f"{m}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "‖A−L[p]U‖/‖A‖", "npw_err": err, "ref_err": lu_error(X, pr, Lr, Ur)}


def case_lu_tall() -> dict:
    """A rectangular LU (tall): tournament pivoting over 6 tile rows, beside scipy.linalg.lu (getrf)."""
    return _case_lu(size(6000, 800), size(3000, 300), size(1000, 200), 21)


def case_lu_wide() -> dict:
    """A rectangular LU (wide): the last steps' rows solved into U's right part, beside scipy.linalg.lu."""
    return _case_lu(size(3000, 300), size(6000, 800), size(1000, 200), 22)


def case_inv_spd() -> dict:
    n, b = size(4000, 600), size(1000, 150)
    Ax = spd_matrix(n, 7)
    A = npw.BigMatrix.from_numpy(Ax, b)
    X, t = timed(lambda: npw.inv(A, assume_a="pos"))

    def potri():
        c, info = sl.lapack.dpotrf(Ax, lower=1)
        inv, info2 = sl.lapack.dpotri(c, lower=1)
        assert info == 0 and info2 == 0
        return np.tril(inv) + np.tril(inv, -1).T

    Xr, tr = timed(potri)

    def err(v):
        return np.linalg.norm(Ax @ v - np.eye(n)) / (np.linalg.norm(Ax) * np.linalg.norm(v))

    return {"algorithm": "inv (SPD)", "shape": f"{n}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "‖AX−I‖/(‖A‖‖X‖)", "npw_err": err(X.numpy()), "ref_err": err(Xr)}


def lstsq_error(A: np.ndarray, b: np.ndarray, x: np.ndarray) -> float:
    """The normwise backward error of a least-squares solution, ‖Aᵀr‖/(‖A‖(‖A‖‖x‖ + ‖r‖))."""
    r = b - A @ x
    nA = np.linalg.norm(A, 2)
    return np.linalg.norm(A.T @ r) / (nA * (nA * np.linalg.norm(x) + np.linalg.norm(r)))


def case_lstsq() -> dict:
    m, n, b = size(16000, 2000), size(1000, 200), size(1000, 200)
    rng = np.random.default_rng(8)
    Ax = rng.standard_normal((m, n))
    bx = rng.standard_normal(m)
    A = npw.BigMatrix.from_numpy(Ax, b)
    (x, *_), t = timed(lambda: npw.lstsq(A, bx))
    (xr, *_), tr = timed(lambda: np.linalg.lstsq(Ax, bx, rcond=None))  # LAPACK gelsd (SVD), as npw
    return {"algorithm": "lstsq (ref: gelsd)", "shape": f"{m}x{n}, 1 rhs", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "‖Aᵀr‖/(‖A‖(‖A‖‖x‖+‖r‖))", "npw_err": lstsq_error(Ax, bx, x), "ref_err": lstsq_error(Ax, bx, xr)}


def case_lstsq_rank_deficient() -> dict:
    """The issue's case: a near-duplicate column; both sides must find rank n - 1 and a small x."""
    m, n, b = size(4000, 800), size(400, 100), size(400, 100)
    rng = np.random.default_rng(9)
    Ax = rng.standard_normal((m, n))
    Ax[:, 1] = Ax[:, 0] + 1e-15 * rng.standard_normal(m)
    bx = rng.standard_normal(m)
    A = npw.BigMatrix.from_numpy(Ax, b)
    (x, _, rank, _), t = timed(lambda: npw.lstsq(A, bx))
    (xr, _, rank_ref, _), tr = timed(lambda: np.linalg.lstsq(Ax, bx, rcond=None))
    return {"algorithm": f"lstsq rank {rank}|{rank_ref}", "shape": f"{m}x{n}, max|x| {np.abs(x).max():.2f}",
            "block": b, "npw_s": t, "ref_s": tr, "metric": "‖Aᵀr‖/(‖A‖(‖A‖‖x‖+‖r‖))",
            "npw_err": lstsq_error(Ax, bx, x), "ref_err": lstsq_error(Ax, bx, xr)}


def case_pinv() -> dict:
    m, n, b = size(3000, 600), size(1500, 300), size(500, 100)
    Ax = np.random.default_rng(10).standard_normal((m, n))
    A = npw.BigMatrix.from_numpy(Ax, b)
    X, t = timed(lambda: npw.pinv(A))
    Xr, tr = timed(lambda: np.linalg.pinv(Ax))

    def err(P):
        return np.linalg.norm(Ax @ P @ Ax - Ax) / np.linalg.norm(Ax)

    return {"algorithm": "pinv", "shape": f"{m}x{n}", "block": b, "npw_s": t, "ref_s": tr, "metric": "‖AXA−A‖/‖A‖",
            "npw_err": err(X.numpy()), "ref_err": err(Xr)}


def case_norms() -> dict:
    """Frobenius, 1 and inf norms (one reduction job each) against numpy's, both against long-double sums."""
    n, b = size(8000, 1000), size(2000, 250)
    Ax = np.random.default_rng(11).standard_normal((n, n))
    A = npw.BigMatrix.from_numpy(Ax, b)
    orders = ("fro", 1, np.inf)
    exact = {"fro": float(np.sqrt(np.sum(Ax.astype(np.longdouble) ** 2))),
             1: float(np.abs(Ax.astype(np.longdouble)).sum(axis=0).max()),
             np.inf: float(np.abs(Ax.astype(np.longdouble)).sum(axis=1).max())}
    values, t = timed(lambda: [npw.norm(A, o) for o in orders])
    ref, tr = timed(lambda: [np.linalg.norm(Ax, o) for o in orders])

    def err(vs):
        return max(abs(v - exact[o]) / exact[o] for v, o in zip(vs, orders, strict=True))

    return {"algorithm": "norm fro, 1, inf", "shape": f"{n}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max |v−v_exact|/v_exact", "npw_err": err(values), "ref_err": err(ref)}


def case_cond() -> dict:
    """cond (p=None, singular values) of a matrix whose condition number is 1e6 by construction."""
    n, b = size(2000, 400), size(500, 100)
    rng = np.random.default_rng(12)
    U, _ = np.linalg.qr(rng.standard_normal((n, n)))
    V, _ = np.linalg.qr(rng.standard_normal((n, n)))
    Ax = (U * np.geomspace(1e6, 1.0, n)) @ V.T
    A = npw.BigMatrix.from_numpy(Ax, b)
    c, t = timed(lambda: npw.cond(A))
    cr, tr = timed(lambda: np.linalg.cond(Ax))
    return {"algorithm": "cond (2-norm)", "shape": f"{n}x{n}, κ=1e6", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "|κ−1e6|/1e6", "npw_err": abs(c - 1e6) / 1e6, "ref_err": abs(cr - 1e6) / 1e6}


def case_qr_pivoting() -> dict:
    m, n, b = size(8000, 1200), size(1000, 300), size(500, 150)
    X = np.random.default_rng(13).standard_normal((m, n))
    X[:, 5] = X[:, 3] * 2.0  # rank deficient: the pivoting must put it last
    A = npw.BigMatrix.from_numpy(X, b)
    (Q, R, P), t = timed(lambda: npw.qr(A, pivoting=True))
    (Qr, Rr, Pr), tr = timed(lambda: sl.qr(X, mode="economic", pivoting=True))
    d = np.abs(np.diag(R.numpy()))
    assert np.all(d[1:] <= d[:-1] * (1 + 1e-12)), "|R_kk| must not increase"
    return {"algorithm": "qr pivoting (geqp3)", "shape": f"{m}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max(‖AP−QR‖/‖A‖, ‖QᵀQ−I‖)", "npw_err": qr_error(X[:, P], Q.numpy(), R.numpy()),
            "ref_err": qr_error(X[:, Pr], Qr, Rr)}


def case_qr_raw() -> dict:
    m, n, b = size(8000, 1200), size(1000, 300), size(500, 150)
    X = np.random.default_rng(14).standard_normal((m, n))
    A = npw.BigMatrix.from_numpy(X, b)
    (h, tau), t = timed(lambda: npw.qr(A, mode="raw"))
    (hr, taur), tr = timed(lambda: np.linalg.qr(X, mode="raw"))

    def err(h, tau):  # Q from the reflectors by LAPACK orgqr, R from the upper triangle
        a = np.asfortranarray(h.T)
        q, _, info = sl.lapack.dorgqr(a[:, :n], tau)
        assert info == 0
        return qr_error(X, q, np.triu(a[:n]))

    return {"algorithm": "qr mode='raw'", "shape": f"{m}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max(‖A−QR‖/‖A‖, ‖QᵀQ−I‖)", "npw_err": err(h, tau), "ref_err": err(hr, taur)}


def case_svd_full() -> dict:
    m, n, b = size(3000, 600), size(1000, 200), size(500, 100)
    X = np.random.default_rng(15).standard_normal((m, n))
    A = npw.BigMatrix.from_numpy(X, b)
    (U, s, Vt), t = timed(lambda: npw.svd(A, full_matrices=True))
    (Ur, sr, Vtr), tr = timed(lambda: np.linalg.svd(X, full_matrices=True))

    def err(U, s, Vt):
        return max(np.linalg.norm((U[:, :n] * s) @ Vt - X) / np.linalg.norm(X), np.linalg.norm(U.T @ U - np.eye(m)))

    return {"algorithm": "svd full_matrices", "shape": f"{m}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max(‖A−USVᵀ‖/‖A‖, ‖UᵀU−I‖)", "npw_err": err(U.numpy(), s, Vt.numpy()),
            "ref_err": err(Ur, sr, Vtr)}


CASES_LINALG = [case_lstsq, case_lstsq_rank_deficient, case_pinv, case_norms, case_cond, case_qr_pivoting,
                case_qr_raw, case_svd_full]


SVD_N = 4096  # --svd-n: the square matrix of the all-singular-values row (8192 is the size)


def symmetric_with_eigenvalues(lam: np.ndarray, seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((lam.size, lam.size)))
    a = (q * lam) @ q.T
    return (a + a.T) / 2


def case_svd_values_large() -> dict:
    """All singular values of a square matrix: band reduction, then the band's second stage in one task."""
    n, b = size(SVD_N, 600), size(512, 100)
    sigma = np.linspace(10.0, 1.0, n)
    q1, _ = np.linalg.qr(np.random.default_rng(11).standard_normal((n, n)))
    q2, _ = np.linalg.qr(np.random.default_rng(12).standard_normal((n, n)))
    X = (q1 * sigma) @ q2.T
    del q1, q2
    A = npw.BigMatrix.from_numpy(X, b)
    s, t = timed(lambda: npw.svd(A, compute_uv=False))
    sr, tr = timed(lambda: sl.svdvals(X))
    A.delete()
    err = lambda v: float(np.max(np.abs(np.sort(v)[::-1] - sigma) / sigma))  # noqa: E731
    return {"algorithm": "svd values (band)", "shape": f"{n}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max |s−σ|/σ (known σ)", "npw_err": err(s), "ref_err": err(sr)}


def case_eigvalsh() -> dict:
    n, b = size(4096, 500), size(512, 100)
    lam = np.linspace(-1.0, 1.0, n) * 10.0
    X = symmetric_with_eigenvalues(lam, 13)
    A = npw.BigMatrix.from_numpy(X, b)
    w, t = timed(lambda: npw.eigvalsh(A))
    wr, tr = timed(lambda: np.linalg.eigvalsh(X))
    A.delete()
    err = lambda v: float(np.max(np.abs(v - lam)) / (np.abs(lam).max() * n * np.finfo(float).eps))  # noqa: E731
    return {"algorithm": "eigvalsh", "shape": f"{n}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max|w−λ|/(‖A‖₂ n eps), known λ", "npw_err": err(w), "ref_err": err(wr)}


def eigh_error(A: np.ndarray, w: np.ndarray, V: np.ndarray) -> float:
    n = A.shape[0]
    eps = np.finfo(A.dtype).eps
    return max(np.linalg.norm(A @ V - V * w) / (np.linalg.norm(A) * n * eps),
               np.linalg.norm(V.T @ V - np.eye(V.shape[1])) / (n * eps))


def case_eigh() -> dict:
    n, b = size(3000, 500), size(500, 100)
    g = np.random.default_rng(14).standard_normal((n, n))
    X = g + g.T
    A = npw.BigMatrix.from_numpy(X, b)
    (w, V), t = timed(lambda: npw.eigh(A))
    (wr, Vr), tr = timed(lambda: np.linalg.eigh(X))
    A.delete()
    return {"algorithm": "eigh (w, V)", "shape": f"{n}x{n}", "block": b, "npw_s": t, "ref_s": tr,
            "metric": "max(‖AV−VΛ‖/‖A‖, ‖VᵀV−I‖)/(n eps)", "npw_err": eigh_error(X, w, V.numpy()),
            "ref_err": eigh_error(X, wr, Vr)}



CASES = [case_qr_square, case_qr_tall, case_qr_r, case_solve_triangular, case_solve_spd, case_inv_spd,
         case_lu_tall, case_lu_wide,
         *CASES_LINALG, case_svd_values_large, case_eigvalsh, case_eigh]


def print_row(row: dict) -> None:
    ratio = row["npw_s"] / row["ref_s"] if row["ref_s"] > 0 else float("inf")
    print(f"{row['algorithm']:<20} {row['shape']:<18} {row['block']:>6} {row['npw_s']:>8.2f} {row['ref_s']:>8.2f} "
          f"{ratio:>7.1f}  {row['metric']:<28} {row['npw_err']:>9.1e} {row['ref_err']:>9.1e}", flush=True)


def main() -> None:
    global QUICK, REPEATS, SVD_N
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a check that everything runs)")
    parser.add_argument("--only", nargs="*", help="run only cases whose function name contains one of these")
    parser.add_argument("--executors", type=int, default=2, help="executor processes (default 2)")
    parser.add_argument("--repeats", type=int, default=2, help="runs of each side, the best time is kept (default 2)")
    parser.add_argument("--svd-n", type=int, default=SVD_N, help=f"size of the square all-singular-values row "
                        f"(default {SVD_N})")
    args = parser.parse_args()
    QUICK, REPEATS, SVD_N = args.quick, args.repeats, args.svd_n
    cases = list(CASES)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        from algorithms_svd import CASES as SVD_CASES
    except ImportError:
        SVD_CASES = []
    cases += list(SVD_CASES)
    if args.only:
        cases = [c for c in cases if any(s in c.__name__ for s in args.only)]
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"numpy {np.__version__}; npw: embedded runtime, {args.executors} executors x 1 BLAS thread; "
          f"reference: numpy/scipy in this process, BLAS threads={os.environ.get('OPENBLAS_NUM_THREADS', 'default')}")
    print(f"{'algorithm':<20} {'shape':<18} {'block':>6} {'npw s':>8} {'ref s':>8} {'ratio':>7}  {'metric':<28} "
          f"{'npw err':>9} {'ref err':>9}")
    print("-" * 126)
    with npw.runtime(executors=args.executors):
        for case in cases:
            print_row(case())


if __name__ == "__main__":
    main()
