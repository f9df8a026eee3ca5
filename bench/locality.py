"""Locality and prefetch on the Redis + S3 path: bytes read from the store per task, and tasks per second,
with the executors' claims and prefetches on and off, in alternating rounds of the same run.

An executor that completes a task leases to itself, in the same completion step, the children it made
ready whose input tiles are all in its cache (a *claim*, docs/runtime.md "Locality"), and reads the
input tiles of its next leased task while a kernel runs (a *prefetch*).  ``NPW_LOCALITY=0`` turns both
off; everything else (the tile cache, batched completions) stays as it is, so the difference between
the two rows is what claims and prefetches bring.

The job: ``npw.cholesky`` of an n×n BigMatrix in b×b tiles, its tiles in S3 (moto_server on loopback,
much slower per request than S3), its queue and state in Redis, 2 executors.  Each measurement is a
fresh client process (its own warm zygote, so that executors inherit the setting); the rounds alternate
the order of the two settings.

    python bench/locality.py [--n 2048] [--block 256] [--rounds 3]

Per row: tasks/s (tasks over submit-to-wait seconds), ``bytes_fetched`` per task (input bytes read from
the store), ``bytes_read`` per task (input bytes the kernels were given, cache hits included),
``tasks_claimed`` (children run by the executor that made them ready), and the backward error.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

PROBE = r'''
import json, os, sys, time
import numpy as np
import numpywren2 as npw
n, b, store, redis = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rng = np.random.default_rng(0)
G = rng.standard_normal((n, n))
X = G @ G.T + n * np.eye(n)
with npw.runtime(store=store, queue=redis, state=redis, executors=2):
    A = npw.BigMatrix.from_numpy(X, block_size=b)
    L = npw.BigMatrix.empty((n, n), b)
    N = n // b
    t0 = time.perf_counter()
    job = npw.submit(npw.programs.cholesky, A=A, L=L, N=N)
    job.wait(timeout=3600)
    dt = time.perf_counter() - t0
    st = job.stats()
    Lx = np.tril(L.numpy())
    err = float(np.linalg.norm(Lx @ Lx.T - X) / np.linalg.norm(X))
    print(json.dumps({"tasks": st["tasks"], "seconds": dt, "bytes_read": st["bytes_read"],
                      "bytes_fetched": st["bytes_fetched"], "tasks_claimed": st["tasks_claimed"], "error": err}))
'''


def run(n: int, b: int, store: str, redis: str, locality: bool) -> dict:
    env = dict(os.environ, NPW_LOCALITY="1" if locality else "0", OPENBLAS_NUM_THREADS="1")
    p = subprocess.run([sys.executable, "-c", PROBE, str(n), str(b), store, redis], cwd=HERE, env=env,
                       capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"probe failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2048)
    ap.add_argument("--block", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    os.environ.setdefault("NPW_SECRET", secrets.token_hex(32))
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    sys.path.insert(0, str(HERE))
    from numpywren2.testing import MotoServer, RedisServer

    tmp = tempfile.mkdtemp(prefix="npw-loc-")
    redis, moto = RedisServer(tmp), MotoServer()
    rows: dict[str, list[dict]] = {"off": [], "on": []}
    loads = [os.getloadavg()[0]]
    try:
        for r in range(args.rounds):
            for label in (("off", "on") if r % 2 == 0 else ("on", "off")):
                store = f"s3://loc-bench/r{r}{label}?endpoint_url={moto.endpoint}&create=1"
                res = run(args.n, args.block, store, redis.url, label == "on")
                rows[label].append(res)
                loads.append(os.getloadavg()[0])
                print(f"# round {r + 1} locality {label}: {res['tasks'] / res['seconds']:.1f} tasks/s, "
                      f"{res['bytes_fetched'] / res['tasks'] / 2**10:.0f} KiB fetched per task, "
                      f"{res['tasks_claimed']} claimed, load {loads[-1]:.1f}", flush=True)
    finally:
        redis.stop()
        moto.stop()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; cholesky n={args.n} "
          f"in {args.block}-tiles, 2 executors x 1 BLAS thread; S3 (moto_server) + Redis queue + Redis state; "
          f"{args.rounds} alternating rounds, median; load average {min(loads):.1f}-{max(loads):.1f}")
    print(f"{'locality':<10}{'tasks':>7}{'tasks/s':>9}{'KiB fetched/task':>18}{'KiB read/task':>15}"
          f"{'claimed':>9}{'error':>10}   tasks/s per round")
    med = {}
    for label, rs in rows.items():
        tps = [x["tasks"] / x["seconds"] for x in rs]
        med[label] = statistics.median(tps)
        fetched = statistics.median(x["bytes_fetched"] / x["tasks"] for x in rs) / 2**10
        read = statistics.median(x["bytes_read"] / x["tasks"] for x in rs) / 2**10
        claimed = statistics.median(x["tasks_claimed"] for x in rs)
        err = max(x["error"] for x in rs)
        print(f"{label:<10}{rs[0]['tasks']:>7}{med[label]:>9.1f}{fetched:>18.0f}{read:>15.0f}{claimed:>9.0f}"
              f"{err:>10.1e}   {' '.join(f'{v:.1f}' for v in tps)}")
    print(f"on/off tasks/s: {med['on'] / med['off']:.2f}")


if __name__ == "__main__":
    main()
