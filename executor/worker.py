"""The stateless executor: lease -> read -> compute -> write -> complete -> enqueue -> acknowledge.

State an executor keeps (none of it needed by anyone else):
``bound``      the job's implicit DAG, rebuilt from the stored description;
``cache``      an LRU of recently read or written tiles (key -> array), at most ``cache_bytes``
               (default: a quarter of the address-space limit if one is set, else 512 MiB);
``renewals``   leases being renewed by the background thread (receipt -> task).

``counters``   per-job counter increments not yet written to the state store;
``task_s``     a moving average of the time a task takes here, which sets ``batch``;
``read_s``     a moving average of the time a tile read takes: above 2 ms, a task's tiles
               are read concurrently by ``pool`` (a thread hand-off costs more than a fast read).

Per message (a task as JSON):

1. If the state store says the task is done, it is a duplicate or a re-delivery
   after a crash between ``complete`` and ``ack``: call ``complete`` again (it is
   idempotent and returns the ready children), enqueue them, acknowledge.
2. Otherwise read the input tiles (concurrently), run the kernel, write each
   output tile (atomic puts), ``complete`` the task, enqueue the children it
   made ready with their priorities, acknowledge; then delete the scratch tiles
   it read whose readers have all completed.  A crash anywhere here leaves the
   message to reappear when its lease expires; the re-run writes identical tiles.
3. A kernel exception marks the job failed with the task, its source line and
   the traceback (the first failure wins), and the executor stops.

Round trips are what limit short tasks, so the loop keeps them few:

- when the state store and the queue share a database (one SQLite file, one
  Redis server), step 2's complete + enqueue + acknowledge (and the pending
  counter increments) are one transaction: ``StateStore.complete_and_forward``;
- tasks that take less than ``batch_target`` seconds are leased several at a
  time (``batch``, at most ``max_batch``), and their done-checks are one query;
  long tasks are leased one at a time so that no executor hoards work;
- the job's status is checked every ``status_interval`` seconds, not per task, and the
  counters (kernel seconds, bytes...) are written at most every ``counter_interval``
  seconds, riding along with a completion, and when the executor stops.

Children are enqueued with ``BoundProgram.priority``: their place in a serial run,
so a factorization's critical path (panel, then the next column's update) runs first.

The loop stops when the job is no longer running, after ``idle_timeout``
seconds without work, or before ``time_limit``.

Reporting (off the per-task path): every ``report_s`` seconds a background
thread renews this executor's heartbeat in the state store (so a provisioner can
count live executors, and a killed one stops counting within ``heartbeat_ttl``)
and appends the per-task records buffered since the last report (task, executor,
start, end, bytes, kernel seconds).  A clean stop flushes them and records the
exit; an executor killed outright loses the records of its last ``report_s``
seconds (the tasks themselves are not lost: they re-run).
"""

from __future__ import annotations

import collections
import json
import threading
import time
import traceback
import uuid
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lambdapack import Task
from numpywren2.backends import StateStore, TaskQueue, TileStore, transient_errors, with_retries
from numpywren2.jobspec import load, tile_key


def default_cache_bytes() -> int:
    """A quarter of this process's address-space limit (``RLIMIT_AS``, as a memory-capped Lambda-like
    executor has), else 512 MiB."""
    import resource

    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    return soft // 4 if soft != resource.RLIM_INFINITY else 512 << 20


def check_finite_inputs(check: dict[str, str], args: list, call: list) -> None:
    """``check_finite`` of the job's input matrices (``check``: parameter -> name for the message):
    a tile of one of them holding an inf or a NaN is a ``ValueError`` naming the matrix and the tile.

    O(b²) per tile read, against the O(b³) kernels that read it.
    """
    if not check:
        return
    for a, tile in zip(args, call):
        if isinstance(a, tuple) and a[1] in check and not np.isfinite(tile).all():
            bad = int(np.count_nonzero(~np.isfinite(tile)))
            raise ValueError(f"{check[a[1]]}: array must not contain infs or NaNs; its tile {tuple(a[2])} holds {bad} "
                             "of them (pass check_finite=False to skip this check)")


class Executor:
    def __init__(self, store: TileStore, queue: TaskQueue, state: StateStore, job: str, lease: float = 60.0,
                 idle_timeout: float = 10.0, time_limit: float | None = None, io_threads: int = 4,
                 cache_bytes: int | None = None, status_interval: float = 1.0, max_batch: int = 8,
                 batch_target: float = 0.02, counter_interval: float = 0.5, executor_id: str | None = None,
                 report_s: float = 1.0, heartbeat_ttl: float = 5.0):
        self.store, self.queue, self.state, self.job = store, queue, state, job
        self.lease, self.idle_timeout, self.time_limit = lease, idle_timeout, time_limit
        self.status_interval, self.max_batch, self.batch_target = status_interval, max_batch, batch_target
        self.counter_interval = counter_interval
        self._flushed = 0.0  # time.monotonic() of the last counter flush
        self.bound, self.kernels, desc = load(state.job(job)["description"])
        self.prefixes = desc["prefixes"]
        self.scratch = set(desc["scratch"])
        self.check_finite: dict[str, str] = desc.get("check_finite", {})
        self.pool = ThreadPoolExecutor(io_threads)
        self.cache: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self.cache_bytes = default_cache_bytes() if cache_bytes is None else cache_bytes
        self.cached = 0  # bytes in the cache
        self.renewals: dict[str, Task | str] = {}
        self.counters: collections.Counter[str] = collections.Counter()
        self.task_s: float | None = None
        self.read_s = 1.0  # moving average of a tile read's time: concurrent reads until known fast
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.tasks_run = 0
        self.executor_id = executor_id or f"x-{uuid.uuid4().hex[:12]}"
        self.report_s, self.heartbeat_ttl = report_s, heartbeat_ttl
        self._task_records: list[str] = []

    @property
    def batch(self) -> int:
        """How many tasks to lease at once: 1 until tasks are known to be short."""
        if self.task_s is None:
            return 1
        return max(1, min(self.max_batch, int(self.batch_target / max(self.task_s, 1e-6))))

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        start = time.monotonic()
        last_work = start
        next_status = start
        renewer = threading.Thread(target=self._renew_loop, daemon=True)
        renewer.start()
        self._report()
        reporter = threading.Thread(target=self._report_loop, daemon=True)
        reporter.start()
        try:
            while True:
                now = time.monotonic()
                if self.time_limit is not None and now - start > self.time_limit:
                    break
                if now >= next_status:
                    if not self._running():
                        break
                    next_status = now + self.status_interval
                n = self.batch
                if self.time_limit is not None and self.time_limit - (now - start) < 2.0:
                    n = 1  # near the time limit: hold no leases that this executor will not run
                try:
                    msgs = self.queue.receive(n, lease=self.lease, wait=0.5)
                except Exception:
                    if not self._running():  # the job ended meanwhile and its queue was deleted (SQS)
                        break
                    raise
                if not msgs:
                    self._flush_counters()
                    if time.monotonic() - last_work > self.idle_timeout:
                        break
                    continue
                with self._lock:
                    for m in msgs:
                        self.renewals[m.receipt] = m.body
                try:
                    done = with_retries(self.state.done_many, self.job, [m.body for m in msgs])
                    for m, was_done in zip(msgs, done):
                        if not self._handle(m, was_done):
                            return self.tasks_run
                finally:
                    with self._lock:
                        for m in msgs:
                            self.renewals.pop(m.receipt, None)
                last_work = time.monotonic()
        finally:
            self._stop.set()
            self.pool.shutdown(wait=False)
            self.counters.update({"executor_s": time.monotonic() - start, "executors": 1})
            self._flush_counters()
            reporter.join()
            self._report(exited=True)
        return self.tasks_run

    def _running(self) -> bool:
        try:
            return with_retries(self.state.status, self.job) == "running"
        except KeyError:  # the job record is gone (deleted, or a state server lost it)
            return False

    def _handle(self, msg, was_done: bool) -> bool:
        task = self.bound.task_from_json(msg.body)
        if was_done:
            self._finish(task, msg)
            return True
        t0 = time.perf_counter()
        if not self._execute(task):
            return False
        self._finish(task, msg)
        self._free_consumed(task)
        el = time.perf_counter() - t0
        self.task_s = el if self.task_s is None else 0.8 * self.task_s + 0.2 * el
        self.tasks_run += 1
        return True

    def _finish(self, task: Task, msg) -> None:
        """complete + enqueue the ready children + acknowledge (one step where the backends allow)."""
        b = self.bound
        children = [(c.to_json(), b.in_degree(c), b.priority(c)) for c in b.children(task)]
        counters = {}
        now = time.monotonic()
        if now - self._flushed >= self.counter_interval:  # counters ride along at most this often
            counters, self.counters, self._flushed = self.counters, collections.Counter(), now
        try:
            ready = with_retries(self.state.complete_and_forward, self.job, msg.body, children, self.queue,
                                 msg.receipt, dict(counters))
        except BaseException:
            self.counters.update(counters)
            raise
        if ready is not None:
            return
        if counters:
            with_retries(self.state.add_counters, self.job, dict(counters))
            self._flushed = now
        ready = with_retries(self.state.complete, self.job, msg.body, [(k, d) for k, d, _ in children])
        if ready:
            prio = {k: p for k, _, p in children}
            with_retries(self.queue.send_many, [(k, prio[k]) for k in ready])
        with_retries(self.queue.ack, msg.receipt)

    def _flush_counters(self) -> None:
        if self.counters:
            counters, self.counters = dict(self.counters), collections.Counter()
            with_retries(self.state.add_counters, self.job, counters)
            self._flushed = time.monotonic()

    def _free_consumed(self, task: Task) -> None:
        """Delete the scratch tiles this task read whose every reader has completed.

        Safe against races and re-runs: a tile is deleted only when all its readers are
        done, and a done task never reads its inputs again.  This task is done; the other
        readers of all its scratch inputs are checked in one query.
        """
        me = task.to_json()
        tiles = []
        for m, idx in self.bound.reads(task):
            if m in self.scratch:
                others = [r.to_json() for r in self.bound.readers_of(m, idx)]
                tiles.append((m, idx, [r for r in others if r != me]))
        if not tiles:
            return
        others = sorted({r for _, _, rs in tiles for r in rs})
        done = dict(zip(others, with_retries(self.state.done_many, self.job, others))) if others else {}
        freed = 0
        for m, idx, rs in tiles:
            if all(done[r] for r in rs):
                k = tile_key(self.prefixes, m, idx)
                self._forget(k)
                freed += self.store.delete(k)
        if freed:
            self.counters["tiles_freed"] += freed

    # ------------------------------------------------------------------ one task
    def _execute(self, task: Task) -> bool:
        stmt = self.bound.stmt(task)
        args = self.bound.kernel_args(task)
        keys = [tile_key(self.prefixes, a[1], a[2]) if isinstance(a, tuple) else None for a in args]
        wanted = [k for k in keys if k is not None]
        t0 = time.perf_counter()
        if len(wanted) > 1 and self.read_s > 0.002:  # slow stores (S3): read concurrently
            tiles = dict(zip(wanted, self.pool.map(self._read, wanted)))
        else:
            tiles = {k: self._read(k) for k in wanted}
        t1 = time.perf_counter()
        if wanted:
            self.read_s = 0.8 * self.read_s + 0.2 * (t1 - t0) / len(wanted)
        call = [a if k is None else tiles[k] for a, k in zip(args, keys)]
        try:
            check_finite_inputs(self.check_finite, args, call)
            result = self.kernels[stmt.kernel](*call)
            outs = self.bound.writes(task)
            results = result if len(outs) > 1 else (result,)
            if len(outs) > 1 and (not isinstance(result, tuple) or len(result) != len(outs)):
                raise TypeError(f"kernel {stmt.kernel} returned {type(result).__name__}, expected {len(outs)} tiles")
        except Exception as e:
            error = {"task": str(task), "line": stmt.src.line, "file": stmt.src.filename,
                     "type": f"{type(e).__module__}.{type(e).__qualname__}", "message": str(e),
                     "traceback": traceback.format_exc()}
            self.state.set_status(self.job, "failed", json.dumps(error))
            return False
        t2 = time.perf_counter()
        written = 0
        for (m, idx), value in zip(outs, results):
            k = tile_key(self.prefixes, m, idx)
            value = np.asarray(value)
            written += with_retries(self.store.put, k, value)
            if value.flags.owndata:
                value.flags.writeable = False  # cached: later kernels must not change it in place
            self._remember(k, value)
        t3 = time.perf_counter()
        read_bytes = sum(t.nbytes for t in tiles.values())
        self._record_task(task, t0, t3, read_bytes + written, t2 - t1)
        self.counters.update({"kernel_s": t2 - t1, "read_s": t1 - t0, "write_s": t3 - t2,
                              "bytes_read": read_bytes, "bytes_written": written})
        return True

    def _read(self, key: str) -> np.ndarray:
        with self._lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        tile = with_retries(self.store.get, key)
        self._remember(key, tile)
        return tile

    def _remember(self, key: str, tile) -> None:
        if tile.nbytes > self.cache_bytes:
            return
        with self._lock:
            old = self.cache.pop(key, None)
            self.cached += tile.nbytes - (old.nbytes if old is not None else 0)
            self.cache[key] = tile
            while self.cached > self.cache_bytes:
                self.cached -= self.cache.popitem(last=False)[1].nbytes

    def _forget(self, key: str) -> None:
        with self._lock:
            old = self.cache.pop(key, None)
            if old is not None:
                self.cached -= old.nbytes

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease / 3):
            with self._lock:
                receipts = list(self.renewals)
            for r in receipts:
                self.queue.renew(r, self.lease)

    # ------------------------------------------------------------------ reporting
    def _record_task(self, task: Task, t_start: float, t_end: float, nbytes: int, kernel_s: float) -> None:
        """Buffer one task's record (``perf_counter`` times, stored as wall-clock seconds)."""
        offset = time.time() - time.perf_counter()
        rec = {"task": str(task), "executor": self.executor_id, "start": round(t_start + offset, 4),
               "end": round(t_end + offset, 4), "bytes": int(nbytes), "kernel_s": round(kernel_s, 6)}
        with self._lock:
            self._task_records.append(json.dumps(rec))

    def _report(self, exited: bool = False) -> None:
        """Renew the heartbeat and flush buffered task records (transient errors: try next time)."""
        with self._lock:
            records, self._task_records = self._task_records, []
        try:
            if records:
                self.state.append_records(self.job, "tasks", records)
            self.state.heartbeat(self.job, self.executor_id, self.heartbeat_ttl, exited=exited)
        except transient_errors():
            with self._lock:
                self._task_records[:0] = records

    def _report_loop(self) -> None:
        while not self._stop.wait(self.report_s):
            self._report()

