"""An S3 server that refuses or resets connections (moto_server behind a cut ``TcpProxy``: every connection reset,
open ones included, new ones at once), and one that answers 503 SlowDown.

botocore retries answers, not their absence (``aws.AnswerRetries``): a refused or reset connection raises at
once and the store's call (``aws._ride_out``) tries it again, with a backoff of at most 2 s, until ``outage_s``
has passed since its first attempt began, so a caller that does not retry (the client) rides a short outage out.
Before, botocore retried such a connection 8 times with its backoff (up to 20 s apart) inside each attempt of
``with_retries``, so a call to an S3 that stayed down gave up tens of seconds after ``outage_s``.  A 503
SlowDown is still retried by botocore, with its backoff and jitter.

The cut's length is counted in refused connections (each one an attempt of the call), not in seconds.
"""

from __future__ import annotations

import http.client
import http.server
import threading
import time
import uuid

import numpy as np
import pytest
from botocore.exceptions import ClientError

from numpywren2.core.backends import OutageError, with_retries
from numpywren2.core.backends.aws import S3TileStore
from numpywren2.testing import TcpProxy

WAIT = 60.0
OUTAGE_S = 4.0
BOUND_S = OUTAGE_S + 2.0 + 1.0  # outage_s + one backoff of with_retries (2 s) + a margin of 1 s for one attempt


def called(fn, *args) -> dict:
    """``fn(*args)`` in a thread, with no ``with_retries`` around it (as the client calls the store): a dict that
    gets its ``value`` or ``error``, and its ``seconds``."""
    got: dict = {}

    def call():
        t0 = time.monotonic()
        try:
            got["value"] = fn(*args)
        except Exception as e:  # asserted by the caller
            got["error"] = e
        got["seconds"] = time.monotonic() - t0

    got["thread"] = threading.Thread(target=call, daemon=True)
    got["thread"].start()
    return got


@pytest.mark.timeout(60)
def test_an_s3_that_refuses_connections_gives_outage_error_within_outage_s_and_one_backoff(moto_server, monkeypatch):
    monkeypatch.setenv("NPW_OUTAGE_S", f"{OUTAGE_S:g}")
    proxy = TcpProxy(moto_server.port)
    try:
        store = S3TileStore(f"s3://npw-cut-{uuid.uuid4().hex[:10]}/t?endpoint_url={proxy.endpoint}&create=1")
        tile = np.arange(12.0).reshape(3, 4)
        store.put("a", tile)

        # a cut shorter than outage_s: each attempt meets a refused connection and the store's call tries again
        # (a caller that does not retry, like the client, rides it out); after 3 the link is back, and the attempt
        # after that gets the tile
        proxy.cut()
        base = proxy.refused  # the connections open at the cut (the client's pool)
        got = called(store.get, "a")
        assert proxy.wait_refused(base + 3, timeout=WAIT), "the call was tried again on new connections"
        assert got["thread"].is_alive(), "the call rides the cut out"
        proxy.restore()
        got["thread"].join(WAIT)
        assert np.array_equal(got.get("value"), tile), got

        # an S3 that stays down: a read and a write each give OutageError once outage_s has passed, at most one
        # backoff later (and their attempts, each a refused connection, take milliseconds)
        for fn, args in ((store.get, ("a",)), (store.put, ("b", tile))):
            proxy.cut()
            base = proxy.refused
            got = called(fn, *args)
            got["thread"].join(WAIT)
            assert not got["thread"].is_alive() and isinstance(got.get("error"), OutageError), got
            assert f"longer than outage_s ({OUTAGE_S:g} s)" in str(got["error"]), got["error"]
            assert str(got["error"]).startswith(("S3.get_object", "S3.put_object")), "it names the call"
            assert proxy.refused - base >= 2, "each attempt was refused and the call tried again"
            assert OUTAGE_S <= got["seconds"] < BOUND_S, \
                f"outage_s + one backoff (and a margin), not {got['seconds']:.1f} s"
            proxy.restore()
        assert not store.exists("b"), "the write that gave up wrote nothing"
        assert np.array_equal(with_retries(store.get, "a"), tile), "the store works once the link is back"
        store.delete_prefix("")
    finally:
        proxy.close()


class SlowDownProxy(http.server.ThreadingHTTPServer):
    """An HTTP forwarder to moto_server that answers the first ``refuse`` GETs of an object with S3's 503 SlowDown
    (and forwards everything else): an S3 that asks its clients to slow down.  ``slowed`` counts those answers,
    ``gets`` the GETs it saw."""

    def __init__(self, target_port: int, refuse: int):
        super().__init__(("127.0.0.1", 0), _SlowDownHandler)
        self.daemon_threads = True
        self.target_port, self.refuse = target_port, refuse
        self.slowed = self.gets = 0
        self.lock = threading.Lock()
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _SlowDownHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: SlowDownProxy

    def log_message(self, *args) -> None:
        pass

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.command == "GET" and self.path.count("/") > 1:  # an object's GET, not a bucket's listing
            with self.server.lock:
                self.server.gets += 1
                slow = self.server.slowed < self.server.refuse
                self.server.slowed += slow
            if slow:
                answer = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                          b"<Message>Please reduce your request rate.</Message></Error>")
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
                return
        conn = http.client.HTTPConnection("127.0.0.1", self.server.target_port, timeout=30)
        try:
            conn.request(self.command, self.path, body=body,
                         headers={k: v for k, v in self.headers.items() if k.lower() != "expect"})
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
        finally:
            conn.close()

    do_GET = do_PUT = do_HEAD = do_POST = do_DELETE = _forward  # noqa: N815 (http.server's names)


@pytest.mark.timeout(60)
def test_s3_slowdown_is_still_retried_by_botocore_with_backoff(moto_server):
    """3 retries (``?retries=3``): two 503 SlowDown answers are ridden out by botocore within one call (its
    backoff sleeps under 1 + 2 s); four are one call's 4 attempts, then the ``ClientError``, which ``with_retries``
    does not retry (an answer, not an outage)."""
    server = SlowDownProxy(moto_server.port, refuse=2)
    try:
        store = S3TileStore(f"s3://npw-slow-{uuid.uuid4().hex[:10]}/t?endpoint_url={server.endpoint}&create=1"
                            "&retries=3")
        tile = np.arange(6.0).reshape(2, 3)
        store.put("a", tile)
        t0 = time.monotonic()
        assert np.array_equal(store.get("a"), tile)
        assert (server.slowed, server.gets) == (2, 3), "two SlowDown answers, retried by botocore"
        assert time.monotonic() - t0 < 1.0 + 2.0 + 1.0, "botocore's backoff: under 1 s, then under 2 s"

        server.slowed, server.gets, server.refuse = 0, 0, 10
        with pytest.raises(ClientError, match="SlowDown"):
            with_retries(store.get, "a")
        assert server.gets == 4, "the first attempt and botocore's 3 retries, then the answer raised"
        store.delete_prefix("")
    finally:
        server.shutdown()
        server.server_close()
