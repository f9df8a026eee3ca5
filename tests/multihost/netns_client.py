"""The client host of the multi-host testbed: ``python netns_client.py ARGS`` run in the ``client`` namespace.

It opens a runtime on the services host (tiles in S3 on moto_server, queue and state in Redis),
submits jobs whose executors a ``NamespaceLauncher`` starts in the worker hosts, checks the
answers against numpy, and prints one JSON line: per job, its error measure, seconds, and which
hosts ran its tasks (from the task records in the state store, executor id -> host by the launcher).

Scenarios: ``algorithms`` (Cholesky, GEMM, QR), ``gemm`` (GEMM only), ``chain`` (the gated chain of
tests/gates.py: its first chain task waits at gate 1, which the test opens after its fault).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import textwrap
import time

import numpy as np


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario", choices=["algorithms", "gemm", "chain"])
    ap.add_argument("--redis", required=True)
    ap.add_argument("--s3", required=True, help="S3 endpoint URL")
    ap.add_argument("--tag", required=True)
    ap.add_argument("--hosts", required=True, help="w1=NETNS,w2=NETNS,...")
    ap.add_argument("--down-dir", default=None)
    ap.add_argument("--lease", type=float, default=1.0)
    ap.add_argument("--warm", action="store_true", help="fork executors from a zygote in each worker host")
    a = ap.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # tests/: gates

    import numpywren2 as npw
    from numpywren2.testing.netns import NamespaceLauncher
    from provisioner import ProvisionerSettings

    hosts = dict(h.split("=", 1) for h in a.hosts.split(","))
    launchers: list[NamespaceLauncher] = []

    def make_launcher() -> NamespaceLauncher:
        launchers.append(NamespaceLauncher(hosts, a.down_dir, warm=a.warm))
        return launchers[-1]

    store = f"s3://npw-{a.tag}/jobs?endpoint_url={a.s3}&create=1"
    queue = state = f"{a.redis}?prefix={a.tag}:"
    out: dict = {"jobs": []}
    with npw.runtime(store=store, queue=queue, state=state, launcher=make_launcher,
                     provisioner=ProvisionerSettings(lease=a.lease, poll_interval=0.1)) as rt:
        def record(name: str, error: float, t0: float) -> None:
            launcher = launchers[-1]
            out["jobs"].append({"name": name, "error": error, "seconds": time.perf_counter() - t0,
                                "launched": dict(sorted(launcher.placement.items())), "jobs": sorted(launcher.jobs),
                                "launcher": launcher, "warm_started": sum(
                                    type(p).__name__ == "WarmProcess" for p in launcher.processes.values())})

        def tasks_by_host(launcher: NamespaceLauncher) -> dict[str, list[str]]:
            by_host: dict[str, list[str]] = {}
            for job in sorted(launcher.jobs):
                deadline = time.monotonic() + 10  # executors flush their task records as they exit
                while any(e["live"] for e in rt.state.executors(job)) and time.monotonic() < deadline:
                    time.sleep(0.05)
                for r in rt.state.records(job, "tasks"):
                    d = json.loads(r)
                    by_host.setdefault(launcher.placement.get(d["executor"], "?"), []).append(d["task"])
            return by_host

        rng = np.random.default_rng(0)
        if a.scenario == "algorithms":
            n = 160
            g = rng.standard_normal((n, n))
            X = g @ g.T / n + np.eye(n)
            t0 = time.perf_counter()
            L = npw.cholesky(X, block_size=64).numpy()
            record("cholesky", float(np.linalg.norm(X - L @ L.T) / np.linalg.norm(X)), t0)
        if a.scenario in ("algorithms", "gemm"):
            A, B = rng.standard_normal((160, 128)), rng.standard_normal((128, 96))
            t0 = time.perf_counter()
            C = npw.matmul(A, B, block_size=64).numpy()
            record("gemm", float(np.linalg.norm(C - A @ B) / (np.linalg.norm(A) * np.linalg.norm(B))), t0)
        if a.scenario == "algorithms":
            T = rng.standard_normal((192, 96))
            t0 = time.perf_counter()
            Q, R = (M.numpy() for M in npw.qr(T, block_size=48))
            err = max(np.linalg.norm(T - Q @ R) / np.linalg.norm(T), np.linalg.norm(Q.T @ Q - np.eye(96)))
            record("qr", float(err), t0)
        if a.scenario == "chain":
            from gates import gated_add, gated_double

            import lambdapack as lp

            chain = lp.Program.from_source(textwrap.dedent("""
                def chain(X: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int):
                    for i in range(N):
                        Y[i, 0] = double(X[i, 0], 0.0, 0)
                    Z[0, 0] = add(Y[0, 0], Y[0, 0], 0.0, 1)
                    for i in range(1, N):
                        Z[i, 0] = add(Z[i - 1, 0], Y[i, 0], 0.0, 0)
            """), {"double": gated_double, "add": gated_add}, filename="gated_chain.py")
            N = 8
            X = npw.BigMatrix.from_numpy(np.arange(N, dtype=float)[:, None], (1, 1))
            Z = npw.BigMatrix.empty((N, 1), (1, 1))
            t0 = time.perf_counter()
            job = npw.submit(chain, X=X, Y=npw.BigMatrix.empty((N, 1), (1, 1)), Z=Z, N=N)
            job.wait(timeout=120)
            ys = 2 * np.arange(N, dtype=float)
            record("chain", float(np.abs(Z.numpy()[:, 0] - (np.cumsum(ys) + ys[0])).max()), t0)
            out["jobs"][-1]["counted"] = job.stats()["tasks"]
            out["jobs"][-1]["num_tasks"] = job.num_tasks
        for j in out["jobs"]:  # once every job has ended: their executors exit meanwhile
            launcher = j.pop("launcher")
            j["tasks_by_host"] = tasks_by_host(launcher)
            if a.warm:  # each host's zygote, and the namespace it runs in
                j["zygotes"] = {h: {"pid": pid, "netns": subprocess.run(
                    ["ip", "netns", "identify", str(pid)], capture_output=True, text=True).stdout.strip()}
                    for h, pid in launcher.zygotes().items()}
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
