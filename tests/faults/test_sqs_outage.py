"""Outages of the SQS queue (moto_server): tiles in S3 and tasks in SQS on moto, state on Redis.

Ridden out: the SQS endpoint the job uses is a ``TcpProxy`` in front of moto, so moto keeps its queues while
the proxy is cut (every connection reset, open ones included) and the S3 endpoint, reached directly, stays
up.  The test cuts it once the job has made progress and an executor is inside a kernel, lets the kernel
return during the outage, and restores it once the clients were refused ``REFUSED`` connections (the
outage's length, counted in refused connections rather than seconds).  A receive whose answer the cut
dropped leaves its messages hidden on the server for the lease (SQS's visibility timeout: the server
cannot know the answer was lost), so the test uses a lease of ``LEASE`` seconds instead of the default 60.

Lost: the moto server serving SQS is restarted on its port (moto keeps its state in memory, so the job's
queue is gone); the job fails with a reason naming the queue, never a hang or a wrong answer.

Missing at an executor's start: an executor launched as its job ended finds the job's queue deleted with the
job; it exits quietly (found by the long soak: it exited with a traceback).  One whose running job's queue is
gone fails the job naming the queue, as any executor that meets the lost queue later does.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import boto3
import numpy as np
import pytest
from test_outage import assert_ridden_out, completed, fan, wait_for

import numpywren2 as npw
from executor.spec import ExecutorSpec
from numpywren2.testing import MotoServer, TcpProxy
from provisioner import ProvisionerSettings

WAIT = 60.0
LEASE = 3.0  # seconds a message whose receive answer was dropped stays hidden
REFUSED = 20  # connections refused before the proxy is restored: clients met the outage and retried


def backends(moto_s3: MotoServer, sqs_endpoint: str, redis_url: str) -> dict:
    tag = uuid.uuid4().hex[:10]
    return {"store": f"s3://npw-sqs-{tag}/t?endpoint_url={moto_s3.endpoint}&create=1",
            "queue": f"sqs://?endpoint_url={sqs_endpoint}&prefix=o{tag}-",
            "state": f"{redis_url}?prefix=o{tag}:"}


@pytest.mark.timeout(120)
def test_an_sqs_outage_shorter_than_outage_s_is_ridden_out(redis_server, moto_server, gates, monkeypatch):
    monkeypatch.setenv("NPW_OUTAGE_S", "60")
    proxy = TcpProxy(moto_server.port)
    try:
        with npw.runtime(**backends(moto_server, proxy.endpoint, redis_server.url), executors=2,
                         provisioner=ProvisionerSettings(lease=LEASE, poll_interval=0.1, idle_timeout=60.0)) as rt:
            N = 6
            job, X, Y = fan(N, free=3)  # tasks 0-2 run at once, 3-5 wait at gate 1
            wait_for(lambda: completed(rt, job) >= 3 and gates.started(1), "3 tasks completed, one at the gate")
            t0 = time.monotonic()
            proxy.cut()  # the outage: SQS unreachable, S3 and Redis up
            gates.open(1)
            wait_for(lambda: gates.passed(1), "a kernel returning during the outage")
            assert proxy.wait_refused(REFUSED), "the clients met the outage"
            proxy.restore()
            assert_ridden_out(rt, job, X, Y, N, t0, within=30, fault=f"an outage of {REFUSED} refused connections",
                              wait=WAIT)
    finally:
        proxy.close()


@pytest.mark.timeout(120)
def test_an_sqs_server_restarted_without_its_queue_fails_the_job_naming_it(redis_server, moto_server, gates,
                                                                           monkeypatch):
    monkeypatch.setenv("NPW_OUTAGE_S", "60")
    sqs = MotoServer()  # its own server: restarting it loses only the job's queue (tiles stay on moto_server)
    try:
        with npw.runtime(**backends(moto_server, sqs.endpoint, redis_server.url), executors=2) as rt:
            job, _, _ = fan(6, free=3)
            wait_for(lambda: completed(rt, job) >= 3 and gates.started(1), "3 tasks completed, one at the gate")
            name = job.queue.name
            sqs.stop()
            sqs = MotoServer(port=sqs.port)  # back on its address, empty: the job's queue is gone
            gates.open(1)
            t0 = time.monotonic()
            with pytest.raises(npw.JobFailedError, match=rf"queue {name}.* (lost|does not exist)"):
                job.wait(timeout=WAIT)
            assert time.monotonic() - t0 < 30, "no hang"
            for p in job.local_executors:
                assert p.wait(timeout=WAIT) is not None, "its executors stopped"
            assert rt.store.list(f"{job.id}/") == [], "no scratch tile left"
    finally:
        sqs.stop()


def late_executor(rt, job_id: str) -> subprocess.CompletedProcess:
    """A ``python -m executor`` for ``job_id`` started by hand (as a provisioner launches one), run to its end
    (the spec made here: a ``Provisioner`` would open, so create, the job's queue)."""
    spec = ExecutorSpec(rt.urls["store"], rt.urls["queue"], rt.urls["state"], job_id, idle_timeout=2.0)
    return subprocess.run([sys.executable, "-m", "executor", *spec.cli_args("x-late")], capture_output=True,
                          text=True, timeout=WAIT)


@pytest.mark.timeout(120)
def test_an_executor_started_after_its_job_ended_and_its_queue_was_deleted_exits_quietly(redis_server, moto_server,
                                                                                         gates, monkeypatch):
    monkeypatch.setenv("NPW_OUTAGE_S", "60")
    with npw.runtime(**backends(moto_server, moto_server.endpoint, redis_server.url), executors=1) as rt:
        job, X, Y = fan(2, free=2)  # no gate
        job.wait(timeout=WAIT)
        assert np.array_equal(Y.numpy(), 2 * X.numpy())
        late = late_executor(rt, job.id)
        assert late.returncode == 0 and "Traceback" not in late.stderr, late.stderr
        assert rt.state.status(job.id) == "done" and completed(rt, job) == 2, "the ended job is unchanged"
        sqs = boto3.client("sqs", endpoint_url=moto_server.endpoint)
        assert sqs.list_queues(QueueNamePrefix=job.queue.name).get("QueueUrls", []) == [], "no queue re-created"


@pytest.mark.timeout(120)
def test_an_executor_that_finds_its_running_jobs_queue_gone_fails_the_job_naming_it(redis_server, moto_server,
                                                                                   gates, monkeypatch):
    monkeypatch.setenv("NPW_OUTAGE_S", "60")
    with npw.runtime(**backends(moto_server, moto_server.endpoint, redis_server.url), executors=1) as rt:
        job, _, _ = fan(2, free=1)  # task 1 waits at gate 1
        wait_for(lambda: completed(rt, job) >= 1 and gates.started(1), "a task completed, one at the gate")
        name = job.queue.name
        boto3.client("sqs", endpoint_url=moto_server.endpoint).delete_queue(QueueUrl=job.queue.queue_url)
        late = late_executor(rt, job.id)
        assert late.returncode == 0 and "Traceback" not in late.stderr, late.stderr
        gates.open(1)
        with pytest.raises(npw.JobFailedError, match=rf"queue {name}.* does not exist"):
            job.wait(timeout=WAIT)
