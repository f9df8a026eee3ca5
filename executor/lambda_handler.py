"""AWS Lambda entry point: one executor per invocation.

The event names the backends and the job (``executor.spec.ExecutorSpec.lambda_event`` makes it)::

    {"store": "s3://bucket/prefix", "queue": "sqs://?region=us-east-1", "state": "redis://host:6379/0",
     "job": "job-1234", "lease": 60, "idle_timeout": 10, "safety_s": 20, "executor_id": "x-..."}

The executor stops taking new tasks ``safety_s`` seconds (default: 20, or 15% of
the remaining time if that is smaller) before Lambda's deadline, as reported by
``context.get_remaining_time_in_millis()``; a task it could not finish reappears
on the queue when its lease expires.

The job-signing key: ``NPW_SECRET`` in the function's environment, or (as ``npw aws deploy`` configures it)
``NPW_SECRET_ARN``, the ARN of a Secrets Manager secret holding it, read once per container at its first
invocation (``resolve_secret``) and kept in this process's environment only.
"""

from __future__ import annotations

import os

from .spec import BLAS_THREAD_VARS, ExecutorSpec

for _var in BLAS_THREAD_VARS:  # one BLAS thread, as on a one-core Lambda; before numpy is imported
    os.environ.setdefault(_var, "1")

from numpywren2.core.signing import SECRET_ARN_ENV, SECRET_ENV  # noqa: E402

from .worker import run  # noqa: E402 - after the BLAS settings


def resolve_secret(client=None) -> bool:
    """Put the key named by ``NPW_SECRET_ARN`` into ``NPW_SECRET`` unless that is set; whether it fetched it."""
    arn = os.environ.get(SECRET_ARN_ENV)
    if os.environ.get(SECRET_ENV) or not arn:
        return False
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    os.environ[SECRET_ENV] = client.get_secret_value(SecretId=arn)["SecretString"]
    return True


def handler(event: dict, context) -> dict:
    resolve_secret()
    remaining = context.get_remaining_time_in_millis() / 1000.0
    safety = min(float(event.get("safety_s", 20.0)), 0.15 * remaining)
    spec, executor_id = ExecutorSpec.from_event(event)
    n = run(spec, executor_id, time_limit=max(0.0, remaining - safety))
    return {"job": spec.job, "tasks": n}
