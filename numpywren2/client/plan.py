"""Plans: what a job would take — time, core-seconds, cost, executors, bytes, request rates — before it runs.

``plan(program_or_name, n=..., block=...)`` answers from two sources:

- ``program.cost()`` (``lambdapack.cost``, symbolic: O(1) in the size): the tasks, flops, bytes read and
  written (no cache: an upper bound on reads) and the critical path;
- the simulator (``provisioner.sim``) for the time, core-seconds, cost, peak executors and the peak
  request rate per store prefix, on the real bound program with the real scaling policy — when the
  program has at most ``simulate_limit`` tasks.  A larger one is estimated from the totals (the work
  over the executors, or the critical path, whichever is longer: ``Plan.method`` says "estimate"), as a
  simulation of millions of tasks takes minutes (``npw sim`` runs one on request).

``block=None`` plans each candidate block size and recommends the fastest (``Plan.alternatives``).
``plan_main(argv)`` / ``sim_main(argv)`` are the ``npw plan`` / ``npw sim`` commands: their parsers are
``build_plan_parser`` / ``build_sim_parser`` and their bodies ``run_plan`` / ``run_sim``.  See
docs/scale.md.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import asdict, dataclass, field

import lambdapack as lp
from numpywren2.core import programs
from numpywren2.core.deprecation import renamed_options
from numpywren2.core.programs.gemm import gemm_program
from provisioner import ProportionalPolicy
from provisioner.sim import HOSTS, LAMBDA, SimConfig, simulate

PLATFORMS = {"lambda": LAMBDA, "hosts": HOSTS}
DEFAULT_MAX_EXECUTORS = {"lambda": 1000, "hosts": 64}
BLOCK_CANDIDATES = (1024, 2048, 4096, 8192)
SIMULATE_LIMIT = 200_000  # tasks: above, the time is estimated from the totals
# a task holds its input and output tiles at once, with a copy of each while it reads or writes
TILES_IN_MEMORY = 8

# a built-in algorithm by name: the program and its grid parameters for an n × n matrix of N × N tiles
ALGORITHMS = {
    "cholesky": ("cholesky", lambda N: {"N": N}),
    "gemm": ("gemm", lambda N: {"M": N, "N": N, "K": N}),  # or gemm_chain, as npw.matmul picks (_plan_one)
    "qr": ("qr_factor", lambda N: {"M": N, "N": N, "C": 0}),
    "tsqr": ("tsqr", lambda N: {"N": N}),
    "lu": ("lu", lambda N: {"N": N}),
}


@dataclass
class Plan:
    """A predicted run (seconds, USD, bytes; see ``plan``).

    ``method`` is "simulated" (provisioner.sim) or "estimate" (from the totals); ``warnings`` say
    what would go wrong (a throttled prefix, a tile too large for an executor's memory);
    ``alternatives`` the other block sizes considered, ``(block, seconds, cost_usd)``.
    """

    program: str
    params: dict
    block: int
    platform: str
    max_executors: int
    seconds: float
    core_seconds: float
    cost_usd: float
    peak_executors: int
    bytes_read: int
    bytes_written: int
    peak_requests_per_prefix: int
    tasks: int
    flops: float
    critical_path_tasks: int | None
    method: str
    warnings: list[str] = field(default_factory=list)
    alternatives: list[tuple[int, float, float]] = field(default_factory=list)

    def __str__(self) -> str:
        p = ", ".join(f"{k}={v}" for k, v in self.params.items())
        lines = [f"plan: {self.program}({p}), block {self.block}, {self.platform}, at most {self.max_executors} "
                 f"executors ({self.method})",
                 f"  time           {self.seconds:,.0f} s",
                 f"  core-seconds   {self.core_seconds:,.0f}",
                 f"  cost           ${self.cost_usd:,.2f}",
                 f"  peak executors {self.peak_executors:,}",
                 f"  tasks          {self.tasks:,} ({self.flops:.3g} flops; critical path "
                 f"{self.critical_path_tasks if self.critical_path_tasks is not None else 'unknown'} tasks)",
                 f"  bytes read     {self.bytes_read / 1e9:,.1f} GB, written {self.bytes_written / 1e9:,.1f} GB",
                 f"  peak requests  {self.peak_requests_per_prefix:,} per second on one prefix"]
        lines += [f"  block {b}: {s:,.0f} s, ${c:,.2f}" for b, s, c in self.alternatives]
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _program(program_or_name) -> tuple[lp.Program, str | None]:
    if isinstance(program_or_name, lp.Program):
        return program_or_name, None
    name = str(program_or_name)
    if name in ALGORITHMS:
        return getattr(programs, ALGORITHMS[name][0]), name
    if name in programs.__all__ and isinstance(getattr(programs, name), lp.Program):
        return getattr(programs, name), None
    raise ValueError(f"unknown program {name!r}: give an lp.Program or one of {', '.join(sorted(ALGORITHMS))}")


def _params(program: lp.Program, algorithm: str | None, n: int | None, block: int, params: dict) -> dict:
    if params:
        return dict(params)
    if n is None:
        raise ValueError("give n (the matrix size) or the program's integer parameters")
    grid = math.ceil(n / block)
    if algorithm is not None:
        return ALGORITHMS[algorithm][1](grid)
    if set(program.params) <= {"N", "M", "K"}:
        return {p: grid for p in program.params}
    raise ValueError(f"{program.name} has parameters {', '.join(program.params)}: give them by name")


@renamed_options(max_workers="max_executors")
def plan(program_or_name, n: int | None = None, block: int | None = 4096, platform: str = "lambda",
         max_executors: int | None = None, sf: float = 1.0, config: SimConfig | None = None,
         simulate_limit: int = SIMULATE_LIMIT, **params: int) -> Plan:
    """Predict a run of a program: time, core-seconds, cost, peak executors, bytes, request rates.

    Parameters
    ----------
    program_or_name : lambdapack.Program or str
        A program, or a built-in algorithm: "cholesky", "gemm", "qr", "tsqr", "lu".
    n : int, optional
        The matrix size (n × n; for "tsqr", n rows of one tile column): the grid is ``ceil(n / block)``.
    block : int or None
        Tile side; None plans each of ``BLOCK_CANDIDATES`` that fits an executor's memory and returns
        the fastest.
    platform : {"lambda", "hosts"}
        The cost model: ``provisioner.sim.LAMBDA`` or ``HOSTS``.
    max_executors : int, optional
        At most this many executors (default 1000 on Lambda, 64 on hosts).
        Its deprecated name (``max_workers``) still works, with a warning, as everywhere in the API.
    sf : float
        The proportional policy's scaling factor.
    config : provisioner.sim.SimConfig, optional
        A cost model of your own (overrides ``platform``'s).
    simulate_limit : int
        Simulate programs of at most this many tasks; estimate larger ones.
    **params
        The program's integer parameters, instead of ``n``.

    Returns
    -------
    Plan

    Examples
    --------
    >>> p = plan("cholesky", n=16384, block=4096, max_executors=100)
    >>> p.tasks, p.method, p.peak_executors <= 100
    (20, 'simulated', True)
    """
    if platform not in PLATFORMS:
        raise ValueError(f"platform must be one of {', '.join(PLATFORMS)}, not {platform!r}")
    cfg = config or PLATFORMS[platform]
    max_executors = max_executors or DEFAULT_MAX_EXECUTORS[platform]
    program, algorithm = _program(program_or_name)
    if block is not None:
        return _plan_one(program, algorithm, n, block, platform, max_executors, sf, cfg, simulate_limit, params)
    fits = [b for b in BLOCK_CANDIDATES if b * b * 8 * TILES_IN_MEMORY <= cfg.memory_gb * 1e9
            and (n is None or b <= n)] or [min(BLOCK_CANDIDATES)]
    plans = [_plan_one(program, algorithm, n, b, platform, max_executors, sf, cfg, simulate_limit, params)
             for b in fits]
    best = min(plans, key=lambda p: (p.seconds, p.cost_usd))
    best.alternatives = [(p.block, p.seconds, p.cost_usd) for p in plans if p is not best]
    return best


def _plan_one(program, algorithm, n, block, platform, max_executors, sf, cfg, simulate_limit, params) -> Plan:
    values = _params(program, algorithm, n, block, params)
    if algorithm == "gemm":  # what npw.matmul runs for this grid on this many executors
        program = gemm_program(values["M"], values["N"], values["K"], max_executors)
    cost = program.cost(block=block, **values)
    totals, cp = cost.values, cost.critical_path.values
    tasks = int(totals["tasks"])
    warnings = []
    if block * block * 8 * TILES_IN_MEMORY > cfg.memory_gb * 1e9:
        warnings.append(f"tiles of {block}² doubles ({block * block * 8 / 1e6:.0f} MB) may not fit an executor's "
                        f"{cfg.memory_gb:g} GB with a task's inputs and outputs")
    if tasks <= simulate_limit:
        r = simulate(program.bind(**values), block, cfg, ProportionalPolicy(sf), max_executors, keep_executors=False)
        s = r.stats()
        seconds, core_s, usd, peak = r.wall_s, s["core_s"], s["cost_usd"], s["peak_executors"]
        read, written = s["bytes_read"], s["bytes_written"]
        get_peak, put_peak = s["peak_get_per_prefix"], s["peak_put_per_prefix"]
        method = "simulated"
    else:
        seconds, core_s, usd, peak, get_peak, put_peak = _estimate(cost, block, cfg, max_executors, sf)
        read, written = int(totals["bytes_read"]), int(totals["bytes_written"])
        method = "estimate"
    for what, peak_rate, limit in (("GET", get_peak, cfg.get_limit_per_prefix),
                                   ("PUT", put_peak, cfg.put_limit_per_prefix)):
        if peak_rate > limit:
            warnings.append(f"{what} requests would reach {peak_rate:,} per second on one store prefix, over the "
                            f"{limit:,.0f}/s it serves (503 SlowDown and retries): spread the tile keys over more "
                            f"prefixes (SimConfig.prefix_levels) or use larger tiles")
    return Plan(program=program.name, params=values, block=block, platform=platform, max_executors=max_executors,
                seconds=seconds, core_seconds=core_s, cost_usd=usd, peak_executors=peak, bytes_read=int(read),
                bytes_written=int(written), peak_requests_per_prefix=int(max(get_peak, put_peak)), tasks=tasks,
                flops=float(totals["flops"]), critical_path_tasks=cp.get("tasks"), method=method,
                warnings=warnings)


def _estimate(cost, block: int, cfg: SimConfig, max_executors: int, sf: float):
    """Time and money from the totals: every task's work spread over the executors, or the critical path,
    whichever is longer (Brent's bound), with the same cost model as the simulator."""
    v, cp = cost.values, cost.critical_path.values
    tasks = max(1, int(v["tasks"]))
    tile = block * block * 8
    io_s = (v["bytes_read"] + v["bytes_written"]) / cfg.executor_bandwidth
    requests = (v["bytes_read"] + v["bytes_written"]) / tile
    per_task_fixed = (cfg.task_overhead_s + cfg.state_ops_per_task * cfg.state_op_s + 2 * cfg.queue_latency_s
                      + cfg.store_latency_s * requests / tasks)
    work = v["flops"] / cfg.flops_per_s + io_s + tasks * per_task_fixed
    per_task = work / tasks
    width = max(1, min(max_executors, math.ceil(sf * tasks)))
    path = (cp.get("flops") or 0) / cfg.flops_per_s + (cp.get("tasks") or 0) * (per_task - v["flops"] / tasks
                                                                                 / cfg.flops_per_s)
    seconds = cfg.cold_start_s + max(work / width, path)
    core_s = work + cfg.cold_start_s * width
    launches = width * max(1, math.ceil(seconds / cfg.lifetime_s)) if math.isfinite(cfg.lifetime_s) else width
    usd = (core_s * cfg.memory_gb * cfg.usd_per_gb_s + launches * cfg.usd_per_invocation
           + v["bytes_read"] / tile * cfg.usd_per_get + v["bytes_written"] / tile * cfg.usd_per_put
           + 3 * tasks * cfg.usd_per_queue_request)
    rate = width / per_task  # tasks per second at full width, all on one prefix at worst
    gets = int(rate * v["bytes_read"] / tile / tasks)
    puts = int(rate * v["bytes_written"] / tile / tasks)
    return seconds, core_s, usd, width, gets, puts


# --------------------------------------------------------------------------- commands


def build_plan_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``npw plan``."""
    p.add_argument("program", help=f"an algorithm ({', '.join(sorted(ALGORITHMS))}) or a built-in program")
    p.add_argument("--n", type=int, required=True, help="matrix size")
    p.add_argument("--block", default="4096", help="tile side, or 'auto' to recommend one")
    p.add_argument("--platform", choices=sorted(PLATFORMS), default="lambda")
    p.add_argument("--max-executors", type=int, default=None)
    p.add_argument("--sf", type=float, default=1.0, help="scaling factor of the proportional policy")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    return p


def run_plan(args: argparse.Namespace) -> int:
    """``npw plan``: print the plan; 0, or 1 when it carries warnings."""
    block = None if str(args.block) == "auto" else int(args.block)
    p = plan(args.program, n=args.n, block=block, platform=args.platform, max_executors=args.max_executors, sf=args.sf)
    print(json.dumps(asdict(p), default=str) if args.json else p)
    return 1 if p.warnings else 0


def plan_main(argv: list[str] | None = None) -> int:
    args = build_plan_parser(argparse.ArgumentParser(prog="npw plan", description="predict a run")).parse_args(argv)
    return run_plan(args)


def build_sim_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The options of ``npw sim``."""
    p.add_argument("program", help=f"an algorithm ({', '.join(sorted(ALGORITHMS))}) or a built-in program")
    p.add_argument("--n", type=int, required=True, help="matrix size")
    p.add_argument("--block", type=int, default=4096)
    p.add_argument("--platform", choices=sorted(PLATFORMS), default="lambda")
    p.add_argument("--max-executors", type=int, default=None)
    p.add_argument("--sf", type=float, default=1.0)
    p.add_argument("--locality", action="store_true", help="executors run a child they made ready")
    p.add_argument("--kill-at", type=float, default=None, help="kill executors at this time (s)")
    p.add_argument("--kill-fraction", type=float, default=0.0)
    p.add_argument("--timeline", default=None, help="write the timeline (JSON lines) to this file")
    p.add_argument("--records", default=None, help="write the task records (JSON lines) to this file")
    return p


def run_sim(args: argparse.Namespace) -> int:
    """``npw sim``: simulate one run and print its statistics (and write its timeline and records)."""
    program, algorithm = _program(args.program)
    values = _params(program, algorithm, args.n, args.block, {})
    cfg = PLATFORMS[args.platform].replace(locality=args.locality, kill_at_s=args.kill_at,
                                           kill_fraction=args.kill_fraction)
    r = simulate(program.bind(**values), args.block, cfg, ProportionalPolicy(args.sf),
                 args.max_executors or DEFAULT_MAX_EXECUTORS[args.platform], keep_records=args.records or False,
                 keep_executors=False)  # records streamed to their file: memory stays bounded
    s = r.stats()
    s.pop("kernels")
    print(json.dumps({"program": program.name, "params": values, "block": args.block, **s}, indent=1, default=str))
    if args.timeline:
        with open(args.timeline, "w") as f:
            f.writelines(json.dumps(row) + "\n" for row in r.timeline())
    return 0 if r.finished else 1


def sim_main(argv: list[str] | None = None) -> int:
    args = build_sim_parser(argparse.ArgumentParser(prog="npw sim", description="simulate a run")).parse_args(argv)
    return run_sim(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(plan_main())
