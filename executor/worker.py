"""The stateless executor: lease -> check -> read -> compute -> check -> write -> complete -> enqueue -> ack.

``Executor`` is the loop: it gathers facts (messages, the state store's answers, the clock), asks the
pure functions of ``executor.decisions`` what they mean, and carries out the answer.  What it keeps
(none of it needed by anyone else):

``bound``      the job's implicit DAG, rebuilt from the stored description;
``matrices``   shape, block size and dtype of each named matrix (from the description): the slots
               that kernel outputs are checked against;
``ledger``     the completion step for this job's state store and queue (``StateStore.ledger``);
``loop``       the loop's state (``decisions.LoopState``: start, last work, next status read, the
               moving averages of a task's and a tile read's time) and ``limits``, its settings;
``cache``      an LRU of recently read or written tiles (``upkeep.TileCache``), at most ``cache_bytes``
               (default: a quarter of the address-space limit if one is set, else 512 MiB);
``leases``     the leases being renewed by a background thread (``upkeep.LeaseRenewer``);
``counters``   per-job counter increments not yet written to the state store (``upkeep.CounterBuffer``);
``reporter``   the heartbeat and per-task records (``upkeep.Reporter``);
``hooks``      optional callables run between protocol steps (for tests; see below).

Before any message: the job's description is verified (``load_verified``: its signature, with the
key ``core.signing`` finds, then its tile prefixes, before a kernel is imported or unpickled); a
description that fails marks the job failed with the reason and the executor exits (``JobRefusedError``;
``python -m executor`` exits with status 3).

Per message:

0. The body is authenticated (``signing.open_message``: its tag, an HMAC under the job's task key);
   a message that fails is dropped unrun (acknowledged, logged, counted as ``tasks_forged``).  Its
   task is canonicalised: parsed (``Task.from_json``: ``[int, [int, ...]]`` and nothing
   else), checked to be in the program's iteration space (``BoundProgram.contains``: statement
   id, number of loop values, loop bounds, guards) and re-serialised (``Task.to_json``).  A
   message that fails is dropped: acknowledged, logged to stderr and counted (``tasks_dropped``).
   Every later step (done-checks, completion, freeing scratch tiles) uses the canonical key only
   (the edge counts, the sealed body of the canonical key: one string per task of a job), so a
   re-formatted copy of a task is the same task, and the job is done
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
     behind the job's back), after one re-read in case its writer finished meanwhile: the job fails;
     unless the tile store holds a watermark (below) above the store's ``completed`` count: then the
     state store went back in time after the tile was freed (an older snapshot restored), and the job
     fails with that reason, as in ``_rolled_back``.
   Freed scratch tiles leave a trace that a state store restored from a snapshot cannot take back:
   before an executor deletes consumed scratch tiles it writes its watermark (the highest
   ``completed`` count it was told, which counts the completions that freed them) to
   ``<job>/_watermark/<executor>`` in the tile store.  To keep this off the per-task path, the
   deletes are gathered and done with one watermark write at most every ``status_interval`` (the
   first at once; the rest at the next free past the interval, when idle, and when the executor
   stops); a killed executor's gathered tiles go with the job's scratch prefix when it ends.
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
with the completion on SQLite and Redis, ``Ledger.finish_many``, so it costs no extra round trip).
If C reads "running", then C came before S, so W < C < S < D and the clean-up D deletes what W
wrote.  If C reads any other status, the executor deletes the scratch
tiles the task wrote, and sweeps the job's scratch prefix (removing what a concurrent clean-up and
this late write may have left, such as directories), after W; nothing it wrote remains.  An
executor that writes nothing after C (it writes no tile after completing, and stops) cannot leave
anything behind.  (An executor killed between W and C after the job ended can: nothing runs after a
kill.  Its tiles are deleted with the job's next clean-up, e.g. ``delete_prefix`` of the job id.)
An ended job's queue is not refilled either: the completion enqueues children only while running.

Round trips are what limit short tasks, so the loop keeps them few:

- step 2's complete + enqueue + acknowledge (and the pending counter increments,
  and reading the job's status) are one call, ``Ledger.finish_many``: one transaction
  or script when the state store and the queue share a database (one SQLite
  file, one Redis server), the unfused sequence of calls otherwise; and one such
  call completes every task of a batch that ran within ``batch_target`` seconds
  (``decisions.finish_now``: a long task is completed at once);
- the same step leases to this executor (claims) up to ``claim_count`` of the children it made
  ready whose input tiles are all in its cache and that come first in priority
  (``backends.plan_claims``); they are run next, with no receive, no tag check and no reads.  A
  claimed child is a queue message leased from the start: renewed, acknowledged, and re-delivered
  when its executor dies, like any other;
- while a kernel runs, the input tiles of the next task of its batch are read in the background
  (``decisions.prefetch``: only where reads are slow, a remote store);
- tasks that take less than ``batch_target`` seconds are leased several at a
  time (``decisions.batch_size``, at most ``max_batch``), and their done-checks are one query;
  long tasks are leased one at a time so that no executor hoards work;
- the job's status is checked every ``status_interval`` seconds, not per task (and read with
  every completion), and the counters (kernel seconds, bytes...) are written at most every
  ``counter_interval`` seconds, riding along with a completion, and when the executor stops.

Children are enqueued with ``BoundProgram.priority``: their place in a serial run,
so a factorization's critical path (panel, then the next column's update) runs first.

The loop stops when the job is no longer running, after ``idle_timeout``
seconds without work, or before ``time_limit``.

Hooks: ``Executor(..., hooks={"start": f})`` calls ``f(task)`` at that point of a task's
protocol, in the executor's thread (``"completed"``: in the thread that completed it, which is the
background thread of ``upkeep.PendingCompletions`` for a short task left pending behind a long one):
``"start"`` before its input tiles are read, ``"written"``
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
import json
import logging
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from lambdapack import Kernel, Task
from numpywren2.core.backends import (
    Finish,
    QueueLostError,
    StateStore,
    TaskQueue,
    TileLostError,
    TileStore,
    open_queue,
    open_state,
    open_store,
    with_retries,
)
from numpywren2.core.jobspec import JobSpec, KernelOutputError, tile_slot
from numpywren2.core.outcome import (
    ABANDONED,
    FAILED,
    RUNNING,
    Watermark,
    abandon_s,
    is_abandoned,
    last_sample,
    replaced_error,
    rollback_error,
    rollback_reason,
)
from numpywren2.core.signing import (
    SignatureError,
    SigningKeyError,
    UntrustedKernelError,
    foreign_prefixes,
    load_secret,
    open_message,
    redact_url,
    seal_message,
    task_key,
    trusted_from_env,
    verify_description,
)

from .decisions import (
    Action,
    Decision,
    Limits,
    LoopState,
    after_error,
    after_finish,
    after_idle,
    after_missing_input,
    after_overrun,
    after_status,
    canonical_task,
    check_outputs,
    claim_count,
    failure_record,
    finish_now,
    freeable,
    moving_average,
    next_step,
    on_leased,
    prefetch,
    read_concurrently,
)
from .spec import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_LEASE,
    DEFAULT_TASK_ATTEMPTS,
    DEFAULT_TASK_TIMEOUT,
    EXIT_TASK_TIMEOUT,
    ExecutorSpec,
)
from .upkeep import (
    CounterBuffer,
    LeaseRenewer,
    LogBuffer,
    PendingCompletions,
    Reporter,
    TaskWatchdog,
    TileCache,
    default_cache_bytes,
)

log = logging.getLogger("executor")

__all__ = ["Executor", "JobRefusedError", "check_finite_inputs", "default_cache_bytes", "run"]


class JobRefusedError(RuntimeError):
    """This executor will not run the job: its description's signature does not verify, no key is
    configured here, it names an untrusted kernel module, or it reaches into another job's keys.  The
    job is marked failed with the reason (``refuse``)."""


class _JobFailedError(Exception):
    """Internal: this executor has marked the job failed (the record holds the cause)."""


class _AbandonedError(Exception):
    """Internal: the task ran past the task time limit and was abandoned (``decisions.after_overrun``)."""


class _MissingInputError(Exception):
    """Internal: an input tile of the task is missing (``decisions.after_missing_input`` decides what it means)."""

    def __init__(self, key: str, matrix: str, idx: tuple[int, ...]):
        super().__init__(key)
        self.key, self.matrix, self.idx = key, matrix, idx


# A completed task offers at most this many of its children (those whose inputs are all cached) to be
# leased to its executor in the completion step (``Finish.claim``); the ledger picks by priority.
MAX_CLAIM_CANDIDATES = 8
LOCALITY_ENV = "NPW_LOCALITY"  # "0": no claims, no prefetches (to measure what they bring)


@dataclass
class _Pending:
    """A task run (or forwarded: ``again``, it was done already) and not yet completed: it waits for the
    next completion step (``Executor._complete``)."""

    task: Task
    key: str
    msg: object
    again: bool
    written: list[str] | None
    t0: float


class _ReadFailure:
    """A tile read's exception, carried back from the read pool."""

    def __init__(self, error: BaseException):
        self.error = error


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
                 cache_bytes: int | None = None, status_interval: float = 1.0, max_batch: int = 32,
                 batch_target: float = 0.02, counter_interval: float = 0.5, executor_id: str | None = None,
                 report_s: float = 1.0, heartbeat_ttl: float = 5.0,
                 hooks: Mapping[str, Callable[[Task], object]] | None = None, secret: bytes | None = None,
                 task_timeout: float = DEFAULT_TASK_TIMEOUT, task_attempts: int = DEFAULT_TASK_ATTEMPTS,
                 exit_on_overrun: bool = False, locality: bool | None = None):
        self.store, self.queue, self.state, self.job = store, queue, state, job
        self.ledger = state.ledger(queue)
        self.lease = lease
        # claims and prefetches (on unless NPW_LOCALITY=0, a switch for measuring what they bring)
        self.locality = os.environ.get(LOCALITY_ENV, "1") != "0" if locality is None else locality
        self.limits = Limits(idle_timeout, time_limit, status_interval, max_batch, batch_target)
        self.loop = LoopState(started=0.0, last_work=0.0, next_status=0.0)
        self.spec, self.bound, self.kernels, self.task_key = load_verified(state, job, secret)
        self.scratch = set(self.spec.scratch)
        self.matrices = self.spec.matrices
        # where the job's scratch tiles live, swept when a task completes after the job ended
        self.scratch_root = self.spec.scratch_root(job)
        never_packed = getattr(store, "never_packed", None)  # the embedded store: scratch tiles are plain files
        if never_packed is not None:
            never_packed(self.spec.prefixes[m] for m in self.scratch)
        self.check_finite = self.spec.check_finite
        self.hooks = dict(hooks or {})
        self.pool = ThreadPoolExecutor(io_threads)
        self.cache = TileCache(default_cache_bytes() if cache_bytes is None else cache_bytes)
        self.counters = CounterBuffer(counter_interval)
        self._stop = threading.Event()
        self.leases = LeaseRenewer(queue, lease, self._stop)
        self.executor_id = executor_id or f"x-{uuid.uuid4().hex[:12]}"
        self.log_buffer = LogBuffer(self.executor_id)
        self.reporter = Reporter(state, job, self.executor_id, report_s, heartbeat_ttl, self._stop, self.log_buffer)
        self.task_timeout, self.task_attempts, self.exit_on_overrun = task_timeout, task_attempts, exit_on_overrun
        self.watchdog = TaskWatchdog(task_timeout, self._overrun, self._stop)
        self.pending = PendingCompletions(self.limits.batch_target, self._complete_late, self._stop)
        self.tasks_run = 0
        # what this executor has seen of the job's progress: the highest completed count, and the last task it
        # finished (both must still be there at every status read, or the state store went back in time)
        self.watermark = Watermark(f"executor {self.executor_id}")
        # held from a reading of the store's progress (a completion step's, a status read's) to its check against
        # ``watermark``: the executor's thread and ``pending``'s may both read, and a reading checked after a
        # later one would look like a store gone back in time
        self._reading = threading.Lock()
        self.last_done: tuple[str, Task] | None = None
        self._keys: dict[Task, str] = {}  # canonical keys of recently seen tasks (``_key``)
        self._next: Task | None = None  # the next leased task, whose inputs are prefetched (``_prefetch``)
        self._fetching: dict[str, object] = {}  # tile key -> the read pool's future of a prefetched tile
        self.next_abandon_check = 0.0  # time.monotonic() of the next look for an abandoned job, while idle
        # consumed scratch tiles gathered for deletion, deleted after this executor's watermark is written to the
        # tile store (``_free_gathered``); the watermark value last written, and when the last deletes were done
        self._to_free: list[str] = []
        self._free_lock = threading.Lock()
        self._durable_seen = 0
        self._freed_at = -float("inf")

    # ------------------------------------------------------------------ main loop
    def run(self) -> int:
        """Lease and handle messages until a decision says stop; returns the number of tasks run."""
        loop = self.loop
        loop.started = loop.last_work = loop.next_status = time.monotonic()
        with self.log_buffer.attach():
            log.info("executor %s: job %s: started", self.executor_id, self.job)
            return self._run()

    def _run(self) -> int:
        loop, limits = self.loop, self.limits
        self.leases.start()
        self.reporter.start()
        self.watchdog.start()
        self.pending.start()
        try:
            while True:
                now = time.monotonic()
                step = next_step(loop, limits, now)
                if step.action is Action.STATUS:
                    step = after_status(loop, limits, now, self._running())
                if step.action is Action.STOP:
                    break
                try:
                    msgs = with_retries(self._receive, step.n)
                except Exception as e:
                    if not self._running():  # the job ended meanwhile and its queue was deleted (SQS)
                        break
                    if isinstance(e, QueueLostError):  # lost while the job runs: its tasks are gone
                        msg = f"job {self.job} failed: {e}"
                        print(f"executor {self.executor_id}: {msg}", file=sys.stderr, flush=True)
                        with_retries(self.state.set_status, self.job, FAILED, json.dumps({"message": msg}))
                        break
                    raise
                if not msgs:
                    self._free_gathered(force=True)
                    self.counters.flush(self.state, self.job)
                    if after_idle(loop, limits, time.monotonic()).action is Action.STOP or self._abandoned():
                        break
                    continue
                self.leases.hold(msgs)
                try:
                    if not self._handle_batch(msgs):
                        return self.tasks_run
                finally:
                    self.leases.release(msgs)
                loop.last_work = time.monotonic()
        finally:
            self._stop.set()
            self.pool.shutdown(wait=False)
            try:
                self._free_gathered(force=True)
            except Exception as e:  # what is left goes with the job's scratch prefix when it ends
                log.warning("executor %s: job %s: gathered scratch tiles not freed: %s", self.executor_id, self.job, e)
            self.counters.add({"executor_s": time.monotonic() - loop.started, "executors": 1})
            self.counters.flush(self.state, self.job)
            log.info("executor %s: job %s: stopped after %d task(s)", self.executor_id, self.job, self.tasks_run)
            self.reporter.stop()
        return self.tasks_run

    def _abandoned(self) -> bool:
        """While idle, every few seconds: is the job abandoned (``outcome.is_abandoned``: no timeline sample from
        its provisioner for ``abandon_s()``)?  If so, record it (the first to notice does), delete the job's
        scratch tiles, and stop."""
        now = time.monotonic()
        if now < self.next_abandon_check:
            return False
        limit = abandon_s()
        self.next_abandon_check = now + min(5.0, limit / 2)
        status = with_retries(self.state.status, self.job)
        sample = last_sample(with_retries(self.state.records, self.job, "timeline"))
        if not is_abandoned(status, sample, time.time(), limit):
            return False
        msg = (f"job {self.job} was abandoned: its provisioner has written no timeline sample for more than "
               f"abandon_s ({limit:g} s, NPW_ABANDON_S); its client and provisioner are gone")
        with_retries(self.state.set_status, self.job, ABANDONED, json.dumps({"message": msg}))
        if self.scratch_root is not None:
            with_retries(self.store.delete_prefix, self.scratch_root)
        print(f"executor {self.executor_id}: {msg}", file=sys.stderr, flush=True)
        return True

    def _receive(self, n: int):
        return self.queue.receive(n, lease=self.lease, wait=0.5)

    def _running(self) -> bool:
        """Whether the job is running, and its state store is not behind what this executor saw of it: its
        ``completed`` counter below the highest this executor was told, or the last task this executor
        finished not done (``_rolled_back``), nor its database file renamed over (``StateStore.replaced``: one
        ``stat``, here and not per task).  One round trip (``StateStore.progress``)."""
        replaced = self.state.replaced()
        if replaced is not None and self._status_is_running():
            self._untrusted(replaced_error(self.job, replaced, self.watermark.who))
            return False
        with self._reading:  # not interleaved with a completion step of ``pending``'s thread (``_finish``)
            key = self.last_done[0] if self.last_done is not None else None
            try:
                p = with_retries(self.state.progress, self.job, key)
            except KeyError:  # the job record is gone (deleted, or a state server lost it)
                return False
            if p.status != RUNNING:
                return False
            reason = self.watermark.check(p.completed, p.status)
        if reason is None and p.task_done is False:
            reason = rollback_reason(self.watermark.who, self.watermark.seen, p.completed, task=str(self.last_done[1]))
        if reason is not None:
            self._rolled_back(reason)
            return False
        return True

    def _rolled_back(self, reason: str) -> None:
        """The state store went back in time (``core.outcome.Watermark``): the tiles it no longer knows were
        written, and scratch tiles it thinks are needed may have been freed.  Fail the job with ``reason``; the
        first to record it deletes the job's scratch tiles and its queue (the client, if there is one, does
        too)."""
        self._untrusted(rollback_error(self.job, reason, redact_url(self.state.url)))

    def _untrusted(self, msg: str) -> None:
        """Fail the job with ``msg``: its state store cannot be trusted (``_rolled_back``, or its database file
        replaced: ``StateStore.replaced``); the first to record it deletes the job's scratch tiles and queue."""
        print(f"executor {self.executor_id}: {msg}", file=sys.stderr, flush=True)
        if with_retries(self.state.set_status, self.job, FAILED, json.dumps({"message": msg})):
            if self.scratch_root is not None:
                with_retries(self.store.delete_prefix, self.scratch_root)
            with_retries(self.queue.delete)

    def _hook(self, step: str, task: Task) -> None:
        fn = self.hooks.get(step)
        if fn is not None:
            fn(task)

    # ------------------------------------------------------------------ messages
    def _handle_batch(self, msgs) -> bool:
        """The leased messages: canonicalised (dropping those that name no task), done-checked in one query,
        handled in order (``_work``); False when this executor should stop."""
        work = []
        for m in msgs:
            text = open_message(self.task_key, m.body)  # authenticated, for this job, before anything else
            task = (canonical_task(self.bound, text) if text is not None else
                    Decision(Action.DROP, counter="tasks_forged",
                             message="its tag does not verify (not sent by a holder of the job's key, or sent "
                                     "for another job)"))
            if isinstance(task, Decision):
                log.warning("executor %s: job %s: dropped the queue message %r: %s", self.executor_id, self.job,
                            m.body[:200], task.message)
                self.counters.add({task.counter: 1})
                with_retries(self.queue.ack, m.receipt)
            else:
                work.append((m, task))
        keys = [self._key(t) for _, t in work]
        done = with_retries(self.state.done_many, self.job, keys) if work else []
        return self._work([(m, task, key, was_done) for (m, task), key, was_done in zip(work, keys, done)])

    def _work(self, work: list) -> bool:
        """Handle ``(message, task, key, done)`` items in order, completing the tasks run (or forwarded) since
        the last completion step together, in one ``Ledger.finish_many`` (``decisions.finish_now``), which also
        leases to this executor children it made ready whose inputs are in its cache (``claim_count`` of
        them): those are handled next, without a round trip through the queue.  Tasks still pending when the
        one after them has run for ``batch_target`` are completed by ``pending``'s thread meanwhile.  False
        when this executor should stop."""
        queue = collections.deque(work)
        pending = self.pending
        try:
            while queue:
                msg, task, key, was_done = queue.popleft()
                self._next = queue[0][1] if queue else None  # its inputs are prefetched while this kernel runs
                go_on = self._handle(msg, task, key, was_done)
                if pending.error is not None:
                    raise pending.error
                if not go_on or pending.ended:
                    self._complete(pending.take(), 0)
                    return False
                first = pending.oldest()
                if first is not None and finish_now(time.perf_counter() - first.t0, bool(queue), self.limits):
                    room = 0 if queue or not self.locality else claim_count(self.loop, self.limits, time.monotonic())
                    items = pending.take()
                    claimed = self._complete(items, room)
                    if claimed is None:
                        return False
                    self.leases.hold([m for m, *_ in claimed])
                    queue.extend(claimed)
            return True
        finally:
            self._next = None
            self._fetching.clear()
            pending.drain()

    def _complete_late(self, items: list[_Pending]) -> list | None:
        """``_complete`` for ``pending``'s thread: no claims (this executor is busy with a long task)."""
        return self._complete(items, 0)

    def _handle(self, msg, task: Task, key: str, was_done: bool) -> bool:
        """One canonical task, run (or forwarded) and added to ``pending``, the tasks to complete; False when
        this executor should stop (the job failed or ended)."""
        if on_leased(was_done).action is Action.FORWARD:
            self.pending.add(_Pending(task, key, msg, True, None, time.perf_counter()))
            return True
        t0 = time.perf_counter()
        self.watchdog.begin(task, key)
        self.pending.begin()
        try:
            return self._run_task(msg, task, key, t0)
        except _AbandonedError:
            return False
        finally:
            self.pending.end()
            self.watchdog.end()

    def _run_task(self, msg, task: Task, key: str, t0: float) -> bool:
        for attempt in range(2):
            self._hook("start", task)
            try:
                written = self._execute(task)
                break
            except _JobFailedError:
                return False
            except _MissingInputError as miss:
                d = self._missing(task, key, miss, may_retry=attempt == 0)
                if d.counter:
                    self.counters.add({d.counter: 1})
                if d.action is Action.RETRY:
                    continue
                if d.action is Action.FORWARD:
                    self.pending.add(_Pending(task, key, msg, True, None, t0))
                    return True
                if d.action is Action.DROP:
                    with_retries(self.queue.ack, msg.receipt)
                    self._hook("dropped", task)
                    return True
                if d.action is Action.FAIL:
                    self._fail(task, TileLostError(d.message), key=miss.key)
                return False
        self._hook("written", task)
        self.pending.add(_Pending(task, key, msg, False, written, t0))
        self.loop.task_s = moving_average(self.loop.task_s, time.perf_counter() - t0)
        return True

    def _complete(self, pending: list[_Pending], claim: int) -> list | None:
        """Complete ``pending`` in one step (``_finish``); then, while the job runs, free the scratch tiles
        they consumed and call the ``completed`` hooks.  Returns the work items of the children leased to
        this executor in the step, or None when the job has ended (the scratch tiles the tasks wrote are
        deleted: see the module docstring)."""
        if not pending:
            return []
        try:
            done, claimed = self._finish(pending, claim)
        finally:
            self.leases.release([p.msg for p in pending])
        ran = [p for p in pending if not p.again]
        if any(after_finish(c.status).action is not Action.GO_ON for c in done):
            for p in ran:
                self._discard(p.task, p.written)
            return None
        self._free_consumed(ran)
        for p in ran:
            self._hook("completed", p.task)
            self.tasks_run += 1
        return claimed

    def _finish(self, pending: list[_Pending], claim: int):
        """complete + enqueue the ready children + acknowledge, for every task of ``pending``
        (``Ledger.finish_many``: one step where the backends allow), the pending counters riding along
        when due, leasing to this executor up to ``claim`` of the children made ready whose inputs are all
        in its cache; returns the completions and the claimed children's work items.

        A forwarded task (``again``: it was done already, a copy of it) passes on only what a crash may
        have lost.  Each copy that re-enqueued the task's children would multiply them at every level of
        the DAG below it (with every message delivered twice, copies double per level), so: nothing on a
        fused ledger, whose completion enqueued the children in the same atomic step, and the children
        that are not done on an unfused one (a crash between its completion and its enqueue loses them)."""
        b, items, tasks = self.bound, [], {}
        for p in pending:
            kids = b.children(p.task)
            if p.again and kids:
                if self.ledger.fused:
                    kids = []
                else:
                    done = with_retries(self.state.done_many, self.job, [self._key(c) for c in kids])
                    kids = [c for c, d in zip(kids, done) if not d]
            children, wanted = [], []
            for c in kids:
                body = seal_message(self.task_key, self._key(c))
                children.append((body, b.in_degree(c), b.priority(c)))
                if claim and not p.again and len(wanted) < MAX_CLAIM_CANDIDATES and self._inputs_cached(c):
                    wanted.append((body, self._key(c)))
                    tasks[body] = c
            items.append(Finish(p.key, children, p.msg.receipt, tuple(wanted)))
        counters = self.counters.take_due(time.monotonic())
        with self._reading:  # the step and the check of its reading, in the order the store saw them
            try:
                out = self.ledger.finish_many(self.job, items, counters, claim if tasks else 0, self.lease)
            finally:
                self.counters.add(counters)  # what was not added (finish drains what it adds)
            completions = out.completions
            last = completions[-1] if completions else None
            reason = None if last is None else self.watermark.check(last.completed, last.status or "")
        if out.claimed:
            self.counters.add({"tasks_claimed": len(out.claimed)})
        if reason is not None:  # the store went back in time: the job fails, whatever this step found
            self._rolled_back(reason)
            return [c._replace(status=FAILED) for c in completions], []
        ran = [p for p in pending if not p.again]
        if ran:
            self.last_done = (ran[-1].key, ran[-1].task)
        return completions, [(m, tasks[m.body], self._key(tasks[m.body]), False) for m in out.claimed]

    def _inputs_cached(self, task: Task) -> bool:
        """Whether every input tile of ``task`` is in this executor's tile cache."""
        return all(self.spec.tile_key(m, idx) in self.cache for m, idx in self.bound.reads(task))

    def _key(self, task: Task) -> str:
        """The canonical key of ``task`` (``Task.to_json``), remembered for the tasks seen recently."""
        key = self._keys.get(task)
        if key is None:
            if len(self._keys) >= 4096:
                self._keys.clear()
            key = self._keys[task] = task.to_json()
        return key

    def _missing(self, task: Task, key: str, miss: _MissingInputError, may_retry: bool) -> Decision:
        """What a missing input tile means: the facts ``decisions.after_missing_input`` weighs, read in its
        order (the task done? the job running? the tile's writers done?)."""
        task_done = with_retries(self.state.is_done, self.job, key)
        running = self._running()
        writers = self.bound.writers_of(miss.matrix, miss.idx)
        writers_done = with_retries(self.state.done_many, self.job, [w.to_json() for w in writers])
        where = f"tile {miss.key!r} (matrix {miss.matrix}, tile {miss.idx})"
        d = after_missing_input(where, task_done, running, writers, writers_done, may_retry)
        if d.action is Action.FAIL and writers:  # freed by a completion the state store no longer has?
            reason = self._rolled_back_by_tile_store()
            if reason is not None:
                self._rolled_back(reason)
                return Decision(Action.STOP, message=reason)
        return d

    def _status_is_running(self) -> bool:
        try:
            return with_retries(self.state.status, self.job) == RUNNING
        except KeyError:  # the job record is gone
            return False

    def _watermark_key(self, executor_id: str) -> str:
        return f"{self.scratch_root}_watermark/{executor_id}"

    def _rolled_back_by_tile_store(self) -> str | None:
        """The rollback reason if an executor's watermark in the tile store (written before it freed scratch
        tiles) is above the ``completed`` count the state store reports now, else None.  This is how an
        executor that started after a restore, and so saw none of the lost progress, tells a freed tile from
        one deleted behind the job's back."""
        if self.scratch_root is None:
            return None
        prefix = self._watermark_key("")
        best, who = 0, None
        for k in with_retries(self.store.list, prefix):
            try:
                seen = int(with_retries(self.store.get, k).ravel()[0])
            except Exception:  # freed meanwhile (the job ended), or unreadable: no evidence
                continue
            if seen > best:
                best, who = seen, k[len(prefix):]
        if who is None:
            return None
        try:
            p = with_retries(self.state.progress, self.job, None)
        except KeyError:
            return None
        if p.status != RUNNING or p.completed is None or int(p.completed) >= best:
            return None
        return rollback_reason(f"executor {who}, by the watermark it wrote to the tile store before freeing "
                               "scratch tiles,", best, int(p.completed))

    def _discard(self, task: Task, written: list[str]) -> None:
        """The job ended while ``task`` ran (its completion said so): delete the scratch tiles it wrote, which
        the job's clean-up may have missed, and sweep the job's scratch prefix.  An output tile is deleted too
        if its matrix has been deleted meanwhile (its ``meta`` gone: an anonymous result freed by the client);
        a matrix deletes its ``meta`` before its tiles, so a tile written before that check is in the
        matrix's own sweep, and one the check finds orphaned is deleted here."""
        scratch = {self.spec.tile_key(m, idx) for m, idx in self.bound.writes(task) if m in self.scratch}
        outputs = {self.spec.tile_key(m, idx): m for m, idx in self.bound.writes(task)
                   if m not in self.scratch and m in self.matrices}
        for k in written:
            if k in scratch or (k in outputs and not with_retries(self.store.exists,
                                                                  f"{self.spec.prefixes[outputs[k]]}/meta")):
                self.cache.forget(k)
                with_retries(self.store.delete, k)
        if scratch and self.scratch_root is not None:
            with_retries(self.store.delete_prefix, self.scratch_root)
        log.warning("executor %s: job %s ended while %s ran; deleted its scratch output", self.executor_id,
                    self.job, task)

    def _overrun(self, task: Task, key: str, seconds: float) -> None:
        """The watchdog's call (from its thread) when ``task`` has run for ``seconds`` past the task time limit:
        stop renewing its lease, count the overrun in the job's ``timeouts`` records, fail the job at the last
        allowed attempt (``decisions.after_overrun``), and stop; a process executor exits at once (its kernel
        cannot be interrupted), with ``EXIT_TASK_TIMEOUT``."""
        self.leases.abandon()
        try:
            rec = json.dumps({"task": key, "executor": self.executor_id, "seconds": round(seconds, 3)})
            with_retries(self.state.append_records, self.job, "timeouts", [rec])
            attempts = sum(1 for r in with_retries(self.state.records, self.job, "timeouts")
                           if json.loads(r)["task"] == key)
            d = after_overrun(task, attempts, self.task_attempts, self.task_timeout)
            with_retries(self.state.add_counters, self.job, {d.counter: 1})
            print(f"executor {self.executor_id}: job {self.job}: task {task} {d.message}", file=sys.stderr, flush=True)
            if d.action is Action.FAIL:
                self._fail(task, TimeoutError(d.message))
        finally:
            self._stop.set()
            if self.exit_on_overrun:
                self.reporter.report(exited=True)
                os._exit(EXIT_TASK_TIMEOUT)

    def _fail(self, task: Task, exc: BaseException, key: str | None = None, doing: str | None = None) -> None:
        """Mark the job failed with ``exc`` as the cause of ``task``'s failure (the first failure wins)."""
        stmt = self.bound.stmt(task)
        error = failure_record(task, stmt.src.line, stmt.src.filename, exc, key, doing)
        log.error("executor %s: job %s: task %s (line %s of %s) failed: %s: %s", self.executor_id, self.job, task,
                  stmt.src.line, stmt.src.filename, error["type"], error["message"])
        with_retries(self.state.set_status, self.job, "failed", json.dumps(error))

    def _free_consumed(self, ran: list[_Pending]) -> None:
        """Delete the scratch tiles the tasks of ``ran`` (completed) read whose every reader has completed
        (``decisions.freeable``); the other readers of all their scratch inputs are checked in one query."""
        tiles = []
        for p in ran:
            for m, idx in self.bound.reads(p.task):
                if m in self.scratch:
                    others = [self._key(r) for r in self.bound.readers_of(m, idx)]
                    tiles.append((m, idx, [r for r in others if r != p.key]))
        if not tiles:
            return
        others = sorted({r for _, _, rs in tiles for r in rs})
        done = dict(zip(others, with_retries(self.state.done_many, self.job, others))) if others else {}
        keys = [self.spec.tile_key(m, idx) for m, idx in freeable(tiles, done)]
        for k in keys:
            self.cache.forget(k)
        if self.scratch_root is None:  # no prefix for a watermark: delete at once
            freed = sum(with_retries(self.store.delete, k) for k in keys)
            if freed:
                self.counters.add({"tiles_freed": freed})
            return
        with self._free_lock:
            self._to_free.extend(keys)
        self._free_gathered(force=False)

    def _free_gathered(self, force: bool) -> None:
        """Delete the gathered scratch tiles (``_free_consumed``), first writing this executor's watermark to the
        tile store if it grew since the last write (see the module docstring); unless ``force``, at most every
        ``status_interval``."""
        with self._free_lock:
            if not self._to_free or (not force and time.monotonic() - self._freed_at < self.limits.status_interval):
                return
            keys, self._to_free = self._to_free, []
            seen, wrote = self.watermark.seen, False
            if seen > self._durable_seen:
                with_retries(self.store.put, self._watermark_key(self.executor_id),
                             np.array([[float(seen)]], dtype=np.float64))
                self._durable_seen, wrote = seen, True
            freed = sum(with_retries(self.store.delete, k) for k in keys)
            self._freed_at = time.monotonic()
            # a write after the job's clean-up would be left behind: as for a late scratch output (the module
            # docstring), the status read after the write either comes before the job's end (whose clean-up
            # then deletes the watermark) or reads the end, and the watermark is deleted here
            if wrote and not self._status_is_running():
                with_retries(self.store.delete, self._watermark_key(self.executor_id))
        if freed:
            self.counters.add({"tiles_freed": freed})

    # ------------------------------------------------------------------ one task
    def _execute(self, task: Task) -> list[str]:
        """Read, compute, check and write one task; returns the keys written.  Raises ``_MissingInputError``
        for a missing input tile and ``_JobFailedError`` once the job is marked failed."""
        stmt = self.bound.stmt(task)
        args = self.bound.kernel_args(task)
        keys = [self.spec.tile_key(a[1], a[2]) if isinstance(a, tuple) else None for a in args]
        slots = {k: (a[1], a[2]) for a, k in zip(args, keys) if k is not None}
        wanted = list(slots)
        t0 = time.perf_counter()
        futures = {k: self._fetching.pop(k, None) for k in wanted}  # prefetched while the last kernel ran
        if read_concurrently(len(wanted), self.loop.read_s):  # slow stores (S3)
            for k in wanted:
                if futures[k] is None:
                    futures[k] = self.pool.submit(self._try_read, k)
        got = [self._try_read(k) if futures[k] is None else futures[k].result() for k in wanted]
        for k, r in zip(wanted, got):
            if isinstance(r, _ReadFailure):
                m, idx = slots[k]
                self._act_on_error(task, after_error("read", r.error), r.error, key=k, matrix=m, idx=idx,
                                   doing=f"reading input tile {k!r} (matrix {m}, tile {idx})")
        tiles = dict(zip(wanted, got))
        t1 = time.perf_counter()
        if wanted:
            self.loop.read_s = moving_average(self.loop.read_s, (t1 - t0) / len(wanted))
        call = [a if k is None else tiles[k] for a, k in zip(args, keys)]
        outs = self.bound.writes(task)
        if self._next is not None and self.locality and prefetch(self.loop.read_s):
            self._prefetch(self._next)
        try:
            check_finite_inputs(self.check_finite, args, call)
            kernel = self.kernels[stmt.kernel]
            result = kernel(*call)
        except Exception as e:
            if self.watchdog.fired:
                raise _AbandonedError from None
            self._act_on_error(task, after_error("kernel", e), e)
        if self.watchdog.fired:  # it returned after its time limit: another executor may be running it now
            raise _AbandonedError
        values = check_outputs(stmt.kernel, outs, result, self._slot)
        if isinstance(values, Decision):
            self._act_on_error(task, values, KernelOutputError(values.message), key=values.key)
        t2 = time.perf_counter()
        written, nbytes = [], 0
        for (m, idx), value in zip(outs, values):
            k = self.spec.tile_key(m, idx)
            try:
                nbytes += with_retries(self.store.put, k, value)
            except Exception as e:
                self._act_on_error(task, after_error("write", e), e, key=k,
                                   doing=f"writing output tile {k!r} (matrix {m}, tile {idx})")
            written.append(k)
            if value.flags.owndata:
                value.flags.writeable = False  # cached: later kernels must not change it in place
            self.cache.put(k, value)
        t3 = time.perf_counter()
        read_bytes = sum(t.nbytes for t in tiles.values())
        flops = kernel.count_flops(*call) if isinstance(kernel, Kernel) else None  # from the actual tile shapes
        self.reporter.record_task(task, t0, t3, read_bytes + nbytes, t2 - t1, kernel=stmt.kernel,
                                  read_s=t1 - t0, write_s=t3 - t2, flops=flops)
        self.counters.add({"kernel_s": t2 - t1, "read_s": t1 - t0, "write_s": t3 - t2,
                           "bytes_read": read_bytes, "bytes_written": nbytes})
        return written

    def _act_on_error(self, task: Task, d: Decision, e: BaseException, key: str | None = None,
                      matrix: str | None = None, idx: tuple[int, ...] | None = None, doing: str | None = None):
        """Carry out ``after_error``'s decision about ``e`` (never returns): re-raise it, raise a missing
        input, or fail the job."""
        if d.action is Action.MISSING:
            raise _MissingInputError(key, matrix, idx)
        if d.action is Action.GIVE_UP:
            raise e  # transient errors that outlasted the retries: this executor gives up
        self._fail(task, e, key=key, doing=doing)
        raise _JobFailedError from None

    def _slot(self, m: str, idx: tuple[int, ...]):
        """``(shape, dtype, problem, key)`` of output tile ``idx`` of ``m`` (``decisions.check_outputs``)."""
        meta = None if m in self.scratch else self.matrices.get(m)
        return (*tile_slot(meta, idx), self.spec.tile_key(m, idx))

    def _try_read(self, key: str):
        try:
            return self._read(key)
        except Exception as e:
            return _ReadFailure(e)

    def _read(self, key: str) -> np.ndarray:
        tile = self.cache.get(key)
        if tile is None:
            tile = with_retries(self.store.get, key)
            self.cache.put(key, tile)
            self.counters.add({"bytes_fetched": tile.nbytes})
        return tile

    def _prefetch(self, task: Task) -> None:
        """Start reading, in the read pool, the input tiles of ``task`` (the next leased one) that are neither
        in the cache nor being read; ``_execute`` takes them from ``_fetching``."""
        for m, idx in self.bound.reads(task):
            k = self.spec.tile_key(m, idx)
            if k not in self.cache and k not in self._fetching:
                self._fetching[k] = self.pool.submit(self._try_read, k)


def load_verified(state: StateStore, job: str, secret: bytes | None = None):
    """``(spec, bound program, kernels, task-message key)`` of ``job``, its description verified first.

    The order is the trust boundary: the stored text is parsed as JSON (its version checked: a
    ``JobSpecVersionError`` names the job) and its signature checked (``signing.verify_description``,
    with ``secret`` or the key ``signing.load_secret`` finds for this state store); its tile spaces
    are checked to stay inside the job's own keys; only then are kernels imported (the allow-list)
    or unpickled and the program bound.  A refusal marks the job failed with the reason and raises
    ``JobRefusedError``; the key never appears in either.
    """
    text = with_retries(state.job, job)["description"]  # an outage at start is ridden out too
    spec = JobSpec.from_json(text, job=job)  # JSON and its version only: nothing imported or unpickled
    try:
        key = secret if secret is not None else load_secret(state.url)
        verify_description(text, job, key)
        bad = foreign_prefixes(spec.prefixes, spec.scratch, job)
        if bad:
            raise SignatureError(f"the description of job {job} names tiles outside the job's own keys "
                                 f"({'; '.join(bad)}); refusing to run it")
        bound, kernels = spec.bind(trusted_from_env())
    except (SignatureError, SigningKeyError, UntrustedKernelError) as e:
        refuse(state, job, e)
        raise JobRefusedError(f"job {job}: {e}") from None
    return spec, bound, kernels, task_key(key, job)


def refuse(state: StateStore, job: str, e: BaseException) -> None:
    """Mark ``job`` failed because this executor refuses it (``e`` says why), and say so on stderr."""
    error = {"type": f"{type(e).__module__}.{type(e).__qualname__}",
             "message": f"an executor refused job {job}: {e}"}
    print(f"executor: {error['message']}", file=sys.stderr, flush=True)
    try:
        with_retries(state.set_status, job, "failed", json.dumps(error))
    except KeyError:  # no such job record
        pass


def queue_missing_at_start(spec: ExecutorSpec, e: QueueLostError) -> None:
    """The job's queue did not exist when this executor opened it (SQS: opened without creating it).  If the
    job has ended, that is its queue deleted with it (an executor launched as the job ended, found by the long
    soak: it exited with a traceback): nothing to do.  If it runs, the queue is lost with its tasks: fail the
    job with the reason, as an executor that meets it later does."""
    state = open_state(spec.state)
    try:
        if with_retries(state.status, spec.job) == RUNNING:
            msg = f"job {spec.job} failed: {e}"
            print(f"executor: {msg}", file=sys.stderr, flush=True)
            with_retries(state.set_status, spec.job, FAILED, json.dumps({"message": msg}))
    except KeyError:  # no job record: nothing to run, nothing to fail
        pass
    finally:
        state.close()


def run(spec: ExecutorSpec, executor_id: str | None = None, time_limit: float | None = None) -> int:
    """Open the spec's backends and run one executor until it stops; returns the number of tasks it ran.

    Every way into an executor ends here: ``python -m executor`` (run by the warm zygote's children and
    by the simulated-Lambda sandbox too) and the Lambda handler.  ``time_limit`` overrides the spec's
    (a Lambda handler knows its deadline only when invoked).
    """
    limit = time_limit if time_limit is not None else spec.time_limit
    try:
        store, queue, state = open_backends(spec)
    except QueueLostError as e:
        queue_missing_at_start(spec, e)
        return 0
    ex = Executor(store, queue, state, spec.job,
                  lease=spec.lease, idle_timeout=spec.idle_timeout, time_limit=limit, executor_id=executor_id,
                  task_timeout=spec.task_timeout, task_attempts=spec.task_attempts, exit_on_overrun=True)
    n = ex.run()
    if ex.watchdog.fired:  # the abandoned kernel returned first: the overrun's handling ends the process (its code)
        ex.watchdog.join()
    return n


def open_backends(spec: ExecutorSpec, on_unreachable: Callable[[BaseException], object] | None = None):
    """The spec's tile store, queue and state store, opened riding out an outage: a server that cannot be
    reached (``base.outage_errors`` behind the ``BackendError`` of a connection check) is tried again with
    capped backoff and jitter for up to ``outage_s()`` seconds, as every later call is (an executor the
    provisioner starts while Redis is down waits for it instead of exiting).  ``on_unreachable`` is called
    with each such error (a hook for the tests)."""
    import random

    from numpywren2.core.backends.base import BackendError, outage_errors, outage_s

    first, attempt = None, 0
    while True:
        try:
            return open_store(spec.store), open_queue(spec.queue, spec.job, create=False), open_state(spec.state)
        except BackendError as e:
            if not isinstance(e.__cause__, outage_errors()):
                raise
            now = time.monotonic()
            first = now if first is None else first
            if now - first >= outage_s():
                raise
            if on_unreachable is not None:
                on_unreachable(e)
            attempt += 1
            time.sleep(min(2.0, 0.05 * 2 ** min(attempt - 1, 32)) * (0.5 + random.random() / 2))
