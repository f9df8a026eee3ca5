"""The long soak: consecutive small jobs under seeded random faults, on the embedded backend, on
Redis + moto S3, and on Redis state + moto SQS queues + moto S3 (``numpywren2.testing.soak`` describes the
jobs, the faults and the checks after each job).

    python bench/soak.py                       # 200 jobs, shared: embedded, Redis (persistent) + moto S3,
                                               # and Redis state + moto SQS + moto S3
    python bench/soak.py --jobs 40 --seed 7    # fewer, another seed
    python bench/soak.py --backends sqs-s3     # one backend only

On Redis and S3 every URL goes through a ``TcpProxy`` in front of its server, for the faults of links: Redis
stalls and S3 stops, and on ``sqs-s3`` (its SQS on a moto server of its own) SQS cuts and SQS restarts.

Prints one line per job (its fault and outcome: ridden out, reported or a problem) and a table per backend,
then a JSON summary (jobs, problems, wrong answers, hangs, faults reported, seconds, per fault: jobs,
problems, ridden out, reported; per algorithm) and the machine's load averages before and after: the numbers
are measured on a shared machine.  Exits 1 if any job had a problem.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import signal
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3

import numpywren2 as npw
from numpywren2.testing import MotoServer, RedisServer, TcpProxy
from numpywren2.testing.gates import ENV, Gates
from numpywren2.testing.soak import Links, Soak, as_dict, print_table
from provisioner import ProvisionerSettings

BACKENDS = ("embedded", "redis-s3", "sqs-s3")


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def settings() -> ProvisionerSettings:
    # short leases and heartbeat timeouts, so that a killed or stopped executor is noticed within seconds
    return ProvisionerSettings(lease=1.0, heartbeat_timeout=1.0, poll_interval=0.1, idle_timeout=2.0,
                               max_executors=2)


def soak_embedded(root: Path, gates: Gates, jobs: int, seed: int, wait: float) -> Soak:
    db = f"sqlite://{root}/state.db"
    with npw.runtime(store=f"file://{root / 'tiles'}", queue=db, state=db, executors=2,
                     provisioner=settings()) as rt:
        soak = Soak(rt, gates, seed, wait=wait, log=lambda s: print(f"embedded {s}", flush=True))
        soak.run(jobs)
        remaining = rt.store.list("")
    if remaining:
        print(f"embedded: {len(remaining)} tiles left at the end", flush=True)
    return soak


def soak_redis_s3(root: Path, gates: Gates, jobs: int, seed: int, wait: float, sqs: bool = False) -> Soak:
    """Redis (persistent) state and moto S3 tiles; the queues on Redis too, or (``sqs``) on moto's SQS, on a
    moto server of its own (so that restarting it loses the queues only).  Every URL goes through a
    ``TcpProxy`` in front of its server, for the faults of links (``numpywren2.testing.soak.Links``): Redis
    stalls, S3 stops, and with SQS, SQS cuts and restarts.  ``outage`` faults restart Redis behind its proxy
    (the state store only, with SQS queues)."""
    name = "sqs-s3" if sqs else "redis-s3"
    for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                 "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ.setdefault(k, v)
    (root / "redis").mkdir()
    servers = {"redis": RedisServer(root / "redis", persistent=True), "s3": MotoServer()}
    proxies = {"redis": TcpProxy(servers["redis"].port), "s3": TcpProxy(servers["s3"].port)}
    if sqs:
        servers["sqs"] = MotoServer()
        proxies["sqs"] = TcpProxy(servers["sqs"].port)
    bucket = f"soak-{uuid.uuid4().hex[:8]}"
    boto3.client("s3", endpoint_url=servers["s3"].endpoint).create_bucket(Bucket=bucket)

    def restart(seconds: float) -> None:
        server = servers["redis"]
        server.stop()
        time.sleep(seconds)  # the outage's length is the fault itself
        servers["redis"] = RedisServer(root / "redis", port=server.port, persistent=True)

    def restart_sqs() -> None:
        """moto's SQS stopped and an empty one started behind the same proxy (on a port of its own: the old
        one is not reserved meanwhile), so the clients' endpoint comes back without the queues."""
        servers["sqs"].stop()
        servers["sqs"] = MotoServer()
        proxies["sqs"].target = ("127.0.0.1", servers["sqs"].port)

    url = f"redis://127.0.0.1:{proxies['redis'].port}/0"
    store = f"s3://{bucket}/tiles?endpoint_url={proxies['s3'].endpoint}"
    prefix = f"soak{uuid.uuid4().hex[:6]}-"
    queue = f"sqs://?endpoint_url={proxies['sqs'].endpoint}&prefix={prefix}" if sqs else url
    links = Links(redis=proxies["redis"], s3=proxies["s3"], sqs=proxies.get("sqs"),
                  restart_sqs=restart_sqs if sqs else None)
    try:
        with npw.runtime(store=store, queue=queue, state=url, executors=2, provisioner=settings()) as rt:
            soak = Soak(rt, gates, seed, wait=wait, restart=restart, links=links,
                        log=lambda s: print(f"{name} {s}", flush=True))
            soak.run(jobs)
            client = rt.state.client
            if sqs:
                listed = boto3.client("sqs", endpoint_url=proxies["sqs"].endpoint).list_queues(QueueNamePrefix=prefix)
                queues = listed.get("QueueUrls", [])
            else:
                queues = [k.decode() for k in client.scan_iter(match="npw:q:*", count=1000)]
            running = [j for j in rt.state.job_ids() if rt.state.status(j) == "running"]
            soak.final = {"sqs_queues" if sqs else "queue_keys": len(queues), "jobs_running": len(running),
                          "job_records": len(rt.state.job_ids()), "tiles": len(rt.store.list(""))}
            print(f"{name} at the end: {soak.final}", flush=True)
    finally:
        for proxy in proxies.values():
            proxy.close()
        for server in servers.values():
            server.stop()
    return soak


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=200, help="jobs in all, shared between the backends")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--wait", type=float, default=120.0, help="seconds before a job counts as a hang")
    ap.add_argument("--backends", nargs="+", choices=BACKENDS, default=list(BACKENDS))
    ap.add_argument("--json", type=Path, help="also write the per-job results here")
    a = ap.parse_args(argv)
    os.environ.setdefault("NPW_SECRET", secrets.token_hex(32))
    os.environ.setdefault("NPW_OUTAGE_S", "60")
    before, t0 = load(), time.monotonic()
    print(f"load averages before: {before}", flush=True)
    summaries, results = {}, {}
    # a SIGTERM ends the soak through its finally blocks: its servers are stopped, its directory removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    with tempfile.TemporaryDirectory(prefix="npw-soak-") as tmp:
        share = [a.jobs // len(a.backends) + (i < a.jobs % len(a.backends)) for i in range(len(a.backends))]
        for backend, jobs in zip(a.backends, share):
            root = Path(tmp) / backend
            root.mkdir()
            gates = Gates(root / "gates")  # gates of its own: gate numbers start again at 1
            gates.dir.mkdir()
            os.environ[ENV] = str(gates.dir)  # before this backend's executors start: they inherit it
            try:
                if backend == "embedded":
                    soak = soak_embedded(root, gates, jobs, a.seed, a.wait)
                else:
                    soak = soak_redis_s3(root, gates, jobs, a.seed, a.wait, sqs=backend == "sqs-s3")
            finally:
                gates.open_all()
            print_table(soak.results)
            summaries[backend] = {**soak.summary(), **getattr(soak, "final", {})}
            results[backend] = [as_dict(r) for r in soak.results]
    after = load()
    print(json.dumps({"summaries": summaries, "load_before": before, "load_after": after,
                      "wall_s": round(time.monotonic() - t0, 1)}, indent=1))
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    with contextlib.suppress(Exception):
        sys.stdout.flush()
    return 1 if any(s["problems"] for s in summaries.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
