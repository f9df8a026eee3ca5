"""Jobs as the state store knows them, for commands run in any process: listing, loading, clean-up.

The listing reads the state store's job ids and each job's record and "client" record (written by
``submit``: when, by which process, the program); a job whose record is gone (``npw gc``) is left out.
"""

from __future__ import annotations

import contextlib
import json
import time

from ..client.job import Job
from ..core.backends import open_queue
from ..core.jobspec import JobSpec, scratch_prefix
from ..core.outcome import job_outcome

STALE_AFTER = 3600.0  # seconds without a live executor after which a running job counts as abandoned


class JobNotFoundError(KeyError):
    """No such job in the state store (exit status 3)."""


def index(state) -> dict[str, dict]:
    """Job id -> its client record (``created``, ``pid``, ``detached``, ``program``), oldest first."""
    out: dict[str, dict] = {}
    for job_id in state.job_ids():
        recs = state.records(job_id, "client")
        e: dict = {}
        with contextlib.suppress(ValueError, IndexError):
            e = json.loads(recs[0])
        out[job_id] = e
    return dict(sorted(out.items(), key=lambda kv: kv[1].get("created", 0.0)))


def job_info(state, job_id: str, entry: dict | None = None, now: float | None = None) -> dict:
    """What ``npw jobs`` and ``npw status`` show of one job; ``JobNotFoundError`` if it has no record."""
    try:
        rec = state.job(job_id)
    except KeyError:
        raise JobNotFoundError(job_id) from None
    spec = JobSpec.from_json(rec["description"], job=job_id)
    out = job_outcome(rec, spec.num_tasks)
    entry = entry or {}
    execs = state.executors(job_id)
    now = time.time() if now is None else now
    created = entry.get("created")
    last = max([e["last_seen"] for e in execs] + [created or 0.0])
    program = entry.get("program") or _program_name(spec)
    return {"job": job_id, "program": program, "status": out.status, "completed": out.completed,
            "num_tasks": spec.num_tasks, "age_s": (now - created) if created else None,
            "executors": sum(1 for e in execs if e["live"]), "executors_ran": len(execs),
            "idle_s": now - last if last else None, "error": out.error.get("message") if out.error else None,
            "counters": rec.get("counters", {})}


def _program_name(spec: JobSpec) -> str:
    try:
        return json.loads(spec.program).get("name", "?")
    except (ValueError, AttributeError):
        return "?"


def list_jobs(state) -> list[dict]:
    out = []
    for job_id, entry in index(state).items():
        with contextlib.suppress(JobNotFoundError):
            out.append(job_info(state, job_id, entry))
    return out


def load_job(runtime, job_id: str) -> Job:
    """A ``Job`` for a job submitted by any process (to wait for it, report on it); ``JobNotFoundError``."""
    try:
        rec = runtime.state.job(job_id)
    except KeyError:
        raise JobNotFoundError(job_id) from None
    spec = JobSpec.from_json(rec["description"], job=job_id)
    job = Job(runtime, job_id, None, spec.num_tasks, runtime.queue(job_id), spec)
    entry = index(runtime.state).get(job_id, {})
    if entry.get("created"):
        job.started = entry["created"]
    return job


def delete_job(runtime, job_id: str) -> None:
    """Remove what a job left behind: its queue, its scratch tiles (``<job>/``) and its state."""
    with contextlib.suppress(Exception):  # a queue already deleted
        open_queue(runtime.urls["queue"], job_id).delete()
    runtime.store.delete_prefix(scratch_prefix(job_id, ""))
    runtime.state.delete_job(job_id)


def is_stale(info: dict, older_than: float = STALE_AFTER) -> bool:
    """A running job with no live executor and no sign of life for ``older_than`` seconds.

    >>> is_stale({"status": "running", "executors": 0, "idle_s": 7200.0})
    True
    >>> is_stale({"status": "running", "executors": 1, "idle_s": 7200.0}), is_stale({"status": "done"})
    (False, False)
    """
    return (info["status"] == "running" and info.get("executors", 0) == 0 and info.get("idle_s") is not None
            and info["idle_s"] >= older_than)
