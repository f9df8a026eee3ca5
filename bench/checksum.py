"""What a tile checksum costs on the per-task path, against the kernel it guards (same run, same tiles).

For float64 tiles of 1024² and 2048², times (best of ``--repeat``) of candidate checksums: from the
standard library zlib's CRC-32 and Adler-32 and hashlib's SHA-1; xxh3-64 (``xxhash``, what the
tile format uses); and, when installed, hardware-assisted CRCs (``crc32c``, ``isal``'s CRC-32).
Then a whole ``encode_tile`` + ``decode_tile`` round trip (checksum computed, then verified, with
the copies a store makes), and two kernels on the same tiles: ``a @ b`` (the GEMM tree's leaf)
and ``kernels.gemm_nt`` (a Cholesky trailing update, ``c - a bᵀ``).

A task verifies each tile it reads and checksums each tile it writes: a GEMM leaf 2 + 1 tiles,
a ``gemm_nt`` update 3 + 1.  The last columns give that cost as a share of the kernel's time,
for zlib's CRC-32 and for xxh3-64.  BLAS runs with one thread, as in an executor
(``OPENBLAS_NUM_THREADS=1`` unless set).

    .venv/bin/python bench/checksum.py [--sizes 1024 2048] [--repeat 7]
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import hashlib
import platform
import time
import zlib

import numpy as np

from numpywren2.core.backends import decode_tile, encode_tile
from numpywren2.core.kernels import gemm_nt


def best(fn, repeat: int) -> float:
    out = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out = min(out, time.perf_counter() - t0)
    return out


def candidates(mv) -> dict:
    import xxhash

    out = {"crc32": lambda: zlib.crc32(mv), "adler32": lambda: zlib.adler32(mv),
           "sha1": lambda: hashlib.sha1(mv).digest(), "xxh3_64": lambda: xxhash.xxh3_64_intdigest(mv)}
    try:
        import crc32c

        out["crc32c"] = lambda: crc32c.crc32c(mv)
    except ImportError:
        pass
    try:
        from isal import isal_zlib

        out["isal"] = lambda: isal_zlib.crc32(mv)
    except ImportError:
        pass
    return out


def measure(n: int, rng: np.random.Generator, repeat: int) -> dict[str, float]:
    """Seconds per candidate, round trip and kernel on n x n float64 tiles; shares in %."""
    x, y, c = (rng.standard_normal((n, n)) for _ in range(3))
    t = {name: best(fn, repeat) for name, fn in candidates(memoryview(x).cast("B")).items()}
    raw = b"".join(bytes(p) for p in encode_tile(x))
    t["enc+dec"] = best(lambda: (b"".join(bytes(p) for p in encode_tile(x)), decode_tile(raw)), repeat)
    t["a@b"] = best(lambda: x @ y, max(2, repeat // 2))
    t["gemm_nt"] = best(lambda: gemm_nt(c, x, y), max(2, repeat // 2))
    for h in ("crc32", "xxh3_64"):
        t[f"leaf% {h}"] = 100 * 3 * t[h] / t["a@b"]
        t[f"upd% {h}"] = 100 * 4 * t[h] / t["gemm_nt"]
    return t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048])
    ap.add_argument("--repeat", type=int, default=7)
    a = ap.parse_args()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, numpy "
          f"{np.__version__}, zlib {zlib.ZLIB_RUNTIME_VERSION}, BLAS threads={os.environ['OPENBLAS_NUM_THREADS']}; "
          f"best of {a.repeat}; times in milliseconds, shares in % of the kernel")
    rng = np.random.default_rng(0)
    rows = [(f"{n}x{n} ({n * n * 8 >> 20} MiB)", measure(n, rng, a.repeat)) for n in a.sizes]
    names = list(rows[0][1])
    width = max(len(r[0]) for r in rows)
    print(f"{'tile':>{width}} " + " ".join(f"{k:>13}" for k in names))
    for label, t in rows:
        print(f"{label:>{width}} " + " ".join(f"{t[k] * (1 if '%' in k else 1e3):13.2f}" for k in names))
    print("leaf%: 3 checksums (2 tiles read, 1 written) / a@b;  upd%: 4 checksums / gemm_nt;  "
          "enc+dec: encode (checksum) + decode (verify) of one tile")


if __name__ == "__main__":
    main()
