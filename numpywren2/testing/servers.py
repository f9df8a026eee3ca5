"""Local servers for tests and benchmarks: redis-server and moto_server on free loopback ports.

They listen on 127.0.0.1 only and are stopped by their owners (``stop()``).  Several test
suites may run at once on one machine: a server is ready only when *its own* process listens
on the port (on Linux, read from ``/proc``), so a port taken by another suite's server between
``free_port()`` and the start is never mistaken for ours; the start is then retried on another
port.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def reserved_port() -> Iterator[int]:
    """A loopback port that refuses connections for the duration: bound but never listening, so that no
    other process can start a server on it meanwhile."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def listens(pid: int, port: int) -> bool | None:
    """Whether process ``pid`` listens on 127.0.0.1:``port`` (None where /proc cannot tell)."""
    try:
        with open("/proc/net/tcp") as f:
            rows = f.read().splitlines()[1:]
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = {r.split()[9] for r in rows if r.split()[1] == f"0100007F:{port:04X}" and r.split()[3] == "0A"}
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


class LoopbackServer:
    """A server process on 127.0.0.1:``port``, started and waited for until it listens there."""

    name = "server"
    start_timeout = 30.0
    attempts = 5  # start attempts on fresh ports when the chosen one was taken meanwhile

    def __init__(self, port: int | None = None):
        for _ in range(1 if port else self.attempts):
            self.port = port or free_port()
            self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if self._ready():
                return
        raise RuntimeError(f"{self.name} exited at start (port {self.port} in use?)")

    def _ready(self) -> bool:
        """Wait until this process listens on the port (True), or exited (False)."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            mine = listens(self.proc.pid, self.port)
            if mine:
                return True
            if mine is None:  # no /proc: a connection has to do
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        return self.proc.poll() is None
                except OSError:
                    pass
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
    """A redis-server working in ``workdir`` (on a free port unless ``port`` is given): no persistence, or with
    ``persistent``, an append-only file synced on every write (a server restarted in the same ``workdir``
    comes back with every acknowledged write).

    ``password``: clients must AUTH with it (``requirepass``).  ``tls``: the paths ``cert``, ``key`` and
    ``ca`` of a server certificate; the server then speaks TLS only, on its port (``url`` is ``rediss://``),
    and does not ask clients for certificates.

    Snapshots (RDB files), to put a server's state back in time: ``snapshot(path)`` saves the dataset now
    (``SAVE``) and copies it to ``path``; a server started with ``snapshot=path`` (not ``persistent``: an
    append-only file would win over the snapshot) comes up holding exactly that dataset.
    """

    name = "redis-server"

    def __init__(self, workdir, port: int | None = None, password: str | None = None, tls: dict | None = None,
                 persistent: bool = False, snapshot: str | os.PathLike | None = None):
        self.workdir, self.persistent = str(workdir), persistent
        self.password, self.tls = password, tls
        if snapshot is not None:
            if persistent:
                raise ValueError("a server restored from a snapshot is not persistent (its append-only file would "
                                 "be loaded instead of the snapshot)")
            shutil.copyfile(snapshot, Path(self.workdir) / "dump.rdb")  # loaded at start (no AOF)
        super().__init__(port)

    def snapshot(self, path: str | os.PathLike) -> Path:
        """Save the dataset as it is now (``SAVE``, synchronous) and copy the RDB file to ``path``."""
        import redis

        tls = {"ssl": True, "ssl_cert_reqs": "none"} if self.tls else {}
        client = redis.Redis(host="127.0.0.1", port=self.port, password=self.password, **tls)
        try:
            client.save()
        finally:
            client.close()
        shutil.copyfile(Path(self.workdir) / "dump.rdb", path)
        return Path(path)

    def command(self) -> list[str]:
        exe = shutil.which("redis-server")
        if exe is None:
            raise RuntimeError("redis-server is not installed; run `make test` (as root it installs it) "
                               "or `apt-get install -y redis-server`")
        if self.tls:
            ports = ["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls["cert"]),
                     "--tls-key-file", str(self.tls["key"]), "--tls-ca-cert-file", str(self.tls["ca"]),
                     "--tls-auth-clients", "no"]
        else:
            ports = ["--port", str(self.port)]
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else ["--appendonly", "no"]
        auth = ["--requirepass", self.password] if self.password else []
        return [exe, *ports, "--bind", "127.0.0.1", "--save", "", *aof,
                "--dir", self.workdir, "--protected-mode", "yes", *auth]

    @property
    def url(self) -> str:
        """Its URL, without the password (clients add it, or take it from ``NPW_REDIS_PASSWORD``)."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://127.0.0.1:{self.port}/0"


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
