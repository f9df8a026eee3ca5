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


class RedisServer:
    """A redis-server on a free loopback port, no persistence, in a temporary directory."""

    def __init__(self, workdir):
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed; run `make test` (as root it installs it) "
                               "or `apt-get install -y redis-server`")
        self.port = free_port()
        self.proc = subprocess.Popen(
            [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir), "--protected-mode", "yes"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("redis-server exited at start") from None
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start within 20 s")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class MotoServer:
    """moto's S3/SQS HTTP server on a free loopback port (reached through boto3 over HTTP)."""

    def __init__(self):
        beside = Path(sys.executable).with_name("moto_server")  # the one installed with this Python's packages
        exe = str(beside) if beside.exists() else shutil.which("moto_server")
        if exe is None:
            raise RuntimeError("moto_server is not installed: pip install 'moto[server]' (part of the test extra)")
        self.port = free_port()
        self.proc = subprocess.Popen([exe, "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("moto_server exited at start (is moto[server] installed?)") from None
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("moto_server did not start within 30 s")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
