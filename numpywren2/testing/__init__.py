"""Test support, not part of the user API: loopback servers (``servers``) and serial reference
implementations of the built-in algorithms (``reference``), used by ``tests/`` and ``bench/``."""

from .servers import LoopbackServer, MotoServer, RedisServer, free_port, listens, reserved_port

__all__ = ["LoopbackServer", "MotoServer", "RedisServer", "free_port", "listens", "reserved_port"]
