"""Storage backends behind three contracts (see ``base``): tile stores, task queues, state stores."""

from .base import (
    BackendError,
    Completion,
    CorruptTileError,
    Finish,
    Finished,
    Ledger,
    Message,
    OutageError,
    Progress,
    QueueLostError,
    StateStore,
    TaskQueue,
    TileLostError,
    TileNotFoundError,
    TileStore,
    decode_tile,
    encode_tile,
    is_permanent,
    outage_errors,
    outage_s,
    plan_claims,
    transient_errors,
    with_retries,
)
from .local import LocalFileStore
from .sqlite import SQLiteStateStore, SQLiteTaskQueue
from .urls import open_queue, open_state, open_store

__all__ = [
    "BackendError", "Completion", "CorruptTileError", "Finish", "Finished", "Ledger", "LocalFileStore", "Message",
    "OutageError", "Progress", "QueueLostError", "SQLiteStateStore",
    "SQLiteTaskQueue", "StateStore", "TaskQueue", "TileLostError", "TileNotFoundError", "TileStore", "decode_tile",
    "encode_tile", "is_permanent", "open_queue", "open_state", "open_store", "outage_errors", "outage_s",
    "plan_claims", "transient_errors", "with_retries",
]
