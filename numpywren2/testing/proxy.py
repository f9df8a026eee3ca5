"""A TCP forwarder on loopback that a test can cut: an outage of a server that keeps its state.

``TcpProxy(port)`` listens on a free port of 127.0.0.1 and forwards every connection to 127.0.0.1:``port``
(two threads per connection, one per direction).  ``cut()`` starts an outage: the connections open now are
reset (``SO_LINGER`` 0, so a request whose answer was on its way fails at once instead of waiting for the
client's read timeout), and every new connection is accepted and reset at once; the proxy keeps its port,
so no other process can take it meanwhile.  ``restore()`` ends the outage.  ``refused`` counts the
connections reset while cut, and ``wait_refused(n)`` returns once ``n`` of them were (an event a test waits
for: clients have met the outage and are retrying), so the length of an outage is counted in refused
connections rather than seconds.

Usage::

    proxy = TcpProxy(moto.port)          # clients use proxy.endpoint instead of moto.endpoint
    proxy.cut(); proxy.wait_refused(5); proxy.restore()
    proxy.close()
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading


def _reset(sock: socket.socket) -> None:
    """Drop ``sock``'s connection at once: the peer's next read or write fails.  ``shutdown`` first: a
    ``close`` alone does not wake a pump thread blocked in ``recv`` on it, and the connection would stay
    open (its client waiting for its read timeout); then a reset on close (``SO_LINGER`` 0)."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class TcpProxy:
    """Forwards 127.0.0.1:``self.port`` to 127.0.0.1:``target_port`` until ``cut()``; see the module docstring."""

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(128)
        self.host, self.port = host, self.listener.getsockname()[1]
        self._lock = threading.Condition()
        self._cut = False
        self._closed = False
        self._open: set[socket.socket] = set()  # both ends of every forwarded connection
        self.refused = 0  # connections reset while cut (the ones open at the cut included)
        self.forwarded = 0  # connections forwarded
        self._thread = threading.Thread(target=self._accept, name=f"tcp-proxy-{self.port}", daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ------------------------------------------------------------------ the outage
    def cut(self) -> None:
        """Start the outage: reset the open connections and every new one until ``restore()``."""
        with self._lock:
            self._cut = True
            doomed, self._open = self._open, set()
            self.refused += len(doomed) // 2
            self._lock.notify_all()
        for s in doomed:
            _reset(s)

    def restore(self) -> None:
        """End the outage: new connections are forwarded again."""
        with self._lock:
            self._cut = False

    def wait_refused(self, n: int, timeout: float = 120.0) -> bool:
        """Whether ``n`` connections were refused (reset during the outage) within ``timeout`` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: self.refused >= n, timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            doomed, self._open = self._open, set()
        _reset(self.listener)
        for s in doomed:
            _reset(s)

    # ------------------------------------------------------------------ forwarding
    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            with self._lock:
                if self._closed:
                    _reset(client)
                    return
                if self._cut:
                    self.refused += 1
                    self._lock.notify_all()
                    _reset(client)
                    continue
            try:
                server = socket.create_connection(self.target, timeout=10)
                server.settimeout(None)
            except OSError:
                _reset(client)  # the server itself is down: the client sees what it would see
                continue
            with self._lock:
                if self._cut or self._closed:  # cut while connecting
                    self.refused += 1
                    self._lock.notify_all()
                    _reset(client)
                    _reset(server)
                    continue
                self._open |= {client, server}
                self.forwarded += 1
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        with self._lock:
            mine = src in self._open  # not yet closed by the other direction or reset by a cut
            self._open -= {src, dst}
        if mine:  # one side closed: close both (the other direction's pump then ends)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
