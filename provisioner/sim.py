"""A discrete-event simulator of a job: the real program, policy and executor decisions on a simulated clock.

What is real and what is modelled:

- **the task graph** is the bound program's (``lambdapack.BoundProgram``): ``starters``, ``children``,
  ``in_degree``, ``priority``, ``reads``, ``writes`` and ``kernel_args``, the same calls an executor
  makes; the DAG is never materialised (see "State" below);
- **the scaling policy** is the object the provisioner would use (``ProportionalPolicy`` or any other
  ``ScalingPolicy``), asked every ``poll_interval_s`` with a real ``Observation``;
- **the executor's decisions** are those of ``executor/decisions.py``, with the simulated time as
  ``now``: ``next_step`` (stop at the time limit, read the status, lease ``batch_size`` messages),
  ``after_status``, ``after_idle`` (the idle timeout), ``read_concurrently`` (a task's tiles read at once
  or one by one) and ``moving_average`` for the task and read times they weigh; the executor's tile cache
  is the real ``TileCache`` over stand-in tiles (only their ``nbytes``);
- **time and money** come from one cost model, ``SimConfig``: kernel flop rates, object-store latency,
  per-executor bandwidth and per-prefix request limits, queue latency, state-store cost per operation,
  cold starts, the platform's scaling limit and lifetime, failures, and prices.

State (all of it bounded by what is ready or running, never by the number of tasks):

``ready``    a heap of visible tasks, ``(priority, seq, task)``: the queue, lowest priority first;
``indeg``    remaining unfinished parents of each task touched but not yet ready; an entry is created
             when a first parent finishes and freed when the task becomes ready;
``execs``    the executors alive or starting (``_Executor``: its loop state, cache and leased batch);
``waiters``  idle executors blocked in a receive on the empty queue (woken, in order, as tasks appear);
``events``   the event heap ``(time, seq, kind, a, b)``.

One executor runs one task at a time (one core).  A task's time is: its inputs not in the executor's
cache read from the store (latency + bytes over the executor's bandwidth, concurrently or one by one as
``read_concurrently`` decides, delayed by 503 SlowDown retries when the tile's prefix is over its request
rate), the kernel (flops over the kernel's rate), its outputs written one by one (the same), then the
completion (state-store operations and one queue operation) after which its ready children become
visible, ``queue_latency_s`` later.  With ``locality``, an executor that makes children ready runs one of
them itself next, the one with the most input tiles in its cache: it is never enqueued, and its cached
inputs are not read again (issue 17, item 7).

The output has the shape of a real job's: ``SimResult.timeline()`` the provisioner's samples,
``task_records()`` the executors' records, ``stats()`` the counters of ``Job.stats()`` (and the
simulator's own: requests, SlowDowns, peak request rates per prefix, local runs, peak memory of the state).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import json
import math
import os
import random
from collections import deque
from dataclasses import dataclass, field

from executor.decisions import (
    Action,
    Limits,
    LoopState,
    after_idle,
    after_status,
    moving_average,
    next_step,
    read_concurrently,
)
from executor.upkeep import TileCache

from .policy import Observation, ProportionalPolicy, ScalingPolicy


@dataclass(frozen=True)
class SimConfig:
    """The simulator's cost model: every time, rate, limit and price it uses (seconds, bytes, USD).

    Defaults describe AWS Lambda (x86, 2024 prices) reading and writing S3 in one region, with the
    executor and provisioner settings of ``ProvisionerSettings``; ``docs/scale.md`` says where each
    number comes from and which were set from the numpywren paper's setup.

    Compute: ``flops_per_s`` per core for a kernel not in ``kernel_flops_per_s`` (name -> rate);
    ``task_overhead_s`` per task (dispatch, checks) on top of the kernel.
    Object store: ``store_latency_s`` per request (first byte), ``executor_bandwidth`` bytes/s per
    executor (shared by concurrent reads), ``write_bandwidth`` for writes if it differs (None: the same;
    a local file store writes slower than it reads: the page cache's writeback),
    ``get_limit_per_prefix`` / ``put_limit_per_prefix`` requests
    per second per key prefix (beyond them a request gets 503 SlowDown and is retried at the next second
    plus ``slowdown_backoff_s``); ``prefix_levels`` tile-index components in the prefix after the
    matrix's (0: one prefix per matrix, ``<job>/<matrix>``).
    Queue: ``queue_latency_s`` per operation (lease, completion's enqueue and acknowledgement), and the
    delay before an enqueued message is visible.  State store: ``state_op_s`` per operation,
    ``state_ops_per_task`` of them per completion.
    Executors: cold start lognormal with median ``cold_start_s`` and shape ``cold_start_sigma``;
    ``scale_burst`` new environments per ``scale_window_s`` (the platform's scaling limit);
    ``lifetime_s`` (the platform ends an executor then; the executor stops leasing a little before, as
    ``time_limit``); ``idle_timeout_s``, ``lease_s`` (a killed executor's tasks are visible again after
    it), ``status_interval_s``, ``max_batch``, ``batch_target_s`` (``executor.decisions.Limits``);
    ``exit_s`` from an executor's decision to stop to its last heartbeat (its threads joined, its records
    flushed); ``cache_bytes`` of tiles kept per executor; ``memory_gb`` billed per executor.
    Provisioner: ``poll_interval_s``, ``timeline_interval_s``.
    Failures: at ``kill_at_s``, ``kill_fraction`` of the started executors are killed.
    Locality: ``locality`` (see the module docstring).
    Prices: ``usd_per_gb_s`` and ``usd_per_invocation`` (Lambda), ``usd_per_put`` / ``usd_per_get``
    (S3 standard), ``usd_per_queue_request`` (SQS standard).  ``seed`` seeds the cold starts and the
    choice of executors killed (a run is a function of its inputs).
    """

    flops_per_s: float = 20e9
    kernel_flops_per_s: dict = field(default_factory=dict)
    task_overhead_s: float = 0.005
    store_latency_s: float = 0.03
    executor_bandwidth: float = 90e6
    write_bandwidth: float | None = None
    get_limit_per_prefix: float = 5500.0
    put_limit_per_prefix: float = 3500.0
    slowdown_backoff_s: float = 0.05
    prefix_levels: int = 0
    queue_latency_s: float = 0.02
    state_op_s: float = 0.001
    state_ops_per_task: int = 2
    cold_start_s: float = 1.0
    cold_start_sigma: float = 0.3
    scale_burst: int = 1000
    scale_window_s: float = 10.0
    lifetime_s: float = 900.0
    idle_timeout_s: float = 10.0
    lease_s: float = 10.0
    status_interval_s: float = 1.0
    max_batch: int = 8
    batch_target_s: float = 0.02
    exit_s: float = 0.0
    cache_bytes: int = 768 << 20
    memory_gb: float = 3.0
    poll_interval_s: float = 1.0
    timeline_interval_s: float = 1.0
    kill_at_s: float | None = None
    kill_fraction: float = 0.0
    locality: bool = False
    usd_per_gb_s: float = 0.0000166667
    usd_per_invocation: float = 0.0000002
    usd_per_put: float = 0.005 / 1000
    usd_per_get: float = 0.0004 / 1000
    usd_per_queue_request: float = 0.40 / 1_000_000
    seed: int = 0

    def replace(self, **changes) -> SimConfig:
        return dataclasses.replace(self, **changes)


LAMBDA = SimConfig()
"""AWS Lambda with S3 (the defaults)."""

HOSTS = SimConfig(cold_start_s=1.0, cold_start_sigma=0.1, scale_burst=10**9, lifetime_s=float("inf"),
                  store_latency_s=0.01, executor_bandwidth=500e6, memory_gb=4.0, usd_per_gb_s=0.0000013,
                  usd_per_invocation=0.0)
"""Long-lived executors on rented hosts (one per core, no lifetime or scaling limit, priced per GB-s of
an on-demand general-purpose instance); the store is S3 all the same."""

PAPER = SimConfig(flops_per_s=20e9, executor_bandwidth=60e6, store_latency_s=0.05, queue_latency_s=0.05,
                  state_op_s=0.002, cold_start_s=10.0, lease_s=10.0, idle_timeout_s=10.0, task_overhead_s=0.0)
"""The numpywren paper's setup (2018-19 Lambda or its simulation on r4.16xlarge, S3, SQS, ElastiCache
Redis): a slower core and link than today's, the 10 s start-up latency it reports, its 10 s lease and
idle timeout (docs/scale.md gives the sources and the validation against its tables)."""

# event kinds
_POLL, _UP, _NEXT, _DONE, _VISIBLE, _IDLE, _KILL, _RETURN, _DEADLINE = range(9)
_TIME_LIMIT_MARGIN_S = 30.0  # the executor's time limit: this much before the platform's lifetime


class _Tile:
    """What the executor's ``TileCache`` needs of a tile: its size."""

    __slots__ = ("nbytes",)

    def __init__(self, nbytes: int):
        self.nbytes = nbytes


class _Executor:
    __slots__ = ("batch", "busy", "cache", "dead", "id", "last_seen", "launched", "loop", "retired", "started",
                 "tasks", "token", "waiting")

    def __init__(self, eid: str, launched: float, cache_bytes: int):
        self.id, self.launched = eid, launched
        self.started: float | None = None
        self.retired: float | None = None
        self.last_seen = launched
        self.loop: LoopState | None = None
        self.cache = TileCache(cache_bytes)
        self.batch: deque = deque()
        self.busy = None  # the task running now
        self.dead = False
        self.waiting = False
        self.token = 0  # bumps invalidate the executor's scheduled events
        self.tasks = 0


class _PrefixLimiter:
    """Requests per second per prefix: a request over the limit in its second is retried (503 SlowDown)
    at the next second plus a backoff.  Keeps only the seconds from now on; ``peak`` is the largest number
    of requests that arrived (before retries) in one second at one prefix."""

    def __init__(self, limit: float, backoff: float):
        self.limit, self.backoff = limit, backoff
        self.counts: dict[tuple[str, int], int] = {}
        self.asked: dict[tuple[str, int], int] = {}
        self.peak: dict[str, int] = {}
        self.slowdowns = 0
        self.requests = 0
        self._purged = 0

    def delay(self, prefix: str, t: float) -> float:
        """Seconds a request to ``prefix`` issued at ``t`` waits for its SlowDown retries."""
        self.requests += 1
        sec = int(t)
        a = self.asked.get((prefix, sec), 0) + 1
        self.asked[(prefix, sec)] = a
        if a > self.peak.get(prefix, 0):
            self.peak[prefix] = a
        start = t
        while self.counts.get((prefix, sec), 0) >= self.limit:
            self.slowdowns += 1
            t = sec + 1 + self.backoff
            sec = int(t)
        self.counts[(prefix, sec)] = self.counts.get((prefix, sec), 0) + 1
        return t - start

    def purge(self, now: float) -> None:
        sec = int(now)
        if sec - self._purged < 10:
            return
        self._purged = sec
        for d in (self.counts, self.asked):
            for k in [k for k in d if k[1] < sec]:
                del d[k]


class _Sink:
    """Where per-task records or per-executor entries go: kept in a list (``True``), dropped (``False``: only
    the aggregates are kept), or appended to a file of JSON lines (a path), so that memory stays bounded by
    the frontier however many tasks run and executors are launched."""

    def __init__(self, where):
        self.path = where if isinstance(where, str | os.PathLike) else None
        self.rows: list[dict] | None = [] if where is True else None
        self._f = open(self.path, "w") if self.path is not None else None  # closed in close()
        self.count = 0

    @property
    def on(self) -> bool:
        return self.rows is not None or self._f is not None

    def add(self, row: dict) -> None:
        self.count += 1
        if self.rows is not None:
            self.rows.append(row)
        elif self._f is not None:
            self._f.write(json.dumps(row) + "\n")

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def read(self) -> list[dict]:
        if self.rows is not None:
            return self.rows
        if self.path is None:
            return []
        with open(self.path) as f:
            return [json.loads(line) for line in f]


@dataclass
class SimResult:
    """A simulated run: what a real job reports (``timeline``, ``task_records``, ``stats``), simulated."""

    program: str
    params: dict
    block: int
    config: SimConfig
    wall_s: float
    num_tasks: int
    tasks_run: int
    executor_sink: _Sink
    samples: list[dict]
    record_sink: _Sink
    counters: dict
    finished: bool

    @property
    def executors(self) -> list[dict]:
        """One entry per executor launched (``executor``, ``launched``, ``started``, ``last_seen``,
        ``retired``, ``tasks``, ``killed``): empty unless the run kept them (``keep_executors``; read back
        from its file when it streamed them to one)."""
        return self.executor_sink.read()

    @property
    def records(self) -> list[dict]:
        return self.record_sink.read()

    def timeline(self) -> list[dict]:
        """The provisioner's samples, as ``Job.timeline()`` gives them: ``t`` (seconds since submit),
        ``ready``, ``leased``, ``executors``, ``started``, ``done``, ``launched``."""
        return [dict(r) for r in self.samples]

    def task_records(self) -> list[dict]:
        """One record per task run, as ``Job.task_records()``: ``task``, ``kernel``, ``executor``,
        ``start``, ``end`` (seconds since submit), ``bytes``, ``kernel_s``, ``flops`` (empty unless the run
        kept records: ``simulate(..., keep_records=True)``, or read back from the file it streamed them to:
        ``keep_records=path``)."""
        return [dict(r) for r in self.records]

    def stats(self) -> dict:
        """The counters of ``Job.stats()`` (``wall_s``, ``core_s``, ``executor_s``, ``executors``,
        ``cost_usd``, bytes, per-kernel ``kernels``...) and the simulator's own (``peak_executors``,
        ``gets``, ``puts``, ``slowdowns``, ``peak_get_per_prefix``, ``peak_put_per_prefix``,
        ``local_runs``, ``killed``, ``peak_indeg``, ``peak_ready``, ``events``)."""
        return {"num_tasks": self.num_tasks, "tasks": self.tasks_run, "wall_s": self.wall_s,
                "status": "done" if self.finished else "unfinished", **self.counters}


def _flops_of(kernel, args, tile: _Tile, shape) -> float:
    class _Shaped:  # a b×b tile for the formula (the flops formulas look at .shape, .size)
        pass

    t = _Shaped()
    t.shape, t.size, t.ndim, t.nbytes = shape, shape[0] * shape[1], 2, tile.nbytes
    call = [t if isinstance(a, tuple) else a for a in args]
    value = kernel.count_flops(*call) if kernel is not None and hasattr(kernel, "count_flops") else None
    return float(value or 0.0)


class Simulation:
    """One simulated run of ``bound`` (a ``BoundProgram``) with tiles of ``block × block`` elements.

    Parameters
    ----------
    bound : BoundProgram
    block : int
        Tile side (every tile is taken as full: ``block² × itemsize`` bytes).
    config : SimConfig, optional
    policy : ScalingPolicy, optional
        Default ``ProportionalPolicy(1.0)``.
    max_executors : int
    kernels : dict, optional
        Kernel name -> ``lp.Kernel`` (default ``bound.program.kernels()``): their flops formulas.
    keep_records : bool or path
        Keep one record per task: in memory (``True``: grows with the tasks, off for large runs), or streamed
        to a file of JSON lines (a path: memory stays bounded).
    keep_executors : bool or path
        Keep one entry per executor launched (``SimResult.executors``): in memory (``True``, the default;
        grows with the launches: a large run launches hundreds of thousands), not at all (``False``: the
        statistics are aggregated as executors retire), or streamed to a file of JSON lines (a path).
    itemsize : int
    """

    def __init__(self, bound, block: int, config: SimConfig | None = None, policy: ScalingPolicy | None = None,
                 max_executors: int = 1000, kernels: dict | None = None, keep_records: bool | str = False,
                 itemsize: int = 8, keep_executors: bool | str = True):
        self.bound, self.block, self.cfg = bound, block, config or LAMBDA
        self.policy = policy or ProportionalPolicy(1.0)
        self.max_executors = max_executors
        self.kernels = kernels if kernels is not None else bound.program.kernels()
        self.keep_records = keep_records
        self.tile = _Tile(block * block * itemsize)
        self.shape = (block, block)
        c = self.cfg
        time_limit = max(1.0, c.lifetime_s - _TIME_LIMIT_MARGIN_S) if math.isfinite(c.lifetime_s) else None
        self.limits = Limits(idle_timeout=c.idle_timeout_s, time_limit=time_limit,
                             status_interval=c.status_interval_s, max_batch=c.max_batch,
                             batch_target=c.batch_target_s)
        self.rng = random.Random(c.seed)
        self.num_tasks = bound.num_tasks()
        self.now = 0.0
        self.events: list = []
        self.seq = itertools.count()
        self.ready: list = []
        self.indeg: dict = {}
        self.execs: dict[str, _Executor] = {}
        self.gone = _Sink(keep_executors)  # retired executors' entries (their state is dropped)
        self.n_gone = 0
        self.executor_s = self.core_s = 0.0
        self.waiters: deque = deque()
        self.launch_times: deque = deque()
        self.leased = 0
        self.done = 0
        self.launches = 0
        self.starting = 0
        self.finished_at: float | None = None
        self.samples: list[dict] = []
        self.records = _Sink(keep_records)
        self.last_sample = -math.inf
        self.gets = _PrefixLimiter(c.get_limit_per_prefix, c.slowdown_backoff_s)
        self.puts = _PrefixLimiter(c.put_limit_per_prefix, c.slowdown_backoff_s)
        self.flops_memo: dict = {}
        self.prefix_memo: dict = {}
        self.kernel_totals: dict[str, list] = {}
        self.n_events = 0
        self.queue_ops = 0
        self.state_ops = 0
        self.local_runs = 0
        self.killed = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.read_s = self.write_s = self.kernel_s = 0.0
        self.peak_indeg = self.peak_ready = self.peak_executors = 0

    # ------------------------------------------------------------------ the event loop
    def _at(self, t: float, kind: int, a=None, b=None) -> None:
        heapq.heappush(self.events, (t, next(self.seq), kind, a, b))

    def run(self, until: float = math.inf, progress=None, progress_every: int = 100_000) -> SimResult:
        """Run until every task is done (or simulated time ``until``); the result.  ``progress(self)`` is
        called every ``progress_every`` events, if given."""
        for t in self.bound.starters():
            self._push_ready(t)
        self._at(0.0, _POLL)
        c = self.cfg
        if c.kill_at_s is not None and c.kill_fraction > 0:
            self._at(c.kill_at_s, _KILL)
        handlers = {_POLL: self._poll, _UP: self._up, _NEXT: self._next, _DONE: self._done,
                    _VISIBLE: self._visible, _IDLE: self._idle, _KILL: self._kill, _RETURN: self._return,
                    _DEADLINE: self._deadline}
        events = self.events
        while events and self.finished_at is None:
            t, _, kind, a, b = heapq.heappop(events)
            if t > until:
                break
            self.now = t
            self.n_events += 1
            handlers[kind](a, b)
            if progress is not None and self.n_events % progress_every == 0:
                progress(self)
        return self._result()

    # ------------------------------------------------------------------ the queue
    def _push_ready(self, t) -> None:
        heapq.heappush(self.ready, (self.bound.priority(t), next(self.seq), t))
        if len(self.ready) > self.peak_ready:
            self.peak_ready = len(self.ready)

    def _visible(self, tasks, _b) -> None:
        for t in tasks:
            self._push_ready(t)
        wake = len(tasks)  # one blocked receive returns per message that appeared
        while self.waiters and wake:
            e = self.waiters.popleft()
            if e.dead or not e.waiting:
                continue
            wake -= 1
            e.waiting = False
            e.token += 1
            self._at(self.now + self.cfg.queue_latency_s, _NEXT, e, e.token)

    # ------------------------------------------------------------------ the provisioner
    def _alive(self) -> int:
        return len(self.execs)

    def _poll(self, _a, _b) -> None:
        c = self.cfg
        obs = Observation(ready=len(self.ready), leased=self.leased, executors=self._alive(), done=self.done,
                          num_tasks=self.num_tasks, elapsed=self.now)
        n = self.policy.to_launch(obs, self.max_executors)
        n = max(0, min(n, self.max_executors - obs.executors))
        while self.launch_times and self.launch_times[0] <= self.now - c.scale_window_s:
            self.launch_times.popleft()
        n = min(n, max(0, c.scale_burst - len(self.launch_times)))
        for _ in range(n):
            self.launches += 1
            e = _Executor(f"sim-{self.launches}", self.now, c.cache_bytes)
            self.execs[e.id] = e
            self.starting += 1
            if len(self.launch_times) < c.scale_burst:
                self.launch_times.append(self.now)
            cold = c.cold_start_s * math.exp(self.rng.gauss(0.0, c.cold_start_sigma)) if c.cold_start_sigma else \
                c.cold_start_s
            self._at(self.now + cold, _UP, e, e.token)
        self.peak_executors = max(self.peak_executors, self._alive())
        self._sample()
        self.gets.purge(self.now)
        self.puts.purge(self.now)
        self._at(self.now + c.poll_interval_s, _POLL)

    def _sample(self, force: bool = False) -> None:
        if not force and self.now - self.last_sample < self.cfg.timeline_interval_s:
            return
        self.last_sample = self.now
        self.samples.append({"t": round(self.now, 3), "ready": len(self.ready), "leased": self.leased,
                             "executors": self._alive(), "started": self._alive() - self.starting,
                             "done": self.done, "launched": self.launches})

    # ------------------------------------------------------------------ an executor
    def _up(self, e: _Executor, token) -> None:
        if e.dead or token != e.token:
            return
        self.starting -= 1
        e.started = e.last_seen = self.now
        e.loop = LoopState(started=self.now, last_work=self.now, next_status=self.now)
        if math.isfinite(self.cfg.lifetime_s):
            self._at(e.launched + self.cfg.lifetime_s, _DEADLINE, e, None)
        self._next(e, e.token)

    def _next(self, e: _Executor, token) -> None:
        """The executor's loop, from ``executor.worker.Executor.run``: decide, lease, run the batch."""
        if e.dead or token != e.token:
            return
        if e.batch:
            self._start(e, e.batch.popleft())
            return
        now = self.now
        step = next_step(e.loop, self.limits, now)
        cost = 0.0
        if step.action is Action.STATUS:
            self.state_ops += 1
            cost += self.cfg.state_op_s
            step = after_status(e.loop, self.limits, now, self.finished_at is None)
        if step.action is Action.STOP:
            self._retire(e)
            return
        self.queue_ops += 1
        cost += self.cfg.queue_latency_s
        n = step.n
        while n and self.ready:
            e.batch.append(heapq.heappop(self.ready)[2])
            n -= 1
        if e.batch:
            self.leased += len(e.batch)
            e.token += 1
            self._at(now + cost, _NEXT, e, e.token)
            return
        # nothing to lease: the receive waits for a message (long polling) or the idle timeout
        if after_idle(e.loop, self.limits, now + cost).action is Action.STOP:
            self._retire(e)
            return
        e.waiting = True
        e.token += 1
        self.waiters.append(e)
        self._at(e.loop.last_work + self.limits.idle_timeout + 1e-6, _IDLE, e, e.token)

    def _idle(self, e: _Executor, token) -> None:
        if e.dead or token != e.token or not e.waiting:
            return
        e.waiting = False
        if after_idle(e.loop, self.limits, self.now).action is Action.STOP:
            self._retire(e)
        else:
            self._next(e, e.token)

    def _prefix(self, m: str, idx) -> str:
        k = self.cfg.prefix_levels
        return m if k == 0 else f"{m}/" + "/".join(map(str, idx[:k]))

    def _start(self, e: _Executor, task, local: bool = False) -> None:
        """Read, compute, write and finish one task (``Executor._execute``, ``_finish``)."""
        c, now, tile = self.cfg, self.now, self.tile
        nb = tile.nbytes
        e.busy = task
        reads = self.bound.reads(task)
        missing = [r for r in reads if e.cache.get(r) is None]
        t_read = 0.0
        if missing:
            concurrent = read_concurrently(len(missing), e.loop.read_s)
            delays = [self.gets.delay(self._prefix(m, idx), now) for m, idx in missing]
            if concurrent:
                t_read = c.store_latency_s + len(missing) * nb / c.executor_bandwidth + max(delays)
            else:
                t_read = len(missing) * (c.store_latency_s + nb / c.executor_bandwidth) + sum(delays)
            for r in missing:
                e.cache.put(r, tile)
            self.bytes_read += len(missing) * nb
        if reads:
            e.loop.read_s = moving_average(e.loop.read_s, t_read / len(reads))
        stmt = self.bound.stmts[task[0]]
        flops = self.flops_memo.get(task[0])  # a statement whose kernel takes tiles only: one count for all
        if flops is None:
            args = self.bound.kernel_args(task)
            scalars = tuple(a for a in args if not isinstance(a, tuple))
            key = (task[0], scalars) if scalars else task[0]
            flops = self.flops_memo.get(key)
            if flops is None:
                flops = self.flops_memo[key] = _flops_of(self.kernels.get(stmt.kernel), args, tile, self.shape)
        rate = c.kernel_flops_per_s.get(stmt.kernel, c.flops_per_s)
        t_kernel = flops / rate + c.task_overhead_s
        writes = self.bound.writes(task)
        t0_write = now + t_read + t_kernel
        t_write = 0.0
        wbw = c.write_bandwidth or c.executor_bandwidth
        for m, idx in writes:
            t_write += c.store_latency_s + nb / wbw + self.puts.delay(self._prefix(m, idx),
                                                                                        t0_write + t_write)
            e.cache.put((m, idx), tile)
        self.bytes_written += len(writes) * nb
        t_finish = c.state_ops_per_task * c.state_op_s + c.queue_latency_s
        self.state_ops += c.state_ops_per_task
        self.queue_ops += 1
        end = now + t_read + t_kernel + t_write + t_finish
        self.read_s += t_read
        self.write_s += t_write
        self.kernel_s += t_kernel
        kt = self.kernel_totals.setdefault(stmt.kernel, [0, 0.0, 0.0])
        kt[0] += 1
        kt[1] += t_kernel
        kt[2] += flops
        if self.records.on:
            self.records.add({"task": str(task), "kernel": stmt.kernel, "executor": e.id, "start": now,
                                 "end": now + t_read + t_kernel + t_write,
                                 "bytes": (len(missing) + len(writes)) * nb, "kernel_s": t_kernel, "flops": flops,
                                 "read_s": t_read, "write_s": t_write, "local": local})
        e.token += 1
        self._at(end, _DONE, e, (task, e.token, now))

    def _done(self, e: _Executor, payload) -> None:
        task, token, t0 = payload
        if e.dead or token != e.token:
            return
        e.busy = None
        e.tasks += 1
        e.last_seen = self.now
        self.leased -= 1
        self.done += 1
        e.loop.task_s = moving_average(e.loop.task_s, self.now - t0)
        newly = []
        indeg, bound = self.indeg, self.bound
        for ch in bound.children(task):
            n = indeg.get(ch)
            if n is None:
                n = bound.in_degree(ch)
            n -= 1
            if n == 0:
                indeg.pop(ch, None)
                newly.append(ch)
            else:
                indeg[ch] = n
        if len(indeg) > self.peak_indeg:
            self.peak_indeg = len(indeg)
        if self.done >= self.num_tasks:
            self.finished_at = self.now
            self._sample(force=True)
            return
        if newly and self.cfg.locality:
            best = self._local_choice(e, newly)
            if best is not None:
                newly.remove(best)
                self.leased += 1
                self.local_runs += 1
                e.batch.appendleft(best)
        if newly:
            self.queue_ops += 1
            self._at(self.now + self.cfg.queue_latency_s, _VISIBLE, newly, None)
        if not e.batch:
            e.loop.last_work = self.now
        self._next(e, e.token)

    def _local_choice(self, e: _Executor, newly: list):
        """The child to run here: most input tiles in this executor's cache, then the lowest priority."""
        if self.limits.time_limit is not None and self.now - e.loop.started > self.limits.time_limit:
            return None
        best, best_key = None, None
        for ch in newly:
            cached = sum(1 for r in self.bound.reads(ch) if e.cache.get(r) is not None)
            if cached:
                k = (-cached, self.bound.priority(ch))
                if best_key is None or k < best_key:
                    best, best_key = ch, k
        return best

    def _retire(self, e: _Executor, at: float | None = None) -> None:
        if e.retired is not None:
            return
        e.retired = self.now if at is None else at
        e.last_seen = e.retired + (0.0 if e.dead or e.started is None else self.cfg.exit_s)
        e.token += 1
        self.execs.pop(e.id, None)
        self.n_gone += 1
        started = e.started if e.started is not None else e.launched
        self.executor_s += max(0.0, e.last_seen - started)
        self.core_s += max(0.0, e.last_seen - e.launched)
        if self.gone.on:
            self.gone.add(self._entry(e))
        if e.waiting:  # its entry in ``waiters`` is skipped when reached; compact when they pile up
            e.waiting = False
            if len(self.waiters) > 64 and len(self.waiters) > 2 * len(self.execs):
                self.waiters = deque(w for w in self.waiters if w.waiting and not w.dead)

    def _entry(self, e: _Executor) -> dict:
        return {"executor": e.id, "launched": e.launched, "started": e.started if e.started is not None else e.launched,
                "last_seen": e.last_seen, "retired": e.retired, "tasks": e.tasks, "killed": e.dead}

    # ------------------------------------------------------------------ faults and the platform's limits
    def _lose(self, e: _Executor, reason: str) -> None:
        """The executor is gone (killed, or past its lifetime): its leased tasks are visible again once
        their leases run out."""
        held = list(e.batch) + ([e.busy] if e.busy is not None else [])
        if e.started is None:
            self.starting -= 1
        e.dead = True
        e.batch.clear()
        e.busy = None
        e.last_seen = self.now
        self._retire(e)
        if held:
            self._at(self.now + self.cfg.lease_s, _RETURN, held, None)

    def _kill(self, _a, _b) -> None:
        started = [e for e in self.execs.values() if e.started is not None]
        k = round(self.cfg.kill_fraction * len(started))
        for e in self.rng.sample(started, k):
            self.killed += 1
            self._lose(e, "killed")

    def _deadline(self, e: _Executor, _b) -> None:
        if e.retired is None:
            self._lose(e, "lifetime")

    def _return(self, tasks, _b) -> None:
        self.leased -= len(tasks)
        self._visible(tasks, None)

    # ------------------------------------------------------------------ the result
    def _result(self) -> SimResult:
        c = self.cfg
        end = self.finished_at if self.finished_at is not None else self.now
        for e in list(self.execs.values()):  # the job ended: executors see it at their next status read
            at = end
            if e.started is not None:
                at = max(end, min(e.loop.next_status, end + self.limits.status_interval))
            self._retire(e, at)
        self.gone.close()
        self.records.close()
        n_execs, executor_s, core_s = self.n_gone, self.executor_s, self.core_s
        gets, puts = self.gets.requests, self.puts.requests
        cost = (core_s * c.memory_gb * c.usd_per_gb_s + n_execs * c.usd_per_invocation + gets * c.usd_per_get
                + puts * c.usd_per_put + self.queue_ops * c.usd_per_queue_request)
        kernels = {k: {"tasks": v[0], "kernel_s": v[1], "flops": v[2], "gflops": v[2] / v[1] / 1e9 if v[1] else None}
                   for k, v in self.kernel_totals.items()}
        total_flops = sum(v[2] for v in self.kernel_totals.values())
        counters = {"kernel_s": self.kernel_s, "read_s": self.read_s, "write_s": self.write_s,
                    "bytes_read": self.bytes_read, "bytes_written": self.bytes_written,
                    "core_s": core_s, "executor_s": executor_s, "executors": n_execs, "cost_usd": cost,
                    "peak_executors": self.peak_executors, "gets": gets, "puts": puts,
                    "slowdowns": self.gets.slowdowns + self.puts.slowdowns,
                    "peak_get_per_prefix": max(self.gets.peak.values(), default=0),
                    "peak_put_per_prefix": max(self.puts.peak.values(), default=0),
                    "peak_prefix": max(list(self.gets.peak.items()) + list(self.puts.peak.items()),
                                       key=lambda kv: kv[1], default=(None, 0))[0],
                    "queue_ops": self.queue_ops, "state_ops": self.state_ops, "local_runs": self.local_runs,
                    "killed": self.killed, "peak_indeg": self.peak_indeg, "peak_ready": self.peak_ready,
                    "events": self.n_events, "kernels": kernels, "flops": total_flops,
                    "gflops": total_flops / end / 1e9 if end else 0.0}
        return SimResult(program=self.bound.program.name, params=dict(self.bound.values), block=self.block,
                         config=c, wall_s=end, num_tasks=self.num_tasks, tasks_run=self.done,
                         executor_sink=self.gone, samples=self.samples, record_sink=self.records, counters=counters,
                         finished=self.finished_at is not None)


def calibrate(records: list[dict], stats: dict, cold_start_s: float, exit_s: float = 0.0,
              base: SimConfig | None = None) -> SimConfig:
    """A cost model measured on a real run: its task records and ``Job.stats()`` (and its executors' cold
    start, seconds from launch to the first heartbeat, and ``exit_s``, from the job's end to their last
    heartbeat; ``calibrate_run`` measures both).

    - kernel rates: each kernel's flops over its seconds (same-size tiles: one rate per kernel);
    - reads: the bytes fetched from the store (``bytes_fetched``, not the cache hits in ``bytes_read``) over
      the seconds spent reading; writes: the bytes written over the seconds spent writing, a bandwidth of
      their own (``write_bandwidth``): a file store's writes are slower than its reads once the page cache
      writes back, and one bandwidth for both made the writes 2-3x too fast;
    - the gap between one task's end and the next task's start on the same executor (its completion, and
      the lease of the next) is one queue operation each: the *median* gap over two, as the mean also counts
      the waits for a parent to finish, which the simulator derives from the DAG itself.

    Everything else is ``base`` (default: ``HOSTS`` with no lifetime, no scaling limit, the embedded
    runtime's poll interval).

    >>> recs = [{"executor": "a", "start": 0.0, "end": 1.0}, {"executor": "a", "start": 1.2, "end": 2.0},
    ...         {"executor": "a", "start": 2.2, "end": 3.0}, {"executor": "a", "start": 5.0, "end": 6.0}]
    >>> st = {"kernels": {"gemm": {"flops": 4e9, "kernel_s": 1.0}}, "bytes_read": 300, "bytes_fetched": 100,
    ...       "bytes_written": 100, "read_s": 1.0, "write_s": 2.0}
    >>> c = calibrate(recs, st, cold_start_s=0.5)
    >>> c.kernel_flops_per_s["gemm"], c.executor_bandwidth, c.write_bandwidth, round(c.queue_latency_s, 3)
    (4000000000.0, 100.0, 50.0, 0.1)
    """
    base = base or HOSTS.replace(poll_interval_s=0.5, memory_gb=2.0, task_overhead_s=0.0)
    rates = {k: v["flops"] / v["kernel_s"] for k, v in stats["kernels"].items() if v.get("flops") and v["kernel_s"]}
    fetched = stats.get("bytes_fetched", stats["bytes_read"])
    read_bw = fetched / stats["read_s"] if stats["read_s"] > 0 and fetched else base.executor_bandwidth
    write_bw = stats["bytes_written"] / stats["write_s"] if stats["write_s"] > 0 else None
    recs = sorted(records, key=lambda r: (r["executor"], r["start"]))
    gaps = sorted(b["start"] - a["end"] for a, b in itertools.pairwise(recs) if a["executor"] == b["executor"])
    gap = gaps[len(gaps) // 2] if gaps else 2 * base.queue_latency_s
    return base.replace(kernel_flops_per_s=rates, executor_bandwidth=read_bw, write_bandwidth=write_bw,
                        store_latency_s=0.0, queue_latency_s=max(0.0, gap / 2), state_op_s=0.0,
                        cold_start_s=cold_start_s, cold_start_sigma=0.0, exit_s=exit_s)


def calibrate_run(bound, block: int, records: list[dict], stats: dict, executors: list[dict], started: float,
                  finished: float, max_executors: int, policy: ScalingPolicy | None = None,
                  base: SimConfig | None = None) -> SimConfig:
    """``calibrate`` on a real run of ``bound`` (``block`` tiles, at most ``max_executors``), measuring its
    cold start and exit too: ``executors`` are the run's ``StateStore.executors`` entries (``started``,
    ``last_seen`` on the same clock as ``started``/``finished``, the job's submit and end).

    The cold start is the first heartbeat after submit.  The exit time is fitted: the run is simulated once
    with ``exit_s = 0``, and ``exit_s`` is what the real executors' mean tail after the job's end (status
    reads, the idle receive, joining threads, flushing records) has beyond the simulated one.  The run
    predicted must be another one (another size or program): predicting the calibration run itself only
    checks the fit.
    """
    end = finished - started
    cold = max(0.0, min(e["started"] for e in executors) - started)
    tail = sum(e["last_seen"] - started - end for e in executors) / len(executors)
    cfg = calibrate(records, stats, cold_start_s=cold, base=base)
    r = simulate(bound, block, cfg, policy or ProportionalPolicy(1.0), max_executors, keep_executors=True)
    sim_tail = sum(e["last_seen"] - r.wall_s for e in r.executors) / len(r.executors)
    return cfg.replace(exit_s=max(0.0, tail - sim_tail))


def simulate(bound, block: int, config: SimConfig | None = None, policy: ScalingPolicy | None = None,
             max_executors: int = 1000, keep_records: bool = False, until: float = math.inf, progress=None,
             **kw) -> SimResult:
    """Simulate a run of ``bound`` (a ``BoundProgram``) with ``block × block`` tiles; see ``Simulation``.

    >>> from numpywren2.core.programs import cholesky
    >>> r = simulate(cholesky.bind(N=4), block=1024, max_executors=4)
    >>> r.stats()["tasks"], r.num_tasks
    (20, 20)
    """
    return Simulation(bound, block, config, policy, max_executors, keep_records=keep_records, **kw).run(until, progress)


__all__ = ["HOSTS", "LAMBDA", "PAPER", "SimConfig", "SimResult", "Simulation", "calibrate", "calibrate_run",
           "simulate"]
