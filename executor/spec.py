"""How to start an executor: ``ExecutorSpec``, made by launchers and read by every entry point.

A spec names the backends by URL, the job and the executor's limits.  It travels as command-line
arguments (``python -m executor``, the warm zygote's children, the simulated-Lambda sandbox) or as a
Lambda event; both are made and read here, with the defaults below spelled once.  Launchers
(``provisioner.launchers``) build specs and start processes; whatever the route, the executor
process ends up in ``executor.worker.run``.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

DEFAULT_LEASE = 60.0  # seconds a leased task stays hidden; renewed while the task runs
DEFAULT_IDLE_TIMEOUT = 10.0  # seconds without work before an executor retires itself (the paper's)
DEFAULT_TASK_TIMEOUT = 900.0  # seconds one task may run (Lambda's longest lifetime) before it is abandoned
DEFAULT_TASK_ATTEMPTS = 3  # runs of one task that may overrun the task time limit before the job fails
EXIT_TASK_TIMEOUT = 75  # exit code of an executor that abandoned a task past its time limit (EX_TEMPFAIL)
BLAS_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
SOURCE_ROOT = str(Path(__file__).resolve().parent.parent)  # the directory holding executor/ and numpywren2/


@dataclass(frozen=True)
class ExecutorSpec:
    """What an executor needs to know: the backends by URL, the job, and its limits.

    >>> spec = ExecutorSpec("file:///t", "sqlite:///s.db", "sqlite:///s.db", "job-1", lease=5)
    >>> ExecutorSpec.from_cli(spec.cli_args("x-1")) == (spec, "x-1")
    True
    >>> ExecutorSpec.from_event(spec.lambda_event("x-2")) == (spec, "x-2")
    True
    """

    store: str
    queue: str
    state: str
    job: str
    lease: float = DEFAULT_LEASE
    idle_timeout: float = DEFAULT_IDLE_TIMEOUT
    time_limit: float | None = None
    task_timeout: float = DEFAULT_TASK_TIMEOUT
    task_attempts: int = DEFAULT_TASK_ATTEMPTS

    def cli_args(self, executor_id: str, time_limit: float | None = None) -> list[str]:
        """Arguments of ``python -m executor`` (``time_limit`` overrides the spec's)."""
        args = ["--store", self.store, "--queue", self.queue, "--state", self.state, "--job", self.job,
                "--lease", str(self.lease), "--idle-timeout", str(self.idle_timeout), "--executor-id", executor_id,
                "--task-timeout", str(self.task_timeout), "--task-attempts", str(self.task_attempts)]
        limit = time_limit if time_limit is not None else self.time_limit
        if limit is not None:
            args += ["--time-limit", str(limit)]
        return args

    def lambda_event(self, executor_id: str) -> dict:
        """The event of ``executor.lambda_handler.handler`` (Lambda's own deadline bounds the lifetime)."""
        return {"store": self.store, "queue": self.queue, "state": self.state, "job": self.job,
                "lease": self.lease, "idle_timeout": self.idle_timeout, "executor_id": executor_id,
                "task_timeout": self.task_timeout, "task_attempts": self.task_attempts}

    @classmethod
    def from_cli(cls, argv: list[str] | None = None) -> tuple[ExecutorSpec, str | None]:
        """``(spec, executor id)`` from the arguments of ``python -m executor``."""
        ap = argparse.ArgumentParser(prog="python -m executor",
                                     description="Run one executor of a job until the job ends, it is idle "
                                                 "for --idle-timeout seconds, or --time-limit passes.")
        ap.add_argument("--store", required=True, help="tile store URL (file://, s3://)")
        ap.add_argument("--queue", required=True, help="queue URL (sqlite://, redis://, sqs://)")
        ap.add_argument("--state", required=True, help="state store URL (sqlite://, redis://)")
        ap.add_argument("--job", required=True, help="the job id")
        ap.add_argument("--lease", type=float, default=DEFAULT_LEASE)
        ap.add_argument("--idle-timeout", type=float, default=DEFAULT_IDLE_TIMEOUT)
        ap.add_argument("--time-limit", type=float, default=None)
        ap.add_argument("--executor-id", default=None, help="id in the state store's executor registry")
        ap.add_argument("--task-timeout", type=float, default=DEFAULT_TASK_TIMEOUT,
                        help="seconds one task may run before this executor abandons it and exits")
        ap.add_argument("--task-attempts", type=int, default=DEFAULT_TASK_ATTEMPTS,
                        help="runs of one task past --task-timeout before the job fails")
        a = ap.parse_args(argv)
        return cls(a.store, a.queue, a.state, a.job, a.lease, a.idle_timeout, a.time_limit, a.task_timeout,
                   a.task_attempts), a.executor_id

    @classmethod
    def from_event(cls, event: dict) -> tuple[ExecutorSpec, str | None]:
        """``(spec, executor id)`` from a Lambda event made by ``lambda_event``."""
        limit = event.get("time_limit")
        return (cls(event["store"], event["queue"], event["state"], event["job"],
                    float(event.get("lease", DEFAULT_LEASE)), float(event.get("idle_timeout", DEFAULT_IDLE_TIMEOUT)),
                    None if limit is None else float(limit),
                    float(event.get("task_timeout", DEFAULT_TASK_TIMEOUT)),
                    int(event.get("task_attempts", DEFAULT_TASK_ATTEMPTS))), event.get("executor_id"))


def one_blas_thread(env: dict[str, str]) -> dict[str, str]:
    """``env`` with one BLAS thread (executors share a machine's cores by process, not by thread)."""
    for var in BLAS_THREAD_VARS:
        env[var] = "1"
    return env


def environment() -> dict[str, str]:
    """The environment of an executor process on this machine: one BLAS thread, this source tree importable."""
    env = one_blas_thread(dict(os.environ))
    env["PYTHONPATH"] = SOURCE_ROOT + os.pathsep + env.get("PYTHONPATH", "")
    return env
