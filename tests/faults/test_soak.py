"""Item 8 of the faults list, short form: consecutive small jobs under random faults (seeded, each fault once at least).

The machinery is ``numpywren2.testing.soak`` (shared with the long soak, ``bench/soak.py``), on the embedded
backend: three jobs in four are gated fans, whose last task waits at a gate of its own while one fault is
injected into the executor running it or into its queue (SIGKILL; SIGSTOP, found stale by the provisioner and
killed, or continued at the end; every task of the job sent again, sealed for the job; none); the others are
Choleskys through the user API, with their tasks sent again once one has completed, or no fault.  After every
job: the answer is right, every job ended and counted each task once, no tile left in the store, no message
in any job's queue, no executor process alive.  ``test_soak_short_sqs`` runs 8 such jobs with the tasks in moto
SQS queues (Redis state, moto S3 tiles).  ``test_soak_short_links`` runs one job per fault of a link (a stalled
Redis link, a stopped S3 server, an SQS cut, stalled S3 and SQS links: ridden out; a restarted moto SQS server:
reported), every URL
through a ``TcpProxy``.  The long soak adds GEMM, TSQR, QR, LU and solve, kills at each
protocol step, storage faults, Redis + moto S3 and Redis outages.
"""

from __future__ import annotations

import os
import uuid

import boto3
import pytest

import numpywren2 as npw
from numpywren2.testing import MotoServer, TcpProxy
from numpywren2.testing.soak import GATED_FAULTS, Links, Soak
from provisioner import ProvisionerSettings

# The short form: about 20 jobs in under 3 minutes (33 s on an idle machine, 49 s under a load average of
# 12-19; it runs beside the rest of the suite in its own pytest-xdist process). Seed 2026 injects every fault at
# least once (asserted below); the volume is the long soak's (bench/soak.py, 200 jobs); NPW_SOAK_JOBS=8 is the
# quickest run that still injects every fault
JOBS = int(os.environ.get("NPW_SOAK_JOBS", "20"))


@pytest.mark.timeout(240)
def test_soak_short(tmp_path, gates):
    db = f"sqlite://{tmp_path}/state.db"
    settings = ProvisionerSettings(lease=1.0, heartbeat_timeout=1.0, poll_interval=0.1, idle_timeout=2.0,
                                   max_executors=2)
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=db, state=db, executors=2,
                     provisioner=settings) as rt:
        soak = Soak(rt, gates, seed=2026, wait=60.0)
        results = soak.run(JOBS, gated_share=0.75, algorithms=("cholesky",), faults=("none", "duplicate"))
    problems = [f"job {r.n} ({r.what}, {r.fault}): {r.problem}" for r in results if not r.ok]
    assert not problems, "\n".join(problems)
    seen = {r.fault for r in results if r.what == "fan"}
    assert seen == {f for f in GATED_FAULTS if soak.can(f)}, f"every fault was injected at least once: {seen}"
    assert {r.fault for r in results if r.what == "cholesky"} == {"none", "duplicate"}


# 8 jobs with seed 2026 inject every fault at least once (asserted below); 29-39 s under load averages of 6-12
SQS_JOBS = int(os.environ.get("NPW_SOAK_SQS_JOBS", "8"))


@pytest.mark.timeout(240)
def test_soak_short_sqs(redis_server, moto_server, gates):
    """The short soak with SQS queues: the unfused ledger (completion in Redis, children sent to SQS), SQS's
    leases (visibility timeouts) under SIGKILL and SIGSTOP, copies of every task, and the check that every
    job's SQS queue is gone with the job."""
    tag = uuid.uuid4().hex[:8]
    prefix = f"soak{tag}-"
    settings = ProvisionerSettings(lease=1.0, heartbeat_timeout=1.0, poll_interval=0.1, idle_timeout=2.0,
                                   max_executors=2)
    with npw.runtime(store=f"s3://npw-soak-{tag}/t?endpoint_url={moto_server.endpoint}&create=1",
                     queue=f"sqs://?endpoint_url={moto_server.endpoint}&prefix={prefix}",
                     state=f"{redis_server.url}?prefix=soak{tag}:", executors=2, provisioner=settings) as rt:
        soak = Soak(rt, gates, seed=2026, wait=60.0)
        results = soak.run(SQS_JOBS, gated_share=0.75, algorithms=("cholesky",), faults=("none", "duplicate"))
    problems = [f"job {r.n} ({r.what}, {r.fault}): {r.problem}" for r in results if not r.ok]
    assert not problems, "\n".join(problems)
    assert {r.fault for r in results if r.what == "fan"} == {f for f in GATED_FAULTS if soak.can(f)}, \
        "every fault was injected"
    assert {r.fault for r in results if r.what == "cholesky"} == {"none", "duplicate"}
    left = boto3.client("sqs", endpoint_url=moto_server.endpoint).list_queues(QueueNamePrefix=prefix)
    assert left.get("QueueUrls", []) == [], "no SQS queue left"


# One job per fault of a link (numpywren2.testing.soak.LINK_FAULTS, sqs-restart), in this order
LINK_PLAN = [("fan", "sqs-restart"), ("cholesky", "redis-stall"), ("gemm", "s3-stop"), ("cholesky", "sqs-cut"),
             ("tsqr", "s3-stall"), ("gemm", "sqs-stall")]


@pytest.mark.timeout(240)
def test_soak_short_links(redis_server, moto_server, gates, monkeypatch):
    """The faults of links, each once, on Redis state + SQS queues + S3 tiles, every URL through a ``TcpProxy``:
    a stalled Redis link (socket timeout 2 s in the URL: a stall counted in calls abandoned at it), a stopped S3
    server and an SQS outage (connections refused: counted), stalled S3 and SQS links (read timeouts of 2 s in
    the URLs), ridden out; the moto server serving SQS restarted (a server of its own, so that only the queues
    are lost), reported: the job fails naming its queue.  After each: nothing left, and no SQS queue at the end."""
    monkeypatch.setenv("NPW_OUTAGE_S", "60")
    tag = uuid.uuid4().hex[:8]
    prefix = f"soak{tag}-"
    servers = {"sqs": MotoServer()}
    proxies = {"redis": TcpProxy(redis_server.port), "s3": TcpProxy(moto_server.port),
               "sqs": TcpProxy(servers["sqs"].port)}

    def restart_sqs():
        servers["sqs"].stop()
        servers["sqs"] = MotoServer()
        proxies["sqs"].target = ("127.0.0.1", servers["sqs"].port)

    settings = ProvisionerSettings(lease=1.0, heartbeat_timeout=1.0, poll_interval=0.1, idle_timeout=2.0,
                                   max_executors=2)
    links = Links(redis=proxies["redis"], s3=proxies["s3"], sqs=proxies["sqs"], restart_sqs=restart_sqs)
    try:
        with npw.runtime(store=f"s3://npw-soak-{tag}/t?endpoint_url={proxies['s3'].endpoint}&create=1&read_timeout=2",
                         queue=f"sqs://?endpoint_url={proxies['sqs'].endpoint}&prefix={prefix}&read_timeout=2",
                         state=f"redis://127.0.0.1:{proxies['redis'].port}/0?prefix=soak{tag}:&socket_timeout=2",
                         executors=2, provisioner=settings) as rt:
            soak = Soak(rt, gates, seed=2026, wait=60.0, links=links, log=print)
            results = soak.run_plan(LINK_PLAN)
        problems = [f"job {r.n} ({r.what}, {r.fault}): {r.problem}" for r in results if not r.ok]
        assert not problems, "\n".join(problems)
        assert [(r.fault, r.outcome) for r in results] == [
            ("sqs-restart", "reported"), ("redis-stall", "ridden out"), ("s3-stop", "ridden out"),
            ("sqs-cut", "ridden out"), ("s3-stall", "ridden out"), ("sqs-stall", "ridden out")]
        left = boto3.client("sqs", endpoint_url=proxies["sqs"].endpoint).list_queues(QueueNamePrefix=prefix)
        assert left.get("QueueUrls", []) == [], "no SQS queue left"
    finally:
        for proxy in proxies.values():
            proxy.close()
        servers["sqs"].stop()
