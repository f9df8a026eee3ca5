"""Launchers: where executors run.  All behind one interface, ``Launcher``.

- ``LocalProcessLauncher``: ``python -m executor`` processes on this machine, one BLAS
  thread each (the default for the embedded runtime).
- ``SimulatedLambdaLauncher``: local processes with AWS Lambda's constraints, each
  configurable: a maximum lifetime (hard kill at the limit by a timer in the child; the
  executor is told to stop taking tasks ``stop_margin`` seconds before it), a cold-start
  delay, a concurrency cap, a memory cap (``RLIMIT_AS`` in the child), one BLAS thread, and
  failure injection (kill a fraction of the live executors at given times, or each with a
  probability per minute).
- ``AwsLambdaLauncher``: one asynchronous ``invoke`` of ``executor.lambda_handler.handler``
  per executor (see docs/aws.md).

A launcher gives each executor an id (``--executor-id``), under which the executor
heart-beats in the state store; that is how a provisioner that cannot see processes
(Lambda, or a restarted provisioner) counts the executors that are alive, and how it
tells an executor that has started from one that never will (``start_timeout`` in
``ProvisionerSettings``: the provisioner then calls ``abandon``).
"""

from __future__ import annotations

import abc
import json
import math
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass

from executor.spec import ExecutorSpec, environment
from executor.warm import WarmStarter
from numpywren2.core.deprecation import renamed_options, warn_renamed

from .policy import PoolPolicy, ProportionalPolicy, ScalingPolicy
from .settings import ProvisionerSettings


@dataclass(frozen=True)
class ExitedExecutor:
    """An executor process that ended: its exit code, and whether the launcher killed it on purpose."""

    executor: str
    returncode: int
    killed_by_launcher: str | None = None  # "lifetime", "injected", "stop", "start_timeout", "stale", "lock"


def new_executor_id() -> str:
    return f"x-{uuid.uuid4().hex[:12]}"


class Launcher(abc.ABC):
    """Starts executors for a job.

    ``launch`` may start fewer than asked (a concurrency cap, throttling) and returns the
    ids it started.  ``alive(registry)`` is the set of executors this launcher started that
    are alive or still starting; ``registry`` maps executor id to its state-store entry
    (``StateStore.executors``).  ``abandon(id)`` is the provisioner giving up on an executor
    that did not start in time: it no longer counts as alive, and is ended if the launcher
    can.  ``reap()`` returns the executors that ended since the last call, for launchers that
    can see them.  ``stop()`` ends everything still running.

    ``default_max_executors`` bounds the live executors when the settings do not.  The start-up
    deadline is the provisioner's (``ProvisionerSettings.start_timeout``); ``start_timeout=``
    given to a launcher is deprecated, and overrides the settings' while it lasts.
    """

    default_max_executors: int = 1

    def __init__(self, start_timeout: float | None = None):
        if start_timeout is not None:
            warn_renamed(type(self).__name__, "start_timeout=", "ProvisionerSettings(start_timeout=...)")
        self.start_timeout = start_timeout
        self.launched: dict[str, float] = {}  # executor id -> time.monotonic() at launch
        self.abandoned: set[str] = set()  # executors the provisioner gave up on (not started in time)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "default_max_workers" in cls.__dict__:  # a subclass written against the retired name
            warn_renamed(cls.__name__, "default_max_workers", "default_max_executors")
            cls.default_max_executors = cls.__dict__["default_max_workers"]  # deprecated alias
            del cls.default_max_workers  # deprecated alias: the property below stands for it

    @property
    def default_max_workers(self) -> int:  # deprecated alias
        """Deprecated name of ``default_max_executors``."""
        warn_renamed(type(self).__name__, "default_max_workers", "default_max_executors", stacklevel=2)
        return self.default_max_executors

    @default_max_workers.setter  # deprecated alias
    def default_max_workers(self, value: int) -> None:  # deprecated alias
        warn_renamed(type(self).__name__, "default_max_workers", "default_max_executors", stacklevel=2)
        self.default_max_executors = value

    @abc.abstractmethod
    def launch(self, spec: ExecutorSpec, n: int) -> list[str]: ...

    def default_policy(self, settings: ProvisionerSettings) -> ScalingPolicy:
        """The policy of a job that names none: proportional (``sf``, default 1), for executors that cost
        money while idle.  Launchers of free executors override it."""
        return ProportionalPolicy(settings.scaling_factor or 1.0)

    def alive(self, registry: dict[str, dict]) -> set[str]:
        """Default, for executors the launcher cannot see: registered and live, or not yet
        registered and not abandoned (the provisioner abandons those past their start-up deadline)."""
        out = set()
        for eid in self.launched:
            entry = registry.get(eid)
            if entry is not None and entry["live"]:
                out.add(eid)
            elif entry is None and eid not in self.abandoned:
                out.add(eid)
        return out

    def abandon(self, executor_id: str) -> None:
        """Stop counting an executor that did not start in time (the default cannot end it: a Lambda
        invocation that starts late finds work or retires after its idle timeout)."""
        self.abandoned.add(executor_id)

    def lose(self, executor_id: str, reason: str = "stale") -> None:
        """The provisioner's verdict on an executor that started and then stopped answering (a stale
        heartbeat, a held lock): stop counting it, and end it if the launcher can."""
        self.abandoned.add(executor_id)

    def executor_of_pid(self, pid: int) -> str | None:
        """The id of the executor this launcher started as process ``pid`` on this host, if any."""
        return None

    def reap(self) -> list[ExitedExecutor]:
        return []

    def stop(self) -> None:  # noqa: B027 - optional hook
        """End the executors this launcher started, if it can."""

    def finish(self) -> None:  # noqa: B027 - optional hook
        """The job has ended: release what the launcher holds (its executors stop by themselves)."""


class LocalProcessLauncher(Launcher):
    """Executors as ``python -m executor`` processes on this machine (one BLAS thread each).

    Parameters
    ----------
    python : str
        The interpreter (default: this one).
    max_executors : int, optional
        Default bound on live executors (default: the number of CPU cores).
        (``max_workers`` is its deprecated name.)
    """

    @renamed_options(max_workers="max_executors")
    def __init__(self, python: str = sys.executable, max_executors: int | None = None,
                 start_timeout: float | None = None, warm: bool = True):
        super().__init__(start_timeout)
        self.python = python
        self.warm = warm
        self.default_max_executors = max_executors or os.cpu_count() or 1
        self.processes: dict[str, subprocess.Popen] = {}
        self._reaped: set[str] = set()
        self._killed: dict[str, str] = {}  # executor id -> why the launcher killed it
        self._lock = threading.RLock()

    def _command(self, spec: ExecutorSpec, executor_id: str) -> list[str]:
        return [self.python, "-m", "executor", *spec.cli_args(executor_id)]

    def default_policy(self, settings: ProvisionerSettings) -> ScalingPolicy:
        """``PoolPolicy``: idle local executors cost nothing, so the pool starts whole (a given
        ``settings.scaling_factor`` asks for the proportional policy instead)."""
        if settings.scaling_factor is not None:
            return ProportionalPolicy(settings.scaling_factor)
        return PoolPolicy()

    def _can_start(self) -> int:
        return sys.maxsize

    def _spawn(self, spec: ExecutorSpec, executor_id: str, env: dict[str, str]):
        """A ``python -m executor`` process; forked from the warm zygote (executor/warm.py) when this
        launcher runs the plain executor with this interpreter, unless ``NPW_COLD_START`` is set."""
        plain = type(self)._command is LocalProcessLauncher._command
        if plain and self.python == sys.executable and self.warm and not os.environ.get("NPW_COLD_START"):
            return WarmStarter.start(spec.cli_args(executor_id), env)
        return subprocess.Popen(self._command(spec, executor_id), env=env, stdin=subprocess.DEVNULL)

    def launch(self, spec: ExecutorSpec, n: int) -> list[str]:
        ids = []
        with self._lock:
            n = min(n, self._can_start())
            env = environment()
            for _ in range(max(0, n)):
                eid = new_executor_id()
                self.processes[eid] = self._spawn(spec, eid, env)
                self.launched[eid] = time.monotonic()
                ids.append(eid)
        return ids

    def alive(self, registry: dict[str, dict] | None = None) -> set[str]:
        with self._lock:
            return {eid for eid, p in self.processes.items() if p.poll() is None}

    def reap(self) -> list[ExitedExecutor]:
        out = []
        with self._lock:
            for eid, p in self.processes.items():
                if eid not in self._reaped and p.poll() is not None:
                    self._reaped.add(eid)
                    out.append(ExitedExecutor(eid, p.returncode, self._killed.get(eid)))
        return out

    def abandon(self, executor_id: str) -> None:
        """SIGKILL an executor that did not start in time (``reap`` reports it killed, ``"start_timeout"``)."""
        super().abandon(executor_id)
        self.kill(executor_id, "start_timeout")

    def lose(self, executor_id: str, reason: str = "stale") -> None:
        """SIGKILL a lost executor (``reap`` reports it killed, with ``reason``); SIGKILL ends a stopped
        process too, and its death releases every lock it held."""
        super().lose(executor_id, reason)
        self.kill(executor_id, reason)

    def executor_of_pid(self, pid: int) -> str | None:
        with self._lock:
            return next((eid for eid, p in self.processes.items() if p.pid == pid), None)

    def kill(self, executor_id: str, reason: str = "injected") -> bool:
        """SIGKILL one executor (no clean stop: its leased task reappears when the lease expires)."""
        with self._lock:
            p = self.processes.get(executor_id)
            if p is None or p.poll() is not None:
                return False
            self._killed[executor_id] = reason
            p.send_signal(signal.SIGKILL)
            p.wait()  # reaped at once: alive() no longer counts it
            return True

    def stop(self) -> None:
        with self._lock:
            procs = [(eid, p) for eid, p in self.processes.items() if p.poll() is None]
            for eid, p in procs:
                self._killed.setdefault(eid, "stop")
                p.terminate()
        for _, p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class SimulatedLambdaLauncher(LocalProcessLauncher):
    """Local executor processes with Lambda's limits, for experiments.

    Parameters
    ----------
    lifetime : float
        Maximum lifetime in seconds, counted from when the executor has started (after the
        cold start and Python's imports, as Lambda's timeout does not count its init phase):
        a timer in the child ends the process (SIGALRM, no clean-up) at the limit, as Lambda
        ends an invocation at its timeout.  Default 900 (Lambda's maximum).
    stop_margin : float, optional
        The executor stops taking new tasks this many seconds before the limit (default:
        ``min(20, 0.15 × lifetime)``, as ``executor.lambda_handler`` does on Lambda).
    cold_start : float
        Seconds a new executor waits before it starts (default 0; the Python start-up of an
        executor, about half a second here, comes on top).
    concurrency : int
        At most this many executors alive at once; launches beyond it are refused, as Lambda
        throttles (default 1000, Lambda's default account limit).
    memory_mb : int, optional
        Address-space limit of each executor (``RLIMIT_AS``); None: no limit.  Default 2048.
        Note that this caps virtual memory, which is larger than resident memory.
    kill_at : list of (seconds, fraction)
        Failure injection: at each time (seconds after the first launch) SIGKILL that
        fraction of the live executors (rounded up, chosen at random).
    kill_probability_per_minute : float
        Failure injection: every live executor is killed with this probability per minute.
    seed : int, optional
        Seeds the choice of executors to kill.
    nice : int
        CPU priority increment of the executors (default 10), so that on a machine with few
        cores the client and its provisioner (on a real deployment, another machine) are not
        starved by many simulated executors.
    """

    def __init__(self, lifetime: float = 900.0, stop_margin: float | None = None, cold_start: float = 0.0,
                 concurrency: int = 1000, memory_mb: int | None = 2048,
                 kill_at: list[tuple[float, float]] | tuple = (), kill_probability_per_minute: float = 0.0,
                 seed: int | None = None, python: str = sys.executable, tick: float = 0.05, nice: int = 10):
        if not lifetime > 0:
            raise ValueError(f"lifetime must be positive, got {lifetime}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if cold_start < 0:
            raise ValueError(f"cold_start must not be negative, got {cold_start}")
        if not 0 <= kill_probability_per_minute <= 1:
            raise ValueError(f"kill_probability_per_minute must be in [0, 1], got {kill_probability_per_minute}")
        for t, f in kill_at:
            if not (t >= 0 and 0 <= f <= 1):
                raise ValueError(f"kill_at entries are (seconds >= 0, fraction in [0, 1]), got {(t, f)}")
        super().__init__(python=python, max_executors=concurrency)
        self.lifetime, self.cold_start, self.concurrency, self.memory_mb = lifetime, cold_start, concurrency, memory_mb
        self.stop_margin = min(20.0, 0.15 * lifetime) if stop_margin is None else stop_margin
        self.kill_at = sorted(kill_at)
        self.kill_probability_per_minute = kill_probability_per_minute
        self.rng = random.Random(seed)
        self.tick, self.nice = tick, nice
        self.kills: list[tuple[float, str, str]] = []  # (seconds since first launch, executor id, reason)
        self.throttled = 0  # executors refused by the concurrency cap
        self.t0: float | None = None
        self._next_kill = 0
        self._closed = threading.Event()
        self._monitor: threading.Thread | None = None

    STARTUP_ALLOWANCE = 120.0  # seconds a child may take to import before its own timer runs

    def default_policy(self, settings: ProvisionerSettings) -> ScalingPolicy:
        """Proportional, as on the Lambda it simulates (executors are billed while alive)."""
        return Launcher.default_policy(self, settings)

    def reap(self) -> list[ExitedExecutor]:
        return [ExitedExecutor(e.executor, e.returncode, "lifetime") if e.returncode == -signal.SIGALRM else e
                for e in super().reap()]

    def _command(self, spec: ExecutorSpec, executor_id: str) -> list[str]:
        limit = max(0.0, self.lifetime - self.stop_margin)
        if spec.time_limit is not None:
            limit = min(limit, spec.time_limit)
        sandbox = [self.python, "-m", "provisioner.sandbox", "--cold-start", str(self.cold_start),
                   "--lifetime", str(self.lifetime), "--nice", str(self.nice)]
        if self.memory_mb is not None:
            sandbox += ["--memory-mb", str(self.memory_mb)]
        return [*sandbox, "--", *spec.cli_args(executor_id, time_limit=limit)]

    def _can_start(self) -> int:
        return self.concurrency - len(self.alive())

    def launch(self, spec: ExecutorSpec, n: int) -> list[str]:
        with self._lock:
            if self.t0 is None:
                self.t0 = time.monotonic()
                self._monitor = threading.Thread(target=self._monitor_loop, daemon=True, name="simulated-lambda")
                self._monitor.start()
            ids = super().launch(spec, n)
            self.throttled += max(0, n - len(ids))
            return ids

    def kill_fraction(self, fraction: float, reason: str = "injected") -> list[str]:
        """SIGKILL ``ceil(fraction × live)`` executors chosen at random; returns their ids."""
        with self._lock:
            live = sorted(self.alive())
            victims = self.rng.sample(live, min(len(live), math.ceil(fraction * len(live) - 1e-9)))
            for eid in victims:
                if self.kill(eid, reason):
                    self.kills.append((time.monotonic() - (self.t0 or time.monotonic()), eid, reason))
            return victims

    def _monitor_loop(self) -> None:
        last = time.monotonic()
        while not self._closed.wait(self.tick):
            now = time.monotonic()
            dt, last = now - last, now
            with self._lock:
                for eid, p in self.processes.items():  # the child's own timer ended it at its lifetime
                    if p.poll() == -signal.SIGALRM and self._killed.get(eid) != "lifetime":
                        self._killed[eid] = "lifetime"
                        self.kills.append((now - self.t0, eid, "lifetime"))
                for eid in self.alive():  # backstop: a child stuck before arming its timer
                    if now - self.launched[eid] >= self.cold_start + self.lifetime + self.STARTUP_ALLOWANCE:
                        if self.kill(eid, "lifetime"):
                            self.kills.append((now - self.t0, eid, "lifetime"))
                while self._next_kill < len(self.kill_at) and now - self.t0 >= self.kill_at[self._next_kill][0]:
                    self.kill_fraction(self.kill_at[self._next_kill][1])
                    self._next_kill += 1
                if self.kill_probability_per_minute > 0:
                    p = 1.0 - (1.0 - self.kill_probability_per_minute) ** (dt / 60.0)
                    for eid in sorted(self.alive()):
                        if self.rng.random() < p and self.kill(eid, "injected"):
                            self.kills.append((now - self.t0, eid, "injected"))

    def stop(self) -> None:
        self._closed.set()
        super().stop()

    def finish(self) -> None:
        self._closed.set()  # ends the monitor thread; failure injection and the backstop stop with it


class AwsLambdaLauncher(Launcher):
    """Executors as AWS Lambda invocations of ``executor.lambda_handler.handler``.

    Each executor is one asynchronous ``invoke`` (``InvocationType="Event"``) whose payload
    is ``ExecutorSpec.lambda_event``.  Lambda ends an invocation at the function's timeout;
    the handler stops taking tasks before it.  Throttling (``TooManyRequestsException``)
    launches fewer executors this time; the provisioner asks again at its next poll.

    Parameters
    ----------
    function_name : str
        Name or ARN of the Lambda function (deployed as in docs/aws.md).
    client : optional
        A boto3 Lambda client (default: ``boto3.client("lambda", region_name=region)``).
    region : str, optional
    max_executors : int
        Default bound on live executors (default 1000, Lambda's default concurrency limit).
        (``max_workers`` is its deprecated name.)
    qualifier : str, optional
        Version or alias to invoke.
    """

    @renamed_options(max_workers="max_executors")
    def __init__(self, function_name: str, client=None, region: str | None = None, max_executors: int = 1000,
                 qualifier: str | None = None, start_timeout: float | None = None):
        super().__init__(start_timeout)
        if client is None:
            import boto3

            client = boto3.client("lambda", region_name=region)
        self.client, self.function_name, self.qualifier = client, function_name, qualifier
        self.default_max_executors = max_executors
        self.throttled = 0

    def launch(self, spec: ExecutorSpec, n: int) -> list[str]:
        from botocore.exceptions import ClientError

        ids = []
        for _ in range(max(0, n)):
            eid = new_executor_id()
            kw = {"FunctionName": self.function_name, "InvocationType": "Event",
                  "Payload": json.dumps(spec.lambda_event(eid)).encode()}
            if self.qualifier:
                kw["Qualifier"] = self.qualifier
            try:
                resp = self.client.invoke(**kw)
            except ClientError as e:
                code = e.response.get("Error", {}).get("Code", "")
                if code in ("TooManyRequestsException", "EC2ThrottledException"):
                    self.throttled += n - len(ids)
                    break
                raise
            if resp.get("StatusCode") != 202:
                raise RuntimeError(f"Lambda {self.function_name} did not accept the invocation: {resp}")
            self.launched[eid] = time.monotonic()
            ids.append(eid)
        return ids
