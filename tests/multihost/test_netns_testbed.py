"""Several hosts on a virtual network (numpywren2.testing.netns): services, a client, three worker hosts.

Cholesky, GEMM and QR run end to end across the network: tiles in S3 (moto_server) and the queue and
state in Redis, both on the services host; the client host submits; executors run on the worker hosts.
Faults, each driven by an event (a task of the gated chain has reached its gate, tests/gates.py):
every executor of one host killed mid-job, one host's link down for 10 s, and latency and loss on
every worker link where the kernel has ``tc netem`` (skipped, with the reason, where it has not).

Needs root and network namespaces; skipped with the reason otherwise.  ``pytest -m multihost`` runs
these alone.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from numpywren2.testing.netns import NetemUnavailableError, Testbed, netns_unavailable

pytestmark = pytest.mark.multihost

CLIENT = Path(__file__).with_name("netns_client.py")
OUTAGE_S = 10.0


@pytest.fixture(scope="module")
def testbed(tmp_path_factory):
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"multi-host testbed unavailable: {reason}")
    with Testbed(worker_hosts=3) as tb:
        services = tb.start_services(tmp_path_factory.mktemp("svc"))
        yield tb, services
    assert not tb.leftovers(), "the testbed left namespaces or links behind"


def start_client(testbed, scenario: str, down_dir: Path | None = None, warm: bool = False) -> subprocess.Popen:
    tb, services = testbed
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1")
    hosts = ",".join(f"{w}={tb.hosts[w].netns}" for w in tb.worker_hosts)
    argv = [sys.executable, str(CLIENT), scenario, "--redis", services.redis, "--s3", services.s3,
            "--tag", f"t{uuid.uuid4().hex[:10]}", "--hosts", hosts]
    if down_dir is not None:
        argv += ["--down-dir", str(down_dir)]
    if warm:
        argv.append("--warm")
    return tb.popen("client", argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def client_result(proc: subprocess.Popen, timeout: float = 120.0) -> dict[str, dict]:
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the client did not finish within {timeout} s:\n{err[-4000:]}")
    assert proc.returncode == 0, f"the client failed ({proc.returncode}):\n{err[-4000:]}"
    return {j["name"]: j for j in json.loads(out.strip().splitlines()[-1])["jobs"]}


def test_cholesky_gemm_qr_across_hosts(testbed):
    tb, _ = testbed
    t0 = time.perf_counter()
    jobs = client_result(start_client(testbed, "algorithms"))
    assert jobs["cholesky"]["error"] < 1e-13
    assert jobs["gemm"]["error"] < 1e-13
    assert jobs["qr"]["error"] < 1e-12
    for job in jobs.values():
        assert set(job["tasks_by_host"]) <= set(tb.worker_hosts), job["tasks_by_host"]
    hosts = set().union(*(j["tasks_by_host"] for j in jobs.values()))
    assert len(hosts) >= 2, f"the tasks ran on one host only: {hosts}"
    print(f"\nmultihost algorithms: {time.perf_counter() - t0:.1f} s "
          + ", ".join(f"{n} {j['seconds']:.1f} s" for n, j in jobs.items()))


def test_every_executor_of_one_host_killed_mid_job(testbed, gates, tmp_path):
    """With warm starts in the worker hosts: each host runs its own zygote in its own namespace, and the
    killed host's zygote dies with its executors."""
    tb, _ = testbed
    proc = start_client(testbed, "chain", down_dir=tmp_path, warm=True)
    [pid] = gates.wait_started(1)  # the chain's first task is running on some host, held at its gate
    host = tb.host_of(pid)
    assert host in tb.worker_hosts
    (tmp_path / host).touch()  # the host is gone: the launcher places no more executors there
    killed = tb.kill_host(host)
    assert pid in killed and not tb.pids(host)
    gates.open(1)
    job = client_result(proc)["chain"]
    assert job["error"] == 0.0 and job["counted"] == job["num_tasks"]
    assert len(gates.started(1)) >= 2, "the killed task ran again"
    adds = {h for h, tasks in job["tasks_by_host"].items() for t in tasks if t.startswith("add")}
    assert adds and host not in adds, f"the chain after the kill ran on {adds}, the killed host is {host}"
    assert job["warm_started"] == len(job["launched"]) > 0, "every executor forked from its host's zygote"
    used = set(job["launched"].values())
    assert host in used and used <= set(tb.worker_hosts)
    assert {h: z["netns"] for h, z in job["zygotes"].items()} == {h: tb.hosts[h].netns for h in used - {host}}


def test_one_host_link_down_for_ten_seconds(testbed, gates):
    tb, _ = testbed
    proc = start_client(testbed, "chain")
    [pid] = gates.wait_started(1)
    host = tb.host_of(pid)
    tb.link_down(host)
    down = time.monotonic()
    try:
        # its lease runs out (1 s) and the held task is leased again, by an executor of another host
        pids = gates.wait_started(1, 2, timeout=OUTAGE_S)
        assert {tb.host_of(p) for p in pids if p != pid} - {host}
        time.sleep(max(0.0, OUTAGE_S - (time.monotonic() - down)))  # the outage lasts 10 s
    finally:
        tb.link_up(host)
    gates.open(1)
    job = client_result(proc)["chain"]
    assert job["error"] == 0.0 and job["counted"] == job["num_tasks"], "nothing lost, nothing counted twice"


def test_latency_and_loss_on_the_worker_links(testbed):
    tb, _ = testbed
    try:
        for w in tb.worker_hosts:
            tb.netem(w, delay_ms=20, loss_percent=1)
    except NetemUnavailableError as e:
        pytest.skip(f"latency/loss part skipped: {e}")
    jobs = client_result(start_client(testbed, "gemm"))
    assert jobs["gemm"]["error"] < 1e-13


def test_the_reason_for_no_testbed_is_given(monkeypatch):
    import numpywren2.testing.netns as netns

    monkeypatch.setattr(netns.os, "geteuid", lambda: 1000)
    assert "need root" in netns_unavailable()
    monkeypatch.setattr(netns.os, "geteuid", lambda: 0)
    monkeypatch.setattr(netns.shutil, "which", lambda name: None)
    assert "iproute2" in netns_unavailable() and "sysdeps" in netns_unavailable()
