"""The discrete-event simulator (provisioner/sim.py): the real program, policy and decisions on a simulated
clock; its cost model's effects one by one; and its prediction of a real embedded run."""

from __future__ import annotations

import numpy as np
import pytest

import numpywren2 as npw
from numpywren2.core.programs import cholesky, gemm
from provisioner import Observation, ProportionalPolicy
from provisioner.sim import HOSTS, LAMBDA, SimConfig, calibrate_run, simulate

FAST = LAMBDA.replace(cold_start_sigma=0.0)


def _ends(records):
    return {r["task"]: r for r in records}


def test_every_task_runs_once_after_its_parents():
    b = cholesky.bind(N=7)
    r = simulate(b, block=1024, config=FAST, max_executors=16, keep_records=True)
    recs = r.task_records()
    assert r.finished and r.stats()["tasks"] == b.num_tasks() == len(recs)
    assert len({x["task"] for x in recs}) == len(recs)
    by = _ends(recs)
    for t in b.tasks():
        for p in b.parents(t):
            assert by[str(p)]["end"] <= by[str(t)]["start"], (p, t)
    # the bytes are the tiles each task read (less its cache hits) and wrote
    tile = 1024 * 1024 * 8
    st = r.stats()
    assert st["bytes_written"] == tile * sum(len(b.writes(t)) for t in b.tasks())
    assert 0 < st["bytes_read"] <= tile * sum(len(b.reads(t)) for t in b.tasks())
    assert st["kernels"]["gemm_nt"]["tasks"] == 7 * 6 * 5 // 6
    assert st["kernels"]["gemm_nt"]["flops"] == pytest.approx(35 * 2 * 1024**3)


def test_the_time_of_one_executor_is_the_sum_of_its_tasks():
    cfg = FAST.replace(task_overhead_s=0.0, queue_latency_s=0.0, state_op_s=0.0, store_latency_s=0.0)
    r = simulate(cholesky.bind(N=3), block=1000, config=cfg, max_executors=1, keep_records=True)
    tile = 1000 * 1000 * 8
    # 3 chol (b³/3), 3 trsm (b³), 3 syrk (b³), 1 gemm (2b³); reads of tiles not cached + writes
    flops = 3 * 1e9 / 3 + 3e9 + 3e9 + 2e9
    st = r.stats()
    io = (st["bytes_read"] + st["bytes_written"]) / cfg.executor_bandwidth
    assert st["executors"] == 1
    assert r.wall_s == pytest.approx(cfg.cold_start_s + flops / cfg.flops_per_s + io)
    assert st["bytes_written"] == 10 * tile


def test_the_policy_object_is_asked_every_poll_and_bounds_the_pool():
    seen = []

    class Recording(ProportionalPolicy):
        def to_launch(self, obs: Observation, max_executors: int) -> int:
            seen.append(obs)
            return super().to_launch(obs, max_executors)

    r = simulate(cholesky.bind(N=10), block=1024, config=FAST, policy=Recording(0.5), max_executors=12)
    assert r.finished and seen
    assert all(o.executors <= 12 for o in seen) and r.stats()["peak_executors"] <= 12
    assert [o.elapsed for o in seen[:3]] == [0.0, 1.0, 2.0]  # one poll per poll_interval_s
    assert max(o.ready + o.leased for o in seen) > 12  # more work than executors: the bound held
    assert all(row["executors"] <= 12 for row in r.timeline())
    # a smaller scaling factor keeps fewer executors and takes longer
    wide = simulate(cholesky.bind(N=10), block=1024, config=FAST, policy=ProportionalPolicy(1.0), max_executors=200)
    narrow = simulate(cholesky.bind(N=10), block=1024, config=FAST, policy=ProportionalPolicy(0.1),
                      max_executors=200)
    assert narrow.stats()["peak_executors"] < wide.stats()["peak_executors"]
    assert narrow.wall_s > wide.wall_s and narrow.stats()["core_s"] < wide.stats()["core_s"]


def test_the_platform_scaling_limit_delays_launches():
    cfg = FAST.replace(scale_burst=5, scale_window_s=10.0)
    r = simulate(gemm.bind(M=6, N=6, K=1), block=4096, config=cfg, max_executors=36)
    launched = [(row["t"], row["launched"]) for row in r.timeline()]
    assert all(n <= 5 for t, n in launched if t < 10.0)
    assert max(n for _, n in launched) > 5
    free = simulate(gemm.bind(M=6, N=6, K=1), block=4096, config=FAST, max_executors=36)
    assert free.wall_s < r.wall_s


def test_idle_executors_retire_after_the_idle_timeout():
    # one task for four executors: three find nothing and retire (executor.decisions.after_idle)
    cfg = FAST.replace(idle_timeout_s=5.0)

    class Four(ProportionalPolicy):
        def to_launch(self, obs, max_executors):
            return 4 if obs.elapsed == 0 else 0

    r = simulate(gemm.bind(M=1, N=1, K=1), block=4096, config=cfg, policy=Four(), max_executors=4)
    assert r.finished and r.wall_s > 10.0
    idle = [e for e in r.executors if e["tasks"] == 0]
    assert len(idle) == 3
    assert all(5.0 < e["last_seen"] - e["started"] < 5.0 + cfg.queue_latency_s + 0.01 for e in idle)


def test_failures_are_recovered_after_the_lease():
    ok = simulate(cholesky.bind(N=12), block=4096, config=FAST, max_executors=100)
    cfg = FAST.replace(kill_at_s=60.0, kill_fraction=0.8, lease_s=10.0)
    r = simulate(cholesky.bind(N=12), block=4096, config=cfg, max_executors=100, keep_records=True)
    assert ok.wall_s > 120.0
    st = r.stats()
    assert r.finished and st["tasks"] == r.num_tasks
    before = [row for row in r.timeline() if row["t"] < 60.0][-1]  # the kill comes first at t = 60
    after = [row for row in r.timeline() if 60.0 <= row["t"] <= 61.5]
    assert st["killed"] == round(0.8 * before["started"]) > 0
    # the started executors dropped; the policy launched replacements at once, which started a cold start later
    assert after[0]["started"] < before["started"] and after[0]["launched"] > before["launched"]
    assert max(row["started"] for row in r.timeline() if 61.0 < row["t"] < 80.0) > after[0]["started"]
    assert r.wall_s > ok.wall_s


def test_lifetime_ends_executors_and_their_work_is_rerun():
    cfg = FAST.replace(lifetime_s=40.0)
    r = simulate(cholesky.bind(N=8), block=2048, config=cfg, max_executors=8)
    assert r.finished
    assert all(e["last_seen"] - e["launched"] <= 40.0 + 1e-9 for e in r.executors)
    assert r.stats()["executors"] > 8  # replaced as they reached their lifetime


def test_s3_request_limits_slow_down_a_hot_prefix():
    cfg = FAST.replace(put_limit_per_prefix=3.0, get_limit_per_prefix=5.0)
    hot = simulate(gemm.bind(M=8, N=8, K=1), block=256, config=cfg, max_executors=64)
    st = hot.stats()
    assert st["slowdowns"] > 0 and st["peak_put_per_prefix"] > 3
    cold = simulate(gemm.bind(M=8, N=8, K=1), block=256, config=FAST, max_executors=64)
    assert cold.stats()["slowdowns"] == 0 and hot.wall_s > cold.wall_s
    # spreading the tile keys over more prefixes (one per tile row) spreads the requests
    spread = simulate(gemm.bind(M=8, N=8, K=1), block=256, config=cfg.replace(prefix_levels=1), max_executors=64)
    assert spread.stats()["slowdowns"] < st["slowdowns"] and spread.wall_s < hot.wall_s


def test_locality_runs_children_where_their_inputs_are():
    b = cholesky.bind(N=10)
    base = simulate(b, block=2048, config=FAST, max_executors=50)
    local = simulate(b, block=2048, config=FAST.replace(locality=True), max_executors=50)
    s0, s1 = base.stats(), local.stats()
    assert s0["local_runs"] == 0 < s1["local_runs"]
    assert s1["bytes_read"] < s0["bytes_read"] and s1["queue_ops"] < s0["queue_ops"]
    assert local.wall_s < base.wall_s and s1["tasks"] == s0["tasks"] == b.num_tasks()


def test_state_is_bounded_by_the_frontier_not_the_program():
    b = cholesky.bind(N=24)  # 2,600 tasks
    r = simulate(b, block=4096, config=FAST, max_executors=500)
    st = r.stats()
    assert st["tasks"] == b.num_tasks() == 2600
    assert st["peak_indeg"] < b.num_tasks() / 4 and st["peak_ready"] < b.num_tasks() / 4
    assert r.task_records() == []  # records only when asked for


def test_records_and_executor_entries_stream_to_files_or_are_aggregated(tmp_path):
    """Memory that would grow with tasks or launches is optional: the entries go to a list, a JSON-lines
    file, or nowhere (aggregated as executors retire); the statistics are the same every way."""
    cfg = FAST.replace(idle_timeout_s=2.0)
    b = cholesky.bind(N=8)
    kept = simulate(b, 2048, cfg, max_executors=20, keep_records=True)
    streamed = simulate(b, 2048, cfg, max_executors=20, keep_records=str(tmp_path / "r.jsonl"),
                        keep_executors=str(tmp_path / "e.jsonl"))
    dropped = simulate(b, 2048, cfg, max_executors=20, keep_executors=False)
    assert kept.stats() == streamed.stats() == dropped.stats()
    assert kept.task_records() == streamed.task_records() and len(kept.task_records()) == b.num_tasks()
    assert kept.executors == streamed.executors and len(kept.executors) == kept.stats()["executors"] > 20
    assert dropped.executors == [] and dropped.task_records() == []
    assert len((tmp_path / "e.jsonl").read_text().splitlines()) == kept.stats()["executors"]


def test_the_same_seed_gives_the_same_run():
    cfg = LAMBDA.replace(seed=7, kill_at_s=30.0, kill_fraction=0.5)
    a = simulate(cholesky.bind(N=8), block=2048, config=cfg, max_executors=30).stats()
    b = simulate(cholesky.bind(N=8), block=2048, config=cfg, max_executors=30).stats()
    c = simulate(cholesky.bind(N=8), block=2048, config=cfg.replace(seed=8), max_executors=30).stats()
    assert a == b and a["wall_s"] != c["wall_s"]


def test_config_is_one_documented_dataclass():
    import dataclasses

    names = {f.name for f in dataclasses.fields(SimConfig)}
    doc = SimConfig.__doc__
    assert all(f"``{n}``" in doc for n in names), sorted(n for n in names if f"``{n}``" not in doc)


# --------------------------------------------------------------------------- against a real embedded run


def _spd(n):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, n))
    return x @ x.T + n * np.eye(n)


def test_calibration_recovers_the_cost_model_of_a_run():
    """A run with a known cost model (the simulator's own, so the test is exact and needs no machine time):
    its records, statistics and executor entries calibrated give back the model's rates, bandwidths, queue
    latency, cold start and exit, and so predict a run of another size as that model does."""
    base = HOSTS.replace(poll_interval_s=0.5, memory_gb=2.0, task_overhead_s=0.0, max_batch=1)
    truth = base.replace(kernel_flops_per_s={"chol": 9e9, "trsm": 21e9, "syrk": 18e9, "gemm_nt": 30e9},
                         executor_bandwidth=2.0e9, write_bandwidth=0.5e9, store_latency_s=0.0,
                         queue_latency_s=0.004, state_op_s=0.0, cold_start_s=0.4, cold_start_sigma=0.0,
                         exit_s=0.3)
    b = 512
    run = simulate(cholesky.bind(N=6), b, truth, max_executors=2, keep_records=True)
    ex = [{"started": e["started"], "last_seen": e["last_seen"]} for e in run.executors]
    cfg = calibrate_run(cholesky.bind(N=6), b, run.task_records(), run.stats(), ex, 0.0, run.wall_s,
                        max_executors=2, base=base)
    for k, v in truth.kernel_flops_per_s.items():
        assert cfg.kernel_flops_per_s[k] == pytest.approx(v)
    assert cfg.executor_bandwidth == pytest.approx(truth.executor_bandwidth)
    assert cfg.write_bandwidth == pytest.approx(truth.write_bandwidth)
    assert cfg.queue_latency_s == pytest.approx(truth.queue_latency_s)
    assert cfg.cold_start_s == pytest.approx(truth.cold_start_s) and cfg.exit_s == pytest.approx(truth.exit_s)
    want = simulate(cholesky.bind(N=9), b, truth, max_executors=2).stats()
    got = simulate(cholesky.bind(N=9), b, cfg, max_executors=2).stats()
    assert got["wall_s"] == pytest.approx(want["wall_s"]) and got["executor_s"] == pytest.approx(want["executor_s"])


def test_calibration_on_a_real_embedded_run():
    """A real run (2 executors, the defaults) calibrated: every kernel gets its rate, the store its read and
    write bandwidths, the executors their cold start; simulated with that model, the same program spends the
    real run's kernel and write seconds (same flops formulas, same tiles written).  Only the mechanics are
    checked, not the time: the ±20 % prediction of another run is bench/sim_validation.py's (its numbers
    depend on the machine's load, which tests must not)."""
    N, b = 6, 256
    with npw.runtime(executors=2) as rt:
        A = npw.BigMatrix.from_numpy(_spd(N * b), b)
        L = npw.BigMatrix.empty((N * b, N * b), b)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=N)
        job.wait(timeout=120)
        st, recs = job.stats(), job.task_records()
        ex = rt.state.executors(job.id)
        started, finished = job.started, job.finished
    assert len(recs) == st["tasks"] == job.num_tasks
    cfg = calibrate_run(cholesky.bind(N=N), b, recs, st, ex, started, finished, max_executors=2)
    assert set(cfg.kernel_flops_per_s) == {"chol", "trsm", "syrk", "gemm_nt"}
    assert cfg.cold_start_s > 0 and cfg.executor_bandwidth > 0 and cfg.write_bandwidth > 0 and cfg.exit_s >= 0
    r = simulate(cholesky.bind(N=N), b, cfg, max_executors=2)
    sim = r.stats()
    assert r.finished and sim["tasks"] == st["tasks"]
    assert sim["kernel_s"] == pytest.approx(st["kernel_s"], rel=1e-3)
    assert sim["write_s"] == pytest.approx(st["write_s"], rel=1e-3)
    assert sim["bytes_written"] == pytest.approx(st["bytes_written"], rel=1e-3)  # the store's 64-byte headers
