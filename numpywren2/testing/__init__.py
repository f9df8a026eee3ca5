"""Test support, not part of the user API: loopback servers (``servers``) and serial reference
implementations of the built-in algorithms (``reference``), used by ``tests/`` and ``bench/``."""

from .proxy import TcpProxy
from .servers import LoopbackServer, MotoServer, RedisServer, free_port, listens, reserved_port

__all__ = ["LoopbackServer", "MotoServer", "RedisServer", "TcpProxy", "free_port", "listens", "reserved_port"]
