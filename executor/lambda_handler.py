"""AWS Lambda entry point: one executor per invocation.

The event names the backends and the job::

    {"store": "s3://bucket/prefix", "queue": "sqs://?region=us-east-1", "state": "redis://host:6379/0",
     "job": "job-1234", "lease": 60, "idle_timeout": 10, "safety_s": 20, "executor_id": "x-..."}

The executor stops taking new tasks ``safety_s`` seconds (default: 20, or 15% of
the remaining time if that is smaller) before Lambda's deadline, as reported by
``context.get_remaining_time_in_millis()``; a task it could not finish reappears
on the queue when its lease expires.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread, as on a one-core Lambda
os.environ.setdefault("OMP_NUM_THREADS", "1")

from numpywren2.runtime import open_queue, open_state, open_store

from .worker import Executor


def handler(event: dict, context) -> dict:
    remaining = context.get_remaining_time_in_millis() / 1000.0
    safety = min(float(event.get("safety_s", 20.0)), 0.15 * remaining)
    ex = Executor(open_store(event["store"]), open_queue(event["queue"], event["job"]), open_state(event["state"]),
                  event["job"], lease=float(event.get("lease", 60.0)),
                  idle_timeout=float(event.get("idle_timeout", 10.0)), time_limit=max(0.0, remaining - safety),
                  executor_id=event.get("executor_id"))
    n = ex.run()
    return {"job": event["job"], "tasks": n}
