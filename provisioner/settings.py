"""The provisioner's settings, with their defaults and what each one means."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, fields

from executor.spec import DEFAULT_IDLE_TIMEOUT, DEFAULT_LEASE, DEFAULT_TASK_ATTEMPTS, DEFAULT_TASK_TIMEOUT
from numpywren2.core.deprecation import renamed_options, warn_renamed


@dataclass(frozen=True)
class ProvisionerSettings:
    """How the provisioner scales a job's executors.

    Parameters
    ----------
    scaling_factor : float, optional
        ``sf``: the provisioner keeps ``executors ≈ sf × (ready + leased)``: the tasks that can
        run and are not done, whether they wait in the queue (ready) or an executor holds them
        (leased).  The numpywren paper used sf ∈ {1/4, 1/3, 1/2, 1}.  Values above 1
        over-provision.  Default None: the launcher's default policy
        (``Launcher.default_policy``): sf = 1 for cloud launchers, whose executors cost money
        while idle, and ``PoolPolicy`` (the whole pool from the first task) for local processes;
        a given ``scaling_factor`` selects the proportional policy with any launcher.
    max_executors : int, optional
        Upper bound on executors alive at once for the job (default: the launcher's, e.g. the
        number of CPU cores for local processes, the concurrency cap for simulated Lambda).
        (``max_workers`` is its deprecated name.)
    idle_timeout : float
        Seconds an executor waits without work before retiring itself (default 10, as in the paper).
    poll_interval : float
        Seconds between two observations of the queue and state store (default 0.5).
    timeline_interval : float
        Seconds between two timeline samples written to the state store (default 1.0).
    time_limit : float, optional
        Executor lifetime in seconds: an executor stops taking tasks after this long (default:
        none for local processes; the simulated-Lambda and AWS launchers impose their own).
    lease : float
        Queue lease in seconds: how long a task leased by an executor that died stays hidden
        before another executor may run it (default 60; the lease is renewed while a task runs).
    start_timeout : float
        Seconds within which a launched executor must heart-beat in the state store.  One that
        has not is a failed start: the provisioner gives up on it (a local process is killed; a
        Lambda invocation stops being counted), counts it towards ``max_failed_starts``, and the
        policy launches a replacement if the work still asks for one.  Default 60.
    task_timeout : float
        Seconds one task may run (read, kernel, write, complete).  An executor whose task runs longer
        abandons it: it stops renewing the task's lease, records the overrun in the job's ``timeouts``
        records and exits (a kernel cannot be interrupted), so that the task is run again elsewhere
        once its lease runs out.  Default 900 (Lambda's longest lifetime).  Set it per runtime with
        ``npw.runtime(provisioner=ProvisionerSettings(task_timeout=...))``.
    task_attempts : int
        Runs of one task that may overrun ``task_timeout``: at the last, the job fails naming the task
        (``Job.wait`` raises it).  Default 3.
    heartbeat_timeout : float
        Seconds an executor that has started may go without a live heartbeat (its heartbeat's own
        ttl, a few seconds, ran out) before the provisioner treats it as lost: a stopped, frozen or
        hung process.  The launcher ends it (a local process is killed by its id; a Lambda invocation
        stops being counted) and the policy launches a replacement if the work still asks for one;
        its leased task reappears when its lease runs out.  Default 30.
    lock_timeout : float
        Seconds one executor may hold the embedded (SQLite) database's write lock with no commit
        by anyone meanwhile (``StateStore.write_lock``) before the provisioner ends it: a process
        stopped inside a transaction would otherwise stop every executor.  Default 10.
    max_failed_starts : int
        The job is failed when this many executors in a row fail to start or exit with an error
        while no task completes (e.g. an executor that cannot import the job's kernels, or runs out
        of memory).  Default 5.
    """

    scaling_factor: float | None = None
    max_executors: int | None = None
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    poll_interval: float = 0.5
    timeline_interval: float = 1.0
    time_limit: float | None = None
    lease: float = DEFAULT_LEASE
    start_timeout: float = 60.0
    task_timeout: float = DEFAULT_TASK_TIMEOUT
    task_attempts: int = DEFAULT_TASK_ATTEMPTS
    heartbeat_timeout: float = 30.0
    lock_timeout: float = 10.0
    max_failed_starts: int = 5

    def __post_init__(self) -> None:
        if self.scaling_factor is not None and not self.scaling_factor > 0:
            raise ValueError(f"scaling_factor must be positive, got {self.scaling_factor}")
        if self.max_executors is not None and self.max_executors < 1:
            raise ValueError(f"max_executors must be at least 1, got {self.max_executors}")
        for name in ("idle_timeout", "poll_interval", "timeline_interval", "lease", "start_timeout",
                     "heartbeat_timeout", "lock_timeout", "task_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.task_attempts < 1:
            raise ValueError(f"task_attempts must be at least 1, got {self.task_attempts}")
        if self.time_limit is not None and not self.time_limit > 0:
            raise ValueError(f"time_limit must be positive (or None), got {self.time_limit}")

    def cli_args(self) -> list[str]:
        """These settings as ``python -m provisioner`` options (every field that is not None), so a detached
        job's provisioner process runs with all of them (``from_cli`` reads them back).

        >>> args = ProvisionerSettings(max_executors=4, timeline_interval=0.25).cli_args()
        >>> args[:2], args[args.index("--timeline-interval") + 1], "--scaling-factor" in args
        (['--max-executors', '4'], '0.25', False)
        """
        out = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                out += [f"--{f.name.replace('_', '-')}", str(value)]
        return out

    @classmethod
    def from_cli(cls, args: argparse.Namespace) -> ProvisionerSettings:
        """The settings of parsed ``python -m provisioner`` options (one per field: ``cli_args``)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})

    @property
    def max_workers(self) -> int | None:  # deprecated alias
        """Deprecated name of ``max_executors``."""
        warn_renamed("ProvisionerSettings", "max_workers", "max_executors", stacklevel=2)
        return self.max_executors


ProvisionerSettings.__init__ = renamed_options(max_workers="max_executors")(ProvisionerSettings.__init__)
