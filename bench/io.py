"""Throughput of the executors' file I/O against numpy's and zarr's own, on the same files, same run.

A float64 matrix (n × n) is saved once as .npy and as a zarr array chunked as the tiles.  Then, in
alternating rounds (so that the machine's load weighs on each alike), on a warm page cache:

- ``np.load`` of the whole .npy into memory, and ``BigMatrix.from_npy`` (two executors read it tile by
  tile into the tile store of an embedded runtime: files + SQLite);
- ``np.save`` of the matrix, and ``A.to_npy`` (two executors write the tiles into the file);
- ``zarr`` reading the whole array, and ``BigMatrix.from_zarr`` (tiles are chunks).
- with ``--s3``: the same zarr array in a bucket of a moto_server started here on loopback (S3 through
  s3fs): ``zarr`` reading it whole into memory, ``zarr`` copying it into a local array chunk by chunk
  (its own copy: read and write each chunk, the work ``from_zarr`` does into the tile store), and
  ``BigMatrix.from_zarr("s3://...")`` (two executors read the chunks; tiles stay local files).

Reported: seconds (median over the rounds) and MB/s of matrix bytes (n² × 8 / seconds), with the
machine's load averages (1, 5, 15 minutes) before and after.  The numpywren2 times are the whole call,
job submission and executor start included.

    python bench/io.py [--n 4096] [--block 1024] [--rounds 3] [--s3]
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


S3_URL = "s3://npw-bench/x.zarr"


def s3_setup(X: np.ndarray, b: int, copy_path: str):
    """A moto_server holding X as a zarr array at S3_URL; the S3 cases of a round."""
    from numpywren2.testing import MotoServer

    fake = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}
    for k, v in fake.items():  # moto checks no credentials; boto3 wants some
        os.environ.setdefault(k, v)
    server = MotoServer()
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint  # read by zarr_location, travels to the executors
    opts = {"endpoint_url": server.endpoint}
    import s3fs

    s3fs.S3FileSystem(**opts).mkdir("npw-bench")
    z = zarr.create_array(store=S3_URL, shape=X.shape, chunks=(b, b), dtype=X.dtype, overwrite=True,
                          storage_options=opts)
    z[:] = X

    def zarr_copy():
        src = zarr.open_array(S3_URL, mode="r", storage_options=opts)
        dst = zarr.create_array(store=copy_path, shape=src.shape, chunks=src.chunks, dtype=src.dtype, overwrite=True)
        for i in range(0, src.shape[0], b):
            for j in range(0, src.shape[1], b):
                dst[i:i + b, j:j + b] = src[i:i + b, j:j + b]

    return server, {
        "zarr read [:] (S3)": lambda: zarr.open_array(S3_URL, mode="r", storage_options=opts)[:],
        "zarr copy S3->local": zarr_copy,
        "from_zarr (S3)": lambda: npw.BigMatrix.from_zarr(S3_URL),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--s3", action="store_true", help="also zarr on S3 (a moto_server on loopback)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    n, b = args.n, args.block
    d = tempfile.mkdtemp(prefix="npw-io-")
    X = np.random.default_rng(0).standard_normal((n, n))
    npy, out, zpath = os.path.join(d, "x.npy"), os.path.join(d, "y.npy"), os.path.join(d, "x.zarr")
    np.save(npy, X)
    z = zarr.create_array(store=zpath, shape=X.shape, chunks=(b, b), dtype=X.dtype, overwrite=True)
    z[:] = X
    times: dict[str, list[float]] = {}
    server, s3_cases = None, {}
    if args.s3:
        server, s3_cases = s3_setup(X, b, os.path.join(d, "copy.zarr"))
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
                **s3_cases,
            }
            for name, fn in cases.items():
                times.setdefault(name, []).append(timed(fn))
        assert np.array_equal(np.load(out), X)
        if server is not None:
            assert np.array_equal(npw.BigMatrix.from_zarr(S3_URL).numpy(), X)
    if server is not None:
        server.stop()
    mb = n * n * 8 / 1e6
    load = ", ".join(f"{x:.1f}" for x in load_before) + " -> " + ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"load averages (1, 5, 15 min) {load}")
    print(f"# n = {n} ({mb:.0f} MB of float64), tiles {b}, 2 executors, {args.rounds} rounds, median")
    print(f"{'operation':<22} {'seconds':>8} {'MB/s':>8}")
    for name, ts in times.items():
        s = statistics.median(ts)
        print(f"{name:<22} {s:8.2f} {mb / s:8.0f}")


if __name__ == "__main__":
    main()
