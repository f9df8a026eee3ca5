"""Submitting a program and following its job.

``submit`` binds the program, checks its matrices, stores the job description,
enqueues the starter tasks and starts the job's provisioner, which launches
executors as the parallelism asks.  ``Job.wait`` follows the completed-task
counter in the state store until it reaches ``num_tasks()``.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import sys
import time
import uuid

import numpy as np

import lambdapack as lp

from .backends import with_retries
from .jobspec import encode_kernels
from .matrix import BigMatrix
from .runtime import Runtime, current_runtime


class JobFailedError(RuntimeError):
    """A job failed: a task's kernel raised, or no executor was left to finish it."""


def submit(program: lp.Program, *, runtime: Runtime | None = None, workers: int | None = None,
           idle_timeout: float | None = None, lease: float | None = None, settings=None, launcher=None,
           policy=None, **arguments) -> Job:
    """Run a LAmbdaPACK program on the current runtime.

    Parameters are bound by name: integers for the program's integer parameters,
    ``BigMatrix`` for its tile spaces.  A matrix the program only reads is an input
    and must hold data; one it writes must be empty.  Tile spaces not given are
    scratch space owned by the job, deleted when it ends.

    Parameters
    ----------
    program : lambdapack.Program
    runtime : Runtime, optional
        Default: the current runtime.
    workers : int, optional
        At most this many executors at once (the provisioner's ``max_workers``); 0 launches
        none (executors run elsewhere).  Default: the settings', else the launcher's.
    idle_timeout, lease : float, optional
        Override the provisioner settings' executor idle timeout and queue lease (seconds).
    settings : provisioner.ProvisionerSettings, optional
        Default: the runtime's, else ``ProvisionerSettings()``.
    launcher : provisioner.Launcher, optional
        Default: a new one from the runtime (local processes unless configured otherwise).
    policy : provisioner.ScalingPolicy, optional
        Default: ``ProportionalPolicy(settings.scaling_factor)``.
    **arguments
        The program's integer parameters and matrices, by name.

    Returns
    -------
    Job
    """
    from provisioner import Provisioner, ProvisionerSettings

    rt = runtime or current_runtime()
    ints = {k: v for k, v in arguments.items() if k in program.params}
    mats = {k: v for k, v in arguments.items() if k in program.matrices}
    unknown = set(arguments) - set(ints) - set(mats)
    if unknown:
        raise TypeError(f"{program.name}: unknown argument(s) {', '.join(sorted(unknown))}; "
                        f"integers: {', '.join(program.params)}; matrices: {', '.join(program.matrices)}")
    bound = program.bind(**ints)
    job = f"job-{uuid.uuid4().hex[:12]}"
    prefixes = {}
    for name in program.tile_spaces:  # parameters, then the program's local scratch spaces
        m = mats.get(name)
        if m is None:
            prefixes[name] = f"{job}/{name}"
            continue
        if not isinstance(m, BigMatrix):
            raise TypeError(f"{program.name}: matrix {name} must be a BigMatrix, not {type(m).__name__}")
        if m.store.url != rt.store.url:
            raise ValueError(f"matrix {name} ({m.name}) lives in {m.store.url}, not in this runtime's store "
                             f"{rt.store.url}; a BigMatrix belongs to the runtime it was created under")
        tiles = [k for k in m.store.list(f"{m.name}/") if k != f"{m.name}/meta"]
        if name in bound.inputs and bound.readers[name] and not tiles:
            raise ValueError(f"{program.name}: input matrix {name} ({m.name}) holds no tiles")
        if name in bound.outputs and tiles:
            raise ValueError(f"{program.name}: output matrix {name} ({m.name}) is not empty "
                             f"({len(tiles)} tiles); tiles are written once")
        prefixes[name] = m.name
    missing = [n for n in bound.inputs if n not in mats and bound.readers[n]]
    if missing:
        raise TypeError(f"{program.name}: input matrix {', '.join(missing)} not given")
    n_tasks = bound.num_tasks()
    desc = {"program": program.to_json(), "params": bound.values, "prefixes": prefixes,
            "kernels": encode_kernels(program.kernels()), "num_tasks": n_tasks,
            "scratch": [n for n in program.tile_spaces if n not in mats]}
    rt.state.create_job(job, json.dumps(desc))
    queue = rt.queue(job)
    queue.send([t.to_json() for t in bound.starters()])
    j = Job(rt, job, bound, n_tasks, queue)
    j.outputs = {n: m for n, m in mats.items() if n in bound.outputs}
    settings = settings or rt.provisioner_settings or ProvisionerSettings()
    overrides = {k: v for k, v in (("max_workers", workers), ("idle_timeout", idle_timeout), ("lease", lease))
                 if v is not None and v != 0}
    settings = dataclasses.replace(settings, **overrides)
    if n_tasks and workers != 0 and (workers is not None or rt.workers != 0):
        j.provisioner = Provisioner(rt.urls, job, launcher or rt.make_launcher(), settings, policy).start()
        rt.provisioners.append(j.provisioner)
    return j


class Job:
    """A submitted job: ``wait()``, ``status()``, ``cancel()``, ``stats()``."""

    def __init__(self, runtime: Runtime, job_id: str, bound, num_tasks: int, queue):
        self.runtime, self.id, self.bound, self.num_tasks, self.queue = runtime, job_id, bound, num_tasks, queue
        self.outputs: dict[str, BigMatrix] = {}
        self.provisioner = None  # provisioner.Provisioner of this job, when it runs in this process
        self.started = time.time()
        self.finished: float | None = None
        self._cleaned = False

    def _record(self) -> dict:
        """The job record, riding out brief outages; a lost record is a clear error."""
        try:
            return with_retries(self.runtime.state.job, self.id, attempts=8, max_delay=4.0)
        except KeyError:
            raise JobFailedError(
                f"the state store {self.runtime.state.url} has lost job {self.id} (was the server restarted "
                "without persistence?); its result cannot be trusted, submit it again") from None

    def status(self) -> str:
        rec = self._record()
        if rec["status"] == "running" and rec["counters"].get("completed", 0) >= self.num_tasks:
            return "done"
        return rec["status"]

    def completed(self) -> int:
        return int(self._record()["counters"].get("completed", 0))

    def wait(self, timeout: float | None = None, progress: bool = False, poll: float = 0.05) -> Job:
        """Block until the job is done; raise if it failed, was cancelled, or cannot finish."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last_print = 0.0
        while True:
            rec = self._record()
            done = int(rec["counters"].get("completed", 0))
            if progress and time.monotonic() - last_print > 0.5:
                self._print_progress(done)
                last_print = time.monotonic()
            if rec["status"] == "failed":
                self._end()
                raise _job_error(rec["error"])
            if rec["status"] == "cancelled":
                self._end()
                raise JobFailedError(f"job {self.id} was cancelled")
            if done >= self.num_tasks:
                self.runtime.state.set_status(self.id, "done")
                if progress:
                    self._print_progress(done, final=True)
                self._end()
                return self
            if self.provisioner is not None and self.provisioner.error is not None:
                self._end()
                raise JobFailedError(f"job {self.id}: its provisioner failed: {self.provisioner.error!r}")
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
        """Per-second samples written by the provisioner: ``t`` (seconds since submit), ``pending``
        (queued tasks), ``running`` (leased tasks), ``executors`` (alive or starting),
        ``working`` (alive and registered: past their start-up), ``completed`` and ``launched`` (so far)."""
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
        self._settle()
        out = []
        for r in self.runtime.state.records(self.id, "tasks"):
            d = json.loads(r)
            d["start"] -= self.started
            d["end"] -= self.started
            out.append(d)
        return sorted(out, key=lambda d: d["start"])

    def _print_progress(self, done: int, final: bool = False) -> None:
        el = time.time() - self.started
        rate = done / el if el > 0 else 0.0
        eta = (self.num_tasks - done) / rate if rate > 0 else float("inf")
        end = "\n" if final else "\r"
        print(f"{self.id}: {done}/{self.num_tasks} tasks, {rate:.0f} tasks/s, ETA {eta:.0f} s   ", end=end,
              file=sys.stderr, flush=True)

    def cancel(self) -> None:
        self.runtime.state.set_status(self.id, "cancelled")
        self._end()

    def _end(self) -> None:
        if self._cleaned:
            return
        self._cleaned = True
        self.finished = time.time()
        if self.provisioner is not None:
            self.provisioner.stop()
        self.queue.delete()
        self.runtime.store.delete_prefix(f"{self.id}/")  # scratch tiles

    def stats(self, cost_model=None) -> dict:
        """Counters of the job.

        ``core_s`` is the executors' lifetimes from the state store's registry plus
        ``cost_model.startup_s`` per executor, and ``cost_usd`` the estimate of
        ``provisioner.CostModel`` (default parameters: AWS Lambda's prices; see that class).
        ``executor_s`` is the same without the start-up overhead, ``executors`` the number of
        executors that ran (killed ones included).  Once the job has ended, waits (up to 10 s)
        for its executors to exit first, so that their lifetimes are final.
        """
        from provisioner import executor_usage

        self._settle()
        rec = self.runtime.state.job(self.id)
        c = rec["counters"]
        wall = (self.finished or time.time()) - self.started
        usage = executor_usage(self.runtime.state.executors(self.id), cost_model)
        return {"tasks": int(c.get("completed", 0)), "num_tasks": self.num_tasks,
                "kernel_s": c.get("kernel_s", 0.0), "read_s": c.get("read_s", 0.0), "write_s": c.get("write_s", 0.0),
                "bytes_read": int(c.get("bytes_read", 0)), "bytes_written": int(c.get("bytes_written", 0)),
                "tiles_freed": int(c.get("tiles_freed", 0)),
                "wall_s": wall, "core_s": usage["core_s"], "executor_s": usage["executor_s"],
                "executors": usage["executors"], "cost_usd": usage["cost_usd"], "status": rec["status"]}


def _job_error(text: str | None) -> Exception:
    try:
        err = json.loads(text or "{}")
    except json.JSONDecodeError:
        err = {"message": text}
    if "task" not in err:
        return JobFailedError(err.get("message", "job failed"))
    msg = (f"task {err['task']} (line {err['line']} of {err['file']}) failed: {err['type']}: {err['message']}\n"
           f"executor traceback:\n{err['traceback']}")
    mod, _, name = err["type"].rpartition(".")
    try:
        cls = getattr(importlib.import_module(mod), name)
        if isinstance(cls, type) and issubclass(cls, Exception):
            return cls(msg)
    except Exception:  # an error type that cannot be rebuilt from a message: use the generic one
        pass
    return JobFailedError(msg)


def as_bigmatrix(X, block_size=None) -> BigMatrix:
    if isinstance(X, BigMatrix):
        return X
    X = np.asarray(X)
    return BigMatrix.from_numpy(X, block_size)
