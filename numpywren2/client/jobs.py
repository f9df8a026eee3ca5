"""Jobs of a runtime beyond the client that submitted them: list them, attach to one, and give up on those
that nobody provisions any more.

``jobs(runtime)`` lists every job whose record the runtime's state store holds; ``attach(job_id)`` returns a
``Job`` for one of them that can ``wait``, ``cancel`` and report ``stats``, from any process that reaches the
same backends (e.g. after the client that submitted it was killed, or for a job submitted with
``submit(..., detach=True)``, whose provisioner runs as a process of its own).

A running job whose provisioner has written no timeline sample (it writes one a second) for ``abandon_s()``
seconds (``NPW_ABANDON_S``, default 300) is abandoned: its client and its provisioner are both gone.  The
first to notice — ``jobs``, ``attach`` or one of the job's executors — records the final status
``"abandoned"`` (``set_status`` moves only a running job, so it happens once), which stops its executors,
and deletes its queue and scratch tiles (``abandon``).

A running job whose client or provisioner gave up on it during an outage of its state store past ``outage_s``
has a tombstone in the tile store (``core.tombstone``): ``jobs`` and ``attach`` record it failed with the outage's
reason and delete its queue and scratch tiles at once (``settle``), whenever the server came back.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass

from ..core.backends import with_retries
from ..core.jobspec import JobSpec, scratch_prefix
from ..core.outcome import ABANDONED, FAILED, RUNNING, abandon_s, is_abandoned, job_outcome, last_sample
from ..core.tombstone import gave_up_error, read_tombstone
from .job import Job
from .runtime import Runtime, current_runtime

__all__ = ["JobInfo", "abandon", "attach", "jobs", "settle"]


@dataclass(frozen=True)
class JobInfo:
    """One job of a runtime, as ``jobs()`` lists it.

    ``id``; ``program`` (its name); ``status``; ``progress`` (tasks completed / the task count, in
    [0, 1]); ``completed`` and ``num_tasks``; ``age`` (seconds since it was submitted, None if unknown);
    ``backends`` (the runtime's store, queue and state URLs, passwords redacted); ``detached`` (submitted
    with ``detach=True``).
    """

    id: str
    program: str
    status: str
    progress: float
    completed: int
    num_tasks: int
    age: float | None
    backends: dict
    detached: bool = False


def _client_record(runtime: Runtime, job_id: str) -> dict:
    recs = runtime.state.records(job_id, "client")
    return json.loads(recs[0]) if recs else {}


def _redacted(urls: dict) -> dict:
    from ..core.backends.redis import redact

    return {k: redact(v) for k, v in urls.items()}


def abandon(runtime: Runtime, job_id: str, spec: JobSpec | None = None) -> bool:
    """Record ``job_id`` as abandoned if it is still running (True if this call did), then delete its
    queue and its scratch tiles (all under ``<job>/``) either way."""
    msg = (f"job {job_id} was abandoned: neither its client nor its provisioner has been seen for more than "
           f"abandon_s ({abandon_s():g} s, NPW_ABANDON_S)")
    moved = with_retries(runtime.state.set_status, job_id, ABANDONED, json.dumps({"message": msg}))
    with contextlib.suppress(Exception):
        runtime.queue(job_id).delete()
    runtime.store.delete_prefix(scratch_prefix(job_id, ""))
    return bool(moved)


def settle(runtime: Runtime, job_id: str, who: str) -> bool:
    """Finish the clean-up of a job whose client or provisioner gave up on it during an outage past
    ``outage_s`` and left its tombstone (``core.tombstone``): record it failed with the outage's reason if it is
    still running (True if this call did), then delete its queue and its prefix ``<job>/`` (scratch tiles and the
    tombstone).  False, and nothing done, if it has no tombstone."""
    mark = with_retries(read_tombstone, runtime.store, job_id)
    if mark is None:
        return False
    msg = gave_up_error(job_id, mark[0], mark[1], who)
    moved = with_retries(runtime.state.set_status, job_id, FAILED, json.dumps({"message": msg}))
    with contextlib.suppress(Exception):
        runtime.queue(job_id).delete()
    runtime.store.delete_prefix(scratch_prefix(job_id, ""))
    return bool(moved)


def _check_abandoned(runtime: Runtime, job_id: str, record: dict, spec: JobSpec, who: str = "npw.jobs()") -> dict:
    """``record``, after settling the job if its tombstone says it was given up on (``settle``) or abandoning it
    if the rule says so (the record as it is then)."""
    status = job_outcome(record, spec.num_tasks).status
    if status != RUNNING:
        return record
    if settle(runtime, job_id, who):
        return with_retries(runtime.state.job, job_id)
    sample = last_sample(runtime.state.records(job_id, "timeline"))
    if is_abandoned(status, sample, time.time(), abandon_s()):
        abandon(runtime, job_id, spec)
        record = with_retries(runtime.state.job, job_id)
    return record


def jobs(runtime: Runtime | None = None) -> list[JobInfo]:
    """Every job of ``runtime`` (default: the current one), oldest first; abandoned ones are marked so
    on the way (see the module docstring).

    Examples
    --------
    >>> import numpywren2 as npw
    >>> with npw.runtime(executors=0) as rt:
    ...     npw.jobs(rt)
    []
    """
    rt = runtime or current_runtime()
    out = []
    for job_id in with_retries(rt.state.job_ids):
        try:
            record = with_retries(rt.state.job, job_id)
            spec = JobSpec.from_json(record["description"], job=job_id)
        except (KeyError, ValueError):  # deleted meanwhile, or not a job description this release reads
            continue
        record = _check_abandoned(rt, job_id, record, spec)
        outcome = job_outcome(record, spec.num_tasks)
        client = _client_record(rt, job_id)
        created = client.get("created")
        try:
            program = json.loads(spec.program).get("name", "?")
        except (ValueError, AttributeError):
            program = "?"
        out.append(JobInfo(job_id, program, outcome.status,
                           min(1.0, outcome.completed / spec.num_tasks) if spec.num_tasks else 1.0,
                           outcome.completed, spec.num_tasks, None if created is None else time.time() - created,
                           _redacted(rt.urls), bool(client.get("detached", False))))
    return sorted(out, key=lambda j: -(j.age or 0.0))


def attach(job_id: str, runtime: Runtime | None = None) -> Job:
    """A ``Job`` for ``job_id``, a job of ``runtime`` (default: the current one) submitted by any process:
    it can ``wait``, ``cancel`` and report ``stats`` and ``status``.  A job that nobody provisions any more
    is abandoned first (see the module docstring), so that ``wait`` reports it rather than waits forever.

    Raises ``KeyError`` if the state store holds no such job.
    """
    rt = runtime or current_runtime()
    record = with_retries(rt.state.job, job_id)
    spec = JobSpec.from_json(record["description"], job=job_id)
    _check_abandoned(rt, job_id, record, spec, who="npw.attach()")
    bound, _ = spec.bind()
    j = Job(rt, job_id, bound, spec.num_tasks, rt.queue(job_id), spec)
    created = _client_record(rt, job_id).get("created")
    if created is not None:
        j.started = created
    return j
