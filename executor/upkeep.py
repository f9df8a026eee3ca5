"""What an executor keeps up besides running tasks, one small class each: its tile cache, its pending
counter increments, the leases of the messages it holds, and its heartbeat and task records.

``TileCache``      an LRU of recently read or written tiles (key -> array), bounded in bytes;
``CounterBuffer``  per-job counter increments not yet written to the state store;
``LeaseRenewer``   a background thread that renews the leases of the messages being worked on;
``Reporter``       a background thread that renews the executor's heartbeat and appends its buffered
                   per-task records and log lines;
``LogBuffer``      a ``logging`` handler that keeps the executor's log lines (secrets redacted, at most
                   ``MAX_LOG_LINES``) until the reporter appends them to the job's ``"log"`` records.
``TaskWatchdog``   a background thread that calls back once the task being run has run past its time limit.
``PendingCompletions``  the tasks run and not yet completed, and a background thread that completes them
                   when the task running after them takes long.

Each is thread-safe where a background thread or the read pool shares it, and none decides anything
about the protocol (``executor.decisions`` does).
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import re
import sys
import threading
import time

import numpy as np

from lambdapack import Task
from numpywren2.core.backends import StateStore, TaskQueue, transient_errors, with_retries


def default_cache_bytes() -> int:
    """A quarter of this process's address-space limit (``RLIMIT_AS``, as a memory-capped Lambda-like
    executor has), else 512 MiB."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft // 4 if soft != resource.RLIM_INFINITY else 512 << 20


class TileCache:
    """Recently read or written tiles, least recently used first out, at most ``limit`` bytes in all
    (a tile larger than the limit is not kept).

    >>> c = TileCache(100)
    >>> c.put("a", np.zeros(8)); c.put("b", np.zeros(4)); c.get("a") is not None  # a: 64 bytes, b: 32
    True
    >>> c.put("c", np.zeros(4)); c.get("b") is None, c.size  # b was the least recently used
    (True, 96)
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.size = 0  # bytes held
        self._tiles: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> np.ndarray | None:
        with self._lock:
            tile = self._tiles.get(key)
            if tile is not None:
                self._tiles.move_to_end(key)
            return tile

    def __contains__(self, key: str) -> bool:
        """Whether ``key`` is held (without making it the most recently used)."""
        return key in self._tiles

    def put(self, key: str, tile: np.ndarray) -> None:
        if tile.nbytes > self.limit:
            return
        with self._lock:
            old = self._tiles.pop(key, None)
            self.size += tile.nbytes - (old.nbytes if old is not None else 0)
            self._tiles[key] = tile
            while self.size > self.limit:
                self.size -= self._tiles.popitem(last=False)[1].nbytes

    def forget(self, key: str) -> None:
        with self._lock:
            old = self._tiles.pop(key, None)
            if old is not None:
                self.size -= old.nbytes


class CounterBuffer:
    """Counter increments (kernel seconds, bytes read, tasks dropped...) not yet written to the state store.

    They ride along with a task's completion at most every ``interval`` seconds (``take_due``), and are
    written on their own when the executor is idle and when it stops (``flush``).

    >>> b = CounterBuffer(0.5)
    >>> b.add({"kernel_s": 0.25}); b.add({"kernel_s": 0.25, "tasks_dropped": 1})
    >>> b.take_due(now=10.0), b.take_due(now=10.1)
    ({'kernel_s': 0.5, 'tasks_dropped': 1}, {})
    """

    def __init__(self, interval: float):
        self.interval = interval
        self.pending: collections.Counter[str] = collections.Counter()
        self.flushed = 0.0  # time.monotonic() of the last write
        self._lock = threading.Lock()  # the read pool adds too (bytes fetched by a prefetch)

    def add(self, deltas: dict[str, float]) -> None:
        with self._lock:
            pending = self.pending
            for k, v in deltas.items():  # Counter.update, without its checks (several calls per task)
                pending[k] = pending.get(k, 0) + v

    def take_due(self, now: float) -> dict[str, float]:
        """The pending increments if a write is due at ``now`` (they are the caller's now), else ``{}``."""
        if now - self.flushed < self.interval:
            return {}
        with self._lock:
            taken, self.pending, self.flushed = dict(self.pending), collections.Counter(), now
        return taken

    def flush(self, state: StateStore, job: str) -> None:
        """Write the pending increments now."""
        if self.pending:
            with self._lock:
                taken, self.pending = dict(self.pending), collections.Counter()
            try:
                with_retries(state.add_counters, job, taken)
            except BaseException:
                self.add(taken)
                raise
            self.flushed = time.monotonic()


class LeaseRenewer:
    """Renews, every ``lease / 3`` seconds until ``stop`` is set, the lease of every message held."""

    def __init__(self, queue: TaskQueue, lease: float, stop: threading.Event):
        self.queue, self.lease, self._stop = queue, lease, stop
        self._held: dict[str, str] = {}  # receipt -> body
        self._abandoned = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def hold(self, msgs) -> None:
        with self._lock:
            if self._abandoned:
                return
            for m in msgs:
                self._held[m.receipt] = m.body

    def abandon(self) -> None:
        """Renew nothing any more: the messages held reappear when their leases run out (a task abandoned
        past its time limit is run elsewhere)."""
        with self._lock:
            self._abandoned = True
            self._held.clear()

    def release(self, msgs) -> None:
        with self._lock:
            for m in msgs:
                self._held.pop(m.receipt, None)

    def _loop(self) -> None:
        while not self._stop.wait(self.lease / 3):
            with self._lock:
                receipts = list(self._held)
            for r in receipts:
                try:
                    with_retries(self.queue.renew, r, self.lease)
                except Exception:
                    pass


_quote = json.encoder.encode_basestring_ascii  # a str as a JSON string


class Reporter:
    """Every ``report_s`` seconds until ``stop`` is set: renew the executor's heartbeat in the state store
    (so a provisioner counts live executors, and a killed one stops counting within ``heartbeat_ttl``)
    and append the per-task records buffered since the last report."""

    def __init__(self, state: StateStore, job: str, executor_id: str, report_s: float, heartbeat_ttl: float,
                 stop: threading.Event, logs: LogBuffer | None = None):
        self.state, self.job, self.executor_id = state, job, executor_id
        self.report_s, self.heartbeat_ttl, self._stop = report_s, heartbeat_ttl, stop
        self.logs = logs
        self._records: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> None:
        self.report()
        self._thread.start()

    def stop(self) -> None:
        """After ``stop`` is set: wait for the thread, then report the clean exit (with the last records)."""
        self._thread.join()
        self.report(exited=True)

    def record_task(self, task: Task, t_start: float, t_end: float, nbytes: int, kernel_s: float,
                    kernel: str | None = None, read_s: float = 0.0, write_s: float = 0.0,
                    flops: float | None = None) -> None:
        """Buffer one task's record (``perf_counter`` times, stored as wall-clock seconds): its kernel, the
        seconds spent reading, computing and writing, and the kernel's flops (None without a formula)."""
        offset = time.time() - time.perf_counter()
        # the JSON of {"task", "kernel", "executor", "start", "end", "bytes", "kernel_s", "read_s", "write_s",
        # "flops"}, spelled out: json.dumps of the dict cost a tenth of a no-op task
        name = "null" if kernel is None else _quote(kernel)
        rec = (f'{{"task": {_quote(str(task))}, "kernel": {name}, "executor": {_quote(self.executor_id)}, '
               f'"start": {round(t_start + offset, 4)!r}, "end": {round(t_end + offset, 4)!r}, "bytes": {int(nbytes)}, '
               f'"kernel_s": {round(kernel_s, 6)!r}, "read_s": {round(read_s, 6)!r}, "write_s": {round(write_s, 6)!r}, '
               f'"flops": {"null" if flops is None else json.dumps(flops)}}}')
        with self._lock:
            self._records.append(rec)

    def report(self, exited: bool = False) -> None:
        """Renew the heartbeat and flush buffered task records (transient errors: try next time)."""
        with self._lock:
            records, self._records = self._records, []
        lines = self.logs.take(final=exited) if self.logs is not None else []
        try:
            if records:
                self.state.append_records(self.job, "tasks", records)
            if lines:
                self.state.append_records(self.job, "log", lines)
                lines = []
            self.state.heartbeat(self.job, self.executor_id, self.heartbeat_ttl, exited=exited)
        except transient_errors():
            with self._lock:
                self._records[:0] = records
            if lines:
                self.logs.put_back(lines)

    def _loop(self) -> None:
        while not self._stop.wait(self.report_s):
            self.report()


class TaskWatchdog:
    """Watches the task being run (``begin`` .. ``end``): once one has run for ``timeout`` seconds,
    ``on_overrun(task, key, seconds)`` is called, once, from the watchdog's thread (the task's own thread
    is inside its kernel and cannot be interrupted).  Checks every ``min(1, timeout / 20)`` seconds until
    ``stop`` is set."""

    def __init__(self, timeout: float, on_overrun, stop: threading.Event):
        self.timeout, self.on_overrun, self._stop = timeout, on_overrun, stop
        self._task: tuple[Task, str, float] | None = None
        self.fired = False
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="task-watchdog")

    def start(self) -> None:
        self._thread.start()

    def begin(self, task: Task, key: str) -> None:
        with self._lock:
            self._task = (task, key, time.monotonic())

    def end(self) -> None:
        with self._lock:
            self._task = None

    def join(self) -> None:
        """Wait until the watchdog's thread has ended (after a fired watchdog: its ``on_overrun`` has returned)."""
        self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(min(1.0, self.timeout / 20)):
            with self._lock:
                running, overran = self._task, None
                if running is not None and not self.fired and time.monotonic() - running[2] >= self.timeout:
                    self.fired, overran = True, running
            if overran is not None:
                task, key, t0 = overran
                self.on_overrun(task, key, time.monotonic() - t0)
                return


MAX_LOG_LINES = 10_000  # per executor: the lines after these are counted, not kept
LOGGERS = ("executor", "numpywren2", "lambdapack")  # the project's loggers, one per package
SECRET_VARIABLES = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "NPW_SECRET", "NPW_JOB_SECRET")
_URL_PASSWORD = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]+@", re.IGNORECASE)


def redact(text: str) -> str:
    """``text`` without secrets: passwords in URLs and the values of the secret environment variables.

    >>> redact("cannot reach redis://user:hunter2@db:6379/0")
    'cannot reach redis://user:***@db:6379/0'
    """
    text = _URL_PASSWORD.sub(r"\1***@", text)
    for name in SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


class LogBuffer(logging.Handler):
    """The log lines of one executor, as JSON records ``{"time", "executor", "level", "logger", "message"}``,
    until the ``Reporter`` appends them to the job's ``"log"`` records.

    Only records of the thread that ``attach``-ed it are kept (several executors may share a process).
    At most ``limit`` lines are kept in all; later ones are counted and reported as one last line.

    >>> b = LogBuffer("x-1", limit=2)
    >>> for i in range(3):
    ...     b.emit(logging.LogRecord("executor", logging.INFO, __file__, 1, "line %d", (i,), None))
    >>> [json.loads(r)["message"] for r in b.take(final=True)]
    ['line 0', 'line 1', '1 more log line(s) of executor x-1 were not kept (at most 2)']
    """

    def __init__(self, executor_id: str, limit: int = MAX_LOG_LINES):
        super().__init__(logging.INFO)
        self.executor_id, self.limit = executor_id, limit
        self.kept = self.dropped = 0
        self.thread: int | None = None
        self._lines: list[str] = []
        self._buffer_lock = threading.Lock()

    def _line(self, level: str, logger: str, message: str, at: float | None = None) -> str:
        return json.dumps({"time": round(at or time.time(), 4), "executor": self.executor_id, "level": level,
                           "logger": logger, "message": redact(message)})

    def emit(self, record: logging.LogRecord) -> None:
        if self.thread is not None and record.thread != self.thread:
            return
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
        except Exception:  # a malformed record: logging's own rule is to report and go on
            self.handleError(record)
            return
        with self._buffer_lock:
            if self.kept >= self.limit:
                self.dropped += 1
                return
            self.kept += 1
            self._lines.append(self._line(record.levelname, record.name, message, record.created))

    def take(self, final: bool = False) -> list[str]:
        """The lines not yet reported (and, when ``final``, the count of those not kept)."""
        with self._buffer_lock:
            lines, self._lines = self._lines, []
            if final and self.dropped:
                lines.append(self._line("WARNING", "executor", f"{self.dropped} more log line(s) of executor "
                                        f"{self.executor_id} were not kept (at most {self.limit})"))
                self.dropped = 0
        return lines

    def put_back(self, lines: list[str]) -> None:
        with self._buffer_lock:
            self._lines[:0] = lines

    @contextlib.contextmanager
    def attach(self):
        """Collect the project's log records of the calling thread while in the block.

        The project's loggers are set to INFO if no level was chosen for them, and, when logging is not
        configured at all, warnings still go to stderr (as they would without this handler).  Several
        executors may attach at once in one process (threads): the levels and the stderr handler are set by
        the first to attach and restored by the last to leave (``_SHARED``)."""
        self.thread = threading.get_ident()
        loggers = [logging.getLogger(n) for n in LOGGERS]
        with _SHARED.lock:
            if _SHARED.attached == 0:
                _SHARED.levels = [lg.level for lg in loggers]
                _SHARED.stderr = None
                if not logging.getLogger().handlers:
                    _SHARED.stderr = logging.StreamHandler(sys.stderr)
                    _SHARED.stderr.setLevel(logging.WARNING)
                for lg in loggers:
                    if _SHARED.stderr is not None:
                        lg.addHandler(_SHARED.stderr)
                    if lg.level == logging.NOTSET:
                        lg.setLevel(logging.INFO)
            _SHARED.attached += 1
            for lg in loggers:
                lg.addHandler(self)
        try:
            yield self
        finally:
            with _SHARED.lock:
                for lg in loggers:
                    lg.removeHandler(self)
                _SHARED.attached -= 1
                if _SHARED.attached == 0:
                    for lg, level in zip(loggers, _SHARED.levels):
                        if _SHARED.stderr is not None:
                            lg.removeHandler(_SHARED.stderr)
                        lg.setLevel(level)


class _SharedLogging:
    """What the log buffers attached in this process share: how many, and what the first one changed."""

    def __init__(self):
        self.lock = threading.Lock()
        self.attached = 0
        self.levels: list[int] = []
        self.stderr: logging.Handler | None = None


_SHARED = _SharedLogging()


class PendingCompletions:
    """The tasks an executor has run and not yet completed (it completes several in one step), and a
    background thread that completes them in its stead once the task it is running now has run for
    ``wait_s`` seconds: a long task never holds back the completion of the short ones run before it.

    The executor ``add``s a task after running it, calls ``begin``/``end`` around each task, and ``take``s
    the pending tasks to complete them itself.  ``complete(items)`` is called by the thread with the items
    it took (the other side never sees them again); it returns None when the job has ended (``ended`` is
    set), and an exception it raises is kept in ``error`` for the executor to raise.  ``drain`` waits for
    a completion in progress there.

    >>> import threading
    >>> done = []
    >>> p = PendingCompletions(0.0, lambda items: done.extend(items) or [], threading.Event())
    >>> p.add("a"); p.take(), p.take()
    (['a'], [])
    """

    def __init__(self, wait_s: float, complete, stop: threading.Event):
        self.wait_s, self._complete, self._stop = wait_s, complete, stop
        self.items: list = []
        self.ended = False
        self.error: BaseException | None = None
        self._since: float | None = None  # perf_counter() when the task running now began
        self._busy = False
        self._wakes_at = float("inf")  # perf_counter() when the thread's current wait ends (inf: not waiting)
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="pending-completions")

    def start(self) -> None:
        self._thread.start()

    def add(self, item) -> None:
        with self._cond:
            self.items.append(item)

    def take(self) -> list:
        with self._cond:
            out, self.items = self.items, []
            return out

    def __len__(self) -> int:
        return len(self.items)

    def oldest(self):
        """The first pending item, or None."""
        items = self.items
        return items[0] if items else None

    def begin(self) -> None:
        with self._cond:
            self._since = now = time.perf_counter()
            # wake the thread only if it would sleep past this task's due time (it is idle): one wake-up per
            # batch, not per task (each costs the executor's thread a switch of the interpreter lock)
            if self.items and self._wakes_at > now + self.wait_s:
                self._cond.notify()

    def end(self) -> None:
        with self._cond:
            self._since = None

    def drain(self) -> None:
        """Wait until no completion is in progress in the background thread."""
        with self._cond:
            while self._busy:
                self._cond.wait(0.1)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                now = time.perf_counter()
                if self._since is None or not self.items:
                    self._wakes_at = now + 0.5
                    self._cond.wait(0.5)
                    continue
                due = self._since + self.wait_s - now
                if due > 0:
                    self._wakes_at = now + due
                    self._cond.wait(due)
                    continue
                self._wakes_at = float("inf")  # completing: ``begin`` need not wake it
                items, self.items, self._busy = self.items, [], True
            try:
                if self._complete(items) is None:
                    self.ended = True
            except BaseException as e:  # raised by the executor at its next look
                self.error = e
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
