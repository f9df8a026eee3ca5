"""The provisioner: a control loop that launches executors as a job's parallelism rises.

State it keeps (all of it can be rebuilt from the backends, which is why a restarted
provisioner picks up where the old one stopped):

``launcher.launched``  executors this provisioner started (id -> launch time);
``failed_in_a_row``     executors that exited with an error since the last completed task;
``last_sample``         when the last timeline sample was written.

Every ``poll_interval`` seconds (``step``):

1. read the job's outcome from its record (``numpywren2.core.outcome.job_outcome``, the rule the
   client follows too): stop when it has ended; when every task is done, mark it "done", so
   executors stop;
2. count queued and leased tasks (``TaskQueue.counts``) and the live executors:
   those this provisioner's launcher knows to be alive or starting, plus those live in
   the state store's executor registry that it did not start (started by an earlier
   provisioner, or by hand);
3. ask the policy how many executors to launch, bounded by ``max_workers``, and launch
   them;
4. once per ``timeline_interval``, append a timeline sample to the state store: time,
   pending (queued) tasks, running (leased) tasks, executors alive or starting, executors
   working (alive and registered: past their start-up), completed tasks.

Executors retire themselves after ``idle_timeout`` seconds without work, so the pool
shrinks by itself when the parallelism falls.  One provisioner per job: two at once
would each launch for the same backlog.
"""

from __future__ import annotations

import json
import threading
import time

from numpywren2.core.backends import open_queue, open_state, transient_errors, with_retries
from numpywren2.core.jobspec import JobSpec
from numpywren2.core.outcome import DONE, JobOutcome, job_outcome

from .launchers import ExecutorSpec, Launcher
from .policy import Observation, ProportionalPolicy, ScalingPolicy
from .settings import ProvisionerSettings


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
        Default: ``ProportionalPolicy(settings.scaling_factor)``.
    """

    def __init__(self, urls: dict[str, str], job: str, launcher: Launcher,
                 settings: ProvisionerSettings | None = None, policy: ScalingPolicy | None = None):
        self.settings = settings or ProvisionerSettings()
        self.policy = policy or ProportionalPolicy(self.settings.scaling_factor)
        self.launcher, self.job = launcher, job
        self.state = open_state(urls["state"])
        self.queue = open_queue(urls["queue"], job)
        self.jobspec = JobSpec.from_json(with_retries(self.state.job, job)["description"], job=job)
        self.num_tasks = self.jobspec.num_tasks
        s = self.settings
        self.spec = ExecutorSpec(urls["store"], urls["queue"], urls["state"], job, lease=s.lease,
                                 idle_timeout=s.idle_timeout, time_limit=s.time_limit)
        self.max_workers = s.max_workers or launcher.default_max_workers
        self.started = time.monotonic()
        self.last_sample = -float("inf")
        self.failed_in_a_row = 0
        self.last_exit_code: int | None = None
        self.last_completed = 0
        self.launches = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ one observation
    def observe(self) -> tuple[JobOutcome, Observation, int]:
        """The job's outcome so far (``job_outcome``), an observation, and the executors working (alive and
        registered)."""
        outcome = job_outcome(with_retries(self.state.job, self.job), self.num_tasks)
        completed = outcome.completed
        pending, in_flight = with_retries(self.queue.counts)
        registry = {e["executor"]: e for e in with_retries(self.state.executors, self.job)}
        mine = self.launcher.alive(registry)
        others = {eid for eid, e in registry.items() if e["live"] and eid not in self.launcher.launched}
        registered = len(others) + sum(1 for eid in mine if registry.get(eid, {}).get("live"))
        obs = Observation(pending=pending, in_flight=in_flight, running=len(mine) + len(others),
                          completed=completed, num_tasks=self.num_tasks, elapsed=time.monotonic() - self.started)
        return outcome, obs, registered

    def step(self, launch: bool = True) -> bool:
        """Observe, launch (if ``launch``), sample; returns False once the job has ended."""
        outcome, obs, working = self.observe()
        finished = outcome.ended
        if outcome.mark_done:
            with_retries(self.state.set_status, self.job, DONE)
        if not finished and launch:
            self._check_failures(obs.completed)
            n = self.policy.to_launch(obs, self.max_workers)
            n = max(0, min(n, self.max_workers - obs.running))
            if n:
                launched = self.launcher.launch(self.spec, n)
                self.launches += len(launched)
                obs = Observation(obs.pending, obs.in_flight, obs.running + len(launched), obs.completed,
                                  obs.num_tasks, obs.elapsed)
        now = time.monotonic()
        if finished or not launch or now - self.last_sample >= self.settings.timeline_interval:
            self.last_sample = now
            sample = {"time": round(time.time(), 3), "pending": obs.pending, "running": obs.in_flight,
                      "executors": obs.running, "working": working, "completed": obs.completed,
                      "launched": self.launches}
            with_retries(self.state.append_records, self.job, "timeline", [json.dumps(sample)])
        return not finished

    def _check_failures(self, completed: int) -> None:
        if completed > self.last_completed:
            self.last_completed, self.failed_in_a_row = completed, 0
        for ex in self.launcher.reap():
            if ex.returncode != 0 and ex.killed_by_launcher is None:
                self.failed_in_a_row += 1
                self.last_exit_code = ex.returncode
        if self.failed_in_a_row >= self.settings.max_failed_starts:
            msg = (f"{self.failed_in_a_row} executors in a row exited with an error (last exit code "
                   f"{self.last_exit_code}) while no task completed; see their error output (a memory cap "
                   f"too small, or an executor that cannot import the job's kernels?)")
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
            try:
                self.state.set_status(self.job, "failed", json.dumps({"message": f"the provisioner failed: {e!r}"}))
            except transient_errors():
                pass
            raise

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
