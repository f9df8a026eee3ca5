"""Scaling policies: how many executors to launch, given what the provisioner observes.

A policy is an object with one method, ``to_launch(observation, max_executors)``; the
provisioner calls it every poll and launches that many executors.  Policies never
stop executors: executors retire themselves after their idle timeout, which is how
the pool shrinks when the algorithm's parallelism falls.  The words (ready, leased,
done, executor) are those of docs/glossary.md.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass

from numpywren2.core.deprecation import warn_renamed


@dataclass(frozen=True)
class Observation:
    """One look at a job.

    ``ready``: tasks waiting in the queue (visible, not leased); ``leased``: tasks an executor
    holds under a lease; ``executors``: executors alive or starting; ``done``: tasks done, of
    ``num_tasks``; ``elapsed``: seconds since the provisioner started.
    """

    ready: int
    leased: int
    executors: int
    done: int = 0
    num_tasks: int = 0
    elapsed: float = 0.0

    # the names of an earlier version, for policies written against it
    @property
    def pending(self) -> int:
        """Deprecated name of ``ready``."""
        warn_renamed("Observation", "pending", "ready", stacklevel=2)
        return self.ready

    @property
    def in_flight(self) -> int:
        """Deprecated name of ``leased``."""
        warn_renamed("Observation", "in_flight", "leased", stacklevel=2)
        return self.leased

    @property
    def running(self) -> int:
        """Deprecated name of ``executors``."""
        warn_renamed("Observation", "running", "executors", stacklevel=2)
        return self.executors

    @property
    def completed(self) -> int:
        """Deprecated name of ``done``."""
        warn_renamed("Observation", "completed", "done", stacklevel=2)
        return self.done


class ScalingPolicy(abc.ABC):
    """Decides how many executors to launch now."""

    @abc.abstractmethod
    def to_launch(self, obs: Observation, max_executors: int) -> int:
        """Executors to launch now (0 or more); ``executors + to_launch`` must not exceed ``max_executors``."""


class ProportionalPolicy(ScalingPolicy):
    """Keep ``executors ≈ ceil(sf × (ready + leased))``, bounded by ``max_executors`` (the paper's policy).

    Every task that can run and is not done counts, whether it waits in the queue (ready) or
    an executor holds it (leased): with ``sf = 1`` there is one executor per such task.

    >>> p = ProportionalPolicy(0.5)
    >>> p.to_launch(Observation(ready=7, leased=0, executors=1), max_executors=10)  # ceil(3.5) - 1
    3
    >>> p.to_launch(Observation(ready=100, leased=2, executors=4), max_executors=10)
    6
    >>> p.to_launch(Observation(ready=0, leased=3, executors=4), max_executors=10)  # never negative
    0
    """

    def __init__(self, scaling_factor: float = 1.0):
        if not scaling_factor > 0:
            raise ValueError(f"scaling_factor must be positive, got {scaling_factor}")
        self.scaling_factor = scaling_factor

    def target(self, obs: Observation, max_executors: int) -> int:
        """The number of executors this policy wants alive."""
        work = obs.ready + obs.leased
        # the small slack keeps 1/3 × 3 at 1 despite rounding
        return min(max_executors, math.ceil(self.scaling_factor * work - 1e-9)) if work else 0

    def to_launch(self, obs: Observation, max_executors: int) -> int:
        return max(0, self.target(obs, max_executors) - obs.executors)

    def __repr__(self) -> str:
        return f"ProportionalPolicy(scaling_factor={self.scaling_factor})"


class PoolPolicy(ScalingPolicy):
    """Start the pool at once, then keep at least one executor per ready or leased task (the embedded default).

    For launchers whose executors cost nothing while idle (local processes): at a job's start
    (no task done yet) the target is every executor the job could use, ``min(max_executors,
    num_tasks)``, so a program with a single starter (Cholesky's first ``chol``) has its whole
    pool when that task's children become ready; from then on the target is
    ``ready + leased`` (``sf = 1``), so an executor that retired idle in a narrow phase is
    replaced only when ready work asks for it.

    >>> p = PoolPolicy()
    >>> p.to_launch(Observation(ready=1, leased=0, executors=0, done=0, num_tasks=120), max_executors=2)
    2
    >>> p.to_launch(Observation(ready=1, leased=0, executors=0, done=0, num_tasks=1), max_executors=2)
    1
    >>> p.to_launch(Observation(ready=1, leased=0, executors=0, done=7, num_tasks=120), max_executors=2)
    1
    >>> p.to_launch(Observation(ready=0, leased=0, executors=0, done=0, num_tasks=120), max_executors=2)
    0
    """

    def target(self, obs: Observation, max_executors: int) -> int:
        """The number of executors this policy wants alive."""
        work = obs.ready + obs.leased
        if not work:
            return 0
        if obs.done == 0:
            work = max(work, obs.num_tasks)
        return min(max_executors, work)

    def to_launch(self, obs: Observation, max_executors: int) -> int:
        return max(0, self.target(obs, max_executors) - obs.executors)

    def __repr__(self) -> str:
        return "PoolPolicy()"
