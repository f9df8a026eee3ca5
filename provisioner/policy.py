"""Scaling policies: how many executors to launch, given what the provisioner observes.

A policy is an object with one method, ``to_launch(observation, max_workers)``; the
provisioner calls it every poll and launches that many executors.  Policies never
stop executors: executors retire themselves after their idle timeout, which is how
the pool shrinks when the algorithm's parallelism falls.
"""

from __future__ import annotations

import abc
import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Observation:
    """One look at a job.

    ``pending``: tasks waiting in the queue; ``in_flight``: tasks leased by an executor;
    ``running``: executors alive or starting; ``completed``: tasks done, of ``num_tasks``;
    ``elapsed``: seconds since the provisioner started.
    """

    pending: int
    in_flight: int
    running: int
    completed: int = 0
    num_tasks: int = 0
    elapsed: float = 0.0


class ScalingPolicy(abc.ABC):
    """Decides how many executors to launch now."""

    @abc.abstractmethod
    def to_launch(self, obs: Observation, max_workers: int) -> int:
        """Executors to launch now (0 or more); ``running + to_launch`` must not exceed ``max_workers``."""


class ProportionalPolicy(ScalingPolicy):
    """Keep ``running ≈ ceil(sf × (pending + in_flight))``, bounded by ``max_workers`` (the paper's policy).

    Every ready task that is not done counts, whether it waits in the queue or is leased:
    with ``sf = 1`` there is one executor per ready task.

    >>> p = ProportionalPolicy(0.5)
    >>> p.to_launch(Observation(pending=7, in_flight=0, running=1), max_workers=10)  # ceil(3.5) - 1
    3
    >>> p.to_launch(Observation(pending=100, in_flight=2, running=4), max_workers=10)
    6
    >>> p.to_launch(Observation(pending=0, in_flight=3, running=4), max_workers=10)  # never negative
    0
    """

    def __init__(self, scaling_factor: float = 1.0):
        if not scaling_factor > 0:
            raise ValueError(f"scaling_factor must be positive, got {scaling_factor}")
        self.scaling_factor = scaling_factor

    def target(self, obs: Observation, max_workers: int) -> int:
        """The number of executors this policy wants alive."""
        work = obs.pending + obs.in_flight
        # the small slack keeps 1/3 × 3 at 1 despite rounding
        return min(max_workers, math.ceil(self.scaling_factor * work - 1e-9)) if work else 0

    def to_launch(self, obs: Observation, max_workers: int) -> int:
        return max(0, self.target(obs, max_workers) - obs.running)

    def __repr__(self) -> str:
        return f"ProportionalPolicy(scaling_factor={self.scaling_factor})"
