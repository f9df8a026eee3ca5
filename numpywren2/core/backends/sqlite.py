"""Embedded queue and state store on SQLite: one database file per runtime directory.

WAL mode lets readers proceed while one writer commits; every multi-step
operation runs in a ``BEGIN IMMEDIATE`` transaction, which takes the database's
write lock up front, so two processes can never interleave inside one.  A writer
that finds the lock taken retries after 50 µs, doubling up to 2 ms, for up to a
minute (``_busy_retry``): SQLite's own busy timeout sleeps at least a millisecond,
ten times the length of a typical transaction here.

Tables::

    queue(id, queue, body, priority, visible_at, receipt)   -- leased messages
    jobs(job, status, description, error)
    counters(job, name, value)
    done(job, task)                                          -- completed tasks
    edges(job, child, count)                                 -- done parents per child
    executors(job, executor, started, last_seen, expires, exited)   -- heartbeats
    records(id, job, kind, body)                             -- per-task records, timelines
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
import uuid
from pathlib import Path

from .base import (
    Completion,
    Finish,
    Finished,
    Ledger,
    Message,
    Progress,
    StateStore,
    TaskQueue,
    plan_claims,
    ready_items,
    with_retries,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queue (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    visible_at REAL NOT NULL,
    receipt TEXT
);
DROP INDEX IF EXISTS queue_ready;
CREATE INDEX IF NOT EXISTS queue_order ON queue (queue, priority, id);
CREATE UNIQUE INDEX IF NOT EXISTS queue_receipt ON queue (receipt);
CREATE TABLE IF NOT EXISTS jobs (
    job TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    description TEXT NOT NULL,
    error TEXT
);
CREATE TABLE IF NOT EXISTS counters (
    job TEXT NOT NULL, name TEXT NOT NULL, value REAL NOT NULL, PRIMARY KEY (job, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS done (
    job TEXT NOT NULL, task TEXT NOT NULL, PRIMARY KEY (job, task)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS edges (
    job TEXT NOT NULL, child TEXT NOT NULL, count INTEGER NOT NULL, PRIMARY KEY (job, child)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS executors (
    job TEXT NOT NULL, executor TEXT NOT NULL, started REAL NOT NULL, last_seen REAL NOT NULL,
    expires REAL NOT NULL, exited INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (job, executor)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
    id INTEGER PRIMARY KEY AUTOINCREMENT, job TEXT NOT NULL, kind TEXT NOT NULL, body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS records_job ON records (job, kind, id);
"""


BUSY_TIMEOUT = 60.0  # seconds a statement keeps retrying a locked database

# SQLite's unix VFS takes WAL mode's write lock as a POSIX record lock on this byte of the ``-shm``
# file (``UNIX_SHM_BASE`` + ``WAL_WRITE_LOCK`` in os_unix.c).
_WAL_WRITE_LOCK_BYTE = 120


def wal_writer(path: str) -> int | None:
    """The id of a process on this host holding the write lock of the WAL database ``path``; None if none
    does (or the host has no ``/proc/locks``).

    The lock is looked up in ``/proc/locks`` by the ``-shm`` file's device and inode, never through a file
    descriptor of that file: closing any descriptor of a file drops every POSIX lock the process holds on
    it, this process's SQLite connections' own locks included (SQLite's documentation warns of it).
    """
    try:
        st = os.stat(path + "-shm")
        with open("/proc/locks") as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in lines:
        fields = line.split()
        if "->" in fields or len(fields) < 8:  # "->": a waiter, not a holder
            continue
        kind, rw, pid, where, start, end = fields[1], fields[3], fields[4], fields[5], fields[6], fields[7]
        if kind != "POSIX" or rw != "WRITE" or where != ident:
            continue
        if int(start) <= _WAL_WRITE_LOCK_BYTE and (end == "EOF" or _WAL_WRITE_LOCK_BYTE <= int(end)):
            return int(pid)
    return None


def _busy_retry(fn, *args):
    """``fn(*args)``, retried while the database is locked (short sleeps, doubling to 2 ms)."""
    delay, deadline = 50e-6, None
    while True:
        try:
            return fn(*args)
        except sqlite3.OperationalError as e:
            msg = str(e)
            if "locked" not in msg and "busy" not in msg:
                raise
            now = time.monotonic()
            deadline = deadline or now + BUSY_TIMEOUT
            if now > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2e-3)


def _file_id(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file ``path`` names; None if it names none."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _show_id(file_id: tuple[int, int]) -> str:
    """A file's identity as ``ls -i`` and ``stat`` show it.

    >>> _show_id((64768, 12))
    'inode 12 of device 253:0'
    """
    dev, ino = file_id
    return f"inode {ino} of device {os.major(dev)}:{os.minor(dev)}"


class _SQLite:
    """One connection per process and thread (connections must not cross a fork).

    ``opened`` is the identity (device, inode) of the database file as this object first opened it;
    ``replaced`` compares it with what the path names now.  Every connection of the object, in any
    thread or forked process, must be to that file: one opened after the path was renamed over would be
    to the new file, so ``replaced`` keeps answering for the object, whichever connection asks.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = str(Path(path).resolve())
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        _busy_retry(self._conn().executescript, _SCHEMA)  # idempotent; manages its own transaction
        # the file the connection opened: SQLite does not show its descriptor, so the path's identity is read
        # right after the connection opened the file (the schema script above reads and writes it)
        self.opened = _file_id(self.path)

    def replaced(self) -> str | None:
        """A text if ``path`` names another file than the one this object opened, or no file (see
        ``StateStore.replaced``)."""
        now = _file_id(self.path)
        if now == self.opened or self.opened is None:
            return None
        where = "names no file now" if now is None else f"names {_show_id(now)} now"
        what = "deleted" if now is None else "replaced"
        return (f"the state database {self.path} was {what} while the job ran (opened as {_show_id(self.opened)}, "
                f"the path {where})")

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=0.0, isolation_level=None, check_same_thread=False)
            _busy_retry(conn.execute, "PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _run(self, sql: str, params=()) -> sqlite3.Cursor:
        """One statement outside a transaction (reads; single-statement writes)."""
        return _busy_retry(self._conn().execute, sql, params)

    def _tx(self):
        return _Transaction(self._conn())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local.conn = None


def _enqueue(c: sqlite3.Connection, queue: str, items: list[tuple[str, int]]) -> None:
    """Insert ``(body, priority)`` pairs into ``queue``, visible now (inside the caller's transaction)."""
    now = time.time()
    c.executemany("INSERT INTO queue (queue, body, priority, visible_at) VALUES (?, ?, ?, ?)",
                  [(queue, b, p, now) for b, p in items])


def _enqueue_leased(c: sqlite3.Connection, queue: str, items: list[tuple[str, int]], lease: float) -> list[Message]:
    """Insert ``(body, priority)`` pairs into ``queue`` already leased, for ``lease`` seconds, to the caller
    (inside the caller's transaction): their messages, whose receipts renew and acknowledge them."""
    deadline, token = time.time() + lease, uuid.uuid4().hex
    out = []
    for i, (body, priority) in enumerate(items):
        receipt = f"c{i}:{token}"  # unique: the token is; a received message's receipt is "<id>:<token>"
        c.execute("INSERT INTO queue (queue, body, priority, visible_at, receipt) VALUES (?, ?, ?, ?, ?)",
                  (queue, body, priority, deadline, receipt))
        out.append(Message(body, receipt))
    return out


def _best_visible(c: sqlite3.Connection, queue: str) -> int | None:
    """The best (lowest) priority of a visible message of ``queue``; None if none is visible.  The walk in
    priority order skips only leased messages (a few per executor)."""
    row = c.execute("SELECT priority FROM queue INDEXED BY queue_order WHERE queue = ? AND visible_at <= ? "
                    "ORDER BY priority, id LIMIT 1", (queue, time.time())).fetchone()
    return None if row is None else row[0]


def _ack(c: sqlite3.Connection, receipt: str) -> bool:
    """Delete the message of a live lease with this receipt; False if the lease was lost."""
    return c.execute("DELETE FROM queue WHERE receipt = ? AND visible_at > ?", (receipt, time.time())).rowcount == 1


def _ack_many(c: sqlite3.Connection, receipts: list[str]) -> int:
    """``_ack`` of every receipt, one statement per 500: the number of messages deleted."""
    now, n = time.time(), 0
    for i in range(0, len(receipts), 500):
        part = receipts[i:i + 500]
        n += c.execute(f"DELETE FROM queue WHERE visible_at > ? AND receipt IN ({','.join('?' * len(part))})",
                       (now, *part)).rowcount
    return n


class _Transaction:
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        _busy_retry(self.conn.execute, "BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> None:
        _busy_retry(self.conn.execute, "ROLLBACK" if exc_type else "COMMIT")


class SQLiteTaskQueue(_SQLite, TaskQueue):
    def __init__(self, path: str | os.PathLike, name: str = "default"):
        super().__init__(path)
        self.name = name
        self.url = f"sqlite://{self.path}?queue={name}"

    def send(self, bodies: list[str], priority: int = 0) -> None:
        self.send_many([(b, priority) for b in bodies])

    def send_many(self, items: list[tuple[str, int]]) -> None:
        if not items:
            return
        with self._tx() as c:
            _enqueue(c, self.name, items)

    def receive(self, n: int = 1, lease: float = 30.0, wait: float = 0.0) -> list[Message]:
        deadline = time.monotonic() + wait
        delay = 0.001  # an empty queue is polled at 1, 2, 4 ... ms, then every 50 ms (one indexed query each)
        while True:
            out = self._receive_once(n, lease)
            if out or time.monotonic() >= deadline:
                return out
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.05)

    def _receive_once(self, n: int, lease: float) -> list[Message]:
        # One statement claims the messages: atomic on its own, whatever else runs.
        now = time.time()
        token = uuid.uuid4().hex
        rows = self._run(
            "UPDATE queue SET visible_at = ?, receipt = id || ':' || ? WHERE id IN "
            "(SELECT id FROM queue INDEXED BY queue_order WHERE queue = ? AND visible_at <= ? "
            "ORDER BY priority, id LIMIT ?) "
            "RETURNING priority, id, body, receipt", (now + lease, token, self.name, now, n)).fetchall()
        rows.sort()  # RETURNING gives no order: restore (priority, FIFO)
        return [Message(body, receipt) for _, _, body, receipt in rows]

    def renew(self, receipt: str, lease: float) -> bool:
        now = time.time()
        with self._tx() as c:
            cur = c.execute("UPDATE queue SET visible_at = ? WHERE receipt = ? AND visible_at > ?",
                            (now + lease, receipt, now))
            return cur.rowcount == 1

    def ack(self, receipt: str) -> bool:
        with self._tx() as c:
            return _ack(c, receipt)

    def depth(self) -> int:
        return self._run("SELECT COUNT(*) FROM queue WHERE queue = ?", (self.name,)).fetchone()[0]

    def purge(self) -> None:
        with self._tx() as c:
            c.execute("DELETE FROM queue WHERE queue = ?", (self.name,))

    def counts(self) -> tuple[int, int]:
        visible, leased = self._conn().execute(
            "SELECT COALESCE(SUM(visible_at <= ?1), 0), COALESCE(SUM(visible_at > ?1), 0) FROM queue "
            "WHERE queue = ?2", (time.time(), self.name)).fetchone()
        return int(visible), int(leased)


class SQLiteStateStore(_SQLite, StateStore):
    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self.url = f"sqlite://{self.path}"

    def create_job(self, job: str, description: str) -> None:
        with self._tx() as c:
            try:
                c.execute("INSERT INTO jobs (job, status, description) VALUES (?, 'running', ?)", (job, description))
            except sqlite3.IntegrityError:
                raise ValueError(f"job {job!r} already exists") from None

    def job(self, job: str) -> dict:
        row = self._run("SELECT status, description, error FROM jobs WHERE job = ?", (job,)).fetchone()
        if row is None:
            raise KeyError(f"no job {job!r}")
        counters = dict(self._run("SELECT name, value FROM counters WHERE job = ?", (job,)).fetchall())
        return {"status": row[0], "description": row[1], "error": row[2], "counters": counters}

    def status(self, job: str) -> str:
        row = self._run("SELECT status FROM jobs WHERE job = ?", (job,)).fetchone()
        if row is None:
            raise KeyError(f"no job {job!r}")
        return row[0]

    def set_status(self, job: str, status: str, error: str | None = None) -> bool:
        with self._tx() as c:
            cur = c.execute("UPDATE jobs SET status = ?, error = ? WHERE job = ? AND status = 'running'",
                            (status, error, job))
            return cur.rowcount == 1

    def add_counters(self, job: str, deltas: dict[str, float]) -> None:
        with self._tx() as c:
            self._add_counters(c, job, deltas)

    @staticmethod
    def _add_counters(c: sqlite3.Connection, job: str, deltas: dict[str, float]) -> None:
        c.executemany("INSERT INTO counters (job, name, value) VALUES (?, ?, ?) "
                      "ON CONFLICT (job, name) DO UPDATE SET value = value + excluded.value",
                      [(job, k, v) for k, v in deltas.items()])

    def complete(self, job: str, task: str, children: list[tuple[str, int]]) -> list[str]:
        with self._tx() as c:
            return self._complete(c, job, task, children)

    def complete_with_status(self, job: str, task: str, children: list[tuple[str, int]]) -> Completion:
        with self._tx() as c:
            ready = self._complete(c, job, task, children)
            return Completion(ready, self._status(c, job), self._completed(c, job))

    @staticmethod
    def _status(c: sqlite3.Connection, job: str) -> str | None:
        row = c.execute("SELECT status FROM jobs WHERE job = ?", (job,)).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _completed(c: sqlite3.Connection, job: str) -> int:
        row = c.execute("SELECT value FROM counters WHERE job = ? AND name = 'completed'", (job,)).fetchone()
        return 0 if row is None else int(row[0])

    def progress(self, job: str, task: str | None = None) -> Progress:
        row = self._run("SELECT status, (SELECT value FROM counters WHERE job = ?1 AND name = 'completed'), "
                        "EXISTS (SELECT 1 FROM done WHERE job = ?1 AND task = ?2) FROM jobs WHERE job = ?1",
                        (job, task or "")).fetchone()
        if row is None:
            raise KeyError(f"no job {job!r}")
        return Progress(row[0], int(row[1] or 0), bool(row[2]) if task is not None else None)

    def ledger(self, queue: TaskQueue) -> Ledger:
        if isinstance(queue, SQLiteTaskQueue) and queue.path == self.path:
            return SQLiteLedger(self, queue)
        return super().ledger(queue)

    def done_many(self, job: str, tasks: list[str]) -> list[bool]:
        if len(tasks) <= 1:
            return [self.is_done(job, t) for t in tasks]
        done = set(_busy_retry(self._done_in, self._conn(), job, tasks))
        return [t in done for t in tasks]

    @staticmethod
    def _done_in(c: sqlite3.Connection, job: str, tasks: list[str]) -> list[str]:
        """Those of ``tasks`` that are done (in the caller's transaction, or on their own)."""
        out = []
        for i in range(0, len(tasks), 500):  # bounded number of SQL variables
            part = tasks[i:i + 500]
            out.extend(r[0] for r in c.execute(
                f"SELECT task FROM done WHERE job = ? AND task IN ({','.join('?' * len(part))})", (job, *part)))
        return out

    @staticmethod
    def _complete(c: sqlite3.Connection, job: str, task: str, children: list[tuple[str, int]]) -> list[str]:
        """Mark done, count edges once, return the ready children (inside the caller's transaction)."""
        first, ready = SQLiteStateStore._mark_done(c, job, task, children)
        if first:
            SQLiteStateStore._add_counters(c, job, {"completed": 1})
        return ready

    @staticmethod
    def _mark_done(c: sqlite3.Connection, job: str, task: str,
                   children: list[tuple[str, int]], first: bool | None = None) -> tuple[bool, list[str]]:
        """Mark done, count edges once: ``(whether this was the first completion, the ready children)``;
        the caller adds the first completions to the ``completed`` counter (inside its transaction).
        ``first``: the task was marked done already, by the caller (``_mark_done_many``), for the first time
        (True) or not (False)."""
        if first is None:
            first = c.execute("INSERT OR IGNORE INTO done (job, task) VALUES (?, ?)", (job, task)).rowcount == 1
        ready = []
        if first:  # count each edge now; the upsert returns the child's count of done parents
            for child, indeg in children:
                (count,) = c.execute("INSERT INTO edges (job, child, count) VALUES (?, ?, 1) "
                                     "ON CONFLICT (job, child) DO UPDATE SET count = count + 1 RETURNING count",
                                     (job, child)).fetchone()
                if count >= indeg:
                    ready.append(child)
            return True, ready
        for child, indeg in children:  # a repeat: only answer which children are ready
            row = c.execute("SELECT count FROM edges WHERE job = ? AND child = ?", (job, child)).fetchone()
            if row is not None and row[0] >= indeg:
                ready.append(child)
        return False, ready

    @staticmethod
    def _mark_done_many(c: sqlite3.Connection, job: str, tasks: list[str]) -> list[bool]:
        """Mark ``tasks`` done in one statement per 400 (inside the caller's transaction): for each, whether
        this is its first completion.  A task listed twice is first at most at its first place, as if they
        had been marked one by one."""
        new: set[str] = set()
        for i in range(0, len(tasks), 400):  # bounded number of SQL variables
            part = tasks[i:i + 400]
            new.update(r[0] for r in c.execute(
                f"INSERT OR IGNORE INTO done (job, task) VALUES {','.join(['(?, ?)'] * len(part))} RETURNING task",
                [v for t in part for v in (job, t)]))
        out = []
        for t in tasks:
            out.append(t in new)
            new.discard(t)  # a later copy of it in the list is a repeat
        return out

    def is_done(self, job: str, task: str) -> bool:
        row = self._run("SELECT 1 FROM done WHERE job = ? AND task = ?", (job, task)).fetchone()
        return row is not None

    def delete_job(self, job: str) -> None:
        with self._tx() as c:
            for table in ("jobs", "counters", "done", "edges", "executors", "records"):
                c.execute(f"DELETE FROM {table} WHERE job = ?", (job,))

    def job_ids(self) -> list[str]:
        return [r[0] for r in self._run("SELECT job FROM jobs").fetchall()]

    def write_lock(self) -> tuple[int, int] | None:
        """``(pid, version)``: the process holding the database's write lock, and ``PRAGMA data_version``
        (it changes when another connection commits); None while the lock is free."""
        pid = wal_writer(self.path)
        if pid is None:
            return None
        return pid, self._conn().execute("PRAGMA data_version").fetchone()[0]

    def heartbeat(self, job: str, executor: str, ttl: float, exited: bool = False) -> None:
        now = time.time()
        with self._tx() as c:
            c.execute("INSERT INTO executors (job, executor, started, last_seen, expires, exited) "
                      "VALUES (?1, ?2, ?3, ?3, ?4, ?5) ON CONFLICT (job, executor) DO UPDATE SET "
                      "last_seen = ?3, expires = ?4, exited = MAX(exited, ?5)",
                      (job, executor, now, now + ttl, int(exited)))

    def executors(self, job: str) -> list[dict]:
        now = time.time()
        rows = self._conn().execute("SELECT executor, started, last_seen, expires, exited FROM executors "
                                    "WHERE job = ?", (job,)).fetchall()
        return [{"executor": e, "started": s, "last_seen": seen, "live": not x and exp > now, "exited": bool(x)}
                for e, s, seen, exp, x in rows]

    def append_records(self, job: str, kind: str, records: list[str]) -> None:
        if not records:
            return
        with self._tx() as c:
            c.executemany("INSERT INTO records (job, kind, body) VALUES (?, ?, ?)", [(job, kind, r) for r in records])

    def records(self, job: str, kind: str) -> list[str]:
        rows = self._conn().execute("SELECT body FROM records WHERE job = ? AND kind = ? ORDER BY id",
                                    (job, kind)).fetchall()
        return [r[0] for r in rows]


class SQLiteLedger(Ledger):
    """``Ledger.finish_many`` as one transaction, for a state store and a queue in one database file."""

    fused = True
    state: SQLiteStateStore
    queue: SQLiteTaskQueue

    def finish_many(self, job: str, items: list[Finish], counters: dict[str, float] | None = None,
                    claim: int = 0, lease: float = 30.0) -> Finished:
        done = with_retries(self._finish_many, job, items, counters, claim, lease)
        if counters:
            counters.clear()
        return done

    def _finish_many(self, job: str, items: list[Finish], counters: dict[str, float] | None, claim: int,
                     lease: float) -> Finished:
        state, name = self.state, self.queue.name
        with state._tx() as c:
            readies, firsts = [], 0
            for it, new in zip(items, state._mark_done_many(c, job, [it.task for it in items])):
                first, ready = state._mark_done(c, job, it.task, [(k, d) for k, d, _ in it.children], new)
                firsts += first
                readies.append(ready)
            deltas = dict(counters or {})
            if firsts:
                deltas["completed"] = deltas.get("completed", 0) + firsts
            if deltas:
                state._add_counters(c, job, deltas)
            status = state._status(c, job)
            claimed: list[Message] = []
            if status == "running":
                pending = _ready_once(items, readies)
                wanted = {k: t for it in items for k, t in it.claim}
                if claim and any(k in wanted for k, _ in pending):
                    asked = [wanted[k] for k, _ in pending if k in wanted]
                    taken = set(state._done_in(c, job, asked))
                    chosen = plan_claims(pending, wanted, taken, _best_visible(c, name), claim)
                    if chosen:
                        keep = set(chosen)
                        prio = dict(pending)
                        claimed = _enqueue_leased(c, name, [(k, prio[k]) for k in chosen], lease)
                        pending = [(k, p) for k, p in pending if k not in keep]
                if pending:
                    _enqueue(c, name, pending)
            _ack_many(c, [it.receipt for it in items])
            completed = state._completed(c, job)
            return Finished([Completion(r, status, completed) for r in readies], claimed)


def _ready_once(items: list[Finish], readies: list[list[str]]) -> list[tuple[str, int]]:
    """The ``(key, priority)`` of every ready child of the step's items, each once (a child two repeated
    completions of one step find ready is enqueued once).

    >>> items = [Finish("a", [("c", 1, 4)], "r1"), Finish("b", [("c", 1, 4), ("d", 1, 2)], "r2")]
    >>> _ready_once(items, [["c"], ["c", "d"]])
    [('c', 4), ('d', 2)]
    """
    out: dict[str, int] = {}
    for it, ready in zip(items, readies):
        for k, p in ready_items(it.children, ready):
            out.setdefault(k, p)
    return list(out.items())
