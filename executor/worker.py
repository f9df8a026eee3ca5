"""The stateless executor: lease -> read -> compute -> write -> complete -> enqueue -> acknowledge.

State an executor keeps (none of it needed by anyone else):
``bound``      the job's implicit DAG, rebuilt from the stored description;
``cache``      a small LRU of recently read or written tiles (key -> array);
``renewals``   leases being renewed by the background thread (receipt -> task).

Per message (a task as JSON):

1. If the state store says the task is done, it is a duplicate or a re-delivery
   after a crash between ``complete`` and ``ack``: call ``complete`` again (it is
   idempotent and returns the ready children), enqueue them, acknowledge.
2. Otherwise read the input tiles (concurrently), run the kernel, write each
   output tile (atomic puts), ``complete`` the task, enqueue the children it
   made ready, acknowledge; then delete the scratch tiles it read whose readers
   have all completed.  A crash anywhere here leaves the message to
   reappear when its lease expires; the re-run writes identical tiles.
3. A kernel exception marks the job failed with the task, its source line and
   the traceback (the first failure wins), and the executor stops.

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
from numpywren2.backends import TRANSIENT_ERRORS, StateStore, TaskQueue, TileStore, with_retries
from numpywren2.jobspec import load, tile_key


class Executor:
    def __init__(self, store: TileStore, queue: TaskQueue, state: StateStore, job: str, lease: float = 60.0,
                 idle_timeout: float = 10.0, time_limit: float | None = None, io_threads: int = 4,
                 cache_tiles: int = 8, executor_id: str | None = None, report_s: float = 1.0,
                 heartbeat_ttl: float = 5.0):
        self.store, self.queue, self.state, self.job = store, queue, state, job
        self.lease, self.idle_timeout, self.time_limit = lease, idle_timeout, time_limit
        self.bound, self.kernels, desc = load(state.job(job)["description"])
        self.prefixes = desc["prefixes"]
        self.scratch = set(desc["scratch"])
        self.pool = ThreadPoolExecutor(io_threads)
        self.cache: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
        self.cache_tiles = cache_tiles
        self.renewals: dict[str, Task] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.tasks_run = 0
        self.executor_id = executor_id or f"x-{uuid.uuid4().hex[:12]}"
        self.report_s, self.heartbeat_ttl = report_s, heartbeat_ttl
        self._task_records: list[str] = []

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        start = time.monotonic()
        last_work = start
        renewer = threading.Thread(target=self._renew_loop, daemon=True)
        renewer.start()
        self._report()
        reporter = threading.Thread(target=self._report_loop, daemon=True)
        reporter.start()
        try:
            while True:
                if self.time_limit is not None and time.monotonic() - start > self.time_limit:
                    break
                try:
                    if with_retries(self.state.status, self.job) != "running":
                        break
                except KeyError:  # the job record is gone (deleted, or a state server lost it)
                    break
                msgs = self.queue.receive(1, lease=self.lease, wait=0.5)
                if not msgs:
                    if time.monotonic() - last_work > self.idle_timeout:
                        break
                    continue
                for m in msgs:
                    if not self._handle(m):
                        return self.tasks_run
                last_work = time.monotonic()
        finally:
            self._stop.set()
            self.pool.shutdown(wait=False)
            self.state.add_counters(self.job, {"executor_s": time.monotonic() - start, "executors": 1})
            reporter.join()
            self._report(exited=True)
        return self.tasks_run

    def _handle(self, msg) -> bool:
        task = self.bound.task_from_json(msg.body)
        key = msg.body
        if self.state.is_done(self.job, key):
            self._finish(task, key, msg)
            return True
        with self._lock:
            self.renewals[msg.receipt] = task
        try:
            ok = self._execute(task)
        finally:
            with self._lock:
                self.renewals.pop(msg.receipt, None)
        if not ok:
            return False
        self._finish(task, key, msg)
        self._free_consumed(task)
        self.tasks_run += 1
        return True

    def _finish(self, task: Task, key: str, msg) -> None:
        children = [(c.to_json(), self.bound.in_degree(c)) for c in self.bound.children(task)]
        ready = with_retries(self.state.complete, self.job, key, children, retry_on=TRANSIENT_ERRORS)
        if ready:
            with_retries(self.queue.send, ready, retry_on=TRANSIENT_ERRORS)
        with_retries(self.queue.ack, msg.receipt, retry_on=TRANSIENT_ERRORS)

    def _free_consumed(self, task: Task) -> None:
        """Delete the scratch tiles this task read whose every reader has completed.

        Safe against races and re-runs: a tile is deleted only when all its readers are
        done, and a done task never reads its inputs again.
        """
        freed = 0
        for m, idx in self.bound.reads(task):
            if m not in self.scratch:
                continue
            if all(self.state.is_done(self.job, r.to_json()) for r in self.bound.readers_of(m, idx)):
                k = tile_key(self.prefixes, m, idx)
                with self._lock:
                    self.cache.pop(k, None)
                freed += self.store.delete(k)
        if freed:
            self.state.add_counters(self.job, {"tiles_freed": freed})

    # ------------------------------------------------------------------ one task
    def _execute(self, task: Task) -> bool:
        stmt = self.bound.stmt(task)
        args = self.bound.kernel_args(task)
        keys = [tile_key(self.prefixes, a[1], a[2]) if isinstance(a, tuple) else None for a in args]
        wanted = [k for k in keys if k is not None]
        t0 = time.perf_counter()
        tiles = dict(zip(wanted, self.pool.map(self._read, wanted)))
        t1 = time.perf_counter()
        call = [a if k is None else tiles[k] for a, k in zip(args, keys)]
        try:
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
            written += with_retries(self.store.put, k, np.asarray(value), retry_on=TRANSIENT_ERRORS)
            self._remember(k, value)
        t3 = time.perf_counter()
        read_bytes = sum(t.nbytes for t in tiles.values())
        self._record_task(task, t0, t3, read_bytes + written, t2 - t1)
        self.state.add_counters(self.job, {"kernel_s": t2 - t1, "read_s": t1 - t0, "write_s": t3 - t2,
                                           "bytes_read": read_bytes, "bytes_written": written})
        return True

    def _read(self, key: str) -> np.ndarray:
        with self._lock:
            if key in self.cache:
                self.cache.move_to_end(key)
                return self.cache[key]
        tile = with_retries(self.store.get, key, retry_on=TRANSIENT_ERRORS)
        self._remember(key, tile)
        return tile

    def _remember(self, key: str, tile) -> None:
        with self._lock:
            self.cache[key] = tile
            self.cache.move_to_end(key)
            while len(self.cache) > self.cache_tiles:
                self.cache.popitem(last=False)

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
        except TRANSIENT_ERRORS:
            with self._lock:
                self._task_records[:0] = records

    def _report_loop(self) -> None:
        while not self._stop.wait(self.report_s):
            self._report()

