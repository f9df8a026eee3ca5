"""Local servers for tests and benchmarks: redis-server and moto_server on free loopback ports.

They listen on 127.0.0.1 only and are stopped by their owners (``stop()``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LoopbackServer:
    """A server process on 127.0.0.1:``port``, started and waited for until it accepts connections."""

    name = "server"
    start_timeout = 30.0

    def __init__(self, port: int | None = None):
        self.port = port or free_port()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited at start") from None
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.name} did not start within {self.start_timeout:.0f} s")

    def command(self) -> list[str]:
        raise NotImplementedError

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class RedisServer(LoopbackServer):
    """A redis-server with no persistence, working in ``workdir`` (on a free port unless ``port`` is given)."""

    name = "redis-server"

    def __init__(self, workdir, port: int | None = None):
        self.workdir = str(workdir)
        super().__init__(port)

    def command(self) -> list[str]:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed; run `make test` (as root it installs it) "
                               "or `apt-get install -y redis-server`")
        return [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--dir", self.workdir, "--protected-mode", "yes"]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


class MotoServer(LoopbackServer):
    """moto's S3/SQS HTTP server (reached through boto3 over HTTP)."""

    name = "moto_server"

    def command(self) -> list[str]:
        beside = Path(sys.executable).with_name("moto_server")  # the one installed with this Python's packages
        exe = str(beside) if beside.exists() else shutil.which("moto_server")
        if exe is None:
            raise RuntimeError("moto_server is not installed: pip install 'moto[server]' (part of the test extra)")
        return [exe, "-H", "127.0.0.1", "-p", str(self.port)]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"
