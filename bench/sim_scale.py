"""A 1M × 1M Cholesky in 4096-tiles (N = 256 tile rows, 2.8 million tasks) on up to 10,000 simulated Lambdas.

Runs the simulator (provisioner/sim.py, the ``LAMBDA`` cost model) on the real bound program, once as the
runtime is and once with locality (an executor runs a child it made ready when its inputs are in its
cache), and prints per run: the simulator's own time (wall and CPU: the machine is shared) and peak
RSS, the predicted time, core-seconds, cost,
peak executors, requests and peak request rates per prefix.

    OPENBLAS_NUM_THREADS=1 python bench/sim_scale.py [--n 1048576] [--block 4096] [--max-executors 10000]
        [--runs base locality]
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

from numpywren2.core.programs import cholesky
from provisioner import ProportionalPolicy
from provisioner.sim import LAMBDA, simulate


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1 << 20)
    ap.add_argument("--block", type=int, default=4096)
    ap.add_argument("--max-executors", type=int, default=10_000)
    ap.add_argument("--sf", type=float, default=1.0)
    ap.add_argument("--progress", action="store_true", help="print progress every 100,000 events")
    ap.add_argument("--runs", nargs="+", default=["base", "locality"], choices=["base", "locality"])
    args = ap.parse_args()
    N = args.n // args.block
    print(f"# machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"load average {' '.join(f'{x:.1f}' for x in os.getloadavg())} (shared machine)")
    t0 = time.perf_counter()
    bound = cholesky.bind(N=N)
    print(f"# cholesky n = {args.n}, block {args.block}: N = {N}, {bound.num_tasks():,} tasks; bind "
          f"{time.perf_counter() - t0:.1f} s; at most {args.max_executors} executors, sf = {args.sf}")
    print(f"{'run':<10}{'sim s':>8}{'CPU s':>8}{'RSS MB':>8}{'time s':>9}{'core-s':>11}{'USD':>9}{'peak ex':>9}"
          f"{'launched':>9}{'GB read':>10}{'GET/s/prefix':>13}{'PUT/s/prefix':>13}{'SlowDown':>10}{'local':>10}")
    results = {}
    for run in args.runs:
        cfg = LAMBDA.replace(locality=run == "locality")
        t0, c0 = time.perf_counter(), time.process_time()
        def progress(sim, c0=c0, t0=t0):
            print(f"#   ... {sim.done:,} of {sim.num_tasks:,} tasks done at simulated {sim.now:,.0f} s; "
                  f"{time.perf_counter() - t0:.0f} s, CPU {time.process_time() - c0:.0f} s, "
                  f"RSS {peak_rss_mb():.0f} MB, {len(sim.execs):,} executors", flush=True)

        r = simulate(bound, block=args.block, config=cfg, policy=ProportionalPolicy(args.sf),
                     max_executors=args.max_executors, keep_executors=False,
                     progress=progress if args.progress else None)
        sim_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
        s = r.stats()
        results[run] = (r, s)
        assert r.finished and s["tasks"] == r.num_tasks
        print(f"{run:<10}{sim_s:>8.0f}{cpu_s:>8.0f}{peak_rss_mb():>8.0f}{r.wall_s:>9.0f}{s['core_s']:>11.3g}{s['cost_usd']:>9.0f}"
              f"{s['peak_executors']:>9}{s['executors']:>9}{s['bytes_read'] / 1e9:>10.0f}"
              f"{s['peak_get_per_prefix']:>13}{s['peak_put_per_prefix']:>13}{s['slowdowns']:>10}"
              f"{s['local_runs']:>10}", flush=True)
        print(f"#   events {s['events']:,}, peak tracked counters {s['peak_indeg']:,}, peak ready {s['peak_ready']:,}, "
              f"hottest prefix {s['peak_prefix']}; load average now "
              f"{' '.join(f'{x:.1f}' for x in os.getloadavg())}", flush=True)
    if "base" in results and "locality" in results:
        (a, sa), (b, sb) = results["base"], results["locality"]
        print(f"# locality: time {b.wall_s / a.wall_s:.2f}x, core-s {sb['core_s'] / sa['core_s']:.2f}x, "
              f"bytes read {sb['bytes_read'] / sa['bytes_read']:.2f}x, cost {sb['cost_usd'] / sa['cost_usd']:.2f}x, "
              f"queue operations {sb['queue_ops'] / sa['queue_ops']:.2f}x")


if __name__ == "__main__":
    main()
