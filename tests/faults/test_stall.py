"""A link that drops packets silently (no reset): Redis (state and queue), the SQS queue, or the S3 tile store,
behind a stalled ``TcpProxy``.

The proxy's ``stall()`` keeps every connection and accepts new ones but forwards no byte, and no close, until
``restore()`` delivers what it held (as TCP's retransmissions would): a client learns of it only by its read
timeout.  Redis clients wait ``socket_timeout`` (a quarter of ``outage_s``, so 1 s with ``NPW_OUTAGE_S=4`` and
2.5 s with 10 here), close the connection and ``with_retries`` tries again on a new one, until ``outage_s`` has
passed since the first attempt began.  S3 and SQS clients wait their read timeout (``aws.read_timeout``: a quarter
of ``outage_s`` too, unless the URL gives ``read_timeout=``) and botocore does not retry a timeout, so it is
``with_retries`` that tries again, on the same clock.  The steps wait for what the stall did to the clients (the proxy's
counts of swallowed requests and of connections the clients abandoned), not for time.
"""

from __future__ import annotations

import threading
import time
import uuid

import numpy as np
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import ConnectionClosedError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from test_outage import assert_ridden_out, completed, fan, wait_for

import numpywren2 as npw
from numpywren2.core.backends import OutageError, aws, with_retries
from numpywren2.core.backends.aws import AnswerRetries, S3TileStore, SQSTaskQueue, long_poll_s, read_timeout
from numpywren2.core.backends.redis import RedisStateStore, socket_timeout
from numpywren2.testing import TcpProxy
from provisioner import ProvisionerSettings

WAIT = 60.0


def proxied(proxy: TcpProxy, prefix: str) -> str:
    """The URL of the Redis server behind ``proxy`` (the test's ``redis_server``), keys under ``prefix``."""
    return f"redis://{proxy.host}:{proxy.port}/0?prefix={prefix}"


def stall_mid_job(rt, proxy: TcpProxy, gates, requests: int, connections: int = 0, abandoned: int = 0):
    """A fan of 6 tasks on ``rt`` whose link behind ``proxy`` stalls once 3 tasks have completed and one waits at
    gate 1: the gate opens during the stall (a kernel returns and writes), and the stall lasts until the proxy
    swallowed ``requests`` requests on ``connections`` connections and the clients abandoned ``abandoned`` of
    them at their timeouts (calls retried on new connections); then the link is restored.  ``(job, X, Y, N, t0)``,
    ``t0`` the stall's start, for ``assert_ridden_out``."""
    N = 6
    job, X, Y = fan(N, free=3)  # tasks 0-2 run at once, 3-5 wait at gate 1
    wait_for(lambda: completed(rt, job) >= 3 and gates.started(1), "3 tasks completed, one at the gate")
    t0 = time.monotonic()
    proxy.stall()  # no reset, no answer: the clients see only their timeouts
    gates.open(1)
    wait_for(lambda: gates.passed(1), "a kernel returning during the stall")
    assert proxy.wait_stalled(requests=requests, connections=connections, abandoned=abandoned, timeout=WAIT), \
        (proxy.swallowed, proxy.stalled_connections, proxy.abandoned)
    proxy.restore()
    return job, X, Y, N, t0

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
            # the stall's length: every kind of client (client, provisioner, executors and their threads) met
            # it, and calls were abandoned at their socket timeouts and retried
            job, X, Y, N, t0 = stall_mid_job(rt, proxy, gates, requests=10, abandoned=4)
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
            job, X, Y, N, t0 = stall_mid_job(rt, proxy, gates, requests=4, abandoned=3)
            assert_ridden_out(rt, job, X, Y, N, t0, within=40, fault="the stall", executors=None, wait=WAIT)
    finally:
        proxy.close()


def test_aws_timeouts_derive_from_outage_s_unless_the_url_gives_them(monkeypatch):
    s3, sqs = "s3://b/p?endpoint_url=http://127.0.0.1:1", "sqs://?endpoint_url=http://127.0.0.1:1"
    for outage, s3_timeout, sqs_timeout, poll, redis_timeout in (
            (60, 15.0, 15.0, 10, 15.0), (4, 1.0, 1.0, 0, 1.0), (2, 1.0, 1.0, 0, 1.0), (1000, 60.0, 25.0, 20, 30.0)):
        monkeypatch.setenv("NPW_OUTAGE_S", str(outage))
        assert read_timeout(s3) == s3_timeout and read_timeout(sqs, 25.0) == sqs_timeout, outage
        assert socket_timeout("redis://h:1/0") == redis_timeout, "the same rule as Redis's socket timeout"
        assert long_poll_s(sqs_timeout) == poll, outage
    monkeypatch.setenv("NPW_OUTAGE_S", "60")
    assert read_timeout(f"{sqs}&read_timeout=5", 25.0) == 5.0 and long_poll_s(5.0) == 2
    retry = AnswerRetries(8)  # botocore retries no call that got no answer: timeouts, resets, refusals
    for e in (ReadTimeoutError(endpoint_url="http://h"), ConnectTimeoutError(endpoint_url="http://h"),
              ConnectionClosedError(endpoint_url="http://h", error=TimeoutError("timed out")),
              ConnectionClosedError(endpoint_url="http://h", error=ConnectionResetError()),
              EndpointConnectionError(endpoint_url="http://h")):
        assert retry(1, caught_exception=e) is None, e


def timed(fn, *args) -> dict:
    """``with_retries(fn, *args)`` in a thread: a dict that gets its ``value`` or ``error``, and its ``seconds``."""
    got: dict = {}

    def call():
        t0 = time.monotonic()
        try:
            got["value"] = with_retries(fn, *args)
        except Exception as e:  # asserted by the caller
            got["error"] = e
        got["seconds"] = time.monotonic() - t0

    got["thread"] = threading.Thread(target=call, daemon=True)
    got["thread"].start()
    return got


def assert_outage_within_bound(got: dict, proxy: TcpProxy, outage: float, attempt: float):
    """The call ``got`` (``timed``) on a link that stayed silent gave ``OutageError`` after outage_s and within
    outage_s + one attempt's wait (``attempt``: a read timeout) + one backoff (2 s), with a margin of 2 s, each
    attempt abandoned at its timeout (the proxy counts a close once it reads it: waited for, not assumed)."""
    got["thread"].join(WAIT)
    assert not got["thread"].is_alive() and isinstance(got.get("error"), OutageError), got
    assert f"longer than outage_s ({outage:g} s)" in str(got["error"]) and "timeout" in str(got["error"]).lower()
    assert proxy.wait_stalled(requests=2, connections=2, abandoned=2, timeout=WAIT), \
        ("each attempt was abandoned at its read timeout and retried", proxy.swallowed, proxy.abandoned)
    assert outage <= got["seconds"] < outage + attempt + 2.0 + 2.0, \
        f"outage_s + one attempt's timeout + one backoff (and a margin), not {got['seconds']:.1f} s"


@pytest.mark.timeout(60)
def test_an_s3_call_on_a_dead_link_gives_outage_error_within_outage_s_and_one_attempt(moto_server, monkeypatch):
    """With ``NPW_OUTAGE_S=4`` the read timeout is 1 s; botocore alone would wait it at each of its 8 attempts,
    with up to 20 s of backoff between them (34 s here when botocore retried timeouts, instead of 4.3 s)."""
    monkeypatch.setenv("NPW_OUTAGE_S", "4")
    proxy = TcpProxy(moto_server.port)
    try:
        store = S3TileStore(f"s3://npw-stall-{uuid.uuid4().hex[:10]}/t?endpoint_url={proxy.endpoint}&create=1")
        assert store.client.meta.config.read_timeout == 1.0 and store.client.meta.config.connect_timeout == 1.0
        tile = np.arange(12.0).reshape(3, 4)
        store.put("a", tile)

        # a stall shorter than outage_s: the first attempt is abandoned at its read timeout, the retry waits on a
        # new connection and gets the tile once the link is back
        proxy.stall()
        got = timed(store.get, "a")
        assert proxy.wait_stalled(requests=2, connections=2, abandoned=1, timeout=WAIT), \
            "the first attempt was given up at its read timeout and the call retried on a new connection"
        assert got["thread"].is_alive()
        proxy.restore()
        got["thread"].join(WAIT)
        assert np.array_equal(got.get("value"), tile), got

        # a link that stays dead: a read and a write each give up with OutageError once outage_s has passed; an
        # attempt of the write waits 1 s more: botocore's PUT waits up to 1 s for the server's "100 Continue"
        # before it sends the body, then its read timeout for the answer
        for fn, args, attempt in ((store.get, ("a",), 1.0), (store.put, ("b", tile), 2.0)):
            proxy.stall()
            assert_outage_within_bound(timed(fn, *args), proxy, 4.0, attempt)
            proxy.restore()
        assert np.array_equal(with_retries(store.get, "a"), tile), "the store works once the link is back"
        store.delete_prefix("")
    finally:
        proxy.close()


@pytest.mark.timeout(60)
def test_an_sqs_call_on_a_dead_link_gives_outage_error_within_the_bound_with_the_default_read_timeout(
        moto_server, monkeypatch):
    """No ``read_timeout=`` in the URL: with ``NPW_OUTAGE_S=4`` it is 1 s, and the long poll that a receive asks
    for (20 s) is cut to fit in it (0: no long poll), so the receive gives up like any call (4.3 s here; 7.5 s
    when botocore retried timeouts: 3 attempts and its backoff per attempt of ``with_retries``)."""
    monkeypatch.setenv("NPW_OUTAGE_S", "4")
    proxy = TcpProxy(moto_server.port)
    try:
        queue = SQSTaskQueue(f"sqs://?endpoint_url={proxy.endpoint}&prefix=d{uuid.uuid4().hex[:10]}-", "j")
        assert queue.client.meta.config.read_timeout == 1.0 and queue.long_poll == 0
        queue.send(["t1"])

        # a stall shorter than outage_s is ridden out (the count: a late receive would hide the message)
        proxy.stall()
        got = timed(queue.depth)
        assert proxy.wait_stalled(requests=2, connections=2, abandoned=1, timeout=WAIT)
        assert got["thread"].is_alive()
        proxy.restore()
        got["thread"].join(WAIT)
        assert got.get("value") == 1, got

        proxy.stall()
        assert_outage_within_bound(timed(queue.receive, 1, 30.0, 20.0), proxy, 4.0, 1.0)
        proxy.restore()
        assert with_retries(queue.depth) == 1, "the queue works once the link is back"
        queue.delete()
    finally:
        proxy.close()


@pytest.mark.timeout(90)
def test_an_s3_stall_shorter_than_outage_s_is_ridden_out(redis_server, moto_server, gates, monkeypatch):
    """The S3 endpoint stalled (Redis, the queue and the state, up), with the read timeout derived from
    ``NPW_OUTAGE_S=10``: 2.5 s.  The kernel that returns during the stall writes its output tile, and the
    executors read the next tasks' inputs: each attempt is abandoned at its read timeout and retried."""
    monkeypatch.setenv("NPW_OUTAGE_S", "10")
    proxy = TcpProxy(moto_server.port)
    tag = uuid.uuid4().hex[:10]
    try:
        with npw.runtime(store=f"s3://npw-stall-{tag}/t?endpoint_url={proxy.endpoint}&create=1",
                         queue=f"{redis_server.url}?prefix=s{tag}:", state=f"{redis_server.url}?prefix=s{tag}:",
                         executors=2,
                         provisioner=ProvisionerSettings(lease=3.0, poll_interval=0.1, idle_timeout=60.0)) as rt:
            assert rt.store.client.meta.config.read_timeout == 2.5
            # a call abandoned at its read timeout twice, or two calls once each, and retried on new connections
            job, X, Y, N, t0 = stall_mid_job(rt, proxy, gates, requests=3, connections=3, abandoned=2)
            assert_ridden_out(rt, job, X, Y, N, t0, within=30, fault="the stall", wait=WAIT)
    finally:
        proxy.close()


MULTIPART_BOUND_S = 4.0 + 2 * 1.0 + 1.0 + 2.0 + 2.0  # outage_s, an attempt's two timeouts and 1 s, a backoff, a margin
MULTIPART_TEST_BYTES = 8 * 2**20  # the multipart threshold lowered for the test (64 MiB in the store)
PART_BYTES = 5 * 2**20  # S3's smallest part but the last


def multipart_store(url: str, monkeypatch) -> S3TileStore:
    """An ``S3TileStore`` whose tiles of 8 MiB and more go up as multipart uploads of 5 MiB parts."""
    monkeypatch.setattr(aws, "MULTIPART_BYTES", MULTIPART_TEST_BYTES)
    store = S3TileStore(url)
    store.transfer = TransferConfig(multipart_threshold=MULTIPART_TEST_BYTES, multipart_chunksize=PART_BYTES)
    return store


def stall_at_first_part(store: S3TileStore, proxy: TcpProxy) -> threading.Event:
    """Stall ``proxy`` when the store's first part is about to be sent (a botocore event: the upload was created,
    then the link goes silent); the event is set once it did."""
    stalled = threading.Event()

    def before_part(**_):
        if not stalled.is_set():
            stalled.set()
            proxy.stall()

    store.client.meta.events.register("before-call.s3.UploadPart", before_part)
    return stalled


@pytest.mark.timeout(90)
def test_a_multipart_upload_on_a_stalled_s3_link_is_bounded_and_a_short_stall_ridden_out(moto_server, monkeypatch):
    """A tile of 12 MiB (3 parts) written while the S3 link stalls after the upload was created: its parts time out
    (read timeout 1 s with ``NPW_OUTAGE_S=4``), the transfer aborts the upload (that call stalled too: a second
    timeout), and the store's call tries the whole upload again.  A stall that ends meanwhile is ridden out (the
    tile reads back intact); one that stays gives ``OutageError`` within outage_s + one attempt (two read
    timeouts, botocore's 1 s wait for "100 Continue") + one backoff (2 s)."""
    monkeypatch.setenv("NPW_OUTAGE_S", "4")
    proxy = TcpProxy(moto_server.port)
    try:
        store = multipart_store(f"s3://npw-mp-{uuid.uuid4().hex[:10]}/t?endpoint_url={proxy.endpoint}&create=1",
                                monkeypatch)
        tile = np.random.default_rng(0).standard_normal((12 * 2**20 // 8 // 64, 64))
        # a short stall: the parts are abandoned at their read timeout, then the link is back
        stalled = stall_at_first_part(store, proxy)
        got = timed(store.put, "big", tile)
        assert stalled.wait(WAIT)
        assert proxy.wait_stalled(requests=2, connections=2, abandoned=2, timeout=WAIT), \
            (proxy.swallowed, proxy.stalled_connections, proxy.abandoned)
        proxy.restore()
        got["thread"].join(WAIT)
        assert got.get("value", 0) > 12 * 2**20, got
        assert np.array_equal(with_retries(store.get, "big"), tile), "the tile written once the link is back"

        # a link that stays silent
        stalled = stall_at_first_part(store, proxy)
        got = timed(store.put, "big2", tile)
        assert stalled.wait(WAIT)
        got["thread"].join(WAIT)
        assert not got["thread"].is_alive() and isinstance(got.get("error"), OutageError), got
        assert "longer than outage_s (4 s)" in str(got["error"]), got["error"]
        assert 4.0 <= got["seconds"] < MULTIPART_BOUND_S, \
            f"outage_s + one attempt (two read timeouts and 1 s) + one backoff, not {got['seconds']:.1f} s"
        proxy.restore()
        assert proxy.wait_drained(WAIT), "the late requests the stall held were answered"
        assert not store.exists("big2"), "the upload that gave up wrote no tile"
        left = store.incomplete_uploads("")
        assert left and {k for k, _ in left} == {"big2"}, \
            f"the held requests left an incomplete upload of the tile given up (measured: one per call), not {left}"
        store.delete_prefix("")
        assert store.incomplete_uploads("") == [], "deleting the prefix aborts its incomplete uploads"
    finally:
        proxy.close()


@pytest.mark.timeout(60)
def test_a_read_whose_answer_the_stall_holds_is_abandoned_at_its_timeout_and_retried(moto_server, monkeypatch):
    """The link stalls once a GET's answer has begun (botocore's ``after-call`` event: headers read, body on its
    way): the body's read times out (``read_timeout=3``), its connection is closed then (the proxy counts it
    abandoned, with the answer held: before, the connection was left open and only the retry's timeout, 3 s later,
    was counted) and the call is retried on a new connection, which gets the tile once the link is back."""
    monkeypatch.setenv("NPW_OUTAGE_S", "20")
    proxy = TcpProxy(moto_server.port)
    try:
        store = S3TileStore(f"s3://npw-dl-{uuid.uuid4().hex[:10]}/t?endpoint_url={proxy.endpoint}&create=1"
                            "&read_timeout=3")
        tile = np.random.default_rng(1).standard_normal((32 * 2**20 // 8 // 64, 64))  # 32 MiB: one GET
        store.put("big", tile)
        stalled = threading.Event()

        began = []

        def after_get(**_):
            if not stalled.is_set():
                began.append(time.monotonic())
                stalled.set()
                proxy.stall()

        store.client.meta.events.register("after-call.s3.GetObject", after_get)
        got = timed(store.get, "big")
        assert stalled.wait(WAIT)
        assert proxy.wait_stalled(requests=1, connections=1, abandoned=1, timeout=WAIT), \
            (proxy.swallowed, proxy.stalled_connections, proxy.abandoned)
        assert time.monotonic() - began[0] < 2 * 3.0 - 0.5, "the first read's connection counted at its timeout"
        assert proxy.swallowed_bytes > 0 and got["thread"].is_alive()
        proxy.restore()
        got["thread"].join(WAIT)
        assert np.array_equal(got.get("value"), tile), got
        store.delete_prefix("")
    finally:
        proxy.close()
