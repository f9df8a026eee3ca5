"""``python -m provisioner --store URL --queue URL --state URL --job ID [options]``: provision one job.

Runs the control loop in this process until the job ends (or Ctrl-C).  Safe to
restart: a new provisioner counts the executors already alive from the state
store's registry and continues the job's timeline.

``--launcher`` says where the executors run: ``local`` processes of this host (default),
``simulated-lambda`` (local processes with Lambda's limits), ``lambda`` (AWS Lambda invocations of
``--function-name``; ``aws-lambda`` is the same), ``dask`` (tasks on the Dask cluster whose scheduler
is ``--dask-scheduler``) or ``kubernetes`` (one Job per executor of ``--image`` in ``--namespace``).
"""

from __future__ import annotations

import argparse
import signal
import sys
import warnings

from .dask_launcher import DaskLauncher
from .kubernetes_launcher import KubernetesLauncher
from .launchers import AwsLambdaLauncher, Launcher, LocalProcessLauncher, SimulatedLambdaLauncher
from .loop import Provisioner
from .settings import ProvisionerSettings


def _kill_at(text: str) -> tuple[float, float]:
    t, _, f = text.partition(":")
    return float(t), float(f)


def _resources(text: str) -> dict[str, float]:
    """``"npw_executor=1,GPU=2"`` as Dask resources."""
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, eq, value = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"resources are NAME=AMOUNT, got {item!r}")
        out[name] = float(value)
    return out


LAUNCHERS = ["local", "simulated-lambda", "lambda", "aws-lambda", "dask", "kubernetes"]


def make_launcher(a: argparse.Namespace, ap: argparse.ArgumentParser) -> Launcher:
    """The launcher named by ``--launcher``, made from its options (``ap.error`` on one missing)."""
    if a.launcher == "local":
        return LocalProcessLauncher()
    if a.launcher == "simulated-lambda":
        return SimulatedLambdaLauncher(lifetime=a.lifetime, cold_start=a.cold_start, concurrency=a.concurrency,
                                       memory_mb=a.memory_mb, kill_at=a.kill_at,
                                       kill_probability_per_minute=a.kill_probability_per_minute)
    if a.launcher in ("lambda", "aws-lambda"):
        if not a.function_name:
            ap.error(f"--launcher {a.launcher} needs --function-name")
        return AwsLambdaLauncher(a.function_name, region=a.region, qualifier=a.qualifier)
    if a.launcher == "dask":
        if not a.dask_scheduler:
            ap.error("--launcher dask needs --dask-scheduler (tcp://HOST:8786)")
        return DaskLauncher(a.dask_scheduler, resources=a.dask_resources or None)
    if not a.image:
        ap.error("--launcher kubernetes needs --image")
    return KubernetesLauncher(a.image, namespace=a.namespace, cpu=a.cpu, memory=a.memory,
                              env_from_secrets=a.env_from_secret, service_account=a.service_account,
                              image_pull_policy=a.image_pull_policy, python=a.python)


def parser() -> argparse.ArgumentParser:
    d = ProvisionerSettings()
    ap = argparse.ArgumentParser(prog="python -m provisioner", description=__doc__,
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--store", required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--launcher", choices=LAUNCHERS, default="local", help="where the executors run")
    ap.add_argument("--scaling-factor", type=float, default=d.scaling_factor,
                    help="the proportional policy's sf (default: the launcher's policy; the whole pool for local "
                         "processes)")
    ap.add_argument("--max-executors", type=int, default=d.max_executors)
    ap.add_argument("--max-workers", type=int, dest="max_workers", help=argparse.SUPPRESS)  # deprecated name
    ap.add_argument("--idle-timeout", type=float, default=d.idle_timeout)
    ap.add_argument("--poll-interval", type=float, default=d.poll_interval)
    ap.add_argument("--timeline-interval", type=float, default=d.timeline_interval,
                    help="seconds between the job's timeline samples (what tells executors it is not abandoned)")
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
    ap.add_argument("--max-failed-starts", type=int, default=d.max_failed_starts,
                    help="executors in a row failing to start or exiting with an error, no task completing, "
                         "before the job fails")
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
    g.add_argument("--qualifier", default=None, help="the version or alias to invoke")
    g = ap.add_argument_group("Dask")
    g.add_argument("--dask-scheduler", metavar="ADDRESS", help="the scheduler's address, e.g. tcp://10.0.0.5:8786")
    g.add_argument("--dask-resources", type=_resources, default={}, metavar="NAME=AMOUNT,...",
                   help="Dask resources each executor needs, e.g. npw_executor=1")
    g = ap.add_argument_group("Kubernetes")
    g.add_argument("--image", help="the container image holding this package")
    g.add_argument("--namespace", default="default")
    g.add_argument("--cpu", default="1", help="CPU request (and limit) of each executor")
    g.add_argument("--memory", default="2Gi", help="memory request (and limit) of each executor")
    g.add_argument("--env-from-secret", action="append", default=[], metavar="SECRET",
                   help="a Secret whose keys become the executors' environment (repeatable)")
    g.add_argument("--service-account", default=None)
    g.add_argument("--image-pull-policy", default=None, choices=["Always", "IfNotPresent", "Never"])
    g.add_argument("--python", default="python", help="the interpreter in the image")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = parser()
    a = ap.parse_args(argv)
    if a.max_workers is not None:  # the deprecated --max-workers
        warnings.warn("--max-workers is deprecated, use --max-executors instead", DeprecationWarning, stacklevel=1)
        if a.max_executors is None:  # deprecated alias
            a.max_executors = a.max_workers  # deprecated alias
    launcher = make_launcher(a, ap)
    settings = ProvisionerSettings.from_cli(a)
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
