"""The provisioner: policy arithmetic, each launcher, executor limits, kills and restarts, timelines.

Executors are real processes on the embedded runtime (files + SQLite); the AWS launcher
is checked against botocore's Stubber (no network).
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
from gates import gated_add, gated_double

import lambdapack as lp
import numpywren2 as npw
from numpywren2.core.signing import signed_for
from provisioner import (
    AwsLambdaLauncher,
    CostModel,
    ExecutorSpec,
    LocalProcessLauncher,
    Observation,
    PoolPolicy,
    ProportionalPolicy,
    ProvisionerSettings,
    SimulatedLambdaLauncher,
)

FAST = ProvisionerSettings(poll_interval=0.1, idle_timeout=1.0, lease=1.0)


def fan_chain(seconds: float, fan_gate: int = 0, chain_gate: int = 0) -> lp.Program:
    """N independent tasks of ``seconds`` (parallelism N), then a chain of N of half as long (parallelism 1).

    With a gate (tests/gates.py), the fan's or the chain's tasks wait for the test to open it.
    """
    return lp.Program.from_source(textwrap.dedent(f"""
        def fan_chain(X: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = nap_double(X[i, 0], {seconds}, {fan_gate})
            Z[0, 0] = add(Y[0, 0], Y[0, 0], {seconds / 2}, {chain_gate})
            for i in range(1, N):
                Z[i, 0] = add(Z[i - 1, 0], Y[i, 0], {seconds / 2}, {chain_gate})
    """), {"nap_double": gated_double, "add": gated_add}, filename="fan_chain.py")


def submit_fan_chain(N: int, seconds: float, fan_gate: int = 0, chain_gate: int = 0, **kw):
    X = npw.BigMatrix.from_numpy(np.arange(N, dtype=float)[:, None] + 1, (1, 1))
    Z = npw.BigMatrix.empty((N, 1), (1, 1))
    Y = npw.BigMatrix.empty((N, 1), (1, 1))
    job = npw.submit(fan_chain(seconds, fan_gate, chain_gate), X=X, Y=Y, Z=Z, N=N, **kw)
    return job, Z


def check_fan_chain(Z, N: int) -> None:
    ys = 2 * (np.arange(N) + 1.0)
    assert np.allclose(Z.numpy()[:, 0], np.cumsum(ys) + ys[0])


def spd(n: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def wait_until(predicate, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


@pytest.fixture
def rt():
    with npw.runtime(executors=2) as r:
        yield r


# --------------------------------------------------------------------------- policy and settings


@pytest.mark.parametrize("sf, ready, leased, executors, max_executors, expected", [
    (1.0, 10, 0, 0, 100, 10),
    (1.0, 10, 0, 0, 4, 4),        # bounded by max_executors
    (0.25, 10, 0, 0, 100, 3),     # ceil(2.5)
    (1 / 3, 3, 0, 0, 100, 1),     # exactly 1, not 2 from rounding
    (1 / 3, 4, 2, 1, 100, 1),     # ceil(2) - 1: leased tasks count as work
    (0.5, 0, 0, 5, 100, 0),       # nothing to do: launch none (executors retire by themselves)
    (2.0, 3, 1, 2, 100, 6),       # over-provisioning: ceil(8) - 2
    (1.0, 5, 0, 9, 8, 0),         # above the bound already: never negative
])
def test_proportional_policy_arithmetic(sf, ready, leased, executors, max_executors, expected):
    obs = Observation(ready=ready, leased=leased, executors=executors)
    assert ProportionalPolicy(sf).to_launch(obs, max_executors) == expected


@pytest.mark.parametrize("ready, leased, executors, done, num_tasks, max_executors, expected", [
    (1, 0, 0, 0, 120, 2, 2),      # a single starter: the whole pool at once
    (1, 0, 0, 0, 120, 8, 8),
    (1, 0, 0, 0, 3, 8, 3),        # never more than the job has tasks
    (1, 0, 1, 5, 120, 2, 0),      # after the start: ready + leased (sf = 1)
    (6, 1, 1, 5, 120, 4, 3),
    (0, 0, 0, 0, 120, 4, 0),      # nothing ready: launch none
    (3, 0, 9, 0, 120, 8, 0),      # above the bound already: never negative
])
def test_pool_policy_arithmetic(ready, leased, executors, done, num_tasks, max_executors, expected):
    obs = Observation(ready=ready, leased=leased, executors=executors, done=done, num_tasks=num_tasks)
    assert PoolPolicy().to_launch(obs, max_executors) == expected


def test_the_default_policy_is_the_launchers(monkeypatch):
    """Pure: no executor is started.  Local processes cost nothing idle (the pool); cloud launchers and the
    Lambda simulation are billed while alive (proportional); a given scaling factor is proportional anywhere."""
    defaults, sf = ProvisionerSettings(), ProvisionerSettings(scaling_factor=0.5)
    local = LocalProcessLauncher(max_executors=2)
    assert isinstance(local.default_policy(defaults), PoolPolicy)
    assert local.processes == {}
    p = local.default_policy(sf)
    assert isinstance(p, ProportionalPolicy) and p.scaling_factor == 0.5
    for launcher in (SimulatedLambdaLauncher(), AwsLambdaLauncher("f", client=object())):
        p = launcher.default_policy(defaults)
        assert type(p) is ProportionalPolicy and p.scaling_factor == 1.0
        assert launcher.default_policy(sf).scaling_factor == 0.5


def test_an_embedded_job_of_a_wide_program_starts_its_pool_at_once(rt):
    """Cholesky has one starter task: the default launches both executors at the first look, the
    proportional policy (sf = 1) one."""
    X = spd(64)
    for settings, first in ((None, 2), (ProvisionerSettings(scaling_factor=1.0), 1)):
        A, L = npw.BigMatrix.from_numpy(X, 16), npw.BigMatrix.empty((64, 64), 16)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=4, settings=settings).wait(timeout=60)
        assert job.timeline()[0]["launched"] == first, settings
        assert np.allclose(L.numpy(), np.linalg.cholesky(X))


def test_settings_and_launchers_reject_bad_values():
    with pytest.raises(ValueError, match="scaling_factor"):
        ProvisionerSettings(scaling_factor=0)
    with pytest.raises(ValueError, match="max_executors"):
        ProvisionerSettings(max_executors=0)
    with pytest.raises(ValueError, match="idle_timeout"):
        ProvisionerSettings(idle_timeout=-1)
    with pytest.raises(ValueError, match="scaling_factor"):
        ProportionalPolicy(-1)
    with pytest.raises(ValueError, match="lifetime"):
        SimulatedLambdaLauncher(lifetime=0)
    with pytest.raises(ValueError, match="kill_at"):
        SimulatedLambdaLauncher(kill_at=[(1.0, 1.5)])
    with pytest.raises(ValueError, match="concurrency"):
        SimulatedLambdaLauncher(concurrency=0)


def test_a_plugged_in_policy_is_used(rt):
    class AtMostOne(ProportionalPolicy):
        def to_launch(self, obs, max_executors):
            return 1 if obs.executors == 0 else 0

    job, Z = submit_fan_chain(6, 0.05, settings=FAST, policy=AtMostOne())
    job.wait(timeout=60)
    check_fan_chain(Z, 6)
    assert max(s["executors"] for s in job.timeline()) == 1


# --------------------------------------------------------------------------- provisioned jobs


def test_executors_rise_and_fall_with_parallelism_and_the_timeline_records_it(rt, gates):
    N = 8
    job, Z = submit_fan_chain(N, 0.4, fan_gate=1, chain_gate=2,
                              settings=ProvisionerSettings(poll_interval=0.1, idle_timeout=0.5,
                                                           timeline_interval=0.2, max_executors=4))
    # the fan waits at its gate: 8 ready tasks raise the pool to max_executors, and the timeline shows it
    wait_until(lambda: any(s["executors"] == 4 and s["ready"] + s["leased"] >= 4 for s in job.timeline()),
               what="the pool at its peak")
    gates.open(1)
    # the chain (one ready task at a time) waits at its gate: idle executors retire, the pool falls
    gates.wait_started(2)

    def fell():
        tl = job.timeline()
        t_peak = next(s["t"] for s in tl if s["executors"] == 4)
        return any(s["executors"] < 4 for s in tl if s["t"] > t_peak)

    wait_until(fell, what="the pool to fall below its peak")
    gates.open(2)
    job.wait(timeout=120)
    check_fan_chain(Z, N)
    tl = job.timeline()
    assert tl[-1]["done"] == job.num_tasks == 2 * N
    peak = max(s["executors"] for s in tl)
    assert peak == 4, "never more than max_executors"
    assert all(tl[i]["t"] <= tl[i + 1]["t"] and tl[i]["done"] <= tl[i + 1]["done"]
               for i in range(len(tl) - 1))
    recs = job.task_records()
    assert len(recs) == job.num_tasks and len({r["task"] for r in recs}) == job.num_tasks
    registry = {e["executor"] for e in rt.state.executors(job.id)}
    assert {r["executor"] for r in recs} <= registry
    naps = [r for r in recs if r["task"].startswith("nap_double")]
    assert all(r["kernel_s"] >= 0.39 and r["end"] - r["start"] >= r["kernel_s"] and r["bytes"] > 0 for r in naps)
    st = job.stats(CostModel(startup_s=2.0, memory_gb=1.0, usd_per_gb_s=1.0, usd_per_invocation=0.5))
    assert st["executors"] == len(registry) >= 4
    assert st["core_s"] == pytest.approx(st["executor_s"] + 2.0 * st["executors"])
    assert st["cost_usd"] == pytest.approx(st["core_s"] + 0.5 * st["executors"])
    assert st["executor_s"] >= sum(r["kernel_s"] for r in recs) * 0.9


def test_scaling_factor_bounds_the_pool(rt, gates):
    N = 8
    settings = ProvisionerSettings(scaling_factor=0.25, poll_interval=0.1, idle_timeout=1.0, max_executors=8,
                                   timeline_interval=0.2)
    job, Z = submit_fan_chain(N, 0.3, fan_gate=1, settings=settings)
    # while the fan waits at its gate, 8 tasks are ready or leased: the pool is ceil(8 / 4) = 2
    wait_until(lambda: any(s["executors"] == 2 for s in job.timeline()), what="two executors")
    gates.open(1)
    job.wait(timeout=60)
    check_fan_chain(Z, N)
    assert max(s["executors"] for s in job.timeline()) == 2  # ceil(8 / 4)


def test_an_injected_kill_mid_task_loses_nothing(rt, gates):
    N = 6
    launcher = SimulatedLambdaLauncher(lifetime=120, seed=1)
    job, Z = submit_fan_chain(N, 0.5, fan_gate=1, launcher=launcher,
                              settings=ProvisionerSettings(poll_interval=0.1, idle_timeout=2.0, lease=1.0,
                                                           max_executors=4))
    # every executor is in the middle of a fan task (held at the gate) when half of them are killed
    wait_until(lambda: len(set(gates.started(1))) == len(launcher.alive()) == 4, what="four tasks leased")
    victims = launcher.kill_fraction(0.5)
    assert len(victims) == 2
    gates.open(1)
    job.wait(timeout=90)
    check_fan_chain(Z, N)
    st = job.stats()
    assert st["tasks"] == job.num_tasks, "no task counted twice"
    assert st["executors"] > len(victims)
    assert {k[1] for k in launcher.kills} == set(victims)
    assert all(launcher.processes[v].returncode == -signal.SIGKILL for v in victims)


def test_a_job_whose_executors_all_die_is_completed_by_new_ones(rt, gates):
    N = 6
    launcher = SimulatedLambdaLauncher(lifetime=120, seed=0)
    job, Z = submit_fan_chain(N, 0.0, chain_gate=1, launcher=launcher,
                              settings=ProvisionerSettings(poll_interval=0.1, idle_timeout=2.0, lease=1.0,
                                                           max_executors=3))
    # the fan is done and the chain's first task waits at its gate: the job cannot finish without executors
    gates.wait_started(1)
    assert 1 <= job.completed() < job.num_tasks
    first = launcher.kill_fraction(1.0)
    assert first and set(first).isdisjoint(launcher.alive())
    gates.open(1)
    job.wait(timeout=90)
    check_fan_chain(Z, N)
    assert job.stats()["tasks"] == job.num_tasks
    assert len(launcher.processes) > len(first), "new executors were launched after the kill"
    assert len(gates.started(1)) >= 2, "the killed executor's task ran again"


# --------------------------------------------------------------------------- launchers and executor limits


def running_job_with_no_work(rt, name: str) -> ExecutorSpec:
    """A running job whose queue is empty: its executors have nothing to do."""
    X = npw.BigMatrix.from_numpy(np.ones((1, 1)), (1, 1))
    job, _ = submit_fan_chain(1, 0.0, executors=0)
    rt.state.create_job(name, signed_for(rt.state.job(job.id)["description"], name, rt.secret()))
    job.cancel()
    del X
    return ExecutorSpec(rt.urls["store"], rt.urls["queue"], rt.urls["state"], name, lease=1.0, idle_timeout=30.0)


def test_local_launcher_starts_registers_and_stops_executors(rt):
    spec = running_job_with_no_work(rt, "idle-local")
    launcher = LocalProcessLauncher(max_executors=3)
    assert launcher.default_max_executors == 3
    ids = launcher.launch(spec, 2)
    assert len(ids) == 2 and launcher.alive() == set(ids)
    wait_until(lambda: {e["executor"] for e in rt.state.executors("idle-local") if e["live"]} == set(ids),
               what="registration")
    assert launcher.kill(ids[0])
    wait_until(lambda: launcher.alive() == {ids[1]}, what="the kill")
    launcher.stop()
    exited = {e.executor: e for e in launcher.reap()}
    assert exited[ids[0]].returncode == -signal.SIGKILL and exited[ids[0]].killed_by_launcher == "injected"
    assert exited[ids[1]].killed_by_launcher == "stop" and launcher.reap() == []


def test_executor_retires_after_idle_timeout_and_stops_before_its_time_limit(rt):
    spec = running_job_with_no_work(rt, "idle-limits")
    launcher = LocalProcessLauncher()
    idle = launcher.launch(ExecutorSpec(**{**spec.__dict__, "idle_timeout": 0.5}), 1)[0]
    limited = launcher.launch(ExecutorSpec(**{**spec.__dict__, "time_limit": 1.5}), 1)[0]
    assert launcher.processes[idle].wait(timeout=30) == 0
    assert launcher.processes[limited].wait(timeout=30) == 0
    reg = {e["executor"]: e for e in rt.state.executors("idle-limits")}
    assert reg[idle]["exited"] and reg[limited]["exited"]
    assert 0.4 <= reg[idle]["last_seen"] - reg[idle]["started"] < 5
    assert 1.4 <= reg[limited]["last_seen"] - reg[limited]["started"] < 5


def test_simulated_lambda_stops_cleanly_before_its_lifetime_else_is_killed_at_it(rt, gates):
    spec = running_job_with_no_work(rt, "sim-lifetime")
    clean = SimulatedLambdaLauncher(lifetime=6.0, stop_margin=5.0)
    eid = clean.launch(spec, 1)[0]
    assert clean.processes[eid].wait(timeout=30) == 0, "the executor stops by itself, 5 s before the limit"
    assert clean.kills == []
    # an executor told to stop only at the limit (its task waits at a gate that stays closed) is killed at it
    N = 2
    hard = SimulatedLambdaLauncher(lifetime=1.5, stop_margin=0.0)
    t0 = time.monotonic()
    job, _ = submit_fan_chain(N, 0.0, fan_gate=1, launcher=hard,
                              settings=ProvisionerSettings(poll_interval=0.1, max_executors=1))
    gates.wait_started(1)
    wait_until(lambda: hard.kills, timeout=60, what="the lifetime kill")
    assert hard.kills[0][2] == "lifetime" and time.monotonic() - t0 >= 1.4
    assert hard.processes[hard.kills[0][1]].wait(timeout=10) == -signal.SIGALRM
    job.cancel()
    hard.stop()


def test_simulated_lambda_cold_start_concurrency_and_memory_caps(rt):
    spec = running_job_with_no_work(rt, "sim-caps")
    capped = SimulatedLambdaLauncher(concurrency=2, cold_start=1.0)
    t0 = time.time()
    ids = capped.launch(spec, 5)
    assert len(ids) == 2 and capped.throttled == 3
    assert capped.launch(spec, 1) == [] and capped.throttled == 4
    wait_until(lambda: len(rt.state.executors("sim-caps")) == 2, what="registration")
    assert min(e["started"] for e in rt.state.executors("sim-caps")) - t0 >= 1.0, "cold start"
    capped.stop()
    # a memory cap too small to import numpy: the executor fails, as a Lambda would
    tiny = SimulatedLambdaLauncher(memory_mb=64)
    eid = tiny.launch(spec, 1)[0]
    assert tiny.processes[eid].wait(timeout=30) != 0
    tiny.stop()


def test_simulated_lambda_kills_with_a_probability_per_minute(rt):
    spec = running_job_with_no_work(rt, "sim-prob")
    certain = SimulatedLambdaLauncher(kill_probability_per_minute=1.0, seed=0)
    ids = certain.launch(spec, 2)
    wait_until(lambda: not certain.alive(), timeout=10, what="the kills")
    assert sorted(k[1] for k in certain.kills) == sorted(ids)
    never = SimulatedLambdaLauncher(kill_probability_per_minute=0.0, kill_at=[(0.3, 0.5)], seed=0)
    ids = never.launch(spec, 2)
    wait_until(lambda: len(never.kills) == 1, timeout=10, what="the scheduled kill")
    time.sleep(0.3)
    assert len(never.alive()) == 1 and never.kills[0][0] >= 0.3
    never.stop()


def test_aws_lambda_launcher_invokes_the_handler_asynchronously():
    import boto3
    from botocore.response import StreamingBody
    from botocore.stub import ANY, Stubber

    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    spec = ExecutorSpec("s3://b/p", "sqs://?region=us-east-1", "redis://127.0.0.1:6379/0", "job-1", lease=30,
                        idle_timeout=5)
    launcher = AwsLambdaLauncher("npw-executor", client=client, qualifier="live")
    with Stubber(client) as stub:
        for _ in range(2):
            stub.add_response("invoke", {"StatusCode": 202, "Payload": StreamingBody(io.BytesIO(b""), 0)},
                              {"FunctionName": "npw-executor", "InvocationType": "Event", "Payload": ANY,
                               "Qualifier": "live"})
        stub.add_client_error("invoke", "TooManyRequestsException", http_status_code=429)
        ids = launcher.launch(spec, 4)
        stub.assert_no_pending_responses()
    assert len(ids) == 2 and launcher.throttled == 2
    # not yet registered: counted as starting; registered and live: alive; exited: gone
    assert launcher.alive({}) == set(ids)
    reg = {ids[0]: {"live": True}, ids[1]: {"live": False}}
    assert launcher.alive(reg) == {ids[0]}
    launcher.abandon(ids[1])  # what the provisioner does past start_timeout (test_start_timeout.py)
    assert launcher.alive({}) == {ids[0]}, "an abandoned executor that never registered is not counted"


def test_aws_lambda_payload_is_the_handler_event():
    import boto3
    from botocore.stub import Stubber

    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    spec = ExecutorSpec("s3://b/p", "sqs://", "redis://h:6379/0", "job-9", lease=20, idle_timeout=7)
    seen = []
    client.meta.events.register("before-parameter-build.lambda.Invoke", lambda params, **_: seen.append(params))
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 202})
        [eid] = AwsLambdaLauncher("fn", client=client).launch(spec, 1)
    event = json.loads(seen[0]["Payload"])
    assert event == {"store": "s3://b/p", "queue": "sqs://", "state": "redis://h:6379/0", "job": "job-9",
                     "lease": 20, "idle_timeout": 7, "executor_id": eid, "task_timeout": 900.0, "task_attempts": 3}
    with Stubber(client) as stub:
        stub.add_response("invoke", {"StatusCode": 500})
        with pytest.raises(RuntimeError, match="did not accept"):
            AwsLambdaLauncher("fn", client=client).launch(spec, 1)


# --------------------------------------------------------------------------- standalone and restart


def test_standalone_provisioner_is_safe_to_restart(rt, gates):
    N = 8
    job, Z = submit_fan_chain(N, 0.4, fan_gate=1, executors=0)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")]))
    cmd = [sys.executable, "-m", "provisioner", "--store", rt.urls["store"], "--queue", rt.urls["queue"],
           "--state", rt.urls["state"], "--job", job.id, "--max-executors", "2", "--idle-timeout", "5",
           "--poll-interval", "0.1", "--lease", "2"]
    first = subprocess.Popen(cmd, env=env)
    wait_until(lambda: sum(e["live"] for e in rt.state.executors(job.id)) == 2, what="two executors")
    first.send_signal(signal.SIGKILL)  # the provisioner dies; its executors keep running tasks
    first.wait()
    samples = len(job.timeline())
    second = subprocess.Popen(cmd, env=env)
    # the fan waits at its gate (8 tasks to do) until the new provisioner has looked at the job: had it not
    # counted the first one's executors, it would launch more than max_executors
    wait_until(lambda: len(job.timeline()) > samples, what="a timeline sample of the new provisioner")
    gates.open(1)
    job.wait(timeout=90)
    assert second.wait(timeout=30) == 0
    check_fan_chain(Z, N)
    reg = rt.state.executors(job.id)
    # never more than max_executors alive at once: the restarted provisioner counted the first one's executors
    events = sorted([(e["started"], 1) for e in reg] + [(e["last_seen"], -1) for e in reg])
    alive = peak = 0
    for _, d in events:
        alive += d
        peak = max(peak, alive)
    assert peak <= 2, reg
    tl = job.timeline()
    assert tl[-1]["done"] == job.num_tasks and all(s["executors"] <= 2 for s in tl)


def test_lambda_handler_runs_the_event_the_launcher_sends(rt):
    from executor.lambda_handler import handler

    class Context:  # what Lambda passes: the time left before the invocation's deadline
        def get_remaining_time_in_millis(self) -> int:
            return 60_000

    N = 4
    job, Z = submit_fan_chain(N, 0.0, executors=0)
    spec = ExecutorSpec(rt.urls["store"], rt.urls["queue"], rt.urls["state"], job.id, lease=5, idle_timeout=0.5)
    assert handler(spec.lambda_event("x-lambda-1"), Context()) == {"job": job.id, "tasks": 2 * N}
    job.wait(timeout=30)
    check_fan_chain(Z, N)
    [entry] = rt.state.executors(job.id)
    assert entry["executor"] == "x-lambda-1" and entry["exited"]
    assert {r["executor"] for r in job.task_records()} == {"x-lambda-1"}


def test_a_failing_policy_fails_the_job_with_its_error(rt):
    class Broken(ProportionalPolicy):
        def to_launch(self, obs, max_executors):
            raise RuntimeError("policy bug")

    job, _ = submit_fan_chain(2, 0.0, policy=Broken(), settings=FAST)
    with pytest.raises(npw.JobFailedError, match=r"provisioner failed: RuntimeError.*policy bug"):
        job.wait(timeout=30)


def test_every_provisioner_setting_reaches_a_detached_provisioner_through_its_command_line():
    """``submit(detach=True)`` runs ``python -m provisioner`` with ``settings.cli_args()``: every field, each
    set here to a value other than its default, is read back the same (before, ``timeline_interval`` and
    ``max_failed_starts`` were dropped: the detached provisioner ran their defaults)."""
    import dataclasses

    from provisioner.__main__ import parser

    default = ProvisionerSettings()
    changed = {"scaling_factor": 2.5, "max_executors": 7, "idle_timeout": 11.0, "poll_interval": 0.125,
               "timeline_interval": 0.05, "time_limit": 99.0, "lease": 13.0, "start_timeout": 17.0,
               "task_timeout": 19.0, "task_attempts": 4, "heartbeat_timeout": 23.0, "lock_timeout": 29.0,
               "max_failed_starts": 2}
    assert set(changed) == {f.name for f in dataclasses.fields(ProvisionerSettings)}, "a new field: add it here"
    s = ProvisionerSettings(**changed)
    assert all(getattr(s, k) != getattr(default, k) for k in changed)
    a = parser().parse_args(["--store", "file:///t", "--queue", "sqlite:///q", "--state", "sqlite:///q",
                             "--job", "j", *s.cli_args()])
    assert ProvisionerSettings.from_cli(a) == s
