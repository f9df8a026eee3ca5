"""Submitting a program and following its job.

``submit`` binds the program, checks its matrices (type, store, number of indices and,
from the loop bounds, that every tile the program touches lies inside each matrix's grid:
``lambdapack.extent``), validates the program, stores the job description,
enqueues the starter tasks and starts the job's provisioner, which launches
executors as the parallelism asks.  ``Job.wait`` follows the completed-task
counter in the state store until it reaches ``num_tasks()``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno as errno_module
import importlib
import json
import linecache
import logging
import os
import subprocess
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Iterable

import lambdapack as lp
from lambdapack.extent import check_extents
from lambdapack.validate import validate_bound

from ..core.backends import OutageError, TileStore, outage_s, with_retries
from ..core.deprecation import renamed_options
from ..core.jobspec import JobSpec, MatrixMeta, encode_kernels, scratch_prefix
from ..core.outcome import (
    ABANDONED,
    CANCELLED,
    DONE,
    FAILED,
    JobOutcome,
    Watermark,
    job_outcome,
    replaced_error,
    rollback_error,
)
from ..core.signing import redact_url, seal_message, sign_description, task_key
from ..core.tombstone import outage_reason, tombstone_key, write_tombstone
from .arguments import block_size_arg, real_array
from .config import config
from .matrix import BigMatrix
from .progress import ProgressBar
from .runtime import Runtime, current_runtime

log = logging.getLogger(__name__)

# The job submitted last: a weak reference (a Job holds its matrices, which must be freed with it) and
# what it takes to rebuild a handle once the Job itself is gone.
_last: dict = {}


def last_job() -> Job | None:
    """The job submitted last in this process (by ``submit`` or any call such as ``npw.cholesky``), or None.

    Its id is also logged (logger ``numpywren2.client.job``, level INFO) when it is submitted.  Once the
    ``Job`` of a call is gone (a call lets go of its jobs, and their matrices, when it returns), this is a
    new handle on the same job, without matrices: ``id``, ``status()``, ``stats()``, ``report()``...,
    while its runtime is open.
    """
    if not _last:
        return None
    job = _last["ref"]()
    if job is not None:
        return job
    rt = _last["runtime"]()
    if rt is None or rt.closed:
        return None
    job = Job(rt, _last["id"], None, _last["num_tasks"], rt.queue(_last["id"]), _last["spec"])
    job.started, job.finished, job._cleaned = _last["started"], _last.get("finished"), True
    return job


class JobFailedError(RuntimeError):
    """A job failed: a task's kernel raised, or no executor was left to finish it."""


class TileSpace:
    """A named tile space that outlives the job that writes it: tiles with any number of indices, no grid.

    A tile space of a program that ``submit`` is not given is scratch, deleted when the job ends.
    Pass a ``TileSpace`` instead to keep its tiles (to read them in a later job, say).  Unlike a
    ``BigMatrix`` it has no shape: its tiles are not checked against a grid.

    Parameters
    ----------
    store : TileStore
    name : str
        Key prefix of its tiles (tile ``(i, j, k)`` is ``<name>/i/j/k``: ``core.jobspec.tile_path``).
    """

    def __init__(self, store: TileStore, name: str):
        self.store = store
        self.name = name

    @classmethod
    def empty(cls, store: TileStore | None = None, name: str | None = None) -> TileSpace:
        """A new tile space with no tiles, in ``store`` (default: the current runtime's)."""
        if store is None:
            store = current_runtime().store
        return cls(store, name or f"t-{uuid.uuid4().hex[:12]}")

    def delete(self) -> None:
        """Remove its tiles."""
        self.store.delete_prefix(f"{self.name}/")

    def __repr__(self) -> str:
        return f"TileSpace({self.name!r})"


@renamed_options(workers="executors")
def submit(program: lp.Program, *, runtime: Runtime | None = None, executors: int | None = None,
           idle_timeout: float | None = None, lease: float | None = None, settings=None, launcher=None,
           policy=None, check_finite: Iterable[str] | dict[str, str] = (), detach: bool = False,
           **arguments) -> Job:
    """Run a LAmbdaPACK program on the current runtime.

    Parameters are bound by name: integers for the program's integer parameters,
    ``BigMatrix`` (or ``TileSpace``) for its tile spaces.  A matrix the program only reads
    is an input and must hold data; one it writes must be empty.  Tile spaces not given are
    scratch space owned by the job, deleted when it ends.

    Before anything is stored, every access of the program to a ``BigMatrix`` is checked
    against the matrix: two indices per tile, and each tile inside the matrix's grid
    (``shape`` / ``block_size``), proved from the loop bounds without enumerating the tasks.

    Parameters
    ----------
    program : lambdapack.Program
    runtime : Runtime, optional
        Default: the current runtime.
    executors : int, optional
        At most this many executors at once (the provisioner's ``max_executors``); 0 launches
        none (executors run elsewhere).  Default: the settings', else the launcher's.
    idle_timeout, lease : float, optional
        Override the provisioner settings' executor idle timeout and queue lease (seconds).
    settings : provisioner.ProvisionerSettings, optional
        Default: the runtime's, else ``ProvisionerSettings()``.
    launcher : provisioner.Launcher, optional
        Default: a new one from the runtime (local processes unless configured otherwise).
    policy : provisioner.ScalingPolicy, optional
        Default: the launcher's (``Launcher.default_policy``): the whole pool from the first task
        for local processes (``PoolPolicy``), ``ProportionalPolicy`` for cloud launchers.
    check_finite : iterable of str, or dict of str to str
        Input matrices (parameter names) whose tiles the executors verify to be finite as they read
        them: a tile with an inf or a NaN fails the job with a ``ValueError`` naming the matrix (the
        dict's value, if given, else the parameter and the BigMatrix name) and the tile.
    detach : bool
        Run the job's provisioner as a process of its own (``python -m provisioner``, in a session of its
        own), not in a thread of this one: the job goes on if this process exits or is killed, and any
        process can follow it with ``npw.attach(job.id)`` (``npw.jobs()`` lists it).  Not with a
        ``launcher`` or ``policy`` object (the provisioner process makes its own local launcher), nor on a
        temporary embedded runtime (its directory goes with this process).  The output matrices must
        outlive this process too: give named matrices, not anonymous ones freed with their runtime.
    **arguments
        The program's integer parameters and matrices, by name.

    Returns
    -------
    Job

    Raises
    ------
    TypeError
        An unknown or missing argument, or a matrix that is not a ``BigMatrix``/``TileSpace``.
    ValueError
        A matrix of another store; a ``BigMatrix`` indexed with other than 2 indices; a task that
        would read or write a tile outside a ``BigMatrix``'s grid (the message names the matrix,
        the tile, the task and the source line); an input that holds no tiles, an output that does.
    lambdapack.CompileError
        The program writes a tile twice or reads one that nothing writes.
    """
    from provisioner import Provisioner, ProvisionerSettings

    rt = runtime or current_runtime()
    if detach and (launcher is not None or policy is not None):
        raise ValueError("submit(detach=True) starts a provisioner process with a local launcher; it cannot take "
                         "a launcher or policy object")
    if detach and rt.owns_root:
        raise ValueError("submit(detach=True) needs a runtime that outlives this process: give store, queue and "
                         "state URLs (a temporary embedded runtime is removed when this process exits)")
    ints = {k: v for k, v in arguments.items() if k in program.params}
    mats = {k: v for k, v in arguments.items() if k in program.matrices}
    unknown = set(arguments) - set(ints) - set(mats)
    if unknown:
        raise TypeError(f"{program.name}: unknown argument(s) {', '.join(sorted(unknown))}; "
                        f"integers: {', '.join(program.params)}; matrices: {', '.join(program.matrices)}")
    bound = program.bind(validate="none", **ints)  # validated below, after the quick checks
    job = f"job-{uuid.uuid4().hex[:12]}"
    for name, m in mats.items():
        if not isinstance(m, BigMatrix | TileSpace):
            raise TypeError(f"{program.name}: matrix {name} must be a BigMatrix, not {type(m).__name__}")
        if m.store.url != rt.store.url:
            raise ValueError(f"matrix {name} ({m.name}) lives in {m.store.url}, not in this runtime's store "
                             f"{rt.store.url}; a BigMatrix belongs to the runtime it was created under: copy it "
                             f"into this one with {name}.to(runtime) (e.g. `{name}={name}.to(rt)` inside "
                             "`with npw.runtime(...) as rt:`)")
    _check_grids(program, bound, mats)
    validate_bound(bound, full=False)
    prefixes = {}
    for name in program.tile_spaces:  # parameters, then the program's local scratch spaces
        m = mats.get(name)
        if m is None:
            prefixes[name] = scratch_prefix(job, name)
            continue
        tiles = [k for k in m.store.list(f"{m.name}/") if k != f"{m.name}/meta"]
        if getattr(m, "parent", None) is not None:  # a view (client/array_ops.py): only its own tiles
            tiles = [k for k in tiles if m.holds_key(k)]
        if name in bound.inputs and bound.readers[name] and not tiles:
            raise ValueError(f"{program.name}: input matrix {name} ({m.name}) holds no tiles")
        if name in bound.outputs and tiles:
            raise ValueError(f"{program.name}: output matrix {name} ({m.name}) is not empty "
                             f"({len(tiles)} tiles); tiles are written once")
        prefixes[name] = m.name
    missing = [n for n in bound.inputs if n not in mats and bound.readers[n]]
    if missing:
        raise TypeError(f"{program.name}: input matrix {', '.join(missing)} not given")
    finite = check_finite if isinstance(check_finite, dict) else {n: None for n in check_finite}
    for n in finite:
        if n not in bound.inputs or n not in mats:
            raise ValueError(f"{program.name}: check_finite names {n!r}, which is not an input matrix given")
    finite = {n: label or f"{n} ({mats[n].name})" for n, label in finite.items()}
    key = rt.secret()  # before anything is stored: no key is an error saying how to set one
    n_tasks = bound.num_tasks()
    spec = JobSpec(program=program.to_json(), params=bound.values, prefixes=prefixes,
                   kernels=encode_kernels(program.kernels(), rt.trusted_modules), num_tasks=n_tasks,
                   scratch=tuple(n for n in program.tile_spaces if n not in mats), check_finite=finite,
                   matrices={n: MatrixMeta.of(m.shape, m.block_size, m.dtype) for n, m in mats.items()
                             if isinstance(m, BigMatrix)},
                   offsets={n: m.tile_offset for n, m in mats.items() if getattr(m, "parent", None) is not None},
                   trusted_modules=rt.trusted_modules)
    spec = dataclasses.replace(spec, signature=sign_description(spec.to_data(), job, key))
    rt.state.create_job(job, spec.to_json())
    # the job's "client" record: what lists of jobs show (``npw.jobs()``, ``npw jobs``) from any process
    rt.state.append_records(job, "client", [json.dumps({"created": round(time.time(), 3), "pid": os.getpid(),
                                                        "detached": bool(detach), "program": program.name})])
    log.info("submitted job %s: %s(%s), %d tasks", job, program.name,
             ", ".join(f"{k}={v}" for k, v in bound.values.items()), n_tasks)
    queue = rt.queue(job)
    tags = task_key(key, job)
    queue.send([seal_message(tags, t.to_json()) for t in bound.starters()])
    j = Job(rt, job, bound, n_tasks, queue, spec)
    j.outputs = {n: m for n, m in mats.items() if n in bound.outputs}
    j.matrices = dict(mats)  # held while the job runs: an anonymous matrix is freed when collected
    rt.running_jobs[job] = j
    _last.clear()
    _last.update(ref=weakref.ref(j), runtime=weakref.ref(rt), id=job, num_tasks=n_tasks, spec=spec, started=j.started)
    settings = settings or rt.provisioner_settings or ProvisionerSettings()
    overrides = {k: v for k, v in (("max_executors", executors), ("idle_timeout", idle_timeout), ("lease", lease))
                 if v is not None and v != 0}
    settings = dataclasses.replace(settings, **overrides)
    if detach:
        if n_tasks:
            j.provisioner_process = start_detached(rt.urls, job, settings)
    elif n_tasks and executors != 0 and (executors is not None or rt.executors != 0):
        j.provisioner = Provisioner(rt.urls, job, launcher or rt.make_launcher(), settings, policy).start()
        rt.provisioners.append(j.provisioner)
    return j


def start_detached(urls: dict[str, str], job: str, settings) -> subprocess.Popen:
    """``python -m provisioner`` for ``job`` with ``settings``, in a session of its own (a signal to this
    process's group, such as Ctrl-C, does not reach it), its output to /dev/null."""
    from executor.spec import environment

    argv = [sys.executable, "-m", "provisioner", "--store", urls["store"], "--queue", urls["queue"],
            "--state", urls["state"], "--job", job, *settings.cli_args()]  # every setting (a dropped one ran default)
    return subprocess.Popen(argv, env=environment(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _check_grids(program: lp.Program, bound, mats: dict) -> None:
    """Every access to a BigMatrix has 2 indices and lies inside its grid, or a ValueError naming it."""
    grids = {}
    for name, m in mats.items():
        n = program.arity.get(name)
        if not isinstance(m, BigMatrix) or n is None:
            continue
        if n != 2:
            s, ref = next((s, r) for s in bound.stmts for r in (*s.writes, *s.reads) if r.matrix == name)
            raise ValueError(
                f"{program.name}: {name} is indexed with {n} indices ({ref} in {s.label}, {ref.src}), but the "
                f"BigMatrix given for it ({m.name}) has tiles (i, j); pass a npw.TileSpace for a tile space "
                f"with {n} indices\n{_source_excerpt(ref.src)}")
        grids[name] = m.grid
    if not grids:
        return
    v = check_extents(bound, grids).violation
    if v is None:
        return
    m = mats[v.matrix]
    params = ", ".join(f"{k}={val}" for k, val in bound.values.items())
    tile = f"{v.matrix}[{', '.join(map(str, v.tile))}]"
    raise ValueError(
        f"{program.name}({params}): task {v.task} {v.access} tile {tile}, outside matrix {v.matrix} "
        f"({m.name}, shape {m.shape}, block_size {m.block_size}: a {m.grid[0]}×{m.grid[1]} grid of tiles); "
        f"check the integer parameters against the matrices' grids\n{_source_excerpt(v.ref.src)}")


def _source_excerpt(src) -> str:
    text = linecache.getline(src.filename, src.line).strip()
    return f"  {src}: {text}" if text else f"  {src}"


CLEANUP_OUTAGES = 10  # after an outage past outage_s, the job's record and queue are cleaned within this many more


class Job:
    """A submitted job: ``wait()``, ``status()``, ``cancel()``, ``stats()``."""

    def __init__(self, runtime: Runtime, job_id: str, bound, num_tasks: int, queue, spec: JobSpec | None = None):
        self.runtime, self.id, self.bound, self.num_tasks, self.queue = runtime, job_id, bound, num_tasks, queue
        self.spec = spec  # the job description submit stored (tile keys: spec.tile_key)
        self.outputs: dict[str, BigMatrix] = {}
        self.matrices: dict[str, BigMatrix] = {}  # every matrix given to submit, by parameter name
        self.provisioner = None  # provisioner.Provisioner of this job, when it runs in this process
        self.provisioner_process = None  # the provisioner's process (subprocess.Popen) of a detached job
        self.started = time.time()
        self.finished: float | None = None
        self._cleaned = False
        # After an outage past outage_s: whether the record and the queue on the unreachable server were
        # cleaned once it came back (a thread of ``_end_unreachable`` tries), and the last error meanwhile.
        self.cleaned: bool | None = None
        self.cleanup_error: str | None = None
        self.cleanup_thread = None
        self.watermark = Watermark("the client")  # the highest completed count this object was told

    def _record(self) -> dict:
        """The job record, riding out brief outages; a lost record is a clear error, and a record behind what
        this client saw (fewer completions: the store went back in time) fails the job (``_rolled_back``), as
        does a state database file that its path no longer names (``StateStore.replaced``: renamed over)."""
        rec = self._read_record()
        replaced = self.runtime.state.replaced() if rec["status"] == "running" else None
        if replaced is not None:
            return self._untrusted(replaced_error(self.id, replaced, self.watermark.who))
        reason = self.watermark.check(rec.get("counters", {}).get("completed", 0), rec["status"])
        if reason is None:
            return rec
        return self._rolled_back(reason)

    def _rolled_back(self, reason: str) -> dict:
        """Record the job as failed because its state store went back in time (unless it has ended meanwhile);
        the record as it now stands, for the caller to act on (``wait`` ends the job and raises)."""
        return self._untrusted(rollback_error(self.id, reason, redact_url(self.runtime.state.url)))

    def _untrusted(self, msg: str) -> dict:
        """Record the job as failed with ``msg`` because its state store cannot be trusted (unless it has
        ended meanwhile); the record as it now stands."""
        with_retries(self.runtime.state.set_status, self.id, FAILED, json.dumps({"message": msg}))
        return self._read_record()

    def _read_record(self) -> dict:
        try:
            return with_retries(self.runtime.state.job, self.id, attempts=8, max_delay=4.0)
        except OutageError as e:
            self._end_unreachable()
            raise JobFailedError(
                f"job {self.id} failed: its state store {self.runtime.state.url} was unreachable for longer than "
                f"outage_s ({outage_s():g} s, NPW_OUTAGE_S); its executors were stopped and its scratch tiles "
                f"deleted ({e})") from e
        except KeyError:
            self._end()  # the queue and the scratch tiles, which the lost record no longer accounts for
            raise JobFailedError(
                f"the state store {redact_url(self.runtime.state.url)} has lost job {self.id} "
                "(was the server restarted without persistence?); its result cannot be trusted, "
                "submit it again") from None

    def _outcome(self) -> JobOutcome:
        """Where the job stands, by the one rule (``numpywren2.core.outcome.job_outcome``)."""
        return job_outcome(self._record(), self.num_tasks)

    def status(self) -> str:
        """``"running"``, ``"done"``, ``"failed"`` or ``"cancelled"``."""
        return self._outcome().status

    def completed(self) -> int:
        return self._outcome().completed

    def wait(self, timeout: float | None = None, progress: bool | None = None, poll: float = 0.05,
             stream=None) -> Job:
        """Block until the job is done; raise if it failed, was cancelled, or cannot finish.

        ``progress`` (default: ``npw.config.progress``) shows a live bar on ``stream`` (default: stderr)
        when it is a terminal: tasks done/total, rate, ETA, executors alive.
        """
        bar = ProgressBar(self.id, self.num_tasks, stream) if (config.progress if progress is None else progress) \
            else None
        try:
            return self._wait(timeout, poll, bar)
        finally:
            if bar is not None:
                bar.close()

    def _live_executors(self) -> int:
        return sum(1 for e in self.runtime.state.executors(self.id) if e["live"])

    def _wait(self, timeout: float | None, poll: float, bar: ProgressBar | None) -> Job:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            out = self._outcome()
            done = out.completed
            if bar is not None and bar.shown:
                bar.update(done, self._live_executors() if bar.due_for_executors() else None)
            if out.status == DONE:
                if out.mark_done:
                    with_retries(self.runtime.state.set_status, self.id, DONE)
                self._end()
                return self
            if out.status == FAILED:
                self._end()
                raise _job_error(out.error)
            if out.status == CANCELLED:
                self._end()
                raise JobFailedError(f"job {self.id} was cancelled")
            if out.status == ABANDONED:
                self._end()
                raise JobFailedError((out.error or {}).get("message") or f"job {self.id} was abandoned")
            if out.ended:  # a final status this client does not know
                self._end()
                raise JobFailedError(f"job {self.id} ended with status {out.status!r}")
            if self.provisioner is not None and self.provisioner.error is not None:
                msg = f"job {self.id}: its provisioner failed: {self.provisioner.error!r}"
                self.runtime.state.set_status(self.id, "failed", json.dumps({"message": msg}))
                self._end()
                raise JobFailedError(msg)
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {self.id}: {done}/{self.num_tasks} tasks after {timeout} s")
            time.sleep(poll)

    def result(self, timeout: float | None = None) -> dict[str, BigMatrix]:
        """Wait, then return the output matrices that were passed in, by parameter name."""
        self.wait(timeout)
        return dict(self.outputs)

    @property
    def local_executors(self) -> list:
        """The executor processes started for this job on this machine (``subprocess.Popen``)."""
        procs = getattr(self.provisioner.launcher, "processes", {}) if self.provisioner is not None else {}
        return list(procs.values())

    @property
    def launcher(self):
        """The launcher of this job's provisioner (None if executors are started elsewhere)."""
        return self.provisioner.launcher if self.provisioner is not None else None

    def timeline(self) -> list[dict]:
        """Per-second samples written by the provisioner: ``t`` (seconds since submit), ``ready``
        (tasks in the queue), ``leased`` (tasks under a lease), ``executors`` (alive or starting),
        ``started`` (alive and heart-beating: past their start-up), ``done`` (tasks) and ``launched``
        (executors, so far).  The words are those of docs/glossary.md."""
        self._record()  # a lost job is the clear error, not an empty timeline
        out = []
        for r in self.runtime.state.records(self.id, "timeline"):
            d = json.loads(r)
            d["t"] = d.pop("time") - self.started
            out.append(d)
        return sorted(out, key=lambda d: d["t"])

    def _settle(self, timeout: float = 10.0) -> None:
        """After the job ended: wait until no executor of it is live (they flush their records on exit)."""
        if self.finished is None:
            return
        deadline = time.monotonic() + timeout
        while any(e["live"] for e in self.runtime.state.executors(self.id)) and time.monotonic() < deadline:
            time.sleep(0.05)

    def task_records(self) -> list[dict]:
        """One record per task execution: ``task``, ``executor``, ``start`` and ``end`` (seconds since
        submit), ``bytes`` (read + written), ``kernel_s``.  A task run twice (its executor died
        after running it) appears twice; an executor killed outright loses its last second's records.
        Once the job has ended, waits (up to 10 s) for its executors to exit and flush their records."""
        self._record()  # a lost job is the clear error, not an empty list
        self._settle()
        out = []
        for r in self.runtime.state.records(self.id, "tasks"):
            d = json.loads(r)
            d["start"] -= self.started
            d["end"] -= self.started
            out.append(d)
        return sorted(out, key=lambda d: d["start"])

    def report(self, path: str) -> str:
        """Write the job's report, one self-contained HTML file (``numpywren2.client.report``); returns ``path``."""
        from .report import write_report

        return write_report(self, path)

    def cancel(self) -> None:
        self.runtime.state.set_status(self.id, "cancelled")
        self._end()

    def _end(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        self.finished = time.time()
        if _last.get("id") == self.id:
            _last["finished"] = self.finished
        self.runtime.running_jobs.pop(self.id, None)  # the runtime no longer keeps the job's matrices alive
        if self.provisioner is not None:
            self.provisioner.stop()
        # The status is final before the scratch tiles are deleted: an executor that writes after this
        # point learns it from its completion and deletes what it wrote (executor/worker.py).  Each call rides
        # out an outage (a Redis restart as the job ended left its queue and a tile behind: found by the soak).
        with contextlib.suppress(KeyError):
            if with_retries(self.runtime.state.status, self.id) == "running":
                with_retries(self.runtime.state.set_status, self.id, "failed",
                             json.dumps({"message": "the client ended the job"}))
        with_retries(self.queue.delete)
        with_retries(self.runtime.store.delete_prefix, scratch_prefix(self.id, ""))  # scratch tiles, under <job>/

    def _end_unreachable(self) -> None:
        """The state store stayed unreachable past ``outage_s``: stop this job's provisioner and executors and
        delete its scratch tiles (the tile store may still be there); the record and the queue, on the
        unreachable server, are cleaned by a thread once it is back (``_clean_when_back``)."""
        if self._cleaned:
            return
        self._cleaned = True
        self.finished = time.time()
        self.runtime.running_jobs.pop(self.id, None)
        if self.provisioner is not None:
            self.provisioner.stop(stop_executors=True)
        with contextlib.suppress(Exception):
            self.runtime.store.delete_prefix(scratch_prefix(self.id, ""))
        # for whoever reads the record next, if the server comes back after this client stopped trying
        # (``core.tombstone``)
        with contextlib.suppress(Exception):
            with_retries(write_tombstone, self.runtime.store, self.id, outage_s())
        self.cleaned = False
        self.cleanup_thread = threading.Thread(target=self._clean_when_back, daemon=True,
                                               name=f"cleanup-{self.id}")
        self.cleanup_thread.start()

    def _clean_when_back(self) -> None:
        """Once the unreachable server answers again (tried with backoff for up to ``CLEANUP_OUTAGES`` times
        ``outage_s``, at least a minute): mark the job failed with the outage's reason (an executor still
        running stops at its next status read), delete its queue and its tombstone (``core.tombstone``: past
        the deadline, or if this process exits, whoever reads the record next does it); ``cleaned`` says
        whether it was done, ``cleanup_error`` the last error."""
        msg = outage_reason(outage_s())
        deadline = time.monotonic() + max(60.0, CLEANUP_OUTAGES * outage_s())
        while True:
            try:
                with contextlib.suppress(KeyError):  # a record lost with the server: nothing to mark
                    with_retries(self.runtime.state.set_status, self.id, "failed", json.dumps({"message": msg}))
                with_retries(self.queue.delete)
                with contextlib.suppress(Exception):  # a tombstone left is harmless: the record is final
                    with_retries(self.runtime.store.delete, tombstone_key(self.id))
            except OutageError as e:
                self.cleanup_error = f"{type(e).__name__}: {e}"
                if time.monotonic() < deadline:
                    continue
                return  # still down: left to the server's expiry, or to npw.jobs()
            except Exception as e:
                self.cleanup_error = f"{type(e).__name__}: {e}"
                return
            self.cleaned, self.cleanup_error = True, None
            return

    def stats(self, cost_model=None) -> dict:
        """Counters of the job.

        ``core_s`` is the executors' lifetimes from the state store's registry plus
        ``cost_model.startup_s`` per executor, and ``cost_usd`` the estimate of
        ``provisioner.CostModel`` (default parameters: AWS Lambda's prices; see that class).
        ``executor_s`` is the same without the start-up overhead, ``executors`` the number of
        executors that ran (killed ones included).  ``tasks_dropped`` counts queue messages that name no
        task of the program, ``tasks_forged`` those whose tag did not verify (``core.signing``), each
        acknowledged unrun.  ``bytes_read`` counts the input tiles the kernels were given, ``bytes_fetched``
        the part of them read from the tile store (the rest came from the executors' tile caches), and
        ``tasks_claimed`` the tasks an executor leased to itself in the completion step of a parent it ran
        (docs/runtime.md, "Locality").  Once the job has ended, waits (up to 10 s)
        for its executors to exit first, so that their lifetimes are final.

        ``kernels`` maps each kernel name to ``tasks`` (executions), ``kernel_s`` (seconds inside the
        kernel), ``flops`` (its ``lp.kernel(flops=...)`` formula evaluated by the executor on the tiles
        each task was given, so ragged edge tiles count exactly) and ``gflops`` (flops / kernel_s / 1e9,
        the kernel's own rate).  ``flops`` is their total and ``gflops`` the job's rate, total flops over
        ``wall_s``.  These come from the task records (``task_records``): a task run twice counts twice
        (its work was done twice), an executor killed outright loses its last records, and a kernel
        without a formula has ``flops`` None and counts 0 in the total.
        """
        from provisioner import executor_usage

        self._settle()
        rec = self._record()  # after the executors' last counters; a lost job is the clear error
        c = rec["counters"]
        wall = (self.finished or time.time()) - self.started
        usage = executor_usage(self.runtime.state.executors(self.id), cost_model)
        return {"tasks": int(c.get("completed", 0)), "num_tasks": self.num_tasks,
                "kernel_s": c.get("kernel_s", 0.0), "read_s": c.get("read_s", 0.0), "write_s": c.get("write_s", 0.0),
                "bytes_read": int(c.get("bytes_read", 0)), "bytes_written": int(c.get("bytes_written", 0)),
                "tiles_freed": int(c.get("tiles_freed", 0)), "tasks_dropped": int(c.get("tasks_dropped", 0)),
                "tasks_forged": int(c.get("tasks_forged", 0)), "bytes_fetched": int(c.get("bytes_fetched", 0)),
                "tasks_claimed": int(c.get("tasks_claimed", 0)),
                "wall_s": wall, "core_s": usage["core_s"], "executor_s": usage["executor_s"],
                "executors": usage["executors"], "cost_usd": usage["cost_usd"], "status": rec["status"],
                **kernel_rates(self.runtime.state.records(self.id, "tasks"), wall)}


def kernel_rates(records: list[str], wall_s: float) -> dict:
    """``{"kernels": {name: {tasks, kernel_s, flops, gflops}}, "flops": total, "gflops": total / wall_s}``
    from the executors' task records (JSON strings; see ``Job.stats``)."""
    per: dict[str, dict] = {}
    for r in records:
        d = json.loads(r)
        k = per.setdefault(d.get("kernel") or "?", {"tasks": 0, "kernel_s": 0.0, "flops": 0.0, "counted": True})
        k["tasks"] += 1
        k["kernel_s"] += float(d.get("kernel_s", 0.0))
        if d.get("flops") is None:
            k["counted"] = False
        else:
            k["flops"] += float(d["flops"])
    kernels = {}
    for name, k in sorted(per.items()):
        flops = k["flops"] if k["counted"] else None
        gflops = flops / k["kernel_s"] / 1e9 if flops is not None and k["kernel_s"] > 0 else None
        kernels[name] = {"tasks": k["tasks"], "kernel_s": k["kernel_s"], "flops": flops, "gflops": gflops}
    total = sum(k["flops"] or 0.0 for k in kernels.values())
    return {"kernels": kernels, "flops": total, "gflops": total / wall_s / 1e9 if wall_s > 0 else None}


def _job_error(err: dict) -> Exception:
    """The exception a failed job's stored error (``JobOutcome.error``) stands for, rebuilt when it can be."""
    if "task" not in err:
        return JobFailedError(err.get("message", "job failed"))
    msg = (f"task {err['task']} (line {err['line']} of {err['file']}) failed: {err['type']}: {err['message']}\n"
           f"executor traceback:\n{err['traceback']}")
    mod, _, name = err["type"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(mod), name)
        if isinstance(cls, type) and issubclass(cls, OSError) and err.get("errno"):
            return cls(getattr(errno_module, err["errno"]), msg)  # e.errno == errno.ENOSPC, as raised
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(msg)
    except Exception:  # an error type that cannot be rebuilt from a message: use the generic one
        pass
    return JobFailedError(msg)


def as_bigmatrix(X, block_size=None, name: str = "X", what: str = "as_bigmatrix") -> BigMatrix:
    """``X`` as a BigMatrix: a BigMatrix as it is, a numpy array uploaded in ``block_size`` tiles.

    The rules of ``numpywren2.client.arguments``: a real dtype (a complex, object... ``X`` is a
    ``TypeError``), and a BigMatrix whose tiling differs from a given ``block_size`` is a
    ``ValueError`` (its tiles are not re-cut). Finiteness is not checked here.
    """
    bs = block_size_arg(block_size, what)
    if isinstance(X, BigMatrix):
        if bs is not None and X.block_size != bs:
            raise ValueError(f"{what}: {name} ({X.name}) is tiled {X.block_size}, not block_size {bs}; "
                             "leave block_size out to use its tiling, or create it with the tiling wanted "
                             "(BigMatrix.from_numpy(x, block_size)): re-tiling a BigMatrix is not implemented")
        return X
    X = real_array(X, name, what)
    if X.ndim != 2:
        raise ValueError(f"{what}: {name} must be a 2-D matrix, got an array of shape {X.shape}")
    return BigMatrix.from_numpy(X, bs)
