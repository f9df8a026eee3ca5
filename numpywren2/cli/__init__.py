"""``npw``: the command line of numpywren2 (``python -m numpywren2`` is the same).

Every command takes the backends as ``--store/--queue/--state`` URLs, else from ``NPW_STORE`` /
``NPW_QUEUE`` / ``NPW_STATE``, else from the configuration file (``numpywren2.cli.backends``).
``npw run`` without any backends runs on a new embedded runtime.  Exit statuses (``EXIT``): 0 success,
1 the job failed or was cancelled, 2 a usage error, 3 no such job, 4 a backend error (unreachable,
misconfigured), 5 a timeout, 130 interrupted.  The reference, generated from these parsers, is
``docs/cli.md`` (``reference()``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from provisioner.__main__ import LAUNCHERS

from ..client.jobs import settle
from ..core.backends import BackendError
from .backends import UsageError, backends
from .jobs import STALE_AFTER, JobNotFoundError, delete_job, is_stale, job_info, list_jobs, load_job
from .run import ALGORITHMS

EXIT = {"ok": 0, "failed": 1, "usage": 2, "not found": 3, "backend": 4, "timeout": 5, "interrupted": 130}
log = logging.getLogger(__name__)


# --------------------------------------------------------------------------- helpers


def _runtime(args, required: bool = True, executors: int | None = 0):
    from ..client.runtime import Runtime

    urls = backends(args, required=required)
    if urls is None:
        return Runtime(executors=executors)
    return Runtime(urls["store"], urls["queue"], urls["state"], executors=executors)


def _age(s: float | None) -> str:
    if s is None:
        return "-"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s / size:.0f}{unit}"
    return f"{s:.0f}s"


def _status_line(i: dict) -> str:
    return (f"{i['job']}  {i['program']}  {i['status']}  {i['completed']}/{i['num_tasks']} tasks  "
            f"{i['executors']} executors  age {_age(i['age_s'])}")


def _ended_exit(status: str) -> int:
    return EXIT["failed"] if status in ("failed", "cancelled") else EXIT["ok"]


# --------------------------------------------------------------------------- commands


def cmd_run(args) -> int:
    import numpy as np

    import numpywren2 as npw

    alg = ALGORITHMS[args.algorithm]
    if args.n < 1 or args.block < 1:
        raise UsageError("--n and --block must be positive")
    urls = backends(args, required=False) or {}
    with npw.runtime(**urls, executors=args.executors):
        t0 = time.perf_counter()
        err = alg.run(npw, args.n, args.block, args.executors, np.random.default_rng(args.seed), args.progress or None)
        elapsed = time.perf_counter() - t0
        job = npw.last_job()
        if job is not None:
            job.stats()  # waits for the job's executors to exit, so that their records and log lines are in
        if args.report and job is not None:
            job.report(args.report)
    gflops = alg.flops(args.n, args.block) / elapsed / 1e9
    out = {"algorithm": alg.name, "n": args.n, "block": args.block, "job": job.id if job else None,
           "time_s": round(elapsed, 4), "gflops": gflops, "relative_error": err}
    if args.json:
        print(json.dumps(out))
    else:
        print(f"{alg.name}: n={args.n} block={args.block}  job {out['job']}  {elapsed:.3f} s  "
              f"{gflops:.3f} GFLOP/s  relative error {err:.3e}")
    return EXIT["ok"] if err < args.tolerance else EXIT["failed"]


def cmd_jobs(args) -> int:
    rt = _runtime(args)
    try:
        rows = list_jobs(rt.state)
        # a running job given up on in an outage (its tombstone in the tile store) is recorded failed, cleaned
        if any([settle(rt, r["job"], "npw jobs") for r in rows if r["status"] == "running"]):
            rows = list_jobs(rt.state)
        if args.status:
            rows = [r for r in rows if r["status"] == args.status]
        if args.json:
            print(json.dumps(rows))
            return EXIT["ok"]
        print(f"{'JOB':<18} {'PROGRAM':<18} {'STATUS':<10} {'PROGRESS':>13} {'AGE':>6} {'EXECUTORS':>9}")
        for r in rows:
            progress = f"{r['completed']}/{r['num_tasks']}"
            print(f"{r['job']:<18} {r['program']:<18} {r['status']:<10} {progress:>13} {_age(r['age_s']):>6} "
                  f"{r['executors']:>9}")
        return EXIT["ok"]
    finally:
        rt.close()


def cmd_status(args) -> int:
    rt = _runtime(args)
    try:
        while True:
            i = job_info(rt.state, args.job, load_index_entry(rt, args.job))
            if args.json:
                print(json.dumps(i), flush=True)
            else:
                print(_status_line(i), flush=True)
                if i["error"]:
                    print(f"error: {i['error']}")
            if not args.watch or i["status"] != "running":
                return _ended_exit(i["status"])
            time.sleep(args.interval)
    finally:
        rt.close()


def load_index_entry(rt, job_id: str) -> dict:
    from .jobs import index

    return index(rt.state).get(job_id, {})


def _format_log(line: str) -> str:
    try:
        r = json.loads(line)
    except ValueError:
        return line
    at = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(r.get("time", 0)))
    return f"{at} {r.get('executor', '?')} {r.get('level', '?')} {r.get('message', '')}"


def cmd_logs(args) -> int:
    rt = _runtime(args)
    try:
        job_info(rt.state, args.job)  # JobNotFoundError
        seen = 0
        while True:
            lines = rt.state.records(args.job, "log")
            new, seen = lines[seen:], len(lines)
            if args.tail and not args.follow:
                new = new[-args.tail:]
            for line in new:
                print(_format_log(line), flush=True)
            if not args.follow:
                return EXIT["ok"]
            i = job_info(rt.state, args.job)
            if i["status"] != "running" and i["executors"] == 0:
                lines = rt.state.records(args.job, "log")
                for line in lines[seen:]:
                    print(_format_log(line), flush=True)
                return _ended_exit(i["status"])
            time.sleep(args.interval)
    finally:
        rt.close()


def cmd_cancel(args) -> int:
    rt = _runtime(args)
    try:
        i = job_info(rt.state, args.job)
        if not rt.state.set_status(args.job, "cancelled"):
            print(f"{args.job}: not running ({i['status']}); nothing to cancel", file=sys.stderr)
            return EXIT["failed"]
        rt.queue(args.job).purge()
        print(f"{args.job}: cancelled at {i['completed']}/{i['num_tasks']} tasks")
        return EXIT["ok"]
    finally:
        rt.close()


def cmd_attach(args) -> int:
    from ..client.job import JobFailedError

    rt = _runtime(args)
    try:
        job = load_job(rt, args.job)
        try:
            job.wait(timeout=args.timeout, progress=not args.no_progress)
        except TimeoutError as e:
            print(str(e), file=sys.stderr)
            return EXIT["timeout"]
        except JobFailedError as e:
            print(f"{args.job}: {e}", file=sys.stderr)
            return EXIT["failed"]
        except Exception as e:  # a kernel's error, rebuilt with its type
            print(f"{args.job}: failed: {type(e).__name__}: {e}", file=sys.stderr)
            return EXIT["failed"]
        print(f"{args.job}: done, {job.num_tasks} tasks")
        return EXIT["ok"]
    finally:
        rt.close()


def cmd_gc(args) -> int:
    rt = _runtime(args)
    try:
        if args.job:
            i = job_info(rt.state, args.job)
            if i["status"] == "running" and not args.force:
                print(f"{args.job} is running; cancel it first, or pass --force", file=sys.stderr)
                return EXIT["failed"]
            targets = [args.job]
        elif args.finished or args.stale:
            targets = []
            for i in list_jobs(rt.state):
                if args.finished and i["status"] != "running":
                    targets.append(i["job"])
                elif args.stale and is_stale(i, args.older_than):
                    if not args.dry_run:
                            rt.state.set_status(i["job"], "failed", json.dumps(
                            {"message": f"abandoned: no executor for {i['idle_s']:.0f} s (npw gc --stale)"}))
                    targets.append(i["job"])
        else:
            raise UsageError("give a JOB, --finished or --stale")
        for j in targets:
            if not args.dry_run:
                delete_job(rt, j)
            print(f"{'would remove' if args.dry_run else 'removed'} {j}")
        return EXIT["ok"]
    finally:
        rt.close()


def cmd_worker(args) -> int:
    from executor.spec import DEFAULT_IDLE_TIMEOUT, DEFAULT_LEASE, ExecutorSpec
    from executor.worker import run

    urls = backends(args)
    lease = args.lease or DEFAULT_LEASE
    idle = args.idle_timeout if args.idle_timeout is not None else DEFAULT_IDLE_TIMEOUT
    if args.job:
        rt = _runtime(args)
        try:
            job_info(rt.state, args.job)
        finally:
            rt.close()
        n = run(ExecutorSpec(urls["store"], urls["queue"], urls["state"], args.job, lease, idle, args.time_limit))
        print(f"{args.job}: this executor ran {n} task(s)", file=sys.stderr)
        return EXIT["ok"]
    # any job of the runtime: an executor for each running job in turn, until none has work for a while
    rt = _runtime(args)
    try:
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < idle:
            ran = 0
            for i in list_jobs(rt.state):
                if i["status"] == "running":
                    ran += run(ExecutorSpec(urls["store"], urls["queue"], urls["state"], i["job"], lease,
                                            min(idle, 2.0), args.time_limit))
            if ran:
                quiet_since = time.monotonic()
            else:
                time.sleep(min(args.interval, idle))
        return EXIT["ok"]
    finally:
        rt.close()


def cmd_provision(args) -> int:
    from provisioner.__main__ import main as provision

    urls = backends(args)
    argv = ["--store", urls["store"], "--queue", urls["queue"], "--state", urls["state"], "--job", args.job,
            "--launcher", args.launcher]
    extra = list(args.options)
    if extra[:1] == ["--"]:
        extra = extra[1:]
    for flag in ("max_executors", "scaling_factor", "idle_timeout", "time_limit", "lease", "function_name", "region"):
        v = getattr(args, flag)
        if v is not None:
            argv += [f"--{flag.replace('_', '-')}", str(v)]
    rt = _runtime(args)
    try:
        job_info(rt.state, args.job)
    finally:
        rt.close()
    return provision(argv + extra)


def cmd_aws_deploy(args) -> int:
    from provisioner import aws_deploy

    return aws_deploy.run(args)


def cmd_report(args) -> int:
    rt = _runtime(args)
    try:
        job = load_job(rt, args.job)
        job.report(args.output)
        print(args.output)
        return EXIT["ok"]
    finally:
        rt.close()


# --------------------------------------------------------------------------- the parser


def _formatter(prog: str) -> argparse.HelpFormatter:
    return argparse.HelpFormatter(prog, width=100)  # the same help on every terminal (docs/cli.md)


def _backend_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("backends (default: NPW_STORE, NPW_QUEUE, NPW_STATE, then the configuration file)")
    g.add_argument("--store", help="tile store URL (file://, s3://...)")
    g.add_argument("--queue", help="queue URL (sqlite://, redis://, sqs://)")
    g.add_argument("--state", help="state store URL (sqlite://, redis://)")
    g.add_argument("--config", help="configuration file (default: NPW_CONFIG, else "
                                    "~/.config/numpywren2/config.toml)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="npw", description="Run and inspect numpywren2 jobs.", formatter_class=_formatter,
        epilog="Exit status: 0 success, 1 the job failed or was cancelled, 2 usage error, 3 no such job, "
               "4 backend error, 5 timeout, 130 interrupted.")
    ap.add_argument("-v", "--verbose", action="count", default=0, help="log more (-v: INFO, -vv: DEBUG) to stderr")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, fn, help: str, description: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description or help, formatter_class=_formatter)
        p.set_defaults(fn=fn)
        _backend_flags(p)
        return p

    p = command("run", cmd_run, "run a built-in algorithm on a generated matrix; print time, GFLOP/s, error, job id",
                "Run a built-in algorithm on a generated matrix and print the time, GFLOP/s (nominal flop "
                "count over wall time), the relative error against numpy and the job id.  Without backends "
                "it runs on a new embedded runtime.  Algorithms: "
                + "; ".join(f"{a.name}: {a.what}" for a in ALGORITHMS.values()) + ".")
    p.add_argument("algorithm", choices=sorted(ALGORITHMS))
    p.add_argument("--n", type=int, default=1024, help="matrix size (rows)")
    p.add_argument("--block", type=int, default=256, help="tile size")
    p.add_argument("--executors", type=int, default=None, help="at most this many executors (default: one per core)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tolerance", type=float, default=1e-6, help="exit 1 if the relative error is larger")
    p.add_argument("--progress", action="store_true", help="show a progress bar (when stderr is a terminal)")
    p.add_argument("--report", metavar="HTML", help="also write the (last) job's report there")
    p.add_argument("--json", action="store_true", help="print one JSON object")

    p = command("jobs", cmd_jobs, "list the jobs: id, program, status, progress, age, executors")
    p.add_argument("--status", choices=["running", "done", "failed", "cancelled"], help="only jobs of this status")
    p.add_argument("--json", action="store_true", help="print a JSON list")

    p = command("status", cmd_status, "show one job's status (exit 1 if it failed or was cancelled)")
    p.add_argument("job")
    p.add_argument("--watch", action="store_true", help="repeat until the job ends")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between --watch lines")
    p.add_argument("--json", action="store_true")

    p = command("logs", cmd_logs, "show the log lines of a job's executors (kept in the state store)")
    p.add_argument("job")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new lines until the job ends")
    p.add_argument("--tail", type=int, default=None, help="only the last N lines")
    p.add_argument("--interval", type=float, default=0.5, help="seconds between polls with --follow")

    p = command("cancel", cmd_cancel, "cancel a running job (exit 1 if it was not running)")
    p.add_argument("job")

    p = command("attach", cmd_attach, "wait for a job with a progress bar; exit with its outcome")
    p.add_argument("job")
    p.add_argument("--timeout", type=float, default=None, help="give up after this many seconds (exit 5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = command("gc", cmd_gc, "remove what jobs left behind: queues, scratch tiles, state",
                "Remove a job's queue, scratch tiles and state: one JOB (not running unless --force), every "
                "finished job (--finished), or running jobs that no executor has served for --older-than "
                "seconds (--stale; they are marked failed first).  Input and output matrices are not removed.")
    p.add_argument("job", nargs="?")
    p.add_argument("--finished", action="store_true", help="every job that is done, failed or cancelled")
    p.add_argument("--stale", action="store_true", help="running jobs without any executor for --older-than s")
    p.add_argument("--older-than", type=float, default=STALE_AFTER, help="seconds, for --stale")
    p.add_argument("--force", action="store_true", help="remove a running JOB too")
    p.add_argument("--dry-run", action="store_true", help="only print what would be removed")

    p = command("worker", cmd_worker, "run an executor for one job (--job) or for any running job of the runtime")
    p.add_argument("--job", help="the job (default: any running job, one after another)")
    p.add_argument("--lease", type=float, default=None, help="queue lease, seconds")
    p.add_argument("--idle-timeout", type=float, default=None, help="stop after this many seconds without work")
    p.add_argument("--time-limit", type=float, default=None, help="stop before this many seconds")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between looks for jobs (without --job)")

    p = command("provision", cmd_provision, "run a provisioner for a job: start executors as its parallelism asks")
    p.add_argument("--job", required=True)
    p.add_argument("--launcher", choices=LAUNCHERS, default="local", help="where the executors run")
    p.add_argument("--max-executors", type=int, default=None)
    p.add_argument("--scaling-factor", type=float, default=None)
    p.add_argument("--idle-timeout", type=float, default=None)
    p.add_argument("--time-limit", type=float, default=None, help="executor lifetime, seconds")
    p.add_argument("--lease", type=float, default=None)
    p.add_argument("--function-name", help="the Lambda function, for --launcher lambda")
    p.add_argument("--region", default=None)
    p.add_argument("options", nargs=argparse.REMAINDER,
                   help="after --, the launcher's own options as python -m provisioner takes them "
                        "(--dask-scheduler ADDRESS, --image IMAGE --namespace NS, ...)")

    from ..client.plan import build_plan_parser, build_sim_parser, run_plan, run_sim

    p = sub.add_parser("plan", help="predict a job's time, core-seconds, cost, executors and bytes before running it",
                       formatter_class=_formatter,
                       description="Predict a built-in algorithm's time, core-seconds, cost, peak executors, bytes "
                                   "and peak requests per store prefix (npw.plan; docs/scale.md), from the "
                                   "program's symbolic cost and the simulator.  No backend is used.")
    build_plan_parser(p)
    p.set_defaults(fn=run_plan)
    p = sub.add_parser("sim", help="simulate a job at scale; write its timeline and task records",
                       formatter_class=_formatter,
                       description="Simulate a built-in algorithm on a simulated clock (provisioner.sim): the "
                                   "real program, scaling policy and executor decisions; prints the outcome and "
                                   "writes the timeline and task records a real job writes.")
    build_sim_parser(p)
    p.set_defaults(fn=run_sim)

    from provisioner import aws_deploy

    p = sub.add_parser("aws", help="AWS Lambda: deploy the executor function", formatter_class=_formatter,
                       description="AWS Lambda: deploy the executor function (docs/deploy.md).")
    aws = p.add_subparsers(dest="aws_command", metavar="AWS_COMMAND", required=True)
    p = aws.add_parser("deploy", help="build the function and layer packages, the IAM role and policy, and create "
                                      "or update the function", formatter_class=_formatter,
                       description=(aws_deploy.__doc__ or "").strip().split("\n\n")[0])
    aws_deploy.add_arguments(p)
    p.set_defaults(fn=cmd_aws_deploy)

    p = command("report", cmd_report, "write a job's report: one self-contained HTML file")
    p.add_argument("job")
    p.add_argument("-o", "--output", default="report.html", help="the HTML file to write")
    return ap


def main(argv: list[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)  # a usage error exits 2
    if args.verbose:
        logging.basicConfig(level=logging.DEBUG if args.verbose > 1 else logging.INFO, stream=sys.stderr,
                            format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.fn(args)
    except UsageError as e:
        ap.exit(EXIT["usage"], f"npw {args.command}: {e}\n")
    except JobNotFoundError as e:
        print(f"npw {args.command}: no job {e.args[0]!r} in this state store", file=sys.stderr)
        return EXIT["not found"]
    except BackendError as e:
        print(f"npw {args.command}: {e}", file=sys.stderr)
        return EXIT["backend"]
    except KeyboardInterrupt:
        return EXIT["interrupted"]
    return EXIT["ok"]


def reference() -> str:
    """The CLI reference in markdown (``docs/cli.md``), generated from the parsers."""
    ap = build_parser()
    out = ["# The `npw` command line", "",
           "Generated from the parsers (`numpywren2.cli.reference()`; `tests/test_cli.py` checks it is up to "
           "date).  `python -m numpywren2` is the same command.", "",
           "Backends: `--store/--queue/--state`, else `NPW_STORE`/`NPW_QUEUE`/`NPW_STATE`, else the TOML file "
           "`--config`, `NPW_CONFIG` or `~/.config/numpywren2/config.toml` (a `[backends]` table with `store`, "
           "`queue`, `state`); flags win over the environment, which wins over the file.", "",
           "Exit statuses: " + ", ".join(f"{v} {k}" for k, v in EXIT.items()) + ".", "",
           "```text npw-help", ap.format_help().rstrip(), "```", ""]
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        out += [f"## npw {name}", "", "```text npw-help", p.format_help().rstrip(), "```", ""]
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for inner, q in a.choices.items():
                    out += [f"## npw {name} {inner}", "", "```text npw-help", q.format_help().rstrip(), "```", ""]
    return "\n".join(out)
