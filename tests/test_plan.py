"""npw.plan: predicted time, core-seconds, cost, executors, bytes and request rates before a job runs."""

from __future__ import annotations

import argparse
import importlib
import json

import pytest

import numpywren2 as npw
from numpywren2.core.programs import cholesky
from provisioner.sim import LAMBDA, simulate

plan_module = importlib.import_module("numpywren2.client.plan")  # the module (npw.client.plan is the function)


def test_a_small_plan_is_a_simulation_of_the_program():
    p = npw.plan("cholesky", n=5 * 4096, block=4096, max_executors=50)
    assert isinstance(p, npw.Plan) and p.method == "simulated"
    assert p.params == {"N": 5} and p.tasks == cholesky.bind(N=5).num_tasks() == 35
    r = simulate(cholesky.bind(N=5), 4096, LAMBDA, max_executors=50)
    s = r.stats()
    assert (p.seconds, p.core_seconds, p.cost_usd, p.peak_executors) == (
        r.wall_s, s["core_s"], s["cost_usd"], s["peak_executors"])
    assert p.bytes_written == 35 * 4096 * 4096 * 8 and 0 < p.bytes_read
    assert p.critical_path_tasks == 3 * 5 - 2 and p.flops == pytest.approx((5 * 4096) ** 3 / 3, rel=0.2)
    assert not p.warnings and "peak executors" in str(p)


def test_more_executors_is_faster_and_a_lower_sf_cheaper():
    few = npw.plan("cholesky", n=10 * 4096, max_executors=5)
    many = npw.plan("cholesky", n=10 * 4096, max_executors=200)
    assert few.peak_executors <= 5 < many.peak_executors and many.seconds < few.seconds
    frugal = npw.plan("cholesky", n=10 * 4096, max_executors=200, sf=0.25)
    assert frugal.core_seconds < many.core_seconds and frugal.seconds > many.seconds


def test_large_programs_are_estimated_from_the_symbolic_totals():
    p = npw.plan("cholesky", n=32 * 4096, max_executors=512, simulate_limit=1000)
    assert p.method == "estimate" and p.tasks == 5984
    c = cholesky.cost(block=4096, N=32).values
    assert (p.bytes_read, p.bytes_written) == (c["bytes_read"], c["bytes_written"])
    # the estimate and the simulation agree to a factor of two at this size
    sim = npw.plan("cholesky", n=32 * 4096, max_executors=512)
    assert sim.method == "simulated" and 0.5 < p.seconds / sim.seconds < 2.0


def test_a_throttled_prefix_is_warned_about():
    hot = LAMBDA.replace(put_limit_per_prefix=2.0, get_limit_per_prefix=3.0)
    p = npw.plan("cholesky", n=8 * 1024, block=1024, config=hot, max_executors=512)
    assert p.peak_requests_per_prefix > 3
    assert any("per second on one store prefix" in w and "prefix_levels" in w for w in p.warnings)


def test_block_none_recommends_a_block_size():
    p = npw.plan("cholesky", n=16384, block=None, max_executors=64)
    blocks = [p.block] + [b for b, _, _ in p.alternatives]
    assert sorted(blocks) == [1024, 2048, 4096]  # 8192² tiles (0.5 GB each) do not fit a 3 GB executor
    assert all(p.seconds <= s for _, s, _ in p.alternatives)


def test_unknown_names_and_missing_sizes_are_errors():
    with pytest.raises(ValueError, match="unknown program"):
        npw.plan("nope", n=10)
    with pytest.raises(ValueError, match="give n"):
        npw.plan("cholesky")
    with pytest.raises(ValueError, match="platform"):
        npw.plan("cholesky", n=4096, platform="mainframe")


def test_plan_and_sim_commands(tmp_path, capsys):
    assert plan_module.plan_main(["cholesky", "--n", "16384", "--max-executors", "20", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tasks"] == 20 and out["method"] == "simulated"
    timeline = tmp_path / "timeline.jsonl"
    parser = plan_module.build_sim_parser(argparse.ArgumentParser())
    args = parser.parse_args(["cholesky", "--n", "16384", "--locality", "--timeline", str(timeline)])
    assert plan_module.run_sim(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tasks"] == 20 and out["local_runs"] > 0
    rows = [json.loads(line) for line in timeline.read_text().splitlines()]
    assert rows and rows[-1]["done"] == 20 and set(rows[0]) == {"t", "ready", "leased", "executors", "started",
                                                                  "done", "launched"}


def test_the_deprecated_name_of_max_executors_still_works():
    with pytest.warns(DeprecationWarning, match="max_executors"):
        p = npw.plan("cholesky", n=4 * 4096, max_workers=3)  # deprecated name
    assert p.max_executors == 3 and p.peak_executors <= 3


def test_a_gemm_plan_is_of_the_program_matmul_would_run():
    chain = npw.plan("gemm", n=8 * 4096, block=4096, max_executors=32)  # 64 output tiles >= 2 x 32
    tree = npw.plan("gemm", n=8 * 4096, block=4096, max_executors=33)
    assert (chain.program, chain.tasks) == ("gemm_chain", 8**3)
    assert tree.program == "gemm" and tree.tasks > 8**3
    from numpywren2.core import programs

    explicit = npw.plan(programs.gemm, block=4096, M=8, N=8, K=8, max_executors=32)  # the tree, asked for by name
    assert explicit.program == "gemm" and explicit.tasks == tree.tasks
