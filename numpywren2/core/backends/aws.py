"""S3 tile store and SQS task queue (boto3), for AWS or any S3/SQS-compatible endpoint.

URLs::

    s3://BUCKET/PREFIX?endpoint_url=http://127.0.0.1:5000&region=us-east-1&create=1&sse=AES256
    s3://BUCKET/PREFIX?sse=aws:kms&kms_key_id=arn:aws:kms:...:key/...   (SSE-KMS; no key id: the account's default)
    sqs://?endpoint_url=http://127.0.0.1:5000&region=us-east-1&prefix=npw-

Retries: botocore retries answers, not their absence (``AnswerRetries``).  A throttled or 5xx answer (S3's
503 SlowDown) is tried again by botocore up to ``retries`` times (``?retries=``, default 8 for S3, 3 for SQS)
with exponential backoff and full jitter, up to 20 s apart.  A server that cannot be reached (a refused or
reset connection, a timeout: ``base.outage_errors``) is not retried by botocore: the attempt raises at once and
the store's or queue's call tries it again (``_ride_out``: ``with_retries`` over the outage errors, so that
callers that do not retry, such as the client's reads and clean-up, ride it out too), with a backoff of at most
2 s, until ``outage_s`` has passed since its first attempt began, then raises ``OutageError`` naming the call
(``S3.get_object``...).  So a call to an S3 or SQS
server that refuses or resets connections and stays down gives up at most ``outage_s`` plus one backoff (2 s)
and one attempt after it began (before: botocore's 8 S3 retries with its backoff between them came first, up
to 91 s of sleeps each time ``with_retries`` tried; SQS's default of 3 retries was set low for that reason).
A store or queue opened while its server is down fails at once (``BackendError``, "cannot reach"): the
executor opens its backends riding the outage out (``executor.worker.open_backends``).

A link that drops packets without a reset is met only by timeouts, and they are bounded by ``outage_s``
by the rule of Redis's socket timeout (``base.outage_timeout``): the read timeout (``read_timeout``: the URL's
``?read_timeout=``, else a quarter of ``outage_s()``, 1-60 s for S3 and 1-25 s for SQS, 15 s for both with
the default outage_s of 60 s) and the connect timeout (``?connect_timeout=``, else 5 s or the read timeout
if shorter).  An attempt of ``with_retries`` waits one timeout, and a call on a link that stays silent gives
``OutageError`` at most ``outage_s`` plus one read timeout and one backoff (2 s) after it began: 77 s by
default (before timeouts were left to ``with_retries``: 60 s at each of botocore's 8 S3 attempts with its
backoff between them, about 10 minutes; 25 s at each of 3 for SQS, about 78 s).  A write's attempt
waits up to 1 s more (botocore's PUT waits that long for the server's "100 Continue" before it sends the
body); a multipart upload's (tiles of ``MULTIPART_BYTES`` and more) whose part times out also waits for the
abort of the upload, a second read timeout (``test_stall``: 4.1-4.2 s with ``NPW_OUTAGE_S=4``; one given up
can leave an incomplete upload in the bucket, which ``delete_prefix`` aborts with the tiles).  The read timeout
is per socket read, not per request, so a large tile is not cut by it.  SQS's long poll is shortened to fit
(``long_poll_s``: the read timeout less a margin, 10 s by default); a receive that asked for a longer wait and got
nothing sleeps the rest on the client.
"""

from __future__ import annotations

import io
import math
import random
import re
import time
import warnings
from urllib.parse import parse_qs, urlparse

import boto3
import numpy as np
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    IncompleteReadError,
    ResponseStreamingError,
)

from .base import (
    BackendError,
    CorruptTileError,
    Message,
    QueueLostError,
    TaskQueue,
    TileNotFoundError,
    TileStore,
    decode_tile,
    encode_tile,
    outage_errors,
    outage_timeout,
    with_retries,
)

MULTIPART_BYTES = 64 * 2**20  # tiles above this size go up in 16 MiB parts
LONG_POLL_S = 20  # SQS's longest receive wait (WaitTimeSeconds)
POLL_MARGIN_S = 5.0  # the most of an SQS read timeout kept above the long poll, for the server's answer
READ_TIMEOUT = 60.0  # the longest read timeout derived for S3 (botocore's default)
SQS_READ_TIMEOUT = LONG_POLL_S + POLL_MARGIN_S  # the longest derived for SQS: the longest long poll plus the margin
CONNECT_TIMEOUT = 5.0


def read_timeout(url: str, longest: float = READ_TIMEOUT) -> float:
    """Seconds a client of ``url`` waits for each read of an answer before it gives the attempt up
    (``ReadTimeoutError``): ``base.outage_timeout`` of the URL's ``?read_timeout=``, else a quarter of
    ``outage_s()`` between ``MIN_TIMEOUT`` (1 s) and ``longest`` (15 s for the default outage_s of 60 s).

    botocore does not retry a timeout (``AnswerRetries``): ``with_retries`` tries the call again until ``outage_s``
    has passed since its first attempt began.

    >>> read_timeout("s3://b/p?read_timeout=2.5")
    2.5
    """
    return outage_timeout(url, "read_timeout", longest)


def long_poll_s(timeout: float) -> int:
    """The longest SQS long poll (``WaitTimeSeconds``) a client whose read timeout is ``timeout`` may ask for:
    the timeout less a margin for the answer (``POLL_MARGIN_S``, or half the timeout if that is less), at most
    ``LONG_POLL_S``; 0 (no long poll) for a timeout under 2 s.

    >>> long_poll_s(25.0), long_poll_s(15.0), long_poll_s(5.0), long_poll_s(1.0)
    (20, 10, 2, 0)
    """
    return max(0, min(LONG_POLL_S, math.floor(timeout - min(POLL_MARGIN_S, timeout / 2))))


RETRIED_STATUS = frozenset({500, 502, 503, 504})  # answers botocore retries: a server's error...
RETRIED_CODES = frozenset({  # ... or one of these codes (botocore's "standard" mode's throttling and transient codes)
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded", "BandwidthLimitExceeded",
    "LimitExceededException", "ProvisionedThroughputExceededException", "TransactionInProgressException",
    "PriorRequestNotComplete", "RequestTimeout", "RequestTimeoutException"})
MAX_BACKOFF_S = 20.0  # botocore's longest backoff between attempts


class AnswerRetries:
    """The ``needs-retry`` handler of every client here: botocore retries answers, not their absence.

    An answer that asks to retry (a status in ``RETRIED_STATUS``, a code in ``RETRIED_CODES``: S3's 503 SlowDown,
    SQS's throttling) is tried again up to ``retries`` times, after a backoff with full jitter as in botocore's
    "standard" mode (``random() × min(20 s, 2^(k-1))`` before the k-th retry: AWS's advice for SlowDown).  No
    answer (a refused or reset connection, a timeout: ``base.outage_errors``) is never retried here: the call
    raises at once and ``with_retries`` tries it again, counting the time against ``outage_s``, so a call to a
    server that stays down gives up ``outage_s`` plus one attempt and one backoff (2 s) after it began.  Any
    other answer is left to botocore's other handlers (S3's redirects to a bucket's region).

    >>> class Http: status_code = 503
    >>> retry = AnswerRetries(2)
    >>> 0 <= retry(1, response=(Http(), {"Error": {"Code": "SlowDown"}})) < 1
    True
    >>> retry(3, response=(Http(), {})) is None, retry(1, caught_exception=ConnectionResetError()) is None
    (True, True)
    """

    def __init__(self, retries: int):
        self.retries = retries

    def __call__(self, attempts: int, response=None, caught_exception=None, **_) -> float | None:
        if response is None or attempts > self.retries:
            return None
        http, parsed = response
        code = (parsed or {}).get("Error", {}).get("Code")
        if http.status_code in RETRIED_STATUS or code in RETRIED_CODES:
            return random.random() * min(MAX_BACKOFF_S, 2.0 ** (attempts - 1))
        return None


def _options(url: str, retries: int = 8, longest_read: float = READ_TIMEOUT) -> tuple:
    """``(parsed url, its query, boto3.client's keywords)``, and the number of retries of answers
    (``?retries=``, else ``retries``)."""
    u = urlparse(url)
    q = {k: v[0] for k, v in parse_qs(u.query).items()}
    timeout = read_timeout(url, longest_read)
    # botocore's own retry handler makes one attempt (it would retry refused connections too); AnswerRetries
    # retries answers
    cfg = Config(retries={"total_max_attempts": 1, "mode": "standard"},
                 max_pool_connections=int(q.get("pool", 32)),
                 connect_timeout=float(q.get("connect_timeout", min(CONNECT_TIMEOUT, timeout))), read_timeout=timeout)
    kw = {"config": cfg, "region_name": q.get("region", "us-east-1")}
    if "endpoint_url" in q:
        kw["endpoint_url"] = q["endpoint_url"]
    return u, q, kw, int(q.get("retries", retries))


class AnswerCutShortError(ConnectionClosedError):
    """An answer shorter than its ``Content-Length``: its connection closed while the server wrote it."""

    fmt = ("the answer of {operation} from {endpoint_url} was cut short: {got} of its {length} bytes arrived "
           "(its connection closed)")


class WholeAnswer:
    """The ``before-parse`` handler of every client here: an answer cut short is no answer.

    botocore reads an answer that is not streamed (SQS's JSON, S3's listings) without checking its length
    against its ``Content-Length`` (it asks urllib3 not to), and parses what arrived: a connection closed after
    the headers (a server killed while writing, a link cut with a close: ``TcpProxy.cut`` sends one) parses as
    an empty answer, so ``GetQueueAttributes`` named no queue (the job failed, "queue lost", during an SQS
    outage) and ``ListObjectsV2`` named no key.  Such an answer raises ``AnswerCutShortError``, a
    ``ConnectionClosedError`` and so an outage error (``base.outage_errors``): the call is tried again as after a
    reset.  Streamed bodies (``get_object``) are checked by botocore's ``StreamingBody`` as they are read (its
    ``IncompleteReadError`` is made ``AnswerCutShortError`` too: ``S3TileStore.get``); a HEAD's ``Content-Length`` is
    the object's.
    The server did act on the request: tried again it acts twice, which every call here allows (SQS delivers at
    least once; S3's writes and deletes are idempotent; a second multipart upload's first is aborted with its
    prefix).

    >>> class GetQueueAttributes: name, http = "GetQueueAttributes", {"method": "POST"}
    >>> check = WholeAnswer("http://127.0.0.1:5000")
    >>> check(GetQueueAttributes, {"headers": {"content-length": "2"}, "body": b"{}"}) is None
    True
    >>> try:
    ...     check(GetQueueAttributes, {"headers": {"content-length": "99"}, "body": b""})
    ... except AnswerCutShortError as e:
    ...     print(e)
    the answer of GetQueueAttributes from http://127.0.0.1:5000 was cut short: 0 of its 99 bytes arrived \
(its connection closed)
    """

    def __init__(self, endpoint: str):
        self.endpoint = endpoint

    def __call__(self, operation_model, response_dict, **_) -> None:
        body, length = response_dict.get("body"), response_dict["headers"].get("content-length", "")
        if not isinstance(body, bytes) or not length.isdigit() or operation_model.http.get("method") == "HEAD":
            return
        if len(body) < int(length):
            raise AnswerCutShortError(operation=operation_model.name, endpoint_url=self.endpoint, got=len(body),
                                 length=length)


def _client(service: str, kw: dict, retries: int):
    """A boto3 client of ``service`` whose calls botocore retries only for answers (``AnswerRetries``), and that
    takes an answer cut short for none (``WholeAnswer``)."""
    client = boto3.client(service, **kw)
    client.meta.events.register_first(f"needs-retry.{service}", AnswerRetries(retries))
    client.meta.events.register_first(f"before-parse.{service}", WholeAnswer(client.meta.endpoint_url))
    return client


def _ride_out(fn, *args, **kw):
    """``fn(*args, **kw)``, tried again while its server cannot be reached (``base.outage_errors``: refused or
    reset connections, timeouts) for up to ``outage_s``, then ``OutageError`` naming the call: botocore does not
    retry those (``AnswerRetries``), so every call of the store and the queue rides an outage out itself, as
    botocore's retries did for callers that do not retry (the client's reads, writes and clean-up).  Other errors
    are raised at once, for the caller's ``with_retries``; a caller's ``with_retries`` around this one gets its
    ``OutageError`` (not retried again), so the bound is this one's."""
    def attempt():
        return fn(*args, **kw)

    owner = getattr(fn, "__self__", None)
    attempt.__qualname__ = f"{type(owner).__name__}.{fn.__name__}" if owner is not None else fn.__qualname__
    return with_retries(attempt, retry_on=outage_errors())


SSE_MODES = ("AES256", "aws:kms", "aws:kms:dsse")


def sse_args(sse: str | None, kms_key_id: str | None) -> dict[str, str]:
    """The server-side-encryption arguments of every upload, from the URL's ``sse`` and ``kms_key_id``.

    >>> sse_args("AES256", None), sse_args(None, None)
    ({'ServerSideEncryption': 'AES256'}, {})
    >>> sse_args("aws:kms", "alias/npw")
    {'ServerSideEncryption': 'aws:kms', 'SSEKMSKeyId': 'alias/npw'}
    """
    if sse is None:
        if kms_key_id:
            raise ValueError("an S3 URL with kms_key_id= needs sse=aws:kms")
        return {}
    if sse not in SSE_MODES:
        raise ValueError(f"unsupported S3 server-side encryption sse={sse!r} (supported: {', '.join(SSE_MODES)})")
    if kms_key_id and not sse.startswith("aws:kms"):
        raise ValueError(f"kms_key_id= goes with sse=aws:kms, not sse={sse}")
    out = {"ServerSideEncryption": sse}
    if kms_key_id:
        out["SSEKMSKeyId"] = kms_key_id
    return out


class S3TileStore(TileStore):
    def __init__(self, url: str):
        u, q, kw, retries = _options(url)
        self.url = url
        self.bucket = u.netloc
        self.prefix = u.path.strip("/")
        self.sse = q.get("sse")
        self.sse_args = sse_args(self.sse, q.get("kms_key_id"))
        self.client = _client("s3", kw, retries)
        self.transfer = TransferConfig(multipart_threshold=MULTIPART_BYTES, multipart_chunksize=16 * 2**20)
        self._warned_uploads = False
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code")
            if code in ("404", "NoSuchBucket") and q.get("create") in ("1", "true", "yes"):
                args = {"Bucket": self.bucket}
                if kw["region_name"] != "us-east-1":
                    args["CreateBucketConfiguration"] = {"LocationConstraint": kw["region_name"]}
                self.client.create_bucket(**args)
            else:
                raise BackendError(
                    f"S3 bucket {self.bucket!r} is not usable ({code}); add ?create=1 to create it") from e
        except BotoCoreError as e:
            raise BackendError(f"cannot reach S3 at {kw.get('endpoint_url', 'AWS')}: {e}") from e

    def _key(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    def get(self, key: str) -> np.ndarray:
        """The tile, checksum verified; a corrupt or short read is read once more before it is an error
        (``CorruptTileError``), since a network transfer can fail where the stored object is intact.  A body
        whose connection closed before its ``Content-Length`` arrived (``AnswerCutShortError``) or timed out is read
        again while ``outage_s`` lasts, as any call is (``_ride_out``)."""
        try:
            return _ride_out(self._get_once, key)
        except CorruptTileError as first:
            try:
                return _ride_out(self._get_once, key)
            except CorruptTileError as e:
                raise CorruptTileError(f"{e} (read twice from {self.url.split('?')[0]}; first read: {first})",
                                       key) from None

    def _get_once(self, key: str) -> np.ndarray:
        try:
            obj = _ride_out(self.client.get_object, Bucket=self.bucket, Key=self._key(key))
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise TileNotFoundError(key) from None
            raise
        body = obj["Body"]
        buf = bytearray(obj["ContentLength"])
        view, off = memoryview(buf), 0
        try:
            while off < len(buf):
                chunk = body.read(min(len(buf) - off, 8 * 2**20))
                if not chunk:
                    raise CorruptTileError(f"tile {key!r} is corrupt: short read, {off} of {len(buf)} bytes", key)
                view[off:off + len(chunk)] = chunk
                off += len(chunk)
        except (IncompleteReadError, ResponseStreamingError) as e:  # botocore's checks of a streamed body
            body.close()
            raise AnswerCutShortError(operation="GetObject", endpoint_url=self.client.meta.endpoint_url, got=off,
                                 length=len(buf)) from e
        except BaseException:
            body.close()  # a read that timed out or failed: its connection is closed now, not left to the collector
            raise
        return decode_tile(buf, key)

    def put(self, key: str, tile: np.ndarray) -> int:
        data = b"".join(bytes(p) for p in encode_tile(tile))
        extra = dict(self.sse_args)
        if len(data) >= MULTIPART_BYTES:
            _ride_out(self._upload, key, data, extra)
        else:
            _ride_out(self.client.put_object, Bucket=self.bucket, Key=self._key(key), Body=data, **extra)
        return len(data)

    def _upload(self, key: str, data: bytes, extra: dict) -> None:
        """A multipart upload of ``data`` (a stream of its own per attempt)."""
        self.client.upload_fileobj(io.BytesIO(data), self.bucket, self._key(key), ExtraArgs=extra or None,
                                   Config=self.transfer)

    def exists(self, key: str) -> bool:
        try:
            _ride_out(self.client.head_object, Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise

    def delete(self, key: str) -> bool:
        existed = self.exists(key)
        _ride_out(self.client.delete_object, Bucket=self.bucket, Key=self._key(key))
        return existed

    def delete_prefix(self, prefix: str) -> int:
        """Delete every tile under ``prefix``, and abort every incomplete multipart upload under it (one given
        up on a silent link, or created late by a request the link held: they hold storage and are not listed
        as objects); returns how many tiles were deleted."""
        keys = self.list(prefix)
        for i in range(0, len(keys), 1000):
            _ride_out(self.client.delete_objects, Bucket=self.bucket, Delete={
                "Objects": [{"Key": self._key(k)} for k in keys[i:i + 1000]], "Quiet": True})
        try:
            uploads = self.incomplete_uploads(prefix)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") != "AccessDenied":
                raise
            if not self._warned_uploads:  # a role without s3:ListBucketMultipartUploads (docs/aws.md)
                self._warned_uploads = True
                warnings.warn(f"cannot list incomplete multipart uploads in s3://{self.bucket} (AccessDenied): "
                              "deleting a prefix leaves them; grant s3:ListBucketMultipartUploads on the bucket",
                              RuntimeWarning, stacklevel=2)
            uploads = []
        for key, upload_id in uploads:
            try:
                _ride_out(self.client.abort_multipart_upload, Bucket=self.bucket, Key=self._key(key),
                          UploadId=upload_id)
            except ClientError as e:
                if e.response.get("Error", {}).get("Code") not in ("NoSuchUpload", "404"):
                    raise  # an upload completed or aborted meanwhile is fine
        return len(keys)

    def incomplete_uploads(self, prefix: str = "") -> list[tuple[str, str]]:
        """The multipart uploads under ``prefix`` neither completed nor aborted: (key, upload id) pairs."""
        return _ride_out(self._incomplete_uploads, prefix)

    def _incomplete_uploads(self, prefix: str) -> list[tuple[str, str]]:
        return self._paginate("list_multipart_uploads", "Uploads", prefix, lambda u, key: (key, u["UploadId"]))

    def list(self, prefix: str = "") -> list[str]:
        return _ride_out(self._list, prefix)

    def _list(self, prefix: str) -> list[str]:
        return self._paginate("list_objects_v2", "Contents", prefix, lambda o, key: key)

    def _paginate(self, operation: str, field: str, prefix: str, item) -> list:
        """``item(entry, key)`` of each entry of ``operation``'s pages under ``prefix``, sorted; ``key`` is the
        entry's key without this store's own prefix."""
        full = self._key(prefix) if self.prefix else prefix
        strip = len(self.prefix) + 1 if self.prefix else 0
        out = []
        for page in self.client.get_paginator(operation).paginate(Bucket=self.bucket, Prefix=full):
            out += [item(entry, entry["Key"][strip:]) for entry in page.get(field, [])]
        return sorted(out)


class SQSTaskQueue(TaskQueue):
    """One SQS queue per job, created on first use and deleted when the job ends.

    SQS has no priorities and no order (``send``'s priority is ignored), delivers
    at least once (a message may occasionally reach two receivers), and cannot
    refuse an acknowledgement made with an expired receipt handle, so
    ``strict_leases`` is False; the protocol depends on none of these (a duplicate
    finds its task done, and re-running a task is safe).
    Messages hold task ids only, far below SQS's 256 KB limit.
    """

    strict_leases = False
    ordered = False

    LOST = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")  # error codes of a missing queue

    def __init__(self, url: str, name: str, create: bool = True):
        _, q, kw, retries = _options(url, retries=3, longest_read=SQS_READ_TIMEOUT)  # see the module docstring
        self.url = url
        self.endpoint = kw.get("endpoint_url", "AWS")
        self.client = _client("sqs", kw, retries)
        self.long_poll = long_poll_s(kw["config"].read_timeout)  # a long poll that fits in the read timeout
        self.name = re.sub(r"[^A-Za-z0-9_-]", "-", q.get("prefix", "npw-") + name)[:80]
        try:
            if create:
                self.queue_url = self.client.create_queue(QueueName=self.name)["QueueUrl"]
            else:
                self.queue_url = self.client.get_queue_url(QueueName=self.name)["QueueUrl"]
        except ClientError as e:
            if not create and self._lost(e):
                raise self._lost_error() from None
            raise BackendError(f"cannot open SQS queue {self.name} at {self.endpoint}: {e}") from e
        except BotoCoreError as e:
            raise BackendError(f"cannot open SQS queue {self.name} at {self.endpoint}: {e}") from e

    def _lost(self, e: ClientError) -> bool:
        return e.response.get("Error", {}).get("Code") in self.LOST

    def _lost_error(self) -> QueueLostError:
        return QueueLostError(f"the SQS queue {self.name} at {self.endpoint} does not exist: lost (deleted, or its "
                              "server restarted without its state); the tasks queued in it are gone")

    def _call(self, op: str, **kw):
        """``client.<op>(QueueUrl=..., **kw)``; a missing queue is ``QueueLostError``."""
        try:
            return _ride_out(getattr(self.client, op), QueueUrl=self.queue_url, **kw)
        except ClientError as e:
            if self._lost(e):
                raise self._lost_error() from None
            raise

    def send(self, bodies: list[str], priority: int = 0) -> None:
        for i in range(0, len(bodies), 10):
            entries = [{"Id": str(k), "MessageBody": b} for k, b in enumerate(bodies[i:i + 10])]
            resp = self._call("send_message_batch", Entries=entries)
            if resp.get("Failed"):
                raise BackendError(f"SQS refused {len(resp['Failed'])} messages: {resp['Failed'][0]}")

    def receive(self, n: int = 1, lease: float = 30.0, wait: float = 0.0) -> list[Message]:
        """Up to ``n`` messages, with a long poll of up to ``wait`` seconds (at most ``LONG_POLL_S``); one
        shortened to fit the read timeout (``long_poll_s``) that finds nothing sleeps the rest here."""
        began, longest = time.monotonic(), min(LONG_POLL_S, wait)
        poll = min(self.long_poll, max(0, math.ceil(wait)))
        resp = self._call("receive_message", MaxNumberOfMessages=max(1, min(n, 10)),
                          VisibilityTimeout=max(1, math.ceil(lease)), WaitTimeSeconds=poll)
        out = [Message(m["Body"], m["ReceiptHandle"]) for m in resp.get("Messages", [])]
        if not out and poll < longest:
            time.sleep(max(0.0, longest - (time.monotonic() - began)))
        return out

    def renew(self, receipt: str, lease: float) -> bool:
        try:
            _ride_out(self.client.change_message_visibility, QueueUrl=self.queue_url, ReceiptHandle=receipt,
                      VisibilityTimeout=max(1, math.ceil(lease)))
            return True
        except ClientError:
            return False

    def ack(self, receipt: str) -> bool:
        try:
            _ride_out(self.client.delete_message, QueueUrl=self.queue_url, ReceiptHandle=receipt)
            return True
        except ClientError:
            return False

    def depth(self) -> int:
        a = self._call("get_queue_attributes", AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]).get("Attributes")
        if a is None:  # seen from moto_server restarted without its state: an answer that names no queue
            raise self._lost_error()
        return int(a["ApproximateNumberOfMessages"]) + int(a["ApproximateNumberOfMessagesNotVisible"])

    def purge(self) -> None:
        self._call("purge_queue")

    def delete(self) -> None:
        try:
            _ride_out(self.client.delete_queue, QueueUrl=self.queue_url)
        except ClientError:
            pass

    def counts(self) -> tuple[int, int]:
        a = self._call("get_queue_attributes", AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]).get("Attributes")
        if a is None:  # seen from moto_server restarted without its state: an answer that names no queue
            raise self._lost_error()
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

