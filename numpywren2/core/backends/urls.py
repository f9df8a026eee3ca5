"""Backends by URL: ``open_store``, ``open_queue``, ``open_state``.

``file://PATH`` and ``s3://BUCKET/PREFIX`` for tiles; ``sqlite://PATH``, ``redis://``/``rediss://`` and
``sqs://`` for queues; ``sqlite://PATH`` and ``redis://``/``rediss://`` for state; ``memory://NAME`` for all
three (one process only: everything opened with the same NAME shares its data).  The Redis and AWS
modules are imported only when a URL asks for them, so an executor on local files never loads their
client libraries.  Messages show a URL without its password (``signing.redact_url``).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ..signing import redact_url
from .base import StateStore, TaskQueue, TileStore
from .local import LocalFileStore, hold_root_lock
from .sqlite import SQLiteStateStore, SQLiteTaskQueue


def open_store(url: str) -> TileStore:
    u = urlparse(url)
    if u.scheme == "file":
        lock = hold_root_lock(Path(u.path).parent)
        store = LocalFileStore(u.path)
        store._root_lock = lock  # held while the store is (the executors' liveness, see local.py)
        return store
    if u.scheme == "memory":
        from .memory import MemoryTileStore

        return MemoryTileStore(u.netloc + u.path)
    if u.scheme == "s3":
        from .aws import S3TileStore

        return S3TileStore(url)
    raise ValueError(f"unsupported tile store URL {redact_url(url)!r} (supported: file://PATH, s3://BUCKET/PREFIX)")


def open_state(url: str) -> StateStore:
    u = urlparse(url)
    if u.scheme == "sqlite":
        return SQLiteStateStore(u.path)
    if u.scheme == "memory":
        from .memory import MemoryStateStore

        return MemoryStateStore(u.netloc + u.path)
    if u.scheme in ("redis", "rediss"):
        from .redis import RedisStateStore

        return RedisStateStore(url)
    raise ValueError(f"unsupported state store URL {redact_url(url)!r} (supported: sqlite://PATH, redis://HOST:PORT/DB)")


def open_queue(url: str, name: str, create: bool = True) -> TaskQueue:
    """The queue of one job: ``name`` is the job id.  ``create=False`` (executors): an SQS queue that does
    not exist is lost (``QueueLostError``), not created empty (the other queues live with the job's state)."""
    u = urlparse(url)
    if u.scheme == "sqlite":
        prefix = parse_qs(u.query).get("prefix", [""])[0]
        return SQLiteTaskQueue(u.path, prefix + name)
    if u.scheme == "memory":
        from .memory import MemoryTaskQueue

        return MemoryTaskQueue(u.netloc + u.path, name)
    if u.scheme in ("redis", "rediss"):
        from .redis import RedisTaskQueue

        return RedisTaskQueue(url, name)
    if u.scheme == "sqs":
        from .aws import SQSTaskQueue

        return SQSTaskQueue(url, name, create=create)
    raise ValueError(f"unsupported queue URL {redact_url(url)!r} (supported: sqlite://PATH, redis://HOST:PORT/DB, sqs://)")
