"""The mark a job's client or provisioner leaves in the tile store when it gives up on an unreachable state store.

When the state store stays unreachable for longer than ``outage_s``, the job's client (``Job._end_unreachable``)
and its provisioner (``Provisioner.run``) give up on the job: its executors are stopped and its scratch tiles
deleted, but its record and its queue are on the server that cannot be reached.  The client keeps trying to mark
the record failed and delete the queue for up to 10 × ``outage_s``; a server back later than that, or after the
client exited (or a detached job's provisioner gave up), would keep the record "running" and the queue for
good.  So, before giving up, each writes a tombstone to the tile store (a store the outage did not take: it has
just deleted the scratch tiles there): the tile ``<job>/_ended`` (``tombstone_key``), ``[[when, outage_s]]``.

Whoever next reads the job's record and finds it running with a tombstone (``npw.jobs()``, ``npw.attach()``,
``npw jobs``) finishes the clean-up (``numpywren2.client.jobs.settle``): it records ``"failed"`` with the
outage's reason (``gave_up_error``; ``set_status`` moves only a running job, so once), deletes the queue and the
job's prefix ``<job>/``, the tombstone with it.  The client's own clean-up, when the server is back in time,
deletes the tombstone too.
"""

from __future__ import annotations

import datetime
import time

import numpy as np

from .backends import TileNotFoundError, TileStore
from .jobspec import scratch_prefix

TOMBSTONE = "_ended"


def tombstone_key(job: str) -> str:
    """The tile of ``job``'s tombstone: under the job's prefix, deleted with its scratch tiles.

    >>> tombstone_key("job-ab")
    'job-ab/_ended'
    """
    return scratch_prefix(job, TOMBSTONE)


def outage_reason(limit: float) -> str:
    """The reason of the job's failure, as the record says it (the client, its clean-up thread, a later observer).

    >>> outage_reason(60.0)
    'the state store was unreachable for longer than outage_s (60 s)'
    """
    return f"the state store was unreachable for longer than outage_s ({limit:g} s)"


def write_tombstone(store: TileStore, job: str, limit: float, when: float | None = None) -> None:
    """Leave ``job``'s tombstone in ``store``: given up at ``when`` (default now) after an outage past ``limit``."""
    store.put(tombstone_key(job), np.array([[time.time() if when is None else when, limit]]))


def read_tombstone(store: TileStore, job: str) -> tuple[float, float] | None:
    """``(when, outage_s)`` of ``job``'s tombstone in ``store``; None if it has none."""
    try:
        a = store.get(tombstone_key(job))
    except TileNotFoundError:
        return None
    return float(a.ravel()[0]), float(a.ravel()[1])


def gave_up_error(job: str, when: float, limit: float, who: str) -> str:
    """The message of the job's failure when ``who`` finds its record running and its tombstone there.

    >>> print(gave_up_error("job-1", 0.0, 2.0, "npw.jobs()"))
    job job-1 failed: the state store was unreachable for longer than outage_s (2 s); its client or provisioner \
gave up on it at 1970-01-01 00:00:00 UTC (its tombstone in the tile store), stopped its executors and deleted its \
scratch tiles; the server came back after nobody was left to record it: recorded by npw.jobs(), which deleted \
its queue
    """
    at = datetime.datetime.fromtimestamp(when, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return (f"job {job} failed: {outage_reason(limit)}; its client or provisioner gave up on it at {at} (its "
            "tombstone in the tile store), stopped its executors and deleted its scratch tiles; the server came back "
            f"after nobody was left to record it: recorded by {who}, which deleted its queue")
