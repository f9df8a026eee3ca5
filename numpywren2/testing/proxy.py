"""A TCP forwarder on loopback that a test can cut or stall: an outage of a server that keeps its state.

``TcpProxy(port)`` listens on a free port of 127.0.0.1 and forwards every connection to 127.0.0.1:``port``
(two threads per connection, one per direction).  ``cut()`` starts an outage: the connections open now are
reset (``SO_LINGER`` 0, so a request whose answer was on its way fails at once instead of waiting for the
client's read timeout), and every new connection is accepted and reset at once; the proxy keeps its port,
so no other process can take it meanwhile.  ``restore()`` ends the outage.  ``refused`` counts the
connections reset while cut, and ``wait_refused(n)`` returns once ``n`` of them were (an event a test waits
for: clients have met the outage and are retrying), so the length of an outage is counted in refused
connections rather than seconds.

``stall()`` starts the other kind of outage, a link that drops packets silently (no reset): connections open
now and new ones are kept (new ones are accepted and connected to the server), but no byte is forwarded in
either direction, nor a close, until ``restore()``; a client learns of it only through its own timeouts.
What the proxy reads meanwhile is held, and ``restore()`` delivers it in order, as TCP's retransmissions
would once the link is back: a request whose client has given up meanwhile still reaches the server late,
and so do the closes of the connections the clients dropped.  ``swallowed`` counts the chunks of bytes sent
towards the server while stalled (requests, each read of the client's side one), ``swallowed_bytes`` the
bytes of both directions, ``stalled_connections`` the connections that had a request swallowed, and
``abandoned`` the connections their clients closed while stalled with a request or an answer held on them (a
client that gave a call up at its read timeout, also one whose answer was on its way when the stall began;
retried, the call makes a new stalled connection; a close after an answer that arrived before the stall is not
counted).  ``wait_stalled(requests, connections,
abandoned)`` returns once each count reached its number (since the last ``stall()``), so a stall's length,
too, is counted in what it did to the clients rather than in seconds.  An abandoned connection's late request
is delivered with half a close, and its server's answer read to the server's close: ``wait_drained()`` returns
once every abandoned connection got there, so a test knows when the late requests have taken effect.

``cut_answers(n)`` cuts the server's next ``n`` answers short: each is forwarded through the end of its
headers (``\r\n\r\n``) and its connection is then closed on both sides, the client's with a clean close
(a FIN), as when a server is killed while it writes an answer; ``answers_cut`` counts them.  A client that
does not check an answer's length against its ``Content-Length`` reads an empty body.

Usage::

    proxy = TcpProxy(moto.port)          # clients use proxy.endpoint instead of moto.endpoint
    proxy.cut(); proxy.wait_refused(5); proxy.restore()
    proxy.stall(); proxy.wait_stalled(requests=3, abandoned=1); proxy.restore()
    proxy.cut_answers(1); client.call(); assert proxy.answers_cut == 1
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
    """Forwards 127.0.0.1:``self.port`` to 127.0.0.1:``target_port`` until ``cut()`` or ``stall()``; see the
    module docstring."""

    def __init__(self, target_port: int, host: str = "127.0.0.1"):
        self.target = (host, target_port)
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((host, 0))
        self.listener.listen(128)
        self.host, self.port = host, self.listener.getsockname()[1]
        self._lock = threading.Condition()
        self._cut = False
        self._stalled = False
        self._closed = False
        self._open: set[socket.socket] = set()  # both ends of every forwarded connection
        # per direction, by its source socket: the lock that orders its sends, what a stall held back, and
        # the socket it sends to
        self._directions: dict[socket.socket, tuple[threading.Lock, list[bytes], socket.socket]] = {}
        self._stalled_clients: set[socket.socket] = set()  # the client sockets that had a request swallowed
        self._abandoned_clients: set[socket.socket] = set()  # abandoned, their server's answer not yet drained
        self.refused = 0  # connections reset while cut (the ones open at the cut included)
        self.forwarded = 0  # connections forwarded
        self.swallowed = 0  # chunks of bytes towards the server held while stalled (since the last stall())
        self.swallowed_bytes = 0  # bytes of both directions held while stalled (since the last stall())
        self.abandoned = 0  # connections closed by their clients with a request or answer held (since the last stall())
        self._answers_to_cut = 0  # answers still to be cut short after their headers (cut_answers)
        self.answers_cut = 0  # answers cut short
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

    def stall(self) -> None:
        """Start a silent outage: keep every connection, forward nothing (bytes or closes) until ``restore()``."""
        with self._lock:
            self._stalled = True
            self._stalled_clients = set()
            self.swallowed = self.swallowed_bytes = self.abandoned = 0
            self._lock.notify_all()

    @property
    def stalled_connections(self) -> int:
        """Connections that had a request swallowed since the last ``stall()``."""
        with self._lock:
            return len(self._stalled_clients)

    def cut_answers(self, n: int = 1) -> None:
        """Cut the server's next ``n`` answers short after their headers (see the module docstring)."""
        with self._lock:
            self._answers_to_cut += n

    def restore(self) -> None:
        """End the outage: new connections are forwarded again; after a stall, what was held is delivered, in
        order, and held closes are passed on."""
        with self._lock:
            self._cut = False
            self._stalled = False
            directions = list(self._directions.items())
            self._lock.notify_all()
        for _, (order, held, dst) in directions:
            with order:
                self._flush(held, dst)

    def wait_refused(self, n: int, timeout: float = 120.0) -> bool:
        """Whether ``n`` connections were refused (reset during the outage) within ``timeout`` seconds."""
        with self._lock:
            return self._lock.wait_for(lambda: self.refused >= n, timeout)

    def wait_stalled(self, requests: int = 1, connections: int = 0, abandoned: int = 0,
                     timeout: float = 120.0) -> bool:
        """Whether, within ``timeout`` seconds, the current stall swallowed ``requests`` requests on at least
        ``connections`` connections and its clients abandoned ``abandoned`` connections."""
        with self._lock:
            return self._lock.wait_for(lambda: self.swallowed >= requests and self.abandoned >= abandoned
                                       and len(self._stalled_clients) >= connections, timeout)

    def wait_drained(self, timeout: float = 120.0) -> bool:
        """Whether, within ``timeout`` seconds, every abandoned connection's late request was answered by the
        server and the connection closed (after ``restore()``): what the stall held has taken effect."""
        with self._lock:
            return self._lock.wait_for(lambda: not self._abandoned_clients, timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            doomed, self._open = self._open, set()
            self._lock.notify_all()
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
                for src, dst in ((client, server), (server, client)):
                    self._directions[src] = (threading.Lock(), [], dst)
            for a, b, up in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(a, b, up), daemon=True).start()

    @staticmethod
    def _flush(held: list[bytes], dst: socket.socket) -> None:
        """Send to ``dst`` what a stall held back on its direction (whose order lock the caller holds)."""
        if held:
            data, held[:] = b"".join(held), []
            with contextlib.suppress(OSError):
                dst.sendall(data)

    def _pump(self, src: socket.socket, dst: socket.socket, upstream: bool) -> None:
        """Forward ``src`` to ``dst``; while stalled, hold what is read (and, at the end, the close)."""
        with self._lock:
            order, held, _ = self._directions.get(src, (threading.Lock(), [], dst))
        gone = False
        head = None  # an answer being cut short: what was read of it
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not upstream and head is None:
                    with self._lock:
                        if self._answers_to_cut and not self._stalled:
                            self._answers_to_cut -= 1
                            head = b""
                if head is not None:
                    head += data
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        continue  # the headers are not whole yet
                    dst.sendall(head[:end + 4])
                    with self._lock:
                        self.answers_cut += 1
                        self._lock.notify_all()
                    break  # the close below: both sides, the client's a clean one
                with order:
                    with self._lock:
                        stalled = self._stalled
                        if stalled:
                            held.append(data)
                            self.swallowed_bytes += len(data)
                            if upstream:
                                self.swallowed += 1
                                self._stalled_clients.add(src)
                            self._lock.notify_all()
                    if not stalled and not gone:
                        self._flush(held, dst)
                        try:
                            dst.sendall(data)
                        except OSError:
                            if upstream:
                                raise
                            gone = True  # an abandoned client: the server's answer is read to its end, unsent
        except OSError:
            pass
        with self._lock:  # a close while stalled is held too: the peer learns of it once the link is back
            answer_held = bool(self._directions.get(dst, (None, [], None))[1])
            if self._stalled and upstream and src in self._open and (src in self._stalled_clients or answer_held):
                self.abandoned += 1  # closed with a request or its answer held: its client gave the call up
                self._abandoned_clients.add(src)
                self._lock.notify_all()
            self._lock.wait_for(lambda: not self._stalled or self._closed or src not in self._open)
        with order:
            with self._lock:
                flush = src in self._open
                drain = flush and src in self._abandoned_clients
                if not drain and src in self._abandoned_clients:
                    self._abandoned_clients.discard(src)  # its server side already closed: nothing to drain
                    self._lock.notify_all()  # wait_drained may be waiting on it
            if flush:
                self._flush(held, dst)
        if drain:  # the late request is delivered with the close (half a close): the server answers, then closes,
            with contextlib.suppress(OSError):  # and the other direction's pump reads to that end and closes both
                dst.shutdown(socket.SHUT_WR)
            with self._lock:
                self._directions.pop(src, None)
            return
        with self._lock:
            mine = src in self._open  # not yet closed by the other direction or reset by a cut
            self._open -= {src, dst}
            self._directions.pop(src, None)
            if not upstream and dst in self._abandoned_clients:
                self._abandoned_clients.discard(dst)  # the server answered the late request and closed
                self._lock.notify_all()
        if mine:  # one side closed: close both (the other direction's pump then ends)
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                with contextlib.suppress(OSError):
                    s.close()
