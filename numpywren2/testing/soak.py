"""Soaks: consecutive small jobs under seeded random faults, each checked for its answer and for leftovers.

Shared by the short soak (``tests/faults/test_soak.py``, about 20 jobs) and the long one (``bench/soak.py``,
200 jobs on the embedded backend, on Redis + moto S3, and on Redis state + moto SQS queues + moto S3).
Two kinds of job:

*gated fans* (``fan``): ``T[i] = 2 X[i]; Y[i] = 2 T[i]``, whose last task waits at a gate of its own.  While it
waits, one fault of ``GATED_FAULTS`` is injected into the executor running it or into its queue: ``kill``
(SIGKILL: another executor runs the task when its lease runs out), ``stop`` (SIGSTOP: the provisioner finds
its heartbeat stale and kills it; one left stopped is continued at the end and must then exit by itself),
``duplicate`` (every task of the job sent again, sealed for the job: copies of done and not-done tasks), or
``none``; then the gate opens.

*algorithms* (``ALGORITHMS``: Cholesky, GEMM, TSQR, QR, LU, solve through the user API on a few tiles),
under one fault of ``ALGORITHM_FAULTS``: ``kill:STEP`` (one executor kills itself at that protocol step:
``faulty_executor``), ``storage`` (every executor's tile reads and writes fail transiently or answer slowly
at random), ``duplicate`` (each job of the call gets its tasks sent again once it has completed one),
``outage`` (the Redis server stopped once a job has completed a task, and restarted on its port a moment
later: only with a restartable server), or ``none``.

Faults of the links to the servers (``LINK_FAULTS``), where the soak is given the way in (``Links``): the
runtime's URLs go through ``TcpProxy``s in front of the servers, so a fault is a proxy's outage while the
servers keep their state.  Each is injected once a job of the call has completed a task, and its length is
counted in what it did to the clients (the proxy's counts), with time only as an upper bound (half of
``outage_s``, so that whatever it is, the jobs can ride it out):

- ``redis-stall`` (Redis configurations): the Redis link drops packets silently (``stall()``: no reset, no
  byte forwarded) until ``STALL_REQUESTS`` requests were swallowed on ``STALL_CONNECTIONS`` connections and
  ``STALL_ABANDONED`` connections were given up at their socket timeout (a quarter of ``outage_s``, or the
  URL's ``socket_timeout``) and their calls retried; ridden out.
- ``s3-stall`` (configurations with S3) and ``sqs-stall`` (SQS queues): the S3 or the SQS link stalled the same
  way, until ``S3_STALL`` or ``SQS_STALL`` (requests, connections, abandoned) were reached: calls given up at
  their read timeout (a quarter of ``outage_s``, or the URL's ``read_timeout``) and retried by ``with_retries``
  on new connections.  What the stall held reaches the server late, once the link is back (a tile written
  again, identical; a receive that hides its messages for a lease; children sent twice); ridden out.
- ``s3-stop`` (configurations with S3): the S3 server stopped.  moto_server keeps its buckets in memory, so a
  stopped and restarted moto would come back empty: a real S3 server (or MinIO) that stops keeps its objects,
  and its clients see refused and reset connections until it is back.  That is the proxy cut (``cut()``:
  every connection reset, new ones at once) until ``S3_REFUSED`` new connections were refused; ridden out.
- ``sqs-cut`` (SQS queues): the SQS endpoint cut the same way until ``SQS_REFUSED`` connections were refused;
  a receive whose answer was dropped hides its messages for a lease (the soak's leases are short); ridden out.
- ``sqs-restart`` (SQS queues, a gated fault): the moto server serving SQS restarted while the fan's last task
  waits at its gate (``Links.restart_sqs``: moto keeps its queues in memory, so the job's queue is gone).  The
  job must fail with a reason naming its queue, before the gate opens (no hang, no wrong answer): a fault
  *reported*, not a problem; the checks after it are those of every job.

After every job (``Soak.check``): the answer is right; every job the store holds has ended and counted each
task once; no tile is left in the store, no message in any job's queue, no executor process alive.  A job
that does not end within ``wait`` seconds is a hang: its jobs are cancelled and it is counted.  Each result
says its fault and its outcome: ridden out (the job completed right under it), reported (the job failed with
the reason the fault calls for), or a problem.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import random
import signal
import sys
import textwrap
import threading
import time
from collections.abc import Callable

import numpy as np

import lambdapack as lp
import numpywren2 as npw
from numpywren2.core.backends import QueueLostError, open_queue
from numpywren2.core.backends.base import outage_s
from numpywren2.core.jobspec import JobSpec
from numpywren2.core.signing import seal_message, task_key
from provisioner import LocalProcessLauncher

from .faulty_executor import STEPS
from .gates import Gates, gated_double_marked
from .proxy import TcpProxy

GATED_FAULTS = ("none", "kill", "stop", "duplicate", "sqs-restart")
ALGORITHMS = ("cholesky", "gemm", "tsqr", "qr", "lu", "solve")
ALGORITHM_FAULTS = ("none", "duplicate", "kill", "storage", "outage", "redis-stall", "s3-stop", "sqs-cut", "s3-stall",
                    "sqs-stall")
LINK_FAULTS = ("redis-stall", "s3-stop", "sqs-cut", "s3-stall", "sqs-stall")  # outages of a link, by a proxy
STORAGE_RATE = 0.05  # probability of a transient error (and of a slow answer) per tile get or put
# A stall's length, in what it did to the clients: (requests swallowed, on that many connections, connections
# abandoned at a timeout).  Each must be reachable well within the bound (half of outage_s, two timeouts of a
# quarter): Redis and SQS have several clients calling all the time (the provisioner's polls, the executors' and
# their threads'), whose first calls are abandoned together one timeout into the stall; S3's calls may be one
# executor's alone, so one call abandoned (its request or its answer held) with a request swallowed is the count.
# (2, 2, 1) was out of reach once in the 30 s bound (2 requests on 1 connection, none abandoned): a read whose
# answer the stall held was not counted as abandoned, and its timeout left the connection open.
STALL_REQUESTS, STALL_CONNECTIONS, STALL_ABANDONED = 5, 3, 2  # Redis's
S3_STALL = (1, 1, 1)
SQS_STALL = (4, 2, 2)
S3_REFUSED = 10  # new S3 connections refused before the S3 server is back (each one an attempt of a call, whose
# backoff doubles from 50 ms to 2 s: a lone call meets 10 in about 11 s, several at once in less; when botocore
# retried refused connections itself, 5 took about 8 s and 10 more than 30 s once)
SQS_REFUSED = 20  # new SQS connections refused before the SQS endpoint is back (as in test_sqs_outage)


def fan(N: int, gate: int) -> lp.Program:
    """``T[i] = 2 X[i]; Y[i] = 2 T[i]`` for ``i < N``; the last ``Y`` waits at ``gate``."""
    return lp.Program.from_source(textwrap.dedent(f"""
        def soak(X: lp.Matrix, T: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                T[i, 0] = double(X[i, 0], 0)
                Y[i, 0] = double(T[i, 0], (i // {N - 1}) * {gate})
    """), {"double": gated_double_marked}, filename="soak.py")


def spd(n: int, seed: int) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def resend_all(rt, job) -> int:
    """Send every task of ``job`` again, sealed with the job's task key (so that executors take them for real
    copies, not forgeries); the number sent."""
    tags = task_key(rt.secret(), job.id)
    bodies = [seal_message(tags, t.to_json()) for t in job.bound.tasks()]
    job.queue.send(bodies)
    return len(bodies)


class FaultyLauncher(LocalProcessLauncher):
    """Local executor processes that each run with ``fault`` (``faulty_executor``: ``kill:STEP``,
    ``storage:RATE:SEED``, ``none``)."""

    def __init__(self, fault: str, **kw):
        super().__init__(**kw)
        self.fault = fault

    def _command(self, spec, executor_id):
        return [self.python, "-m", "numpywren2.testing.faulty_executor", self.fault, *spec.cli_args(executor_id)]


@dataclasses.dataclass
class Links:
    """The soak's ways into its runtime's servers, for the faults of links (``LINK_FAULTS``, ``sqs-restart``):
    each proxy forwards to a server, and the runtime's URL for that server is the proxy's.

    ``redis``: the Redis server's (state, and the queues unless they are SQS's); ``s3``: the S3 endpoint's;
    ``sqs``: the SQS endpoint's; ``restart_sqs()``: stops the moto server serving SQS and starts an empty one
    behind ``sqs`` (its queues are lost).  A fault is planned only where its way in is given."""

    redis: TcpProxy | None = None
    s3: TcpProxy | None = None
    sqs: TcpProxy | None = None
    restart_sqs: Callable[[], None] | None = None


@dataclasses.dataclass
class Result:
    """One job of a soak: what ran, under which fault, how long it took, and what was wrong (None: nothing);
    ``reported``: the job failed with the reason its fault calls for; ``detail``: what the fault did (the
    proxy's counts, the reason reported)."""

    n: int
    what: str
    fault: str
    seconds: float
    problem: str | None = None
    hang: bool = False
    reported: bool = False
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def outcome(self) -> str:
        """``problem``, ``no fault``, ``reported`` or ``ridden out``."""
        if not self.ok:
            return "problem"
        if self.fault == "none":
            return "no fault"
        return "reported" if self.reported else "ridden out"


def _processes(rt, since: int) -> list:
    procs = []
    for prov in rt.provisioners[since:]:
        procs += list(getattr(prov.launcher, "processes", {}).values())
    return procs


class Soak:
    """Runs soak jobs one after another on runtime ``rt`` and checks each.

    Parameters
    ----------
    rt : Runtime
        Its store should hold nothing but what the soak puts there (every tile left after a job is a leak).
    gates : Gates
        The gate directory the executors know (``NPW_TEST_GATES``, set before the runtime starts executors).
    seed : int
        Every random choice (job kind, sizes, faults, steps) comes from it.
    wait : float
        Seconds a job may take before it counts as a hang.
    restart : callable, optional
        ``restart(seconds)`` stops the state and queue server, waits, and starts it again on its port with
        its state (``outage`` faults need it).
    links : Links, optional
        The proxies the runtime's URLs go through, and the SQS restart (the faults of links need them).
    """

    def __init__(self, rt, gates: Gates, seed: int, wait: float = 120.0, restart: Callable[[float], None] | None = None,
                 log: Callable[[str], None] | None = None, links: Links | None = None):
        self.rt, self.gates, self.wait, self.restart = rt, gates, wait, restart
        self.links = links or Links()
        self.rng = random.Random(seed)
        self.seed = seed
        self.results: list[Result] = []
        self.log = log or (lambda s: None)
        self._checked_jobs: set[str] = set()
        self._leaked: set[str] = set()
        self._provisioners = 0
        self._default_factory = rt.launcher_factory

    # ------------------------------------------------------------------ plan
    def can(self, fault: str) -> bool:
        """Whether this soak can inject ``fault`` (``outage`` needs a ``restart``, a link's fault its proxy)."""
        needs = {"outage": self.restart, "redis-stall": self.links.redis, "s3-stop": self.links.s3,
                 "sqs-cut": self.links.sqs, "s3-stall": self.links.s3, "sqs-stall": self.links.sqs,
                 "sqs-restart": self.links.restart_sqs}
        return fault not in needs or needs[fault] is not None

    def plan(self, jobs: int, gated_share: float = 0.4, algorithms: tuple[str, ...] = ALGORITHMS,
             faults: tuple[str, ...] = ALGORITHM_FAULTS,
             gated_faults: tuple[str, ...] = GATED_FAULTS) -> list[tuple[str, str]]:
        """``jobs`` pairs ``(what, fault)``, seeded: a share ``gated_share`` of gated fans under
        ``gated_faults``, the rest calls of ``algorithms`` under ``faults``; each list is drawn in shuffled
        rounds, so that every fault and every algorithm appears once the plan is long enough (only the faults
        this soak ``can`` inject)."""
        faults = tuple(f for f in faults if self.can(f))
        gated_faults = tuple(f for f in gated_faults if self.can(f))

        def rounds(items):
            return [x for _ in range(jobs) for x in self.rng.sample(items, len(items))]

        gated, algos, algo_faults = rounds(gated_faults), rounds(algorithms), rounds(faults)
        out = []
        for _ in range(jobs):
            if self.rng.random() < gated_share:
                out.append(("fan", gated.pop()))
            else:
                fault = algo_faults.pop()
                if fault == "kill":
                    fault = f"kill:{self.rng.choice(STEPS)}"
                out.append((algos.pop(), fault))
        return out

    def run(self, jobs: int, gated_share: float = 0.4, algorithms: tuple[str, ...] = ALGORITHMS,
            faults: tuple[str, ...] = ALGORITHM_FAULTS, gated_faults: tuple[str, ...] = GATED_FAULTS) -> list[Result]:
        """Run the ``plan`` job after job, checking each (``check``); the results, also in ``self.results``."""
        return self.run_plan(self.plan(jobs, gated_share, algorithms, faults, gated_faults))

    def run_plan(self, plan: list[tuple[str, str]]) -> list[Result]:
        """Run the pairs ``(what, fault)`` of ``plan`` (``fan`` or one of ``ALGORITHMS``) job after job, checking
        each; the results, also in ``self.results``."""
        for what, fault in plan:
            n = len(self.results)
            if not self.can(fault):
                raise ValueError(f"this soak cannot inject {fault!r}")
            t0 = time.monotonic()
            self._reported, self._detail = False, ""
            try:
                if what == "fan":
                    problem, hang = self.fan_job(n, fault)
                else:
                    problem, hang = self.algorithm_job(n, what, fault)
            except Exception as e:  # anything unexpected is a failed job of the soak, reported
                problem, hang = f"{type(e).__name__}: {e}", False
            leftovers = self.check()
            if leftovers and problem is None:
                problem = "; ".join(leftovers)
            r = Result(n, what, fault, time.monotonic() - t0, problem, hang, self._reported and problem is None,
                       self._detail)
            self.results.append(r)
            said = (r.outcome if r.ok else "PROBLEM: " + problem) + (f" ({r.detail})" if r.detail else "")
            self.log(f"{n:4d} {what:9s} {fault:18s} {r.seconds:6.1f} s  {said}")
        return self.results

    # ------------------------------------------------------------------ the two kinds of job
    def fan_job(self, n: int, fault: str) -> tuple[str | None, bool]:
        rt, rng = self.rt, self.rng
        rt.launcher_factory = self._default_factory
        N, gate = rng.choice([2, 3, 4]), n + 1
        X = npw.BigMatrix.from_numpy(rng.random() + np.arange(1.0, N + 1).reshape(N, 1), (1, 1))
        Y = npw.BigMatrix.empty((N, 1), (1, 1))
        job = npw.submit(fan(N, gate), X=X, Y=Y, N=N)
        try:
            try:
                pid = self.gates.wait_started(gate, 1, timeout=self.wait)[0]
            except AssertionError:
                return "the gated task never started", True
            if fault == "kill":
                os.kill(pid, signal.SIGKILL)
            elif fault == "stop":
                os.kill(pid, signal.SIGSTOP)
            elif fault == "duplicate":
                resend_all(rt, job)
            elif fault == "sqs-restart":
                return self._lost_queue(job)
            self.gates.open(gate)
            try:
                job.wait(timeout=self.wait)
            except TimeoutError as e:
                return f"hang: {e}", True
        finally:
            self.gates.open(gate)
            if job.finished is None:  # not ended by wait: a problem was found, end it so that the next job is clean
                job.cancel()
        if not np.array_equal(Y.numpy(), 4 * X.numpy()):
            return "wrong answer", False
        del X, Y
        return None, False

    def _lost_queue(self, job) -> tuple[str | None, bool]:
        """``sqs-restart`` while the fan's last task waits at its gate: the job must fail naming its queue,
        with the gate still shut (its last task cannot complete it meanwhile); then the gate opens (finally)."""
        name = job.queue.name
        t0 = time.monotonic()
        self.links.restart_sqs()
        try:
            job.wait(timeout=self.wait)
        except TimeoutError as e:
            return f"hang: {e}", True
        except npw.JobFailedError as e:
            reason = str(e)
            if name in reason and ("lost" in reason or "does not exist" in reason):
                self._reported = True
                self._detail = f"failed {time.monotonic() - t0:.1f} s after the restart: {reason[:200]}"
                return None, False
            return f"job failed, but not naming its lost queue {name}: {reason}", False
        return f"the job completed although its queue {name} was lost with its last task's message", False

    def algorithm_job(self, n: int, what: str, fault: str) -> tuple[str | None, bool]:
        rt, rng = self.rt, self.rng
        if fault.startswith("kill:"):
            rt.launcher_factory = lambda: FaultyLauncher(fault, max_executors=rt.executors)
        elif fault == "storage":
            seed = rng.randrange(2**31)
            rt.launcher_factory = lambda: FaultyLauncher(f"storage:{STORAGE_RATE}:{seed}", max_executors=rt.executors)
        else:
            rt.launcher_factory = self._default_factory
        data_seed = rng.randrange(2**31)
        injector = _Injector(self, fault)
        injector.start()
        try:
            ok = run_algorithm(what, data_seed)
        except npw.JobFailedError as e:
            return (f"hang (cancelled after {self.wait:g} s)" if injector.cancelled else f"job failed: {e}",
                    injector.cancelled)
        finally:
            injector.finish()
            rt.launcher_factory = self._default_factory
        if injector.error is not None:
            return f"fault injection failed: {injector.error!r}", False
        self._detail = injector.detail
        if fault in LINK_FAULTS and not injector.detail:
            return f"fault injection failed: no job of the call completed a task, {fault} never injected", False
        return (None if ok else "wrong answer"), False

    # ------------------------------------------------------------------ after every job
    def check(self) -> list[str]:
        """What this job left behind (``[]``: nothing): executor processes, jobs not ended or counted wrong,
        messages, tiles."""
        rt, problems = self.rt, []
        procs = _processes(rt, self._provisioners)
        self._provisioners = len(rt.provisioners)
        for p in procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(p.pid, signal.SIGCONT)  # a stopped one must be able to end
        deadline = time.monotonic() + self.wait
        for p in procs:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:
                problems.append(f"executor process {p.pid} still running")
                p.kill()
        gc.collect()  # results of the user API are freed when collected
        for job_id in sorted(set(rt.state.job_ids()) - self._checked_jobs):
            rec = rt.state.job(job_id)
            num = JobSpec.from_json(rec["description"], job=job_id).num_tasks
            done = int(rec["counters"].get("completed", 0))
            if rec["status"] == "running":
                problems.append(f"job {job_id} still running")
            elif rec["status"] == "done" and done != num:
                problems.append(f"job {job_id}: {done} completions of {num} tasks")
            try:  # opened without creating it: an SQS queue is deleted with its job (gone is nothing left)
                queue = open_queue(rt.urls["queue"], job_id, create=False)
            except QueueLostError:
                depth = 0
            else:
                try:
                    depth = queue.depth()
                except QueueLostError:
                    depth = 0
                finally:
                    queue.close()
            if depth:
                problems.append(f"job {job_id}: {depth} messages left in its queue")
            self._checked_jobs.add(job_id)
        left = [k for k in rt.store.list("") if k not in self._leaked]
        if left:
            problems.append(f"{len(left)} tiles left in the store (e.g. {left[0]})")
            self._leaked.update(left)  # each leak is reported once, by the job that left it
        return problems

    def link_fault(self, fault: str, stop: threading.Event) -> str:
        """Inject ``fault`` (one of ``LINK_FAULTS``) on its proxy and end it once the clients met it (the
        proxy's counts; see the module docstring), or once ``stop`` is set (the call ended meanwhile); what it
        did.  Past half of ``outage_s`` without that, the outage is ended and ``AssertionError`` raised: a
        fault of the injection, not of the system."""
        bound = outage_s() / 2
        t0 = time.monotonic()
        stalls = {"redis-stall": (self.links.redis, (STALL_REQUESTS, STALL_CONNECTIONS, STALL_ABANDONED)),
                  "s3-stall": (self.links.s3, S3_STALL), "sqs-stall": (self.links.sqs, SQS_STALL)}
        if fault in stalls:
            proxy, (requests, connections, abandoned) = stalls[fault]
            proxy.stall()
            try:
                met = _until(lambda: proxy.wait_stalled(requests, connections, abandoned, timeout=0.05), stop,
                             t0 + bound)
            finally:
                proxy.restore()
            did = (f"{proxy.swallowed} requests swallowed on {proxy.stalled_connections} connections, "
                   f"{proxy.abandoned} abandoned")
        elif fault in ("s3-stop", "sqs-cut"):
            proxy, n = (self.links.s3, S3_REFUSED) if fault == "s3-stop" else (self.links.sqs, SQS_REFUSED)
            proxy.cut()
            base = proxy.refused  # the connections open at the cut are not counted: none may have been used
            try:
                met = _until(lambda: proxy.wait_refused(base + n, timeout=0.05), stop, t0 + bound)
            finally:
                proxy.restore()
            did = f"{proxy.refused - base} connections refused"
        else:
            raise ValueError(f"not a fault of a link: {fault!r}")
        did += f" in {time.monotonic() - t0:.1f} s"
        if met is None:
            raise AssertionError(f"{fault}: the clients did not meet it within {bound:g} s ({did})")
        return did if met else did + ", until the call ended"

    def outage_seconds(self) -> float:
        """How long the next outage lasts: 0.5 to 2 s, from the seed and the job's number."""
        return 0.5 + random.Random(self.seed * 7919 + len(self.results)).random() * 1.5

    def summary(self) -> dict:
        by: dict[str, dict[str, int]] = {}
        for r in self.results:
            counts = by.setdefault(r.fault.split(":")[0], {"jobs": 0, "problems": 0, "ridden_out": 0, "reported": 0})
            counts["jobs"] += 1
            counts["problems"] += 0 if r.ok else 1
            counts["ridden_out"] += r.outcome == "ridden out"
            counts["reported"] += r.outcome == "reported"
        return {"jobs": len(self.results), "problems": sum(not r.ok for r in self.results),
                "wrong": sum(r.problem == "wrong answer" for r in self.results),
                "hangs": sum(r.hang for r in self.results),
                "reported": sum(r.outcome == "reported" for r in self.results),
                "seconds": round(sum(r.seconds for r in self.results), 1),
                "by_fault": dict(sorted(by.items())),
                "by_algorithm": {w: sum(r.what == w for r in self.results) for w in ("fan", *ALGORITHMS)}}


def _until(met: Callable[[], bool], stop: threading.Event, deadline: float) -> bool | None:
    """Poll ``met`` (which waits a little itself) until it is true (True), ``stop`` is set (False) or
    ``deadline`` (monotonic) passed (None)."""
    while not met():
        if stop.is_set():
            return False
        if time.monotonic() > deadline:
            return None
    return True


class _Injector(threading.Thread):
    """Watches the runtime's running jobs while a user-API call runs: injects the fault into each new job
    (``duplicate``: its tasks sent again once it has completed one; ``outage``: the server restarted once, after
    the first job completed a task; a fault of a link (``LINK_FAULTS``): once, after the first job completed a
    task, ``Soak.link_fault``, what it did in ``detail``), and cancels the call's jobs past the soak's ``wait``
    (a hang)."""

    def __init__(self, soak: Soak, fault: str):
        super().__init__(daemon=True, name="soak-injector")
        self.soak, self.fault = soak, fault
        self._done = threading.Event()
        self.cancelled = False
        self.error: BaseException | None = None
        self.detail = ""

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the soak
            self.error = e

    def _run(self) -> None:
        rt, seen, outage_done = self.soak.rt, set(), False
        deadline = time.monotonic() + self.soak.wait
        while not self._done.wait(0.01):
            if time.monotonic() > deadline:
                self.cancelled = True
                for job in list(rt.running_jobs.values()):
                    job.cancel()
                return
            for job_id, job in list(rt.running_jobs.items()):
                if job_id in seen or not job.num_tasks:
                    continue
                try:
                    completed = int(rt.state.job(job_id)["counters"].get("completed", 0))
                except KeyError:
                    continue
                if completed < 1:
                    continue
                seen.add(job_id)
                if self.fault == "duplicate":
                    resend_all(rt, job)
                elif self.fault == "outage" and not outage_done:
                    outage_done = True
                    self.soak.restart(self.soak.outage_seconds())
                elif self.fault in LINK_FAULTS and not outage_done:
                    outage_done = True
                    self.detail = self.soak.link_fault(self.fault, self._done)

    def finish(self) -> None:
        self._done.set()
        self.join(timeout=60)


def run_algorithm(what: str, seed: int) -> bool:
    """One small call of the user API on the current runtime, checked against numpy (True: right)."""
    rng = np.random.default_rng(seed)
    n, bs = int(rng.choice([32, 48])), 16
    g = rng.standard_normal((n, n))
    if what == "cholesky":
        A = spd(n, seed)
        L = npw.cholesky(A, block_size=bs).numpy()
        return bool(np.allclose(L @ L.T, A))
    if what == "gemm":
        B = rng.standard_normal((n, bs))
        return bool(np.allclose(npw.matmul(g, B, block_size=bs).numpy(), g @ B))
    if what == "tsqr":
        T = rng.standard_normal((4 * bs, bs))
        Q, R = npw.tsqr(T, block_size=bs)
        return bool(np.allclose(Q.numpy() @ R.numpy(), T))
    if what == "qr":
        Q, R = npw.qr(g, block_size=bs)
        Qm = Q.numpy()
        return bool(np.allclose(Qm @ R.numpy(), g) and np.allclose(Qm.T @ Qm, np.eye(n)))
    if what == "lu":
        P, L, U = (np.asarray(m) for m in npw.lu(g, block_size=bs))
        return bool(np.allclose(P @ L @ U, g))
    if what == "solve":
        b = rng.standard_normal((n, 1))
        x = np.asarray(npw.solve(g, b, block_size=bs))
        return bool(np.allclose(x, np.linalg.solve(g, b)))
    raise ValueError(f"unknown algorithm {what!r}")


def print_table(results: list[Result], file=sys.stdout) -> None:
    """One row per job kind and fault: jobs, ok, how many ridden out and reported, mean seconds."""
    rows = {}
    for r in results:
        k = (r.what, r.fault.split(":")[0])
        rows.setdefault(k, []).append(r)
    print(f"{'job':10s} {'fault':12s} {'jobs':>5s} {'ok':>4s} {'ridden':>7s} {'reported':>9s} {'mean s':>7s}",
          file=file)
    for (what, fault), rs in sorted(rows.items()):
        print(f"{what:10s} {fault:12s} {len(rs):5d} {sum(r.ok for r in rs):4d} "
              f"{sum(r.outcome == 'ridden out' for r in rs):7d} {sum(r.outcome == 'reported' for r in rs):9d} "
              f"{sum(r.seconds for r in rs) / len(rs):7.1f}", file=file)


def as_dict(r: Result) -> dict:
    """``r``'s fields and its ``outcome``."""
    return {**dataclasses.asdict(r), "outcome": r.outcome}


def dump(results: list[Result]) -> str:
    return json.dumps([as_dict(r) for r in results])
