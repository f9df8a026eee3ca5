"""Control-plane throughput: tasks per second of a program of no-op kernels, 2 executors.

The graph: a wide map of N no-op tasks (each writes a 1×1 tile) followed by a
binary-tree reduction over them (N − 1 pairwise tasks plus pass-through copies
for odd nodes): about 2N tasks.  Every task still goes through the whole
protocol — lease, read its input tiles, run, write its tile, complete, enqueue
children, acknowledge — so this measures the runtime's per-task overhead.

Backends measured in the same run: embedded (files + SQLite), files + Redis
queue + Redis state, and S3 + SQS + Redis through moto_server (a local HTTP
server emulating AWS, much slower per request than AWS and run with fewer
tasks).  Reference: Dask distributed (LocalCluster, 2 worker processes, one
thread each) on the same graph shape.

    python bench/control_plane.py [--tasks 20000] [--cloud-tasks 2000]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import tempfile
import time

import numpy as np

import lambdapack as lp
import numpywren2 as npw
from numpywren2.client.runtime import default_root_parent
from numpywren2.testing import MotoServer, RedisServer


@lp.kernel
def leaf(i):
    return np.zeros((1, 1))


@lp.kernel
def join(a, b):
    return a


@lp.kernel
def carry(a):
    return a


SOURCE = """
def map_reduce(Y: lp.Matrix, N: int):
    depth = ceil(log2(N))
    for i in range(N):
        Y[i, 0] = leaf(i)
    for level in range(depth):
        for i in range(0, N, 2 ** (level + 1)):
            if i + 2 ** level < N:
                Y[i, level + 1] = join(Y[i, level], Y[i + 2 ** level, level])
            else:
                Y[i, level + 1] = carry(Y[i, level])
"""
PROGRAM = lp.Program.from_source(SOURCE, {"leaf": leaf, "join": join, "carry": carry}, filename="control_plane")


def run_ours(n_leaves: int, **urls) -> tuple[int, float]:
    with npw.runtime(executors=2, **urls):
        t0 = time.perf_counter()
        job = npw.submit(PROGRAM, N=n_leaves)
        job.wait(timeout=3600)
        return job.num_tasks, time.perf_counter() - t0


def _noop(*args):
    return 0


def run_dask(n_leaves: int) -> tuple[int, float]:
    from dask.distributed import Client, LocalCluster

    graph = {}
    level_keys = [f"y-0-{i}" for i in range(n_leaves)]
    for k in level_keys:
        graph[k] = (_noop,)
    level = 0
    while len(level_keys) > 1:
        nxt = []
        for j in range(0, len(level_keys), 2):
            key = f"y-{level + 1}-{j}"
            graph[key] = (_noop, *level_keys[j:j + 2])
            nxt.append(key)
        level_keys, level = nxt, level + 1
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        client.get({"warm": (_noop,)}, "warm")
        t0 = time.perf_counter()
        client.get(graph, level_keys[0])
        return len(graph), time.perf_counter() - t0


def main() -> None:
    # the Redis and S3 runs are a deployment of their own: one signing key for client and executors
    os.environ.setdefault("NPW_SECRET", secrets.token_hex(32))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=20000, help="about this many tasks (2 x leaves)")
    ap.add_argument("--cloud-tasks", type=int, default=2000, help="tasks for the moto-backed S3/SQS run")
    ap.add_argument("--only", nargs="+", choices=["embedded", "redis", "cloud", "dask"],
                    default=["embedded", "redis", "cloud", "dask"], help="which rows to measure")
    args = ap.parse_args()
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    tmp = tempfile.mkdtemp(prefix="npw-cp-", dir=default_root_parent())
    redis = RedisServer(tmp)
    moto = MotoServer()
    rows = []
    try:
        n = args.tasks // 2
        if "embedded" in args.only:
            rows.append(("embedded: files + SQLite queue + SQLite state", *run_ours(n)))
        if "redis" in args.only:
            rows.append(("files + Redis queue + Redis state",
                         *run_ours(n, store=f"file://{tmp}/tiles", queue=redis.url, state=redis.url)))
        if "cloud" in args.only:
            rows.append(("S3 + SQS (moto_server) + Redis state",
                         *run_ours(args.cloud_tasks // 2,
                                   store=f"s3://cp-bench/t?endpoint_url={moto.endpoint}&create=1",
                                   queue=f"sqs://?endpoint_url={moto.endpoint}", state=redis.url)))
            rows.append(("S3 (moto_server) + Redis queue + Redis state",
                         *run_ours(args.cloud_tasks // 2,
                                   store=f"s3://cp-bench/t?endpoint_url={moto.endpoint}&create=1",
                                   queue=redis.url, state=redis.url)))
        dask_tasks, dask_s = run_dask(n) if "dask" in args.only else (0, float("nan"))
    finally:
        redis.stop()
        moto.stop()
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"2 executors (processes, 1 BLAS thread each); time from submit to wait() returning")
    print(f"{'backend':<48}{'tasks':>8}{'seconds':>9}{'tasks/s':>9}{'vs Dask':>9}")
    dask_rate = dask_tasks / dask_s if dask_tasks else float("nan")
    for name, tasks, secs in rows:
        print(f"{name:<48}{tasks:>8}{secs:>9.2f}{tasks / secs:>9.0f}{tasks / secs / dask_rate:>9.2f}")
    if dask_tasks:
        print(f"{'Dask distributed (2 procs x 1 thread), same shape':<48}{dask_tasks:>8}{dask_s:>9.2f}"
              f"{dask_rate:>9.0f}{1.0:>9.2f}")


if __name__ == "__main__":
    main()
