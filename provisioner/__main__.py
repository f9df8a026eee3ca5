"""``python -m provisioner --store URL --queue URL --state URL --job ID [options]``: provision one job.

Runs the control loop in this process until the job ends (or Ctrl-C).  Safe to
restart: a new provisioner counts the executors already alive from the state
store's registry and continues the job's timeline.
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings

from .launchers import AwsLambdaLauncher, LocalProcessLauncher, SimulatedLambdaLauncher
from .loop import Provisioner
from .settings import ProvisionerSettings


def _kill_at(text: str) -> tuple[float, float]:
    t, _, f = text.partition(":")
    return float(t), float(f)


def main(argv: list[str] | None = None) -> int:
    d = ProvisionerSettings()
    ap = argparse.ArgumentParser(prog="python -m provisioner", description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--launcher", choices=["local", "simulated-lambda", "aws-lambda"], default="local")
    ap.add_argument("--scaling-factor", type=float, default=d.scaling_factor,
                    help="the proportional policy's sf (default: the launcher's policy; the whole pool for local "
                         "processes)")
    ap.add_argument("--max-executors", type=int, default=d.max_executors)
    ap.add_argument("--max-workers", type=int, dest="max_workers", help=argparse.SUPPRESS)  # deprecated name
    ap.add_argument("--idle-timeout", type=float, default=d.idle_timeout)
    ap.add_argument("--poll-interval", type=float, default=d.poll_interval)
    ap.add_argument("--time-limit", type=float, default=d.time_limit, help="executor lifetime, seconds")
    ap.add_argument("--lease", type=float, default=d.lease)
    ap.add_argument("--start-timeout", type=float, default=d.start_timeout,
                    help="seconds a launched executor has to heart-beat before it counts as failed to start")
    ap.add_argument("--task-timeout", type=float, default=d.task_timeout,
                    help="seconds one task may run before its executor abandons it")
    ap.add_argument("--task-attempts", type=int, default=d.task_attempts,
                    help="overruns of --task-timeout by one task before the job fails")
    ap.add_argument("--heartbeat-timeout", type=float, default=d.heartbeat_timeout,
                    help="seconds a started executor may go without a live heartbeat before it is lost")
    ap.add_argument("--lock-timeout", type=float, default=d.lock_timeout,
                    help="seconds an executor may hold the embedded store's write lock with no commit")
    g = ap.add_argument_group("simulated Lambda")
    g.add_argument("--lifetime", type=float, default=900.0, help="hard kill after this many seconds")
    g.add_argument("--cold-start", type=float, default=0.0)
    g.add_argument("--concurrency", type=int, default=1000)
    g.add_argument("--memory-mb", type=int, default=2048)
    g.add_argument("--kill-at", type=_kill_at, action="append", default=[], metavar="SECONDS:FRACTION")
    g.add_argument("--kill-probability-per-minute", type=float, default=0.0)
    g = ap.add_argument_group("AWS Lambda")
    g.add_argument("--function-name", help="the Lambda function running executor.lambda_handler.handler")
    g.add_argument("--region", default=None)
    a = ap.parse_args(argv)
    if a.max_workers is not None:  # the deprecated --max-workers
        warnings.warn("--max-workers is deprecated, use --max-executors instead", DeprecationWarning, stacklevel=1)
        if a.max_executors is None:  # deprecated alias
            a.max_executors = a.max_workers  # deprecated alias
    if a.launcher == "local":
        launcher = LocalProcessLauncher()
    elif a.launcher == "simulated-lambda":
        launcher = SimulatedLambdaLauncher(lifetime=a.lifetime, cold_start=a.cold_start, concurrency=a.concurrency,
                                           memory_mb=a.memory_mb, kill_at=a.kill_at,
                                           kill_probability_per_minute=a.kill_probability_per_minute)
    else:
        if not a.function_name:
            ap.error("--launcher aws-lambda needs --function-name")
        launcher = AwsLambdaLauncher(a.function_name, region=a.region)
    settings = ProvisionerSettings(scaling_factor=a.scaling_factor, max_executors=a.max_executors,
                                   idle_timeout=a.idle_timeout, poll_interval=a.poll_interval,
                                   time_limit=a.time_limit, lease=a.lease, start_timeout=a.start_timeout,
                                   task_timeout=a.task_timeout, task_attempts=a.task_attempts,
                                   heartbeat_timeout=a.heartbeat_timeout, lock_timeout=a.lock_timeout)
    prov = Provisioner({"store": a.store, "queue": a.queue, "state": a.state}, a.job, launcher, settings)
    signal.signal(signal.SIGTERM, lambda *_: prov._stop.set())
    try:
        prov.run()  # executors it launched are left running if it is stopped early: they retire by themselves
    except KeyboardInterrupt:
        pass
    finally:
        status = prov.state.status(a.job)
        prov.close()
    print(f"{a.job}: {status}, {prov.launches} executors launched", file=sys.stderr)
    return 0 if status in ("running", "done") else 1


if __name__ == "__main__":
    sys.exit(main())
