"""The provisioner: a control loop that launches executors as a job's parallelism rises.

The words (ready, leased, done, executor, started...) are those of docs/glossary.md.

State it keeps (all of it can be rebuilt from the backends, which is why a restarted
provisioner picks up where the old one stopped):

``launcher.launched``  executors this provisioner started (id -> launch time);
``starting``            those of them that have not heart-beat yet (id -> ``clock()`` at launch);
``failed_starts``       those it gave up on: no heartbeat within ``start_timeout`` of their launch;
``silent_since``        started executors whose heartbeat is not live, since when (``heartbeat_timeout``);
``lock_seen``           the state store's write-lock holder and commit version, since when (``lock_timeout``);
``lost``                executors it gave up on after they started: stale, or stuck holding the lock;
``failed_in_a_row``     executors that failed to start or exited with an error since the last
                        task was done;
``last_sample``         when the last timeline sample was written.

Every ``poll_interval`` seconds (``step``):

1. read the job's outcome from its record (``numpywren2.core.outcome.job_outcome``, the rule the
   client follows too): stop when it has ended; when every task is done, mark it "done", so
   executors stop;
2. count ready and leased tasks (``TaskQueue.counts``) and the executors alive or starting:
   those this provisioner's launcher knows to be alive or starting, plus those live in
   the state store's executor registry that it did not start (started by an earlier
   provisioner, or by hand).  An executor of its own that has not heart-beat within
   ``start_timeout`` of its launch is a failed start: the launcher abandons it (a local
   process is killed), it no longer counts, and it counts towards ``max_failed_starts``.  One that
   has started but whose heartbeat has not been live for ``heartbeat_timeout``, or that has held
   the embedded store's write lock for ``lock_timeout`` with no commit meanwhile, is lost: the
   launcher ends it (``lose``: a local process is killed by its id) and it no longer counts;
3. ask the policy how many executors to launch, bounded by ``max_executors``, and launch
   them (replacing failed starts, if the work still asks for them);
4. once per ``timeline_interval``, append a timeline sample to the state store: time,
   ready tasks, leased tasks, executors alive or starting, executors started (alive and
   heart-beating: past their start-up), done tasks, executors launched so far.

The clock (``clock``, default ``time.monotonic``) is a parameter, so that tests can move time
past a deadline without waiting for it.

Executors retire themselves after ``idle_timeout`` seconds without work, so the pool
shrinks by itself when the parallelism falls.  One provisioner per job: two at once
would each launch for the same backlog.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable

from executor.spec import EXIT_TASK_TIMEOUT
from numpywren2.core.backends import (
    OutageError,
    QueueLostError,
    open_queue,
    open_state,
    open_store,
    outage_s,
    transient_errors,
    with_retries,
)
from numpywren2.core.jobspec import JobSpec
from numpywren2.core.outcome import DONE, FAILED, JobOutcome, Watermark, job_outcome, replaced_error, rollback_error
from numpywren2.core.signing import redact_url
from numpywren2.core.tombstone import write_tombstone

from .launchers import ExecutorSpec, Launcher
from .policy import Observation, ScalingPolicy
from .settings import ProvisionerSettings

log = logging.getLogger("provisioner")


class Provisioner:
    """Keeps a job's executors at what the policy asks for.

    Parameters
    ----------
    urls : dict
        ``{"store", "queue", "state"}`` backend URLs, as executors will open them.
    job : str
        The job id (it must exist in the state store).
    launcher : Launcher
    settings : ProvisionerSettings, optional
    policy : ScalingPolicy, optional
        Default: ``launcher.default_policy(settings)``: ``ProportionalPolicy`` for cloud launchers
        (and wherever ``settings.scaling_factor`` is given), ``PoolPolicy`` for local processes.
    clock : callable, optional
        Seconds, monotonic (default ``time.monotonic``): start-up deadlines and ``elapsed``.
    """

    def __init__(self, urls: dict[str, str], job: str, launcher: Launcher,
                 settings: ProvisionerSettings | None = None, policy: ScalingPolicy | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.settings = settings or ProvisionerSettings()
        self.policy = policy or launcher.default_policy(self.settings)
        self.launcher, self.job = launcher, job
        self.state = open_state(urls["state"])
        self.queue = open_queue(urls["queue"], job)
        self.jobspec = JobSpec.from_json(with_retries(self.state.job, job)["description"], job=job)
        self.num_tasks = self.jobspec.num_tasks
        s = self.settings
        self.spec = ExecutorSpec(urls["store"], urls["queue"], urls["state"], job, lease=s.lease,
                                 idle_timeout=s.idle_timeout, time_limit=s.time_limit,
                                 task_timeout=s.task_timeout, task_attempts=s.task_attempts)
        self.max_executors = s.max_executors or launcher.default_max_executors
        # a launcher's own start_timeout (deprecated) wins over the settings' while it lasts
        self.start_timeout = launcher.start_timeout if launcher.start_timeout is not None else s.start_timeout
        cold_start = getattr(launcher, "cold_start", 0.0)
        if cold_start >= self.start_timeout:
            raise ValueError(f"start_timeout ({self.start_timeout} s) must exceed the launcher's cold start "
                             f"({cold_start} s), or every executor fails to start")
        self.clock = clock
        self.started = clock()
        self.starting: dict[str, float] = {}
        self.failed_starts: list[str] = []
        self.silent_since: dict[str, float] = {}  # started executors without a live heartbeat, since when
        self.lock_seen: tuple[tuple[int, int] | None, float] = (None, clock())  # write-lock holder, since when
        self.lost: list[tuple[str, str]] = []  # (executor, "stale" or "lock") given up on after starting
        self.last_sample = -float("inf")
        self.failed_in_a_row = 0
        self.failed_starts_in_a_row = 0  # of failed_in_a_row, those that did not start in time
        self.last_exit_code: int | None = None
        self.last_done = 0
        self.watermark = Watermark("the provisioner")  # the highest completed count it observed
        self.urls = dict(urls)
        self.launches = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one observation
    def observe(self, check_starts: bool = False) -> tuple[JobOutcome, Observation, int]:
        """The job's outcome so far (``job_outcome``), an observation, and the executors started (alive
        and heart-beating).

        With ``check_starts``, executors past their start-up deadline are abandoned first (and not counted).
        """
        outcome = job_outcome(self._record(), self.num_tasks)
        done = outcome.completed  # the job record's count of done tasks
        ready, leased = with_retries(self.queue.counts)
        registry = {e["executor"]: e for e in with_retries(self.state.executors, self.job)}
        mine = self.launcher.alive(registry)
        if check_starts:
            if done > self.last_done:  # progress: the failures so far were not "in a row"
                self.last_done, self.failed_in_a_row, self.failed_starts_in_a_row = done, 0, 0
            if self._check_starts(registry, mine) | self._check_lost(registry, mine):
                mine = self.launcher.alive(registry)
        others = {eid for eid, e in registry.items() if e["live"] and eid not in self.launcher.launched}
        started = len(others) + sum(1 for eid in mine if registry.get(eid, {}).get("live"))
        obs = Observation(ready=ready, leased=leased, executors=len(mine) + len(others), done=done,
                          num_tasks=self.num_tasks, elapsed=self.clock() - self.started)
        return outcome, obs, started

    def _record(self) -> dict:
        """The job record; one whose completed counter is below what this provisioner observed (the state
        store went back in time: ``core.outcome.Watermark``), or whose state database file its path no longer
        names (``StateStore.replaced``), fails the job, and its scratch tiles and queue are deleted (a detached
        job may have no client to do it)."""
        rec = with_retries(self.state.job, self.job)
        replaced = self.state.replaced() if rec["status"] == "running" else None
        reason = self.watermark.check(rec["counters"].get("completed", 0), rec["status"])
        if replaced is not None:
            msg = replaced_error(self.job, replaced, self.watermark.who)
        elif reason is not None:
            msg = rollback_error(self.job, reason, redact_url(self.state.url))
        else:
            return rec
        log.warning("%s", msg)
        if with_retries(self.state.set_status, self.job, FAILED, json.dumps({"message": msg})):
            root = self.jobspec.scratch_root(self.job)
            if root is not None:
                store = open_store(self.urls["store"])
                try:
                    with_retries(store.delete_prefix, root)
                finally:
                    store.close()
            with_retries(self.queue.delete)
        return with_retries(self.state.job, self.job)

    def _check_starts(self, registry: dict[str, dict], alive: set[str]) -> bool:
        """Executors launched here that heart-beat have started, and those that ended first are the
        launcher's to report (``reap``); those still starting after ``start_timeout`` are failed starts:
        abandoned (the launcher ends them if it can) and counted.  True if any was abandoned."""
        now = self.clock()
        abandoned = False
        for eid, t in list(self.starting.items()):
            if eid in registry or eid not in alive:
                del self.starting[eid]
            elif now - t >= self.start_timeout:
                abandoned = True
                del self.starting[eid]
                self.launcher.abandon(eid)
                self.failed_starts.append(eid)
                self.failed_in_a_row += 1
                self.failed_starts_in_a_row += 1
                log.warning("job %s: executor %s did not heart-beat within start_timeout (%g s) of its launch; "
                            "abandoned it", self.job, eid, self.start_timeout)
        return abandoned

    def _check_lost(self, registry: dict[str, dict], alive: set[str]) -> bool:
        """Executors of this launcher that started and stopped answering are lost (``launcher.lose``: a local
        process is killed): one whose heartbeat has not been live for ``heartbeat_timeout`` seconds of this
        provisioner's clock, and one holding the state store's write lock with no commit by anyone for
        ``lock_timeout`` seconds (``StateStore.write_lock``).  True if any was lost."""
        now, s = self.clock(), self.settings
        lost: dict[str, str] = {}
        for eid in alive:
            entry = registry.get(eid)
            if entry is None or entry["live"] or entry["exited"]:
                self.silent_since.pop(eid, None)
            elif now - self.silent_since.setdefault(eid, now) >= s.heartbeat_timeout:
                lost[eid] = "stale"
                log.warning("job %s: executor %s has not heart-beat for heartbeat_timeout (%g s); it is lost",
                            self.job, eid, s.heartbeat_timeout)
        holder = self.state.write_lock()
        if holder is None or holder != self.lock_seen[0]:
            self.lock_seen = (holder, now)
        elif now - self.lock_seen[1] >= s.lock_timeout:
            eid = self.launcher.executor_of_pid(holder[0])
            if eid is not None and eid in alive:
                lost[eid] = "lock"
                log.warning("job %s: executor %s (pid %d) has held the state store's write lock for lock_timeout "
                            "(%g s) with no commit meanwhile; it is lost", self.job, eid, holder[0], s.lock_timeout)
        for eid, why in lost.items():
            self.silent_since.pop(eid, None)
            self.launcher.lose(eid, why)
            self.lost.append((eid, why))
        return bool(lost)

    def step(self, launch: bool = True) -> bool:
        """Observe, launch (if ``launch``), sample; returns False once the job has ended."""
        outcome, obs, started = self.observe(check_starts=launch)
        finished = outcome.ended
        if outcome.mark_done:
            with_retries(self.state.set_status, self.job, DONE)
        if not finished and launch:
            self._check_failures()
            n = self.policy.to_launch(obs, self.max_executors)
            n = max(0, min(n, self.max_executors - obs.executors))
            if n:
                launched = self.launcher.launch(self.spec, n)
                t = self.clock()
                self.starting.update((eid, t) for eid in launched)
                self.launches += len(launched)
                obs = dataclasses.replace(obs, executors=obs.executors + len(launched))
        now = self.clock()
        # a timeline sample waits while another process holds the store's write lock: writing it would block
        # this loop, which is what ends a holder stuck inside a transaction (``_check_lost``)
        sample_due = finished or not launch or now - self.last_sample >= self.settings.timeline_interval
        if sample_due and (self.lock_seen[0] is None or finished):
            self.last_sample = now
            sample = {"time": round(time.time(), 3), "ready": obs.ready, "leased": obs.leased,
                      "executors": obs.executors, "started": started, "done": obs.done,
                      "launched": self.launches}
            with_retries(self.state.append_records, self.job, "timeline", [json.dumps(sample)])
        return not finished

    def _check_failures(self) -> None:
        for ex in self.launcher.reap():
            # an executor that abandoned a task past its time limit did as told (the task's overruns are
            # counted, and bounded by task_attempts, on their own)
            if ex.returncode not in (0, EXIT_TASK_TIMEOUT) and ex.killed_by_launcher is None:
                self.failed_in_a_row += 1
                self.last_exit_code = ex.returncode
        n, starts = self.failed_in_a_row, self.failed_starts_in_a_row
        if n >= self.settings.max_failed_starts:
            late = f"did not heart-beat within start_timeout ({self.start_timeout:g} s) of their launch"
            if starts == 0:
                what = f"exited with an error (last exit code {self.last_exit_code})"
            elif starts == n:
                what = late
            else:
                what = f"{late} ({starts}) or exited with an error (last exit code {self.last_exit_code})"
            msg = (f"{n} executors in a row {what} while no task completed; see their error output (a memory cap "
                   f"too small, an executor that cannot import the job's kernels or reach the state store, a "
                   f"cold start longer than start_timeout?)")
            self.state.set_status(self.job, "failed", json.dumps({"message": msg}))

    # ------------------------------------------------------------------ loop
    def run(self) -> None:
        """Step every ``poll_interval`` seconds until the job ends or ``stop()`` is called."""
        try:
            while not self._stop.is_set():
                t = time.monotonic()
                if not self.step():
                    return
                self._stop.wait(max(0.0, self.settings.poll_interval - (time.monotonic() - t)))
            self.step(launch=False)  # stopped from outside: a last timeline sample
        except BaseException as e:
            self.error = e
            if isinstance(e, OutageError):
                self._gave_up()
            try:
                msg = (f"job {self.job} failed: {e}" if isinstance(e, QueueLostError) else
                       f"the provisioner failed: {e!r}")
                self.state.set_status(self.job, "failed", json.dumps({"message": msg}))
            except transient_errors():
                pass
            raise

    def _gave_up(self) -> None:
        """The state store stayed unreachable past ``outage_s``: delete the job's scratch tiles and leave its
        tombstone in the tile store (``core.tombstone``), for whoever reads its record once the server is back
        (the record and the queue are on it; a detached job may have no client to clean them)."""
        store = None
        try:
            store = open_store(self.urls["store"])
            root = self.jobspec.scratch_root(self.job)
            if root is not None:
                with_retries(store.delete_prefix, root)
            with_retries(write_tombstone, store, self.job, outage_s())
        except Exception as e:  # the tile store is down too: the abandonment rule is left (client/jobs.py)
            log.warning("job %s: no tombstone left after the outage: %s", self.job, e)
        finally:
            if store is not None:
                store.close()

    def start(self) -> Provisioner:
        """Run the loop in a daemon thread of this process."""
        self._thread = threading.Thread(target=self._run_quietly, daemon=True, name=f"provisioner-{self.job}")
        self._thread.start()
        return self

    def _run_quietly(self) -> None:
        try:
            self.run()
        except BaseException:  # kept in self.error; Job.wait reports it
            pass

    def stop(self, stop_executors: bool = False) -> None:
        """Stop the loop (and, if asked, the executors it launched)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        if stop_executors:
            self.launcher.stop()
        else:
            self.launcher.finish()

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def close(self) -> None:
        self.stop()
        self.queue.close()
        self.state.close()
