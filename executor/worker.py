"""The stateless executor: lease -> check -> read -> compute -> check -> write -> complete -> enqueue -> ack.

State an executor keeps (none of it needed by anyone else):
``bound``      the job's implicit DAG, rebuilt from the stored description;
``matrices``   shape, block size and dtype of each named matrix (from the description): the slots
               that kernel outputs are checked against;
``cache``      an LRU of recently read or written tiles (key -> array), at most ``cache_bytes``
               (default: a quarter of the address-space limit if one is set, else 512 MiB);
``renewals``   leases being renewed by the background thread (receipt -> task).

``counters``   per-job counter increments not yet written to the state store;
``task_s``     a moving average of the time a task takes here, which sets ``batch``;
``read_s``     a moving average of the time a tile read takes: above 2 ms, a task's tiles
               are read concurrently by ``pool`` (a thread hand-off costs more than a fast read).
``hooks``      optional callables run between protocol steps (for tests; see below).

Per message:

0. The body is canonicalised: parsed (``Task.from_json``: ``[int, [int, ...]]`` and nothing
   else), checked to be in the program's iteration space (``BoundProgram.contains``: statement
   id, number of loop values, loop bounds, guards) and re-serialised (``Task.to_json``).  A
   message that fails is dropped: acknowledged, logged to stderr and counted (``tasks_dropped``).
   Every later step (done-checks, completion, edge counts, freeing scratch tiles) uses the
   canonical key only, so a re-formatted copy of a task is the same task, and the job is done
   when each distinct valid task is.
1. If the state store says the task is done, it is a duplicate or a re-delivery
   after a crash between ``complete`` and ``ack``: call ``complete`` again (it is
   idempotent and returns the ready children), enqueue them, acknowledge.
2. Otherwise read the input tiles (concurrently; each read verifies the tile's checksum), run
   the kernel, check each output against its slot (``jobspec.output_problem``: an ndarray of the
   tile's shape and the matrix's dtype; a 2-D float ndarray for scratch spaces), write each
   output tile (atomic puts), ``complete`` the task, enqueue the children it made ready with
   their priorities, acknowledge; then delete the scratch tiles it read whose readers have all
   completed.  A crash anywhere here leaves the message to reappear when its lease expires; the
   re-run writes identical tiles.
3. A missing input tile is examined, not retried blindly:
   - the task is done already: this is a second copy of it (a re-delivery whose first copy
     finished and freed its scratch inputs): finish it as in 1 (``tasks_duplicate``);
   - the job has ended (its scratch tiles are deleted): stop;
   - a task that writes the tile is not done: the message arrived before the task was ready
     (a copy sent by hand; the real one is enqueued when its inputs are): drop it
     (``tasks_premature``);
   - otherwise the tile is lost (an input deleted or never uploaded, an intermediate deleted
     behind the job's back), after one re-read in case its writer finished meanwhile: the job fails.
4. The job fails at once, with the task, its source line and the cause in the job record (the
   first failure wins; ``Job.wait`` raises it), and the executor stops, when: a kernel raises; a
   kernel's output does not fit its slot (``KernelOutputError``); an input tile is lost
   (``TileLostError``), corrupt or truncated (``CorruptTileError``) or unreadable; a write fails
   for a reason a retry cannot cure (a full disk, a read-only store: the OS error with its errno).
   The record names the tile key and the errno where there is one.  Transient storage errors are
   retried (``with_retries``); when the retries run out the executor exits with the error (the
   provisioner replaces it, and fails the job after several such exits in a row).

Nothing written after the job ended survives its clean-up.  The client sets the job's final
status *before* it deletes the job's scratch prefix (``Job._end``: status S, then delete D).  An
executor writes a task's outputs (W) *before* it completes the task, and the completion step
reports the job's status as read after the task was marked done (C; one transaction or Lua script
with the completion on SQLite and Redis, ``StateStore.complete_and_forward``, so it costs no
extra round trip).  If C reads "running", then C came before S, so W < C < S < D and the
clean-up D deletes what W wrote.  If C reads any other status, the executor deletes the scratch
tiles the task wrote, and sweeps the job's scratch prefix (removing what a concurrent clean-up and
this late write may have left, such as directories), after W; nothing it wrote remains.  An
executor that writes nothing after C (it writes no tile after completing, and stops) cannot leave
anything behind.  (An executor killed between W and C after the job ended can: nothing runs after a
kill.  Its tiles are deleted with the job's next clean-up, e.g. ``delete_prefix`` of the job id.)
An ended job's queue is not refilled either: the completion enqueues children only while running.

Round trips are what limit short tasks, so the loop keeps them few:

- when the state store and the queue share a database (one SQLite file, one
  Redis server), step 2's complete + enqueue + acknowledge (and the pending
  counter increments, and reading the job's status) are one transaction:
  ``StateStore.complete_and_forward``;
- tasks that take less than ``batch_target`` seconds are leased several at a
  time (``batch``, at most ``max_batch``), and their done-checks are one query;
  long tasks are leased one at a time so that no executor hoards work;
- the job's status is checked every ``status_interval`` seconds, not per task (and read with
  every completion), and the counters (kernel seconds, bytes...) are written at most every
  ``counter_interval`` seconds, riding along with a completion, and when the executor stops.

Children are enqueued with ``BoundProgram.priority``: their place in a serial run,
so a factorization's critical path (panel, then the next column's update) runs first.

The loop stops when the job is no longer running, after ``idle_timeout``
seconds without work, or before ``time_limit``.

Hooks: ``Executor(..., hooks={"start": f})`` calls ``f(task)`` at that point of a task's
protocol, in the executor's thread: ``"start"`` before its input tiles are read, ``"written"``
after its output tiles are written and before it is completed, ``"completed"`` after it is
completed, its children forwarded and its consumed scratch tiles freed, ``"dropped"`` after a
message of a task that was not ready yet is acknowledged unrun (step 3).  A hook may block (to
hold an executor between two steps while another runs) or raise.  None by default.

Reporting (off the per-task path): every ``report_s`` seconds a background
thread renews this executor's heartbeat in the state store (so a provisioner can
count live executors, and a killed one stops counting within ``heartbeat_ttl``)
and appends the per-task records buffered since the last report (task, kernel name, executor,
start, end, bytes, kernel seconds, and the kernel's flop formula evaluated on the tiles it was
given: exact for ragged edge tiles; None for a kernel without a formula).  A clean stop flushes them and records the
exit; an executor killed outright loses the records of its last ``report_s``
seconds (the tasks themselves are not lost: they re-run).
"""

from __future__ import annotations

import collections
import errno
import json
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from lambdapack import Kernel, Task
from numpywren2.core.backends import (
    BackendError,
    CorruptTileError,
    StateStore,
    TaskQueue,
    TileLostError,
    TileNotFoundError,
    TileStore,
    open_queue,
    open_state,
    open_store,
    transient_errors,
    with_retries,
)
from numpywren2.core.jobspec import KernelOutputError, describe_value, load, output_problem, tile_key, tile_slot

from .spec import DEFAULT_IDLE_TIMEOUT, DEFAULT_LEASE, ExecutorSpec


class _JobFailedError(Exception):
    """Internal: this executor has marked the job failed (the record holds the cause)."""


class _MissingInputError(Exception):
    """Internal: an input tile of the task is missing (step 3 of the protocol decides what it means)."""

    def __init__(self, key: str, matrix: str, idx: tuple[int, ...]):
        super().__init__(key)
        self.key, self.matrix, self.idx = key, matrix, idx


class _ReadFailure:
    """A tile read's exception, carried back from the read pool."""

    def __init__(self, error: BaseException):
        self.error = error


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
    def __init__(self, store: TileStore, queue: TaskQueue, state: StateStore, job: str, lease: float = DEFAULT_LEASE,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT, time_limit: float | None = None, io_threads: int = 4,
                 cache_bytes: int | None = None, status_interval: float = 1.0, max_batch: int = 8,
                 batch_target: float = 0.02, counter_interval: float = 0.5, executor_id: str | None = None,
                 report_s: float = 1.0, heartbeat_ttl: float = 5.0,
                 hooks: Mapping[str, Callable[[Task], object]] | None = None):
        self.store, self.queue, self.state, self.job = store, queue, state, job
        self.lease, self.idle_timeout, self.time_limit = lease, idle_timeout, time_limit
        self.status_interval, self.max_batch, self.batch_target = status_interval, max_batch, batch_target
        self.counter_interval = counter_interval
        self._flushed = 0.0  # time.monotonic() of the last counter flush
        self.bound, self.kernels, desc = load(state.job(job)["description"])
        self.prefixes = desc["prefixes"]
        self.scratch = set(desc["scratch"])
        self.matrices: dict[str, dict] = desc.get("matrices") or {}
        # where the job's scratch tiles live, swept when a task completes after the job ended
        self.scratch_root = f"{job}/" if all(self.prefixes[m].startswith(f"{job}/") for m in self.scratch) else None
        self.hooks = dict(hooks or {})
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
                    work = [(m, t) for m in msgs if (t := self._canonical(m)) is not None]
                    keys = [t.to_json() for _, t in work]
                    done = with_retries(self.state.done_many, self.job, keys) if work else []
                    for (m, task), key, was_done in zip(work, keys, done):
                        if not self._handle(m, task, key, was_done):
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

    def _hook(self, step: str, task: Task) -> None:
        fn = self.hooks.get(step)
        if fn is not None:
            fn(task)

    # ------------------------------------------------------------------ one message
    def _canonical(self, msg) -> Task | None:
        """The task a message names, or None (the message dropped) if it is malformed or not a task of
        this program (step 0)."""
        try:
            raw = Task.from_json(msg.body)
        except ValueError as e:
            reason = str(e)
        else:
            if self.bound.contains(raw):
                return self.bound.task(raw[0], raw[1])
            reason = self._why_not_contained(raw)
        print(f"executor {self.executor_id}: job {self.job}: dropped the queue message {msg.body[:200]!r}: {reason}",
              file=sys.stderr, flush=True)
        self.counters["tasks_dropped"] += 1
        with_retries(self.queue.ack, msg.receipt)
        return None

    def _why_not_contained(self, t: Task) -> str:
        stmt, idx = t
        b = self.bound
        if not 0 <= stmt < len(b.stmts):
            return f"statement id {stmt} is not one of the program's 0..{len(b.stmts) - 1}"
        s = b.stmts[stmt]
        if len(idx) != len(s.vars):
            return (f"statement {s.label} has {len(s.vars)} loop variable(s) ({', '.join(s.vars) or 'none'}), "
                    f"the message gives {len(idx)} value(s)")
        named = ", ".join(f"{v}={x}" for v, x in zip(s.vars, idx))
        return f"{s.label}({named}) is outside its loop bounds or guards: not a task of {b!r}"

    def _handle(self, msg, task: Task, key: str, was_done: bool) -> bool:
        """One canonical task; False when this executor should stop (the job failed or ended)."""
        if was_done:
            return self._finish(task, key, msg) == "running"
        t0 = time.perf_counter()
        written: list[str] = []
        for attempt in range(2):
            self._hook("start", task)
            try:
                written = self._execute(task)
                break
            except _JobFailedError:
                return False
            except _MissingInputError as miss:
                verdict = self._missing(task, key, miss, may_retry=attempt == 0)
                if verdict == "retry":
                    continue
                if verdict == "duplicate":
                    self.counters["tasks_duplicate"] += 1
                    return self._finish(task, key, msg) == "running"
                if verdict == "premature":
                    self.counters["tasks_premature"] += 1
                    with_retries(self.queue.ack, msg.receipt)
                    self._hook("dropped", task)
                    return True
                if verdict == "ended":
                    return False
                self._fail(task, TileLostError(verdict), key=miss.key)
                return False
        self._hook("written", task)
        if self._finish(task, key, msg) != "running":
            self._discard(task, written)
            return False
        self._free_consumed(task, key)
        self._hook("completed", task)
        el = time.perf_counter() - t0
        self.task_s = el if self.task_s is None else 0.8 * self.task_s + 0.2 * el
        self.tasks_run += 1
        return True

    def _missing(self, task: Task, key: str, miss: _MissingInputError, may_retry: bool) -> str:
        """What a missing input tile means (step 3): "duplicate", "ended", "premature", "retry", or the
        message of the job's failure (the tile is lost)."""
        if with_retries(self.state.is_done, self.job, key):
            return "duplicate"
        if not self._running():
            return "ended"
        writers = self.bound.writers_of(miss.matrix, miss.idx)
        where = f"tile {miss.key!r} (matrix {miss.matrix}, tile {miss.idx})"
        if not writers:
            return (f"input {where} is missing: it was deleted, or never uploaded (the job reads it, no task "
                    "writes it)")
        done = with_retries(self.state.done_many, self.job, [w.to_json() for w in writers])
        if not all(done):
            return "premature"
        if may_retry:
            return "retry"
        return (f"{where} is missing although {writers[0]}, which writes it, is done: it was deleted while the "
                "job ran")

    def _finish(self, task: Task, key: str, msg) -> str | None:
        """complete + enqueue the ready children + acknowledge (one step where the backends allow);
        returns the job's status as read after the completion."""
        b = self.bound
        children = [(c.to_json(), b.in_degree(c), b.priority(c)) for c in b.children(task)]
        counters = {}
        now = time.monotonic()
        if now - self._flushed >= self.counter_interval:  # counters ride along at most this often
            counters, self.counters, self._flushed = self.counters, collections.Counter(), now
        try:
            done = with_retries(self.state.complete_and_forward, self.job, key, children, self.queue,
                                msg.receipt, dict(counters))
        except BaseException:
            self.counters.update(counters)
            raise
        if done is not None:
            return done.status
        if counters:
            with_retries(self.state.add_counters, self.job, dict(counters))
            self._flushed = now
        done = with_retries(self.state.complete_with_status, self.job, key, [(k, d) for k, d, _ in children])
        if done.ready and done.status == "running":  # an ended job's queue is deleted: do not refill it
            prio = {k: p for k, _, p in children}
            with_retries(self.queue.send_many, [(k, prio[k]) for k in done.ready])
        with_retries(self.queue.ack, msg.receipt)
        return done.status

    def _discard(self, task: Task, written: list[str]) -> None:
        """The job ended while ``task`` ran (its completion said so): delete the scratch tiles it wrote, which
        the job's clean-up may have missed, and sweep the job's scratch prefix."""
        scratch = {tile_key(self.prefixes, m, idx) for m, idx in self.bound.writes(task) if m in self.scratch}
        for k in written:
            if k in scratch:
                self._forget(k)
                with_retries(self.store.delete, k)
        if scratch and self.scratch_root is not None:
            with_retries(self.store.delete_prefix, self.scratch_root)
        print(f"executor {self.executor_id}: job {self.job} ended while {task} ran; deleted its scratch output",
              file=sys.stderr, flush=True)

    def _fail(self, task: Task, exc: BaseException, key: str | None = None, doing: str | None = None) -> None:
        """Mark the job failed with ``exc`` as the cause of ``task``'s failure (the first failure wins)."""
        stmt = self.bound.stmt(task)
        message = str(exc)
        error = {"task": str(task), "line": stmt.src.line, "file": stmt.src.filename,
                 "type": f"{type(exc).__module__}.{type(exc).__qualname__}", "message": message,
                 "traceback": "".join(traceback.format_exception(exc))}
        if key is not None:
            error["key"] = key
        if isinstance(exc, OSError) and exc.errno:
            name = errno.errorcode.get(exc.errno, str(exc.errno))
            error["errno"] = name
            error["message"] = f"{doing or 'tile ' + repr(key)}: {name} ({exc.strerror or exc})"
        elif doing:
            error["message"] = f"{doing}: {message}"
        print(f"executor {self.executor_id}: job {self.job}: task {task} (line {stmt.src.line} of "
              f"{stmt.src.filename}) failed: {error['type']}: {error['message']}", file=sys.stderr, flush=True)
        with_retries(self.state.set_status, self.job, "failed", json.dumps(error))

    def _flush_counters(self) -> None:
        if self.counters:
            counters, self.counters = dict(self.counters), collections.Counter()
            with_retries(self.state.add_counters, self.job, counters)
            self._flushed = time.monotonic()

    def _free_consumed(self, task: Task, me: str) -> None:
        """Delete the scratch tiles this task (canonical key ``me``) read whose every reader has completed.

        Safe against races and re-runs: a tile is deleted only when all its readers are
        done, and a done task never reads its inputs again (a second copy of it that finds an input
        gone finds the task done: step 3).  This task is done; the other readers of all its scratch
        inputs are checked in one query.
        """
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
    def _execute(self, task: Task) -> list[str]:
        """Read, compute, check and write one task; returns the keys written.  Raises ``_MissingInputError``
        for a missing input tile and ``_JobFailedError`` once the job is marked failed."""
        stmt = self.bound.stmt(task)
        args = self.bound.kernel_args(task)
        keys = [tile_key(self.prefixes, a[1], a[2]) if isinstance(a, tuple) else None for a in args]
        slots = {k: (a[1], a[2]) for a, k in zip(args, keys) if k is not None}
        wanted = list(slots)
        t0 = time.perf_counter()
        if len(wanted) > 1 and self.read_s > 0.002:  # slow stores (S3): read concurrently
            got = list(self.pool.map(self._try_read, wanted))
        else:
            got = [self._try_read(k) for k in wanted]
        for k, r in zip(wanted, got):
            if isinstance(r, _ReadFailure):
                self._read_failed(task, k, slots[k], r.error)
        tiles = dict(zip(wanted, got))
        t1 = time.perf_counter()
        if wanted:
            self.read_s = 0.8 * self.read_s + 0.2 * (t1 - t0) / len(wanted)
        call = [a if k is None else tiles[k] for a, k in zip(args, keys)]
        outs = self.bound.writes(task)
        try:
            check_finite_inputs(self.check_finite, args, call)
            kernel = self.kernels[stmt.kernel]
            result = kernel(*call)
        except Exception as e:
            self._fail(task, e)
            raise _JobFailedError from None
        values = self._check_outputs(task, outs, result)
        t2 = time.perf_counter()
        written, nbytes = [], 0
        for (m, idx), value in zip(outs, values):
            k = tile_key(self.prefixes, m, idx)
            try:
                nbytes += with_retries(self.store.put, k, value)
            except BackendError:  # transient errors that outlasted the retries: this executor gives up
                raise
            except Exception as e:  # a full disk, a read-only store...: no retry will help
                self._fail(task, e, key=k, doing=f"writing output tile {k!r} (matrix {m}, tile {idx})")
                raise _JobFailedError from None
            written.append(k)
            if value.flags.owndata:
                value.flags.writeable = False  # cached: later kernels must not change it in place
            self._remember(k, value)
        t3 = time.perf_counter()
        read_bytes = sum(t.nbytes for t in tiles.values())
        flops = kernel.count_flops(*call) if isinstance(kernel, Kernel) else None  # from the actual tile shapes
        self._record_task(task, stmt.kernel, t0, t3, read_bytes + nbytes, t2 - t1, flops)
        self.counters.update({"kernel_s": t2 - t1, "read_s": t1 - t0, "write_s": t3 - t2,
                              "bytes_read": read_bytes, "bytes_written": nbytes})
        return written

    def _try_read(self, key: str):
        try:
            return self._read(key)
        except Exception as e:
            return _ReadFailure(e)

    def _read_failed(self, task: Task, key: str, slot: tuple[str, tuple[int, ...]], e: BaseException) -> None:
        m, idx = slot
        if isinstance(e, TileNotFoundError):
            raise _MissingInputError(key, m, idx)
        if isinstance(e, BackendError) and not isinstance(e, CorruptTileError):
            raise e  # transient errors that outlasted the retries: this executor gives up
        # corrupt or truncated, unreadable (a directory, no permission), or a store's permanent error
        self._fail(task, e, key=key, doing=f"reading input tile {key!r} (matrix {m}, tile {idx})")
        raise _JobFailedError from None

    def _check_outputs(self, task: Task, outs: list[tuple[str, tuple[int, ...]]], result) -> list[np.ndarray]:
        """The kernel's output tiles, each checked against its slot; a misfit fails the job."""
        stmt = self.bound.stmt(task)
        names = ", ".join(f"{m}[{', '.join(map(str, idx))}]" for m, idx in outs)
        if len(outs) > 1:
            if not isinstance(result, tuple) or len(result) != len(outs):
                got = describe_value(result)
                self._fail(task, KernelOutputError(f"kernel {stmt.kernel} returned {got}; expected a tuple of "
                                                   f"{len(outs)} tiles, for its outputs {names}"))
                raise _JobFailedError
            values = list(result)
        else:
            values = [result]
        for (m, idx), value in zip(outs, values):
            meta = None if m in self.scratch else self.matrices.get(m)
            shape, dtype, problem = tile_slot(meta, idx)
            problem = problem or output_problem(value, shape, dtype)
            if problem is not None:
                k = tile_key(self.prefixes, m, idx)
                self._fail(task, KernelOutputError(
                    f"kernel {stmt.kernel} returned a tile that does not fit its output {m}[{', '.join(map(str, idx))}]"
                    f" (tile key {k!r}): {problem}"), key=k)
                raise _JobFailedError
        return values

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
    def _record_task(self, task: Task, kernel: str, t_start: float, t_end: float, nbytes: int, kernel_s: float,
                     flops: float | None) -> None:
        """Buffer one task's record (``perf_counter`` times, stored as wall-clock seconds); ``flops`` is the
        kernel's formula on the tiles it was given (None without a formula)."""
        offset = time.time() - time.perf_counter()
        rec = {"task": str(task), "kernel": kernel, "executor": self.executor_id, "start": round(t_start + offset, 4),
               "end": round(t_end + offset, 4), "bytes": int(nbytes), "kernel_s": round(kernel_s, 6), "flops": flops}
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


def run(spec: ExecutorSpec, executor_id: str | None = None, time_limit: float | None = None) -> int:
    """Open the spec's backends and run one executor until it stops; returns the number of tasks it ran.

    Every way into an executor ends here: ``python -m executor`` (run by the warm zygote's children and
    by the simulated-Lambda sandbox too) and the Lambda handler.  ``time_limit`` overrides the spec's
    (a Lambda handler knows its deadline only when invoked).
    """
    limit = time_limit if time_limit is not None else spec.time_limit
    ex = Executor(open_store(spec.store), open_queue(spec.queue, spec.job), open_state(spec.state), spec.job,
                  lease=spec.lease, idle_timeout=spec.idle_timeout, time_limit=limit, executor_id=executor_id)
    return ex.run()
