"""Storage backends behind three contracts (see ``base``): tile stores, task queues, state stores."""

from .base import (
    TRANSIENT_ERRORS,
    BackendError,
    Message,
    StateStore,
    TaskQueue,
    TileNotFoundError,
    TileStore,
    decode_tile,
    encode_tile,
    with_retries,
)
from .local import LocalFileStore
from .sqlite import SQLiteStateStore, SQLiteTaskQueue

__all__ = [
    "TRANSIENT_ERRORS", "BackendError", "LocalFileStore", "Message", "SQLiteStateStore", "SQLiteTaskQueue",
    "StateStore", "TaskQueue", "TileNotFoundError", "TileStore", "decode_tile", "encode_tile", "with_retries",
]
