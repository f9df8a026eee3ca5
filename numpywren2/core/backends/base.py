"""The three storage contracts every backend implements: ``TileStore``, ``TaskQueue``, ``StateStore``;
and the ``Ledger``, the completion step over a state store and a queue.

Each method states what is atomic, what it returns when there is nothing, and
what may be called concurrently.  Backends are thin subclasses that can be read
side by side; ``tests/test_backends.py`` is the conformance suite that defines
"a backend works", run against every implementation.

All three are safe to use from many processes at once (that is their point):
executors share nothing else.  The exception is the in-memory backend (``memory``,
``memory://NAME``): thread-safe, but shared by the threads of one process only; it passes every
contract test except those that need several processes.
"""

from __future__ import annotations

import abc
import errno
import math
import struct
import sys
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import xxhash


class BackendError(RuntimeError):
    """A storage, queue or state operation failed for good (after retries)."""


class CorruptTileError(BackendError):
    """A stored tile's bytes are not what was written: checksum mismatch, truncation or a bad header.

    ``key`` is the tile's key in its store.
    """

    def __init__(self, message: str, key: str | None = None):
        super().__init__(message)
        self.key = key


class TileLostError(BackendError):
    """A tile that a task reads is missing and no task will write it again (an input tile that was
    deleted or never uploaded, or an intermediate tile deleted behind the job's back)."""


# OS errors that a retry cannot cure: a full disk or quota, a read-only or unwritable store, a path
# that is not a file.  ``with_retries`` raises them at once (the executor fails the job with the cause).
PERMANENT_ERRNOS = frozenset(getattr(errno, name) for name in (
    "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "EISDIR", "ENOTDIR", "ENAMETOOLONG", "EFBIG", "ELOOP",
    "EXDEV", "ENOTEMPTY", "EINVAL") if hasattr(errno, name))


def is_permanent(e: BaseException) -> bool:
    """Whether ``e`` is an OS error that retrying cannot cure (see ``PERMANENT_ERRNOS``).

    >>> is_permanent(OSError(errno.ENOSPC, "No space left on device")), is_permanent(ConnectionResetError())
    (True, False)
    """
    return isinstance(e, OSError) and e.errno in PERMANENT_ERRNOS


_TRANSIENT: dict[tuple[bool, bool], tuple[type[BaseException], ...]] = {}


def transient_errors() -> tuple[type[BaseException], ...]:
    """Errors worth retrying: I/O hiccups, a database busy past its own timeout, a dropped connection.

    The client libraries' errors are included once they are imported (an error of a library
    cannot happen before), so that an executor on local files does not pay for importing
    redis and botocore.  The tuple is built once per combination of loaded libraries
    (``with_retries`` asks on every call, several times per task).
    """
    redis = sys.modules.get("redis")
    boto = sys.modules.get("botocore.exceptions")
    key = (redis is not None, boto is not None)
    errors = _TRANSIENT.get(key)
    if errors is None:
        import sqlite3

        found: list[type[BaseException]] = [OSError, TimeoutError, sqlite3.OperationalError]
        if redis is not None:
            found += [redis.ConnectionError, redis.TimeoutError]
        if boto is not None:
            found += _boto_unreachable(boto)
        errors = _TRANSIENT[key] = tuple(found)
    return errors


DEFAULT_OUTAGE_S = 60.0
OUTAGE_ENV = "NPW_OUTAGE_S"


class QueueLostError(BackendError):
    """A job's queue no longer exists on a server that answers (deleted, or the server restarted without its
    state, like moto_server, which keeps its queues in memory): the tasks in it are gone."""


class OutageError(BackendError):
    """A server (Redis, S3, SQS) stayed unreachable for longer than the outage budget (``outage_s``)."""


def outage_errors() -> tuple[type[BaseException], ...]:
    """The errors that mean a server cannot be reached at all (refused or dropped connections, timeouts of
    the Redis and AWS clients): an outage, ridden out for up to ``outage_s()`` seconds by ``with_retries``.
    Only the client libraries already imported count, as in ``transient_errors``."""
    redis = sys.modules.get("redis")
    boto = sys.modules.get("botocore.exceptions")
    found: list[type[BaseException]] = []
    if redis is not None:
        found += [redis.ConnectionError, redis.TimeoutError]
    if boto is not None:
        found += _boto_unreachable(boto)
    return tuple(found)


def _boto_unreachable(boto) -> list[type[BaseException]]:
    """botocore's errors for a server that cannot be reached: refused or timed-out connections
    (``ConnectionError``) and, outside that class, a connection dropped before the answer
    (``ConnectionClosedError``: a server stopped or a link cut mid-request) and a read timeout."""
    return [boto.ConnectionError, boto.ConnectionClosedError, boto.ReadTimeoutError]


def outage_s() -> float:
    """Seconds an outage of a server is ridden out: ``NPW_OUTAGE_S`` in the environment (executors inherit
    it from the process that launches them), default 60."""
    import os

    return float(os.environ.get(OUTAGE_ENV, DEFAULT_OUTAGE_S))


MIN_TIMEOUT = 1.0  # the shortest timeout ``outage_timeout`` derives


def outage_timeout(url: str, param: str, longest: float) -> float:
    """Seconds a client of ``url`` waits for an answer before it gives the attempt up: the URL's ``?<param>=``
    if it gives one, else a quarter of ``outage_s()`` between ``MIN_TIMEOUT`` and ``longest`` (15 s for the
    default outage_s of 60 s).  The rule of Redis's socket timeout and of S3's and SQS's read timeouts.

    A timeout is an outage error (``outage_errors``): ``with_retries`` tries the call again until ``outage_s``
    has passed since its first attempt began, so a call on a link that drops packets gives up at most
    ``outage_s`` plus one timeout and one backoff after it began.  A quarter leaves a stall shorter than
    outage_s several tries to be ridden out.

    >>> outage_timeout("redis://h/0?socket_timeout=2.5", "socket_timeout", 30.0)
    2.5
    >>> outage_timeout("s3://b/p", "read_timeout", 60.0) == min(60.0, max(MIN_TIMEOUT, outage_s() / 4))
    True
    """
    from urllib.parse import parse_qs, urlparse

    given = parse_qs(urlparse(url).query).get(param)
    if given:
        return float(given[0])
    return min(longest, max(MIN_TIMEOUT, outage_s() / 4))


def with_retries(fn, *args, attempts: int = 6, base_delay: float = 0.05, max_delay: float = 2.0,
                 retry_on: tuple[type[BaseException], ...] | None = None):
    """Call ``fn(*args)``, retrying transient errors with bounded exponential backoff and jitter (a delay of
    ``base_delay × 2^k``, at most ``max_delay``, times a random factor in [0.5, 1): AWS's advice for S3's
    503 SlowDown).

    ``TileNotFoundError`` is never retried: a missing tile is an answer, not a glitch; nor is a
    permanent OS error (``is_permanent``: a full disk, a read-only store...), raised as it is.
    After ``attempts`` failures the last error is raised as ``BackendError``; but while the error says
    the server cannot be reached (``outage_errors``), the retries go on, however many, until ``outage_s()``
    seconds have passed since the first failed attempt began, then raise ``OutageError``.  The time counts from the
    attempt's start, not its failure: an attempt that waited for its client's read timeout on a link that
    drops packets was spent in the outage, so such a call gives up at most one attempt (one timeout) and
    one backoff after ``outage_s``.
    """
    import random
    import time

    if retry_on is None:
        retry_on = transient_errors()
    first, attempt = None, 0
    while True:
        began = time.monotonic()
        try:
            return fn(*args)
        except TileNotFoundError:
            raise
        except retry_on as e:
            if is_permanent(e):
                raise
            now = time.monotonic()
            first = began if first is None else first
            attempt += 1
            outage = isinstance(e, outage_errors())
            budget = outage_s() if outage else 0.0
            # an outage is ridden out for its time budget alone: a floor of attempts would add that many
            # read timeouts on a link that drops packets (6 of 15 s: 90 s past an outage_s of 60)
            if (outage or attempt >= attempts) and now - first >= budget:
                name = getattr(fn, "__qualname__", fn)
                if outage:
                    raise OutageError(f"{name}: the server was unreachable for {now - first:.1f} s, longer than "
                                      f"outage_s ({budget:g} s): {e}") from e
                raise BackendError(f"{name} failed after {attempt} attempts: {e}") from e
            time.sleep(min(max_delay, base_delay * 2 ** min(attempt - 1, 32)) * (0.5 + random.random() / 2))


class TileNotFoundError(KeyError):
    """No tile under that key."""

    def __str__(self) -> str:
        return f"no tile stored under {self.args[0]!r}"


# --------------------------------------------------------------------------- tiles

_MAGIC = b"NPW2"
_VERSION = 2
# magic, version, dtype string (padded), ndim, checksum (xxh3-64); then the shape (ndim int64) and zero
# padding up to a multiple of 64 bytes, then the raw C-order data (aligned for the kernels, and for memory maps).
_HEADER = struct.Struct("<4sB15sBQ")
_SUM_AT = 21  # offset of the checksum field in the header
_SUM = struct.Struct("<Q")
_ALIGN = 64
_MAX_NDIM = 32


def _data_offset(ndim: int) -> int:
    return -(-(_HEADER.size + 8 * ndim) // _ALIGN) * _ALIGN


def _checksum(head, data) -> int:
    """xxh3-64 of a tile's bytes except the checksum field: of the data, seeded with the hash of the rest
    of the header (shape and padding included).

    Chosen by measurement (``bench/checksum.py``, bench/RESULTS.md): about 0.3 ms for a 1024x1024
    float64 tile here, so 1-2% of a one-thread GEMM task that reads two tiles and writes one, where
    zlib's CRC-32 would cost 11-18%.  A 64-bit hash with full avalanche misses a random corruption
    with probability 2^-64.
    """
    seed = xxhash.xxh3_64_intdigest(bytes(head[:_SUM_AT]) + bytes(head[_SUM_AT + 8:]))
    return xxhash.xxh3_64_intdigest(data, seed=seed)


# (dtype string as stored, shape) -> (header with a zero checksum, checksum seed, dtype, element count): what
# every tile of that layout shares, computed once (a 1x1 tile's encode and decode cost three times its I/O
# without it); bounded: cleared past _LAYOUTS_MAX layouts
_LAYOUTS: dict = {}
_LAYOUTS_MAX = 4096


def _layout(dt: bytes, shape: tuple[int, ...]) -> tuple[bytes, int, np.dtype, int]:
    """The shared part of tiles of dtype string ``dt`` (padded to 15 bytes, as stored) and ``shape``: raises
    ``TypeError``/``ValueError`` for a dtype or shape no tile can have."""
    got = _LAYOUTS.get((dt, shape))
    if got is None:
        dtype = np.dtype(dt.rstrip(b"\0").decode())
        if dtype.hasobject:
            raise TypeError(f"cannot store tiles of dtype {dtype}")
        count = math.prod(shape)
        if count < 0 or min(shape, default=0) < 0:
            raise ValueError(f"a tile cannot have the shape {shape}")
        head = bytearray(_data_offset(len(shape)))
        _HEADER.pack_into(head, 0, _MAGIC, _VERSION, dt, len(shape), 0)
        struct.pack_into(f"<{len(shape)}q", head, _HEADER.size, *shape)
        seed = xxhash.xxh3_64_intdigest(bytes(head[:_SUM_AT]) + bytes(head[_SUM_AT + 8:]))
        if len(_LAYOUTS) >= _LAYOUTS_MAX:
            _LAYOUTS.clear()
        got = _LAYOUTS[(dt, shape)] = (bytes(head), seed, dtype, count)
    return got


def tile_header(shape: tuple[int, ...], dtype: np.dtype, data) -> bytes:
    """The header of a tile of ``shape`` and ``dtype`` whose raw C-order bytes are ``data``, with their checksum:
    ``tile_header(...) + data`` is the tile as ``encode_tile`` writes it (a store that lays the data out in
    place, e.g. a matrix's slot in ``LocalFileStore``'s pack files, writes the two parts separately)."""
    dtype = np.dtype(dtype)
    dt = dtype.str.encode()
    if len(dt) > 15 or dtype.hasobject:
        raise TypeError(f"cannot store tiles of dtype {dtype}")
    if len(shape) > _MAX_NDIM:
        raise ValueError(f"cannot store tiles of {len(shape)} dimensions")
    head, seed, _, _ = _layout(dt.ljust(15, b"\0"), tuple(int(n) for n in shape))
    return head[:_SUM_AT] + _SUM.pack(xxhash.xxh3_64_intdigest(data, seed=seed)) + head[_SUM_AT + 8:]


def tile_size(shape: tuple[int, ...], dtype: np.dtype) -> tuple[int, int]:
    """(offset of the data, total bytes) of an encoded tile of ``shape`` and ``dtype``.

    >>> tile_size((2, 3), np.float64)
    (64, 112)
    """
    off = _data_offset(len(shape))
    return off, off + int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


TILE_MAGIC = _MAGIC  # the first bytes of every encoded tile


def encode_tile(a: np.ndarray) -> list:
    """A tile as buffers to write back to back: header (with a checksum of the whole tile), raw C-order
    data (no copy if contiguous).

    >>> a = np.arange(6, dtype=np.float32).reshape(2, 3)
    >>> b = decode_tile(b"".join(bytes(x) for x in encode_tile(a)))
    >>> b.dtype, b.shape, bool((a == b).all())
    (dtype('float32'), (2, 3), True)
    """
    a = np.ascontiguousarray(a)
    if a.dtype.hasobject:
        raise TypeError(f"cannot store tiles of dtype {a.dtype}")
    data = memoryview(a).cast("B") if a.size else b""
    return [tile_header(a.shape, a.dtype, data), data]


def decode_tile(buf, key: str | None = None) -> np.ndarray:
    """Inverse of ``encode_tile``, verifying the checksum; the result shares memory with ``buf``
    (writeable if ``buf`` is).

    Raises ``CorruptTileError`` (naming ``key``, if given) when the bytes are not a tile as
    written: a bad header, a truncated or over-long buffer, or a checksum mismatch.

    >>> raw = bytearray(b"".join(bytes(x) for x in encode_tile(np.ones((2, 2)))))
    >>> raw[-1] ^= 1
    >>> decode_tile(raw, "A/0/0")
    Traceback (most recent call last):
    ...
    numpywren2.core.backends.base.CorruptTileError: tile 'A/0/0' is corrupt: checksum mismatch ...
    """
    where = f"tile {key!r}" if key is not None else "tile"
    mv = memoryview(buf)
    if mv.format != "B" or mv.ndim != 1:
        mv = mv.cast("B")
    with mv:
        size = mv.nbytes
        if size < _HEADER.size:
            raise CorruptTileError(f"{where} is corrupt: {size} bytes, shorter than a tile header", key)
        magic, version, dt, ndim, stored = _HEADER.unpack_from(mv, 0)
        if magic != _MAGIC:
            raise CorruptTileError(f"{where} is corrupt: not a numpywren2 tile (bad header)", key)
        if version != _VERSION:
            raise CorruptTileError(f"{where} has tile format version {version}, not {_VERSION} (a tile written "
                                   "by another numpywren2 version, or a corrupt header)", key)
        off = _data_offset(ndim) if ndim <= _MAX_NDIM else size + 1
        if off > size:
            raise CorruptTileError(f"{where} is corrupt: truncated header ({size} bytes)", key)
        shape = struct.unpack_from(f"<{ndim}q", mv, _HEADER.size)
        try:
            _, seed, dtype, count = _layout(dt, shape)
            expected = off + count * dtype.itemsize
        except (TypeError, ValueError, UnicodeDecodeError, OverflowError):
            seed, dtype, count, expected = None, None, -1, -1
        # the seed is the hash of the header's other bytes: the shared layout's when they are its bytes
        computed = (xxhash.xxh3_64_intdigest(mv[off:], seed=seed)
                    if seed is not None and mv[_SUM_AT + 8:off] == _LAYOUTS[(dt, shape)][0][_SUM_AT + 8:] else
                    _checksum(mv[:off], mv[off:]))
        if computed != stored:
            if expected >= 0 and expected != size:
                raise CorruptTileError(f"{where} is corrupt: truncated or over-long ({size} bytes; its header "
                                       f"says {expected})", key)
            raise CorruptTileError(f"{where} is corrupt: checksum mismatch (stored {stored:#018x}, "
                                   f"computed {computed:#018x})", key)
        if dtype is None or expected != size:  # a consistent checksum over an inconsistent header
            raise CorruptTileError(f"{where} is corrupt: its header does not describe its {size} bytes", key)
    return np.frombuffer(buf, dtype=dtype, count=count, offset=off).reshape(shape)


class TileStore(abc.ABC):
    """Tiles (numpy arrays) under string keys such as ``"job-1/L/3/4"``.

    - ``put`` is atomic: a concurrent ``get`` sees the old tile or the new one, never a part.
      Writing the same key twice with the same content is harmless (re-executed tasks do it).
    - ``get`` of a missing key raises ``TileNotFoundError``.
    - ``delete`` removes one key, ``delete_prefix`` every key starting with the prefix; missing keys are fine.
    - ``list`` returns the keys under a prefix, sorted; ``exists`` is a cheap check.
    All methods may be called concurrently from many processes.
    """

    url: str

    @abc.abstractmethod
    def get(self, key: str) -> np.ndarray: ...

    @abc.abstractmethod
    def put(self, key: str, tile: np.ndarray) -> int:
        """Store a tile; returns the number of bytes written."""

    @abc.abstractmethod
    def exists(self, key: str) -> bool: ...

    @abc.abstractmethod
    def delete(self, key: str) -> bool:
        """Delete one tile; returns False if it was not there."""

    @abc.abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every key under ``prefix``; returns how many were deleted."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> list[str]: ...

    def allocate_matrix(self, prefix: str, shape: tuple[int, int], block_size: tuple[int, int],  # noqa: B027
                        dtype: np.dtype) -> None:
        """A matrix's tiles ``<prefix>/<i>/<j>`` will be written (optional hook): a store may lay them out
        together, e.g. in one file that the tiles are slots of (``LocalFileStore``).  Keys, contracts and
        the tile codec are unchanged; the default does nothing."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""


# --------------------------------------------------------------------------- queue


@dataclass(frozen=True)
class Message:
    """A leased queue entry: its body and the receipt that renews or acknowledges this lease."""

    body: str
    receipt: str


class TaskQueue(abc.ABC):
    """A reliable queue with leases (visibility timeouts), one per job.

    - ``send`` enqueues bodies (lower ``priority`` is served first; FIFO within a priority,
      best effort where the backend cannot order).
    - ``receive(n, lease)`` returns up to n visible messages and hides each for ``lease``
      seconds; two concurrent receivers never get the same message while its lease is live.
      Returns ``[]`` when nothing is visible (after waiting up to ``wait`` seconds).
    - An unacknowledged message becomes visible again when its lease expires.
    - ``renew(receipt, lease)`` extends a live lease; returns False if the lease was lost
      (expired and possibly given to another receiver).
    - ``ack(receipt)`` deletes the message of a live lease; returns False if it was lost.
    - ``depth()`` is the approximate number of messages not yet acknowledged (visible or leased).
    """

    url: str

    @abc.abstractmethod
    def send(self, bodies: list[str], priority: int = 0) -> None: ...

    @abc.abstractmethod
    def receive(self, n: int = 1, lease: float = 30.0, wait: float = 0.0) -> list[Message]: ...

    @abc.abstractmethod
    def renew(self, receipt: str, lease: float) -> bool: ...

    @abc.abstractmethod
    def ack(self, receipt: str) -> bool: ...

    @abc.abstractmethod
    def depth(self) -> int: ...

    @abc.abstractmethod
    def purge(self) -> None:
        """Delete every message."""

    def delete(self) -> None:
        """Remove the queue itself when its job ends (default: purge it)."""
        self.purge()

    def send_many(self, items: list[tuple[str, int]]) -> None:
        """Enqueue ``(body, priority)`` pairs (default: one ``send`` per distinct priority)."""
        by_priority: dict[int, list[str]] = {}
        for body, priority in items:
            by_priority.setdefault(priority, []).append(body)
        for priority, bodies in sorted(by_priority.items()):
            self.send(bodies, priority)

    # Whether a live lease is exclusive and ack/renew with an expired receipt is refused
    # (SQS, which delivers at least once, cannot promise either).
    strict_leases = True
    # Whether receive honours priority, then FIFO (SQS standard queues do neither).
    ordered = True


    # ---------------------------------------------------------------- observed by the provisioner
    @abc.abstractmethod
    def counts(self) -> tuple[int, int]:
        """``(visible, leased)``: messages waiting to be received, and messages under a lease.

        Their sum is ``depth()``.  A lease that has expired but not yet been handed out again may
        be counted as either.  Approximate where the backend is (SQS's attributes lag by seconds).
        """

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""


# --------------------------------------------------------------------------- state


class Completion(NamedTuple):
    """What a completion step answers: the children it found ready, the job's status read in the same
    step (None if the job record is gone) and its ``completed`` counter read there too (None where the
    backend does not read it in that step)."""

    ready: list[str]
    status: str | None
    completed: int | None = None


class Progress(NamedTuple):
    """A job's status and ``completed`` counter read together (``StateStore.progress``), and whether one
    given task is done (None if none was asked about)."""

    status: str
    completed: int
    task_done: bool | None = None


class StateStore(abc.ABC):
    """Job records and task completion.

    Job records hold ``status`` ("running", "done", "failed", "cancelled"), the JSON
    description of the job, integer/float ``counters`` and an ``error`` text.

    ``complete(job, task, children)`` is the heart of the protocol, one atomic step:
    if ``task`` is not yet done it is marked done, the job's ``completed`` counter is
    incremented, and each child's count of done parents is incremented (so each edge is
    counted exactly once, however often the task is re-run or duplicated); it returns the
    children whose count has reached their in-degree — on a repeated call too, so a task
    re-run after a crash between ``complete`` and enqueueing re-enqueues its ready children.
    ``children`` is a list of ``(child key, child in-degree)``.
    """

    url: str

    @abc.abstractmethod
    def create_job(self, job: str, description: str) -> None:
        """Create a job record (status "running"); an existing job is an error."""

    @abc.abstractmethod
    def job(self, job: str) -> dict:
        """``{"status", "description", "counters", "error"}``; KeyError if unknown."""

    def status(self, job: str) -> str:
        """The job's status alone (cheap: executors ask before every task); KeyError if unknown."""
        return self.job(job)["status"]

    def progress(self, job: str, task: str | None = None) -> Progress:
        """The job's status, its ``completed`` counter and, if ``task`` is given, whether that task is done,
        in one round trip where the backend can (executors read it every ``status_interval`` to notice a
        store gone back in time: ``core.outcome.Watermark``); KeyError if unknown."""
        rec = self.job(job)
        done = self.is_done(job, task) if task is not None else None
        return Progress(rec["status"], int(rec["counters"].get("completed", 0)), done)

    @abc.abstractmethod
    def set_status(self, job: str, status: str, error: str | None = None) -> bool:
        """Move a running job to another status; returns False if it had already left "running"
        (the first failure or cancellation wins)."""

    @abc.abstractmethod
    def add_counters(self, job: str, deltas: dict[str, float]) -> None:
        """Atomically add to named counters (missing counters start at 0)."""

    @abc.abstractmethod
    def complete(self, job: str, task: str, children: list[tuple[str, int]]) -> list[str]: ...

    def complete_with_status(self, job: str, task: str, children: list[tuple[str, int]]) -> Completion:
        """``complete``, then the job's status (None for an unknown job), read after the completion.

        Backends answer both in one round trip where they can; the order (complete, then read the
        status) is what the executor's clean-up after a job's end relies on (``executor.worker``).
        """
        ready = self.complete(job, task, children)
        try:
            status: str | None = self.status(job)
        except KeyError:
            status = None
        return Completion(ready, status)

    @abc.abstractmethod
    def is_done(self, job: str, task: str) -> bool: ...

    def done_many(self, job: str, tasks: list[str]) -> list[bool]:
        """``is_done`` of several tasks in one round trip where the backend can."""
        return [self.is_done(job, t) for t in tasks]

    def ledger(self, queue: TaskQueue) -> Ledger:
        """The completion step of the protocol for this store paired with ``queue`` (``Ledger``).

        The default is the unfused sequence of separate calls; a backend returns a fused ledger
        (one transaction, one script) when ``queue`` lives in the same database as this store.
        """
        return Ledger(self, queue)

    @abc.abstractmethod
    def delete_job(self, job: str) -> None:
        """Forget a job and all its task state."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (optional)."""

    def replaced(self) -> str | None:
        """For a store kept in a file (SQLite): a text saying that the path it opened names another file now
        (renamed over it, e.g. a backup moved into place) or none, else None.  Processes that opened the old
        file go on using it, those that open the path later use the new one, so the job's observers (the
        client, the provisioner, its executors) ask at each status read and fail the job when it is not
        None (``core.outcome.replaced_error``).  One ``stat`` call: cheap, but not per task.  Always None for
        a store on a server."""
        return None

    # ------------------------------------------------------- executors and records (provisioning)
    def job_ids(self) -> list[str]:
        """The ids of every job this store holds a record of, in no particular order."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its jobs")

    def write_lock(self) -> tuple[int, int] | None:
        """Who holds this store's write lock, for a store that one process can lock for everyone (SQLite):
        ``(pid, version)``, the process id on this host and a number that changes with every commit by
        another connection; None while nobody holds it, and always None for a store without such a lock
        (a server applies each call on its own).  A provisioner that sees the same holder and version for
        ``lock_timeout`` seconds ends that executor (one stopped or hung inside a transaction)."""
        return None

    @abc.abstractmethod
    def heartbeat(self, job: str, executor: str, ttl: float, exited: bool = False) -> None:
        """Record that ``executor`` (an id unique within the job) is alive for ``ttl`` more seconds.

        The first call records its start time.  ``exited=True`` records a clean exit: the executor
        is no longer live, and its last-seen time is now.  Times come from the store's clock
        (Redis: the server's), so the hosts that run executors need not agree on the time.
        """

    @abc.abstractmethod
    def executors(self, job: str) -> list[dict]:
        """Every executor that has heart-beat for ``job``, in no particular order.

        Each is ``{"executor", "started", "last_seen", "live", "exited"}``: times in seconds (the
        store's clock, since the epoch); ``live`` is True while the last heartbeat's ``ttl`` has not
        run out and the executor has not exited.  ``[]`` for an unknown job.
        """

    @abc.abstractmethod
    def append_records(self, job: str, kind: str, records: list[str]) -> None:
        """Append text records (JSON, by convention) to the job's log named ``kind``; safe concurrently."""

    @abc.abstractmethod
    def records(self, job: str, kind: str) -> list[str]:
        """The records of one kind, each writer's in the order it appended them; ``[]`` if none."""


# --------------------------------------------------------------------------- the ledger


class Finish(NamedTuple):
    """One task of a completion step (``Ledger.finish_many``): its key, its children ``(key, in-degree,
    priority)``, the receipt of its message, and ``claim``: ``(child key, child task key)`` pairs of the
    children its executor would run itself if they become ready (their inputs are in its cache)."""

    task: str
    children: list[tuple[str, int, int]]
    receipt: str
    claim: tuple[tuple[str, str], ...] = ()


class Finished(NamedTuple):
    """What ``Ledger.finish_many`` answers: one ``Completion`` per ``Finish``, in order, and the messages of
    the ready children leased to the caller in the same step (``claimed``: each under a lease of its own,
    renewed and acknowledged like a received message)."""

    completions: list[Completion]
    claimed: list[Message]


class Ledger:
    """The pairing of a job's state store and its queue: the one completion step of the protocol.

    ``finish_many(job, items, counters, claim, lease)`` does, in this order:

    1. add ``counters`` to the job's counters;
    2. ``complete`` each task of ``items`` (``Finish``: marked done once, each edge counted once) and
       read the job's status;
    3. only while the job is running: lease to the caller at most ``claim`` of the ready children it
       asked for (``Finish.claim``; ``plan_claims`` says which: those not done whose priority is no
       worse than any other ready child's or visible message's), and enqueue every other ready child,
       each with its priority (an ended job's queue stays deleted);
    4. acknowledge each receipt; a lost lease (expired, perhaps handed to another executor) is not an
       error: the task is complete either way, and the copy that now holds it finds it done.

    It returns one ``Completion`` per item (the ready children, and the job's status as read after the
    completions; None if the job record is gone) and the claimed messages (``Finished``).  A claimed
    child is a queue message like any other, only leased from the start: an executor that dies with
    it lets its lease run out and another runs it, so exactly one executor completes it first.
    ``finish(job, task, children, receipt, counters)`` is the step for one task, claiming nothing.
    Repeating a call (a duplicate message, a re-delivery after a crash) counts nothing twice and
    returns, and enqueues, the ready children again.

    This class is the unfused sequence: separate calls, each retried on transient errors
    (``with_retries``), for any state store and any queue (an SQS queue with Redis or SQLite
    state); it claims nothing (a queue of its own cannot lease a chosen message).
    ``StateStore.ledger(queue)`` returns a fused subclass where the two share a database
    (``SQLiteLedger``: one transaction; ``RedisLedger``: one Lua script; ``MemoryLedger``: one lock
    held): the same four steps for all the items, atomic, in one round trip, retried as a whole.

    ``counters`` is drained: when ``finish_many`` returns it is empty, and when it raises it holds
    exactly the increments that were not added (the caller keeps them for a later write).
    """

    fused = False

    def __init__(self, state: StateStore, queue: TaskQueue):
        self.state, self.queue = state, queue

    def finish(self, job: str, task: str, children: list[tuple[str, int, int]], receipt: str,
               counters: dict[str, float] | None = None) -> Completion:
        return self.finish_many(job, [Finish(task, children, receipt)], counters).completions[0]

    def finish_many(self, job: str, items: list[Finish], counters: dict[str, float] | None = None,
                    claim: int = 0, lease: float = 30.0) -> Finished:
        if counters:
            with_retries(self.state.add_counters, job, dict(counters))
            counters.clear()
        out = []
        for it in items:
            done = with_retries(self.state.complete_with_status, job, it.task, [(k, d) for k, d, _ in it.children])
            if done.ready and done.status == "running":
                with_retries(self.queue.send_many, ready_items(it.children, done.ready))
            with_retries(self.queue.ack, it.receipt)
            out.append(done)
        return Finished(out, [])


def plan_claims(ready: list[tuple[str, int]], wanted: dict[str, str], done: set[str], queued_best: int | None,
                n: int) -> list[str]:
    """Which of the ``ready`` children ``(key, priority)`` of a completion step its executor leases to
    itself: at most ``n`` of those it asked for (``wanted``: child key -> task key) that are not ``done``
    (task keys), best priority first, each no worse than every other ready child and than the best
    visible message of the queue (``queued_best``, None if it is empty).  So a claim never runs a task
    before one that a receive would have handed out first, and a factorization's critical path keeps
    its place.

    >>> ready = [("b", 5), ("c", 1), ("d", 3)]
    >>> plan_claims(ready, {"b": "B", "c": "C"}, set(), None, 1)  # c: the best of all
    ['c']
    >>> plan_claims(ready, {"b": "B", "c": "C"}, set(), None, 2)  # b: d (3) is not claimed and is better
    ['c']
    >>> plan_claims(ready, {"b": "B", "c": "C"}, {"C"}, 4, 2), plan_claims(ready, {"c": "C"}, set(), 0, 1)
    ([], [])
    """
    chosen: list[str] = []
    if n <= 0:
        return chosen
    cands = sorted((p, i, k) for i, (k, p) in enumerate(ready) if k in wanted and wanted[k] not in done)
    picked = {k for _, _, k in cands}
    others = [p for k, p in ready if k not in picked]
    if queued_best is not None:
        others.append(queued_best)
    best = min(others) if others else None
    for p, _, k in cands:
        if len(chosen) >= n or (best is not None and p > best):
            break
        chosen.append(k)
    return chosen


def ready_items(children: list[tuple[str, int, int]], ready: list[str]) -> list[tuple[str, int]]:
    """The ``(body, priority)`` pairs to enqueue for the ``ready`` ones of ``children``.

    >>> ready_items([("b", 1, 5), ("c", 1, 1), ("d", 2, 0)], ["b", "c"])
    [('b', 5), ('c', 1)]
    """
    priority = {k: p for k, _, p in children}
    return [(k, priority[k]) for k in ready]
