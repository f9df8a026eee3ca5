"""The one rule for a job's outcome, from what the state store says of it.

A job record (``StateStore.job``) holds a ``status``, a ``completed`` counter and, for a failed job,
an ``error`` text.  ``job_outcome`` reads them against the job's task count (``JobSpec.num_tasks``):

- a status other than ``"running"`` is final and wins (``set_status`` only moves a running job, so the
  first failure or cancellation is the one recorded; a failed job stays failed however many of its
  tasks completed);
- a running job whose ``completed`` counter has reached the task count is done: every task has
  completed, and the first observer to see it records ``"done"`` (``mark_done``) so that its executors
  stop;
- otherwise it is running.

The client (``Job.wait``, ``Job.status``) and the provisioner (``Provisioner.step``) ask this function,
so that they cannot disagree on when a job has ended.  It is pure: it reads a record, never a store.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

RUNNING, DONE, FAILED, CANCELLED, ABANDONED = "running", "done", "failed", "cancelled", "abandoned"
DEFAULT_ABANDON_S = 300.0
ABANDON_ENV = "NPW_ABANDON_S"


def abandon_s() -> float:
    """Seconds a running job may go without a timeline sample from its provisioner before it counts as
    abandoned (its client and provisioner both gone): ``NPW_ABANDON_S`` in the environment, default 300."""
    import os

    return float(os.environ.get(ABANDON_ENV, DEFAULT_ABANDON_S))


def last_sample(timeline: list[str]) -> float | None:
    """The wall-clock time of the newest timeline sample (``StateStore.records(job, "timeline")``); None if none.

    >>> last_sample(['{"time": 5.0}', '{"time": 7.5}', '{"time": 6.0}']), last_sample([])
    (7.5, None)
    """
    times = [json.loads(r).get("time") for r in timeline]
    times = [t for t in times if isinstance(t, (int, float))]
    return max(times) if times else None


def is_abandoned(status: str, sample: float | None, now: float, timeout: float) -> bool:
    """A running job whose provisioner has written no timeline sample (one a second while it runs) for
    ``timeout`` seconds is abandoned: nobody is left to provision it or to wait for it.  A job with no
    sample at all is not judged (its provisioner may not have started yet).

    >>> is_abandoned("running", 100.0, 500.0, 300.0), is_abandoned("running", 300.0, 500.0, 300.0)
    (True, False)
    >>> is_abandoned("done", 100.0, 500.0, 300.0), is_abandoned("running", None, 500.0, 300.0)
    (False, False)
    """
    return status == RUNNING and sample is not None and now - sample > timeout


@dataclasses.dataclass(frozen=True)
class JobOutcome:
    """Where a job stands.

    Attributes
    ----------
    status : str
        ``"running"``, ``"done"``, ``"failed"``, ``"cancelled"`` (or another final status a record holds).
    completed, num_tasks : int
        Tasks completed so far, of the job's task count.
    mark_done : bool
        Every task has completed but the record still says running: the observer records ``"done"``.
    error : dict or None
        For a failed job, its error as the executor or client stored it (``{"message": ...}``, and for
        a task's failure ``task``, ``line``, ``file``, ``type``, ``traceback``); None otherwise.
    """

    status: str
    completed: int
    num_tasks: int
    mark_done: bool = False
    error: dict | None = None

    @property
    def ended(self) -> bool:
        """The job will run no more tasks."""
        return self.status != RUNNING


def parse_error(text: str | None) -> dict:
    """A stored error text as a dict: JSON as written, or a bare text as its ``message``.

    >>> parse_error('{"message": "out of memory"}'), parse_error("disk full"), parse_error(None)
    ({'message': 'out of memory'}, {'message': 'disk full'}, {})
    """
    try:
        err = json.loads(text or "{}")
    except json.JSONDecodeError:
        return {"message": text}
    return err if isinstance(err, dict) else {"message": text}


def job_outcome(record: Mapping, num_tasks: int) -> JobOutcome:
    """The outcome of a job from its record (``StateStore.job``) and its task count.

    >>> job_outcome({"status": "running", "counters": {"completed": 3}}, 10)
    JobOutcome(status='running', completed=3, num_tasks=10, mark_done=False, error=None)
    >>> job_outcome({"status": "running", "counters": {"completed": 10}}, 10)
    JobOutcome(status='done', completed=10, num_tasks=10, mark_done=True, error=None)
    >>> job_outcome({"status": "failed", "counters": {"completed": 10}, "error": '{"message": "boom"}'}, 10).error
    {'message': 'boom'}
    """
    status = record["status"]
    completed = int(record.get("counters", {}).get("completed", 0))
    if status == RUNNING and completed >= num_tasks:
        return JobOutcome(DONE, completed, num_tasks, mark_done=True)
    error = parse_error(record.get("error")) if status in (FAILED, ABANDONED) else None
    return JobOutcome(status, completed, num_tasks, error=error)


# --------------------------------------------------------------------------- state found rolled back

def rollback_reason(who: str, seen: int, store: int, task: str | None = None) -> str:
    """The reason a job fails when its state store is found behind what ``who`` observed of it.

    >>> rollback_reason("the client", 7, 3)
    'state store rolled back (the client saw 7 completions, store says 3)'
    >>> rollback_reason("executor x-1", 4, 4, task="s1(0)")
    'state store rolled back (executor x-1 saw 4 completions, store says 4 and s1(0), which it completed, not done)'
    """
    lost = f" and {task}, which it completed, not done" if task is not None else ""
    return f"state store rolled back ({who} saw {seen} completions, store says {store}{lost})"


@dataclasses.dataclass
class Watermark:
    """What one observer (the client, a provisioner, an executor) has seen of a job's progress: the highest
    ``completed`` count the state store reported to it.

    The counter only grows (a task is counted once, when it is first marked done), so a store that later
    reports less has gone back in time: an older snapshot was restored, or the server lost acknowledged
    writes.  Each observer keeps its own watermark in memory; ``check`` compares a new reading with it.

    >>> w = Watermark("the client")
    >>> w.check(3), w.check(5), w.seen
    (None, None, 5)
    >>> w.check(2)
    'state store rolled back (the client saw 5 completions, store says 2)'
    """

    who: str
    seen: int = 0

    def check(self, completed: int | float | None, status: str = RUNNING) -> str | None:
        """Record a reading of the ``completed`` counter (None: not read), and return the rollback reason if
        the store reports less than was seen of a job it says is running (a final status is not judged:
        the job is over either way)."""
        if completed is None:
            return None
        completed = int(completed)
        if completed < self.seen and status == RUNNING:
            return rollback_reason(self.who, self.seen, completed)
        self.seen = max(self.seen, completed)
        return None


def rollback_error(job: str, reason: str, url: str) -> str:
    """The message of the job's failure (its record's ``message``, what ``Job.wait`` raises), ``url`` redacted.

    >>> print(rollback_error("job-1", "state store rolled back (the client saw 5 completions, store says 2)",
    ...                      "redis://127.0.0.1:6379/0"))
    job job-1 failed: state store rolled back (the client saw 5 completions, store says 2); the state store \
redis://127.0.0.1:6379/0 went back in time (an older snapshot restored?) and the job's progress cannot be \
trusted; its executors stop and its scratch tiles are deleted: submit it again
    """
    return (f"job {job} failed: {reason}; the state store {url} went back in time (an older snapshot restored?) and "
            "the job's progress cannot be trusted; its executors stop and its scratch tiles are deleted: submit it "
            "again")


# --------------------------------------------------------------------------- the state database replaced

def replaced_error(job: str, fact: str, who: str) -> str:
    """The message of the job's failure when ``who`` found that the database file of its state store is no
    longer the one its path names (``StateStore.replaced`` says how: ``fact``).

    >>> print(replaced_error("job-1", "the state database /d/state.db was replaced while the job ran (opened "
    ...                      "as inode 12 of device 0:40, the path names inode 13 now)", "the client"))
    job job-1 failed: the state database /d/state.db was replaced while the job ran (opened as inode 12 of \
device 0:40, the path names inode 13 now), noticed by the client; the processes that opened it before go on \
with the old file and those that open it now read the new one, so the job's progress cannot be trusted; its \
executors stop and its scratch tiles are deleted: submit it again
    """
    return (f"job {job} failed: {fact}, noticed by {who}; the processes that opened it before go on with the old "
            "file and those that open it now read the new one, so the job's progress cannot be trusted; its "
            "executors stop and its scratch tiles are deleted: submit it again")
