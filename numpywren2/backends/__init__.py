"""Storage backends behind three contracts (see ``base``): tile stores, task queues, state stores."""

from .base import (
    BackendError,
    Message,
    StateStore,
    TaskQueue,
    TileNotFoundError,
    TileStore,
    decode_tile,
    encode_tile,
    transient_errors,
    with_retries,
)
from .local import LocalFileStore
from .sqlite import SQLiteStateStore, SQLiteTaskQueue

__all__ = [
    "BackendError", "LocalFileStore", "Message", "SQLiteStateStore", "SQLiteTaskQueue",
    "StateStore", "TaskQueue", "TileNotFoundError", "TileStore", "decode_tile", "encode_tile", "transient_errors",
    "with_retries",
]
