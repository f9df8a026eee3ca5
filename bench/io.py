"""Throughput of the executors' file I/O against numpy's and zarr's own, on the same files, same run.

A float64 matrix (n × n) is saved once as .npy and as a zarr array chunked as the tiles.  Then, in
alternating rounds (so that the machine's load weighs on each alike), on a warm page cache:

- ``np.load`` of the whole .npy into memory, and ``BigMatrix.from_npy`` (two executors read it tile by
  tile into the tile store of an embedded runtime: files + SQLite);
- ``np.save`` of the matrix, and ``A.to_npy`` (two executors write the tiles into the file);
- ``zarr`` reading the whole array, and ``BigMatrix.from_zarr`` (tiles are chunks).

Reported: seconds (median over the rounds) and MB/s of matrix bytes (n² × 8 / seconds).  The numpywren2
times are the whole call, job submission and executor start included.

    python bench/io.py [--n 4096] [--block 1024] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time

import numpy as np
import zarr

import numpywren2 as npw


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    n, b = args.n, args.block
    d = tempfile.mkdtemp(prefix="npw-io-")
    X = np.random.default_rng(0).standard_normal((n, n))
    npy, out, zpath = os.path.join(d, "x.npy"), os.path.join(d, "y.npy"), os.path.join(d, "x.zarr")
    np.save(npy, X)
    z = zarr.create_array(store=zpath, shape=X.shape, chunks=(b, b), dtype=X.dtype, overwrite=True)
    z[:] = X
    times: dict[str, list[float]] = {}
    with npw.runtime(executors=2):
        npw.zeros((2, 2), 2)  # the executors' zygote starts once, before the rounds
        A = npw.BigMatrix.from_npy(npy, b)
        for _ in range(args.rounds):
            cases = {
                "numpy.load": lambda: np.load(npy),
                "BigMatrix.from_npy": lambda: npw.BigMatrix.from_npy(npy, b),
                "numpy.save": lambda: np.save(out, X),
                "A.to_npy": lambda: A.to_npy(out),
                "zarr read [:]": lambda: zarr.open_array(zpath, mode="r")[:],
                "BigMatrix.from_zarr": lambda: npw.BigMatrix.from_zarr(zpath),
            }
            for name, fn in cases.items():
                times.setdefault(name, []).append(timed(fn))
        assert np.array_equal(np.load(out), X)
    mb = n * n * 8 / 1e6
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"# n = {n} ({mb:.0f} MB of float64), tiles {b}, 2 executors, {args.rounds} rounds, median")
    print(f"{'operation':<22} {'seconds':>8} {'MB/s':>8}")
    for name, ts in times.items():
        s = statistics.median(ts)
        print(f"{name:<22} {s:8.2f} {mb / s:8.0f}")


if __name__ == "__main__":
    main()
