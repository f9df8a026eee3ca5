"""Core-seconds and an estimated cost of a job, from the state store's executor registry.

Core-seconds are the sum over executors of their lifetime (first heartbeat to last; an
executor killed outright counts up to its last heartbeat, at most ``report_s`` short),
plus a start-up overhead per executor, as the numpywren paper counts: the time to start
a process or a Lambda invocation, before the first heartbeat, is billed too.

The price parameters default to AWS Lambda's published on-demand x86 prices
(us-east-1, 2024): USD 0.0000166667 per GB-second and USD 0.20 per million requests.
Every executor runs one BLAS thread, so one executor is one core.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CostModel:
    """Parameters of ``job.stats()``'s core-seconds and cost estimate.

    Parameters
    ----------
    startup_s : float
        Start-up overhead counted per executor, in seconds (default 1.0: about what this
        machine takes to start ``python -m executor`` and import numpy, botocore and redis;
        a Lambda cold start is of the same order).
    memory_gb : float
        Memory configured per executor, in GB (default 2.0), which Lambda bills by.
    usd_per_gb_s : float
        Price of one GB-second (default 0.0000166667).
    usd_per_invocation : float
        Price of starting one executor (default 0.0000002).
    """

    startup_s: float = 1.0
    memory_gb: float = 2.0
    usd_per_gb_s: float = 0.0000166667
    usd_per_invocation: float = 0.0000002


def executor_usage(executors: list[dict], model: CostModel | None = None) -> dict:
    """``{"executors", "executor_s", "core_s", "cost_usd"}`` from ``StateStore.executors`` entries.

    >>> usage = executor_usage([{"started": 0.0, "last_seen": 10.0}, {"started": 5.0, "last_seen": 7.0}],
    ...                        CostModel(startup_s=1.0, memory_gb=1.0, usd_per_gb_s=0.5, usd_per_invocation=0.25))
    >>> usage["executor_s"], usage["core_s"], usage["cost_usd"]
    (12.0, 14.0, 7.5)
    """
    model = model or CostModel()
    executor_s = sum(max(0.0, e["last_seen"] - e["started"]) for e in executors)
    core_s = executor_s + model.startup_s * len(executors)
    cost = core_s * model.memory_gb * model.usd_per_gb_s + len(executors) * model.usd_per_invocation
    return {"executors": len(executors), "executor_s": executor_s, "core_s": core_s, "cost_usd": cost}
