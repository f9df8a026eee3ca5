"""Cholesky and GEMM throughput of the embedded runtime against LAPACK, Dask and the DGEMM ceiling.

Everything is measured in the same run on the same matrices:

- DGEMM ceiling: ``numpy`` matmul of two n×n matrices (n = 4096) with 2 BLAS threads;
- ``numpy.linalg.cholesky`` with 2 BLAS threads;
- Dask: ``dask.array.linalg.cholesky`` on the threaded scheduler, 2 workers × 1 BLAS thread,
  for each chunk size in ``--dask-chunks``; the best is reported;
  (the numpy and Dask references each run in a fresh process on the same seeded matrix);
- ours: ``npw.cholesky`` on the embedded runtime (local files + SQLite), 2 executor processes × 1
  BLAS thread (provisioner policy: 2 from the first task on), for each block size in
  ``--blocks``; the best is reported.  The time runs from the
  call to its return (job submission, executor start, all tasks, the wait); writing the input
  tiles beforehand and reading L back afterwards are not timed; the runtime is warmed up once
  (its executor zygote started) before anything is timed.  The answer is checked with a
  backward error on a random probe, ‖A v − L (Lᵀ v)‖ / (‖A‖ ‖v‖).

GFLOP/s use n³/3 for Cholesky and 2n³ for GEMM.  ``numpy (1 thread)*`` marks a size where the
2-thread numpy reference crashed three times (a segfault inside OpenBLAS 0.3.31 at n = 16384 on
this machine); its 1-thread time is shown instead, and ratios against it flatter us.

    python bench/cholesky.py                       # n = 8192 and 16384, GEMM n = 8192
    python bench/cholesky.py --sizes 4096 --gemm 4096 --blocks 512 1024 --dask-chunks 1024
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

import numpywren2 as npw
from provisioner import ProportionalPolicy

# Two executors from the first task on (the default policy, sf = 1, would start with one executor
# for Cholesky's single first task and add the second at the provisioner's next look).
POOL = ProportionalPolicy(2.0)


def spd(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1.0, 1.0, (n, n))
    X = (X + X.T) / 2
    X[np.diag_indices(n)] += n
    return X


def best_of(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def dgemm_rate(n: int = 4096) -> float:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    with threadpool_limits(2):
        a @ b
        return 2 * n**3 / best_of(lambda: a @ b, 3) / 1e9


def probe_error(A: np.ndarray, L: np.ndarray) -> float:
    v = np.random.default_rng(2).standard_normal(A.shape[0])
    return float(np.linalg.norm(A @ v - L @ (L.T @ v)) / (np.linalg.norm(A, 2 if A.shape[0] <= 2048 else "fro")
                                                        * np.linalg.norm(v)))


def run_dask_cholesky(X: np.ndarray, chunk: int) -> float:
    import dask
    import dask.array as da

    with threadpool_limits(1), dask.config.set(scheduler="threads", num_workers=2):
        d = da.from_array(X, chunks=chunk)
        t = time.perf_counter()
        da.linalg.cholesky(d, lower=True).compute()
        return time.perf_counter() - t


def run_isolated(what: str, n: int, arg: int, env: dict | None = None) -> float:
    """A reference timed in a fresh process (same seeded matrix): OpenBLAS 0.3.31 has aborted
    ("The futex facility returned an unexpected error code") in multi-threaded callers at
    n = 16384; a crash is retried (3 attempts), then costs that row, not the whole run.  NaN if it failed."""
    for _ in range(3):
        r = subprocess.run([sys.executable, __file__, "--isolated", what, str(n), str(arg)], capture_output=True,
                           text=True, env=None if env is None else {**os.environ, **env})
        if r.returncode == 0:
            return float(r.stdout.strip().splitlines()[-1])
        print(f"    ({what} n={n} {arg}: process failed with exit code {r.returncode}: "
              f"{(r.stderr.strip().splitlines() or ['?'])[-1]}; trying again)", flush=True)
    return float("nan")


# outside the source tree (the tree's code checks walk every .py file in it)
MKL_VENV = os.environ.get("NPW_MKL_VENV", os.path.expanduser("~/.cache/numpywren2/bench-mkl-venv"))


def find_mkl() -> tuple[str | None, str]:
    """The path of MKL's ``libmkl_rt`` from the ``mkl`` package, installed into a venv of its own (``MKL_VENV``) on
    first use; (None, why) if it cannot be."""
    import glob

    def lib() -> str | None:
        found = sorted(glob.glob(os.path.join(MKL_VENV, "lib", "libmkl_rt.so*")))
        return found[0] if found else None

    if lib() is None:
        r = subprocess.run([sys.executable, "-m", "venv", MKL_VENV], capture_output=True, text=True)
        if r.returncode == 0:
            r = subprocess.run([os.path.join(MKL_VENV, "bin", "pip"), "install", "-q", "mkl"], capture_output=True,
                               text=True)
        if r.returncode != 0:
            return None, f"pip install mkl failed: {(r.stderr.strip().splitlines() or ['?'])[-1]}"
    return (lib(), "") if lib() else (None, f"mkl installed into {MKL_VENV} but no libmkl_rt found")


def mkl_potrf_seconds(X: np.ndarray, lib: str, threads: int) -> float:
    """MKL's dpotrf on a copy of X (lower triangle: the upper of its Fortran-ordered transpose), through ctypes."""
    import ctypes

    mkl = ctypes.CDLL(lib)
    mkl.MKL_Set_Num_Threads(ctypes.c_int(threads))
    n = X.shape[0]
    a = X.T.copy(order="F")  # the column-major matrix whose upper triangle is X's lower
    info, uplo, nn = ctypes.c_int(0), ctypes.c_char(b"U"), ctypes.c_int(n)
    w = X[:256, :256].T.copy(order="F")
    mkl.dpotrf_(ctypes.byref(uplo), ctypes.byref(ctypes.c_int(256)), w.ctypes.data_as(ctypes.c_void_p),
                ctypes.byref(ctypes.c_int(256)), ctypes.byref(info))  # warm: MKL's dispatch and threads
    t = time.perf_counter()
    mkl.dpotrf_(ctypes.byref(uplo), ctypes.byref(nn), a.ctypes.data_as(ctypes.c_void_p), ctypes.byref(nn),
                ctypes.byref(info))
    el = time.perf_counter() - t
    if info.value != 0:
        raise RuntimeError(f"MKL dpotrf info={info.value}")
    L = np.tril(a.T)
    if probe_error(X, L) > 1e-12:
        raise RuntimeError("MKL dpotrf: wrong factor")
    return el


def isolated_main(what: str, n: int, arg: int) -> None:
    X = spd(n)
    if what == "mkl":
        print(mkl_potrf_seconds(X, os.environ["NPW_MKL_LIB"], arg))
    elif what == "dask":
        print(run_dask_cholesky(X, arg))
    elif what == "numpy":
        with threadpool_limits(arg):
            np.linalg.cholesky(X[:512, :512])
            t = time.perf_counter()
            np.linalg.cholesky(X)
            print(time.perf_counter() - t)


def run_npw_cholesky(X: np.ndarray, block: int) -> tuple[float, float, dict]:
    """What ``npw.cholesky(A, executors=2)`` does, keeping the job for its stats."""
    A = npw.BigMatrix.from_numpy(X, block)
    L = npw.BigMatrix.empty(A.shape, A.block_size, A.dtype)
    t = time.perf_counter()
    job = npw.submit(npw.programs.cholesky, A=A, L=L, N=A.grid[0], executors=2, policy=POOL).wait()
    el = time.perf_counter() - t
    err = probe_error(X, L.numpy())
    L.delete()
    A.delete()
    st = job.stats()
    per: dict[str, list[float]] = {}
    for r in job.task_records():
        name = r["task"].split("@")[0]
        per.setdefault(name, []).append(r["kernel_s"])
    st["per_kernel"] = {k: (len(v), sum(v)) for k, v in per.items()}
    return el, err, st


def run_npw_gemm(A: np.ndarray, B: np.ndarray, block: int) -> tuple[float, float]:
    a, b = npw.BigMatrix.from_numpy(A, block), npw.BigMatrix.from_numpy(B, block)
    t = time.perf_counter()
    C = npw.BigMatrix.empty((A.shape[0], B.shape[1]), block, np.float64)
    npw.submit(npw.programs.gemm, A=a, B=b, C=C, M=a.grid[0], N=b.grid[1], K=a.grid[1], executors=2,
               policy=POOL).wait()
    el = time.perf_counter() - t
    v = np.random.default_rng(3).standard_normal(B.shape[1])
    err = float(np.linalg.norm(C.numpy() @ v - A @ (B @ v)) / (np.linalg.norm(A) * np.linalg.norm(B)
                                                                  * np.linalg.norm(v)))
    for m in (a, b, C):
        m.delete()
    return el, err


def kernel_blas() -> str:
    """What the executors' tile kernels use (they inherit this process's ``NPW_BLAS``: ``_mkl.describe``)."""
    from numpywren2.core.kernels import _mkl

    return f"{_mkl.describe()} (NPW_BLAS={os.environ.get(_mkl.BLAS_ENV, 'auto')})"


def defaults_main(args) -> None:
    """The defaults against numpy (2 threads) and MKL, in alternating rounds (best of ``--rounds``), and the
    in-process crossover (``--crossover``)."""
    blas = [f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})" for i in threadpool_info()
            if i["user_api"] == "blas"]
    cpu = next((ln.split(":", 1)[1].strip() for ln in open("/proc/cpuinfo") if ln.startswith("model name")), "?")
    print(f"# {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy {np.__version__}, "
          f"BLAS {', '.join(blas)}; load average {os.getloadavg()[0]:.1f} at the start")
    lib, why = find_mkl()
    print(f"# MKL: {lib} (dpotrf through ctypes, 2 threads, in its own process)" if lib else f"# MKL: skipped ({why})")
    print("# numpy: numpy.linalg.cholesky / matmul with 2 BLAS threads in this process; ours: defaults "
          "(npw.runtime(): up to 2 executors x 1 BLAS thread, default tiling, default policy)")
    print(f"# the executors' tile kernels: {kernel_blas()}")
    npw.cholesky(spd(256), block_size=128)  # warm-up: the executor zygote
    mkl_env = {"NPW_MKL_LIB": lib} if lib else None
    rows: list[tuple[str, int, dict[str, float]]] = []
    timed = {}

    def best(key, fn):
        el = fn()
        if el == el:  # NaN: the reference failed in every attempt (its row says so)
            timed[key] = min(timed.get(key, float("inf")), el)

    def clock(fn) -> float:
        t = time.perf_counter()
        fn()
        return time.perf_counter() - t

    for n in args.default_sizes:
        X = spd(n)
        A = npw.BigMatrix.from_numpy(X) if n >= 8192 else None
        with threadpool_limits(2):
            np.linalg.cholesky(X[:512, :512])
        for _ in range(args.rounds):  # alternating: every reference and ours in each round
            if n > 8192:  # in a process of its own: OpenBLAS 0.3.31's 2-thread potrf has crashed there
                best((n, "numpy"), lambda n=n: run_isolated("numpy", n, 2))
            else:
                with threadpool_limits(2):
                    best((n, "numpy"), lambda X=X: clock(lambda: np.linalg.cholesky(X)))
            if lib:
                best((n, "mkl"), lambda n=n: run_isolated("mkl", n, 2, mkl_env))
            best((n, "npw numpy"), lambda X=X: clock(lambda: npw.cholesky(X).numpy()))
            if A is not None:
                best((n, "npw BigMatrix"), lambda A=A: clock(lambda: npw.cholesky(A)))
        rows.append(("cholesky", n, {k[1]: v for k, v in timed.items() if k[0] == n}))
        if A is not None:
            A.delete()
    head = f"{'what':<40}{'n':>7}{'seconds':>9}{'GFLOP/s':>9}{'x numpy':>9}{'x MKL':>8}"
    print(head)
    print("-" * len(head))
    for _, n, t in rows:
        flops = n**3 / 3
        if "numpy" not in t:
            print(f"{'numpy.linalg.cholesky (2 threads)':<40}{n:>7}   failed in every attempt (see above)")
        for key, label in (("numpy", "numpy.linalg.cholesky (2 threads)"), ("mkl", "MKL dpotrf (2 threads)"),
                           ("npw numpy", "npw.cholesky(X).numpy()  [defaults]"),
                           ("npw BigMatrix", "npw.cholesky(A) BigMatrix  [defaults]")):
            if key in t:
                xs = [f"{t[r] / t[key]:.2f}" if r in t else "-" for r in ("numpy", "mkl")]
                print(f"{label:<40}{n:>7}{t[key]:>9.3f}{flops / t[key] / 1e9:>9.1f}{xs[0]:>9}{xs[1]:>8}", flush=True)
    if args.gemm:
        n = args.gemm
        rng = np.random.default_rng(4)
        G1, G2 = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        a, b = npw.BigMatrix.from_numpy(G1), npw.BigMatrix.from_numpy(G2)
        t_np = t_npw = float("inf")
        for _ in range(max(1, args.rounds - 1)):
            with threadpool_limits(2):
                t_np = min(t_np, clock(lambda: G1 @ G2))
            t_npw = min(t_npw, clock(lambda: npw.matmul(a, b)))
        for label, el in (("numpy matmul (2 threads)", t_np), ("npw.matmul(A, B) BigMatrix  [defaults]", t_npw)):
            print(f"{label:<40}{n:>7}{el:>9.3f}{2 * n**3 / el / 1e9:>9.1f}{t_np / el:>9.2f}{'-':>8}", flush=True)
        a.delete()
        b.delete()
    if args.crossover:
        from numpywren2.client.matrix import default_block_size

        print("\n# crossover: numpy in and out through a job (default tiling, given explicitly so that it runs as "
              "a job) against numpy.linalg.cholesky, best of rounds")
        print(f"{'n':>7}{'numpy s':>10}{'job s':>10}{'job / numpy':>13}")
        for n in args.crossover:
            X = spd(n)
            t_np = t_job = float("inf")
            for _ in range(args.rounds):
                with threadpool_limits(2):
                    t_np = min(t_np, clock(lambda X=X: np.linalg.cholesky(X)))
                t_job = min(t_job, clock(lambda X=X: npw.cholesky(X, block_size=default_block_size(X.shape)).numpy()))
            print(f"{n:>7}{t_np:>10.3f}{t_job:>10.3f}{t_job / t_np:>13.2f}", flush=True)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--isolated":
        return isolated_main(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[8192, 16384])
    ap.add_argument("--blocks", type=int, nargs="+", default=None,
                    help="block sizes to try (default: 1024 and 2048 for n >= 16384, 512 and 1024 below)")
    ap.add_argument("--dask-chunks", type=int, nargs="+", default=None,
                    help="Dask chunk sizes (default: 1024 and 2048)")
    ap.add_argument("--gemm", type=int, default=8192, help="GEMM size (0: skip)")
    ap.add_argument("--gemm-blocks", type=int, nargs="+", default=[2048, 4096])
    ap.add_argument("--no-dask", action="store_true")
    ap.add_argument("-v", "--verbose", action="store_true", help="print where the executors' time went")
    ap.add_argument("--defaults", action="store_true",
                    help="the defaults' rows (numpy in/out and BigMatrix, GEMM) beside numpy and MKL, then exit")
    ap.add_argument("--default-sizes", type=int, nargs="+", default=[3000, 8192])
    ap.add_argument("--rounds", type=int, default=3, help="alternating rounds of --defaults (best of)")
    ap.add_argument("--crossover", type=int, nargs="*", default=[],
                    help="with --defaults: sizes at which to time numpy in/out through a job against numpy")
    args = ap.parse_args()
    if args.defaults:
        return defaults_main(args)

    blas = [f"{i['internal_api']} {i.get('version')}" for i in threadpool_info() if i["user_api"] == "blas"]
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy "
          f"{np.__version__}, BLAS {', '.join(blas)}")
    print("# references: numpy with 2 BLAS threads; Dask threaded scheduler with 2 workers x 1 BLAS thread;"
          " ours: 2 executor processes x 1 BLAS thread (embedded: files + SQLite)")
    print(f"# the executors' tile kernels: {kernel_blas()}")
    # warm-up: the runtime's one-time start (the executor zygote, see executor/warm.py), as numpy's
    # and Dask's imports and thread pools are warm before they are timed
    npw.cholesky(spd(256), block_size=128, executors=2)
    peak = dgemm_rate()
    print(f"# DGEMM ceiling (n=4096, 2 threads): {peak:.1f} GFLOP/s\n")
    head = f"{'algorithm':<22}{'n':>7}{'block':>7}{'seconds':>9}{'GFLOP/s':>9}{'x numpy':>9}{'x Dask':>8}" \
           f"{'x DGEMM':>9}{'error':>10}"
    print(head)
    print("-" * len(head))

    def row(name, n, block, el, flops, ref_np, ref_dask, err):
        g = flops / el / 1e9
        xs = [f"{g / r:.2f}" if r else "-" for r in (ref_np, ref_dask)]
        print(f"{name:<22}{n:>7}{block:>7}{el:>9.2f}{g:>9.1f}{xs[0]:>9}{xs[1]:>8}{g / peak:>9.2f}{err:>10.1e}",
              flush=True)
        return g

    for n in args.sizes:
        X = spd(n)
        flops = n**3 / 3
        t_np = min(run_isolated("numpy", n, 2) for _ in range(1 if n > 8192 else 2))
        name = "numpy.linalg.cholesky"
        if t_np != t_np:  # NaN: 2-thread OpenBLAS crashed; the 1-thread rate is a lower bound on it
            t_np, name = run_isolated("numpy", n, 1), "numpy (1 thread)*"
        g_np = row(name, n, 0, t_np, flops, None, None, float("nan"))
        g_dask = None
        if not args.no_dask:
            best = None
            for c in args.dask_chunks or [1024, 2048]:
                el = run_isolated("dask", n, c)
                if best is None or el < best[0]:
                    best = (el, c)
            g_dask = row("dask cholesky (best)", n, best[1], best[0], flops, g_np, None, float("nan"))
        results = []
        for b in args.blocks or ([1024, 2048] if n >= 16384 else [512, 1024]):
            el, err, st = run_npw_cholesky(X, b)
            results.append((el, b, err))
            row("npw.cholesky", n, b, el, flops, g_np, g_dask, err)
            if args.verbose:
                print(f"    tasks {st['tasks']}, executor core-s {st['core_s']:.1f}: kernel {st['kernel_s']:.1f} s, "
                      f"read {st['read_s']:.1f} s, write {st['write_s']:.1f} s, tiles freed {st['tiles_freed']}")
                b3 = b**3
                gf = {"chol": b3 / 3, "trsm": b3, "syrk": b3, "gemm_nt": 2 * b3}  # full-tile flops
                print("    kernels: " + ", ".join(
                    f"{k} {c} x {t / c * 1e3:.1f} ms ({gf[k] / (t / c) / 1e9:.1f} GFLOP/s)" if k in gf else f"{k} {c}"
                    for k, (c, t) in st["per_kernel"].items()))
        el, b, err = min(results)
        row("npw.cholesky (best)", n, b, el, flops, g_np, g_dask, err)
        del X

    if args.gemm:
        n = args.gemm
        rng = np.random.default_rng(4)
        A, B = rng.standard_normal((n, n)), rng.standard_normal((n, n))
        with threadpool_limits(2):
            t_np = best_of(lambda: A @ B, 1)
        row("numpy matmul", n, 0, t_np, 2 * n**3, None, None, float("nan"))
        for b in args.gemm_blocks:
            el, err = run_npw_gemm(A, B, b)
            row("npw.matmul", n, b, el, 2 * n**3, 2 * n**3 / t_np / 1e9, None, err)


if __name__ == "__main__":
    main()
