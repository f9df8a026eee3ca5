"""A link that drops packets silently (no reset): Redis (state and queue), or the SQS queue, behind a stalled
``TcpProxy``.

The proxy's ``stall()`` keeps every connection and accepts new ones but forwards no byte, and no close, until
``restore()`` delivers what it held (as TCP's retransmissions would): a client learns of it only by its read
timeout.  Redis clients wait ``socket_timeout`` (a quarter of ``outage_s``, so 1 s with ``NPW_OUTAGE_S=4`` and
2.5 s with 10 here), close the connection and ``with_retries`` tries again on a new one, until ``outage_s`` has
passed since the first attempt began.  The steps wait for what the stall did to the clients (the proxy's
counts of swallowed requests and of connections the clients abandoned), not for time.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from test_outage import assert_ridden_out, completed, fan, wait_for

import numpywren2 as npw
from numpywren2.core.backends import OutageError, with_retries
from numpywren2.core.backends.redis import RedisStateStore, socket_timeout
from numpywren2.testing import TcpProxy
from provisioner import ProvisionerSettings

WAIT = 60.0


def proxied(proxy: TcpProxy, prefix: str) -> str:
    """The URL of the Redis server behind ``proxy`` (the test's ``redis_server``), keys under ``prefix``."""
    return f"redis://{proxy.host}:{proxy.port}/0?prefix={prefix}"


@pytest.mark.timeout(60)
def test_a_call_stalled_on_a_dead_link_is_abandoned_at_its_timeout_and_retried(redis_server, monkeypatch):
    monkeypatch.setenv("NPW_OUTAGE_S", "4")
    proxy = TcpProxy(redis_server.port)
    try:
        url = proxied(proxy, "stall1:")
        assert socket_timeout(url) == 1.0
        state = RedisStateStore(url)
        state.create_job("j", "{}")
        got: dict = {}

        def call():
            t0 = time.monotonic()
            try:
                got["status"] = with_retries(state.status, "j")
            except Exception as e:  # asserted below
                got["error"] = e
            got["seconds"] = time.monotonic() - t0

        # a stall shorter than outage_s: the first attempt is abandoned at its timeout (its connection
        # closed), the retry waits on a new connection, and answers once the link is back
        proxy.stall()
        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        assert proxy.wait_stalled(requests=2, connections=2, abandoned=1, timeout=WAIT), \
            "the first attempt was given up at its socket timeout and the call retried on a new connection"
        assert caller.is_alive()
        proxy.restore()
        caller.join(WAIT)
        assert got.get("status") == "running", got

        # a link that stays dead: the call gives up with OutageError once outage_s has passed, never hangs
        got.clear()
        proxy.stall()
        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        caller.join(WAIT)
        assert not caller.is_alive() and isinstance(got.get("error"), OutageError), got
        assert "longer than outage_s (4 s)" in str(got["error"]) and "Timeout" in str(got["error"])
        assert proxy.abandoned >= 2, "each attempt was abandoned at its timeout and retried"
        assert 4.0 <= got["seconds"] < 4.0 + 1.0 + 2.0 + 2.0, \
            f"outage_s + one socket timeout + one backoff (and a margin), not {got['seconds']:.1f} s"
        proxy.restore()
        assert with_retries(state.status, "j") == "running", "the client works once the link is back"
        state.delete_job("j")
        state.close()
    finally:
        proxy.close()


@pytest.mark.timeout(90)
def test_a_redis_stall_shorter_than_outage_s_is_ridden_out(tmp_path, redis_server, gates, monkeypatch):
    monkeypatch.setenv("NPW_OUTAGE_S", "10")  # socket timeout 2.5 s
    proxy = TcpProxy(redis_server.port)
    try:
        url = proxied(proxy, "stall2:")
        with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=url, state=url, executors=2,
                         provisioner=ProvisionerSettings(lease=3.0, poll_interval=0.1, idle_timeout=60.0)) as rt:
            N = 6
            job, X, Y = fan(N, free=3)  # tasks 0-2 run at once, 3-5 wait at gate 1
            wait_for(lambda: completed(rt, job) >= 3 and gates.started(1), "3 tasks completed, one at the gate")
            t0 = time.monotonic()
            proxy.stall()  # Redis silent: no reset, no answer, the clients see only their timeouts
            gates.open(1)
            wait_for(lambda: gates.passed(1), "a kernel returning during the stall")
            # the stall's length: every kind of client (client, provisioner, executors and their threads) met
            # it, and calls were abandoned at their socket timeouts and retried
            assert proxy.wait_stalled(requests=10, abandoned=4, timeout=WAIT), \
                (proxy.swallowed, proxy.abandoned)
            proxy.restore()
            assert_ridden_out(rt, job, X, Y, N, t0, within=20, fault="the stall", wait=WAIT)
            assert job.queue.depth() == 0, "no message left"
    finally:
        proxy.close()


@pytest.mark.timeout(120)
def test_an_sqs_stall_is_ridden_out_with_calls_abandoned_at_their_read_timeout(redis_server, moto_server, gates,
                                                                              monkeypatch):
    """The SQS endpoint stalled (S3 and Redis up).  Its read timeout is the URL's ``read_timeout=5`` (an existing
    setting; the default, 25 s, is the longest long poll plus a margin, and executors poll 1 s at most), so
    that calls are abandoned within the test's time: botocore tries each 3 times, then ``with_retries``."""
    monkeypatch.setenv("NPW_OUTAGE_S", "60")
    proxy = TcpProxy(moto_server.port)
    tag = uuid.uuid4().hex[:10]
    try:
        with npw.runtime(store=f"s3://npw-stall-{tag}/t?endpoint_url={moto_server.endpoint}&create=1",
                         queue=f"sqs://?endpoint_url={proxy.endpoint}&prefix=s{tag}-&read_timeout=5",
                         state=f"{redis_server.url}?prefix=s{tag}:", executors=2,
                         provisioner=ProvisionerSettings(lease=3.0, poll_interval=0.1, idle_timeout=60.0)) as rt:
            N = 6
            job, X, Y = fan(N, free=3)  # tasks 0-2 run at once, 3-5 wait at gate 1
            wait_for(lambda: completed(rt, job) >= 3 and gates.started(1), "3 tasks completed, one at the gate")
            t0 = time.monotonic()
            proxy.stall()
            gates.open(1)
            wait_for(lambda: gates.passed(1), "a kernel returning during the stall")
            assert proxy.wait_stalled(requests=4, abandoned=3, timeout=WAIT), (proxy.swallowed, proxy.abandoned)
            proxy.restore()
            assert_ridden_out(rt, job, X, Y, N, t0, within=40, fault="the stall", executors=None, wait=WAIT)
    finally:
        proxy.close()
