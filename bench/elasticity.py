"""Elasticity experiments: small-scale reproductions of the numpywren paper's autoscaling results.

Four experiments on one Cholesky factorisation (``npw.programs.cholesky``), every
executor a *simulated Lambda* (``SimulatedLambdaLauncher``: a local process with one
BLAS thread, a lifetime limit, a concurrency cap, failure injection), on the
embedded runtime (tiles in files, queue and state in SQLite):

1. ``trace``       — autoscaling trace: ready/leased tasks and live executors per second.
2. ``sf_sweep``    — scaling factor sweep, sf ∈ {1/8, 1/4, 1/3, 1/2, 1, 2}: completion time vs core-seconds.
3. ``failure``     — 80 % of the live executors killed (SIGKILL) when the failure-free run had done
                     40 % of the tasks: the drop and the recovery.
4. ``time_limit``  — completion time as the executor lifetime limit shrinks.

This machine has 2 cores.  Every executor beyond two shares them: executors
are "cores" to the policy and to the core-second accounting (as Lambda bills
them), but here they compute no faster together than two.  The plots say so.

The reference, measured in the same run, is ``scipy.linalg.cholesky`` of the same
matrix (LAPACK, 1 and 2 threads, each in a fresh process).  Every run's factor is checked with a randomised
backward-error estimate ``max_j ||A x_j - L (Lᵀ x_j)|| / (||A|| ||x_j||)`` over 4
random vectors (O(n²) work, where forming ``L Lᵀ`` would cost as much as the
factorisation itself).

Outputs (``--out``, default ``bench/results/``): ``elasticity_{trace,sf_sweep,failure,time_limit}.png``,
``elasticity_runs.csv`` (one row per run) and ``elasticity_timelines.csv`` (every run's timeline).

    flock /tmp/npw-bench.lock .venv/bin/python bench/elasticity.py [--n 8192 --block 512] [--only trace,failure]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # the client's own BLAS (reference, checks)

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import numpywren2 as npw
from provisioner import CostModel, ProvisionerSettings, SimulatedLambdaLauncher

CORES = os.cpu_count() or 1
SWEEP = [(1 / 8, "1/8"), (1 / 4, "1/4"), (1 / 3, "1/3"), (1 / 2, "1/2"), (1.0, "1"), (2.0, "2")]
COST = CostModel()  # 1 s start-up per executor, 2 GB, AWS Lambda prices (see provisioner/accounting.py)
OVERSUBSCRIBED = f"this machine: {CORES} cores; executors beyond {CORES} share them, so compute does not speed up"


_REFERENCE = """
import sys, time
import numpy as np, scipy.linalg
X = np.load(sys.argv[1])
t = time.perf_counter()
scipy.linalg.cholesky(X, lower=True, check_finite=False)
print(time.perf_counter() - t)
"""


def reference_seconds(X: np.ndarray, threads: int) -> float:
    """Seconds of ``scipy.linalg.cholesky(X)`` with ``threads`` BLAS threads, in a fresh process
    (the thread count set by environment, as for the executors)."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "X.npy"
        np.save(path, X)
        env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        out = subprocess.run([sys.executable, "-c", _REFERENCE, str(path)], env=env, capture_output=True, text=True)
        if out.returncode != 0:  # reported, not hidden: the table then shows nan for the reference
            print(f"reference with {threads} thread(s) failed (exit code {out.returncode}): {out.stderr[-500:]}")
            return float("nan")
        return float(out.stdout.strip())


def backward_error(A: np.ndarray, L: np.ndarray, rng: np.random.Generator) -> float:
    normA = np.linalg.norm(A, 2) if A.shape[0] <= 2048 else np.linalg.norm(A, "fro")
    worst = 0.0
    for _ in range(4):
        x = rng.standard_normal(A.shape[0])
        worst = max(worst, np.linalg.norm(A @ x - L @ (L.T @ x)) / (normA * np.linalg.norm(x)))
    return worst


class Experiments:
    def __init__(self, args):
        self.args = args
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.runs: list[dict] = []
        self.timelines: dict[str, list[dict]] = {}
        self.rng = np.random.default_rng(0)

    def settings(self, **kw) -> ProvisionerSettings:
        a = self.args
        base = {"scaling_factor": a.sf, "max_executors": a.max_executors, "idle_timeout": a.idle_timeout,
                "lease": a.lease, "poll_interval": 0.5}
        return ProvisionerSettings(**{**base, **kw})

    def run(self, label: str, experiment: str, launcher: SimulatedLambdaLauncher, settings: ProvisionerSettings,
            **extra) -> dict:
        L = npw.BigMatrix.empty(self.A.shape, self.A.block_size)
        t0 = time.time()
        job = npw.submit(npw.programs.cholesky, A=self.A, L=L, N=self.A.grid[0], launcher=launcher,
                         settings=settings)
        job.wait()
        wall = time.time() - t0
        st = job.stats(COST)
        err = backward_error(self.X, L.numpy(), self.rng)
        L.delete()
        tl = job.timeline()
        self.timelines[label] = tl
        row = {"experiment": experiment, "label": label, "n": self.X.shape[0], "block": self.A.block_size[0],
               "tasks": job.num_tasks, "scaling_factor": settings.scaling_factor,
               "max_executors": settings.max_executors,
               "idle_timeout": settings.idle_timeout, "lifetime": launcher.lifetime, "wall_s": round(wall, 2),
               "core_s": round(st["core_s"], 1), "executor_s": round(st["executor_s"], 1),
               "executors": st["executors"], "peak_started": max(s["started"] for s in tl),
               "kernel_s": round(st["kernel_s"], 1), "cost_usd": round(st["cost_usd"], 6),
               "killed": sum(1 for k in launcher.kills if k[2] == "injected"),
               "lifetime_kills": sum(1 for k in launcher.kills if k[2] == "lifetime"),
               "backward_error": f"{err:.2e}", **extra}
        assert err <= 50 * self.X.shape[0] * np.finfo(float).eps, f"{label}: backward error {err:.2e}"
        self.runs.append(row)
        print(f"{label:>24}: {wall:6.1f} s, {row['core_s']:7.1f} core-s, {row['executors']:3d} executors "
              f"(peak {row['peak_started']} started at once), backward error {err:.1e}", flush=True)
        return row

    # ------------------------------------------------------------------ experiments (run, then plot)
    def trace(self):
        self.baseline = self.run("trace" + self.args.tag, "trace", SimulatedLambdaLauncher(), self.settings())
        self.plot_trace(self.baseline, self.timelines["trace" + self.args.tag])

    def sf_sweep(self):
        cap = self.args.sweep_max_executors
        for sf, name in SWEEP:
            self.run(f"sf={name}", "sf_sweep", SimulatedLambdaLauncher(),
                     self.settings(scaling_factor=sf, max_executors=cap))
        self.plot_sf_sweep([r for r in self.runs if r["experiment"] == "sf_sweep"])

    def failure(self):
        base = getattr(self, "baseline", None) or self.run("trace", "trace", SimulatedLambdaLauncher(),
                                                           self.settings())
        # kill when the failure-free run had completed 40% of the tasks (its executors all started by then)
        tb = self.timelines[base["label"]]
        kill_t = round(next(s["t"] for s in tb if s["done"] >= 0.4 * base["tasks"]) - tb[0]["t"], 1)
        launcher = SimulatedLambdaLauncher(kill_at=[(kill_t, 0.8)], seed=0)
        row = self.run("failure", "failure", launcher, self.settings(), kill_at_s=kill_t)
        self.plot_failure(row, self.timelines["failure"], tb)

    def time_limit(self):
        for lifetime in self.args.lifetimes:
            self.run(f"lifetime={lifetime:g}s", "time_limit", SimulatedLambdaLauncher(lifetime=lifetime),
                     self.settings())
        self.plot_time_limit([r for r in self.runs if r["experiment"] == "time_limit"])

    # ------------------------------------------------------------------ plots
    def plot_trace(self, row: dict, tl: list[dict]):
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
        t = [s["t"] for s in tl]
        ax1.plot(t, [s["ready"] for s in tl], label="ready tasks (in the queue)")
        ax1.plot(t, [s["leased"] for s in tl], label="leased tasks")
        ax1.plot(t, [s["ready"] + s["leased"] for s in tl], "k:", label="work: ready + leased tasks")
        ax1.set_ylabel("tasks")
        ax1.legend(loc="upper right")
        ax1.set_title(f"Autoscaling trace: Cholesky n={row['n']}, {row['block']}-tiles ({row['tasks']} tasks), "
                      f"sf={float(row['scaling_factor']):g}, max {row['max_executors']} executors, "
                      f"idle timeout {float(row['idle_timeout']):g} s", fontsize=9)
        ax2.plot(t, [s["started"] for s in tl], color="C3", label="executors started (heart-beating)")
        ax2.plot(t, [s["executors"] for s in tl], color="C3", ls="--", lw=0.8, label="executors alive or starting")
        ax2.axhline(CORES, color="gray", lw=0.8)
        ax2.text(t[-1], CORES, f"{CORES} cores", ha="right", va="bottom", fontsize=8, color="gray")
        ax2.set_ylabel("executors")
        ax2.set_xlabel("seconds since submit")
        ax2.legend(loc="upper right")
        ax3 = ax2.twinx()
        ax3.plot(t, [s["done"] for s in tl], color="C2", lw=0.8)
        ax3.set_ylabel("done tasks", color="C2")
        fig.text(0.5, 0.005, f"{row['executors']} executors in all, {row['wall_s']} s; {OVERSUBSCRIBED}",
                 ha="center", fontsize=8)
        fig.tight_layout(rect=(0, 0.02, 1, 1))
        fig.savefig(self.out / f"elasticity_{row['label'].replace('=', '')}.png", dpi=110)
        plt.close(fig)

    def plot_sf_sweep(self, rows: list[dict]):
        fig, ax = plt.subplots(figsize=(7.5, 5))
        x, y = [float(r["wall_s"]) for r in rows], [float(r["core_s"]) for r in rows]
        ax.plot(x, y, "o")
        for r, xi, yi in zip(rows, x, y):
            ax.annotate(f"{r['label']} (peak {r['peak_started']})", (xi, yi), textcoords="offset points",
                        xytext=(6, -3), fontsize=8)
        ax.axvline(self.ref[1], color="gray", ls="--", lw=0.8)
        ax.set_ylim(0, max(y) * 1.15)
        ax.text(self.ref[1], max(y) * 1.12, f" scipy.linalg.cholesky,\n 1 thread: {self.ref[1]:.1f} s", fontsize=8,
                va="top", color="gray")
        ax.set_xlim(min(self.ref[1], min(x)) * 0.9, max(x) * 1.15)
        ax.set_xlabel("completion time (s)")
        ax.set_ylabel(f"core-seconds (executor lifetimes + {COST.startup_s:g} s start-up each)")
        r0 = rows[0]
        ax.set_title(f"Scaling factor sweep: Cholesky n={r0['n']}, {r0['block']}-tiles, max {r0['max_executors']} "
                     "executors", fontsize=9)
        fig.text(0.5, 0.005, OVERSUBSCRIBED, ha="center", fontsize=8)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        fig.savefig(self.out / "elasticity_sf_sweep.png", dpi=110)
        plt.close(fig)

    def plot_failure(self, row: dict, tl: list[dict], tb: list[dict]):
        t_kill = float(row["kill_at_s"]) + (tl[0]["t"] if tl else 0.0)  # the kill clock starts at the first launch
        fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
        ax1.plot([s["t"] for s in tl], [s["started"] for s in tl], color="C3", label="executors started, with the kill")
        ax1.plot([s["t"] for s in tl], [s["executors"] for s in tl], color="C3", ls="--", lw=0.8,
                 label="executors alive or starting, with the kill")
        ax1.plot([s["t"] for s in tb], [s["started"] for s in tb], color="gray", lw=0.8,
                 label="executors started, no failure")
        ax1.axvline(t_kill, color="k", ls="--", lw=0.8)
        ax1.text(t_kill, ax1.get_ylim()[1] * 0.95, f" SIGKILL 80% of executors ({row['killed']})", fontsize=8,
                 va="top")
        ax1.axhline(CORES, color="gray", lw=0.6)
        ax1.set_ylabel("executors")
        ax1.legend(loc="lower right")
        ax1.set_title(f"Failure recovery: Cholesky n={row['n']}, {row['block']}-tiles, lease {self.args.lease:g} s "
                      f"(a killed executor's task reappears when its lease expires)", fontsize=9)
        ax2.plot([s["t"] for s in tl], [s["done"] for s in tl], color="C2", label="done tasks, with the kill")
        ax2.plot([s["t"] for s in tb], [s["done"] for s in tb], color="gray", lw=0.8,
                 label="done tasks, no failure")
        ax2.plot([s["t"] for s in tl], [s["leased"] for s in tl], color="C1", lw=0.8,
                 label="leased tasks, with the kill")
        ax2.axvline(t_kill, color="k", ls="--", lw=0.8)
        ax2.set_ylabel("tasks")
        ax2.set_xlabel("seconds since submit")
        ax2.legend(loc="center right")
        fig.text(0.5, 0.005, f"result checked: backward error {row['backward_error']}; {OVERSUBSCRIBED}",
                 ha="center", fontsize=8)
        fig.tight_layout(rect=(0, 0.02, 1, 1))
        fig.savefig(self.out / "elasticity_failure.png", dpi=110)
        plt.close(fig)

    def plot_time_limit(self, rows: list[dict]):
        fig, ax = plt.subplots(figsize=(7.5, 5))
        x = [float(r["lifetime"]) for r in rows]
        ax.plot(x, [float(r["wall_s"]) for r in rows], "o-", label="completion time")
        for r, xi in zip(rows, x):
            ax.annotate(f"{r['executors']} executors,\n{r['lifetime_kills']} killed at the limit",
                        (xi, float(r["wall_s"])), textcoords="offset points", xytext=(4, 6), fontsize=7)
        ax.set_xscale("log")
        ax.set_xlabel("executor lifetime limit (s; hard kill at the limit, clean stop 15% before it)")
        ax.set_ylabel("completion time (s)")
        ax.set_ylim(0, max(float(r["wall_s"]) for r in rows) * 1.25)
        ax2 = ax.twinx()
        ax2.plot(x, [float(r["core_s"]) for r in rows], "s--", color="C1", label="core-seconds")
        ax2.set_ylabel("core-seconds", color="C1")
        ax2.set_ylim(bottom=0)
        r0 = rows[0]
        ax.set_title(f"Time-limit sensitivity: Cholesky n={r0['n']}, {r0['block']}-tiles, "
                     f"sf={float(r0['scaling_factor']):g}, max {r0['max_executors']} executors", fontsize=9)
        fig.text(0.5, 0.005, OVERSUBSCRIBED, ha="center", fontsize=8)
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        fig.savefig(self.out / "elasticity_time_limit.png", dpi=110)
        plt.close(fig)

    def replot(self):
        """Redraw every plot from the CSV files of an earlier run (no computation)."""
        with open(self.out / "elasticity_runs.csv") as f:
            rows = list(csv.DictReader(f))
        timelines: dict[str, list[dict]] = {}
        with open(self.out / "elasticity_timelines.csv") as f:
            for r in csv.DictReader(f):
                timelines.setdefault(r["run"], []).append(
                    {k: (float(v) if k == "t" else int(v)) for k, v in r.items() if k != "run"})
        self.ref = json.loads((self.out / "elasticity_reference.json").read_text())
        self.ref = {int(k): v for k, v in self.ref.items()}
        by = {r["label"]: r for r in rows}
        for r in rows:
            if r["experiment"] == "trace":
                self.plot_trace(r, timelines[r["label"]])
        self.plot_sf_sweep([r for r in rows if r["experiment"] == "sf_sweep"])
        if "failure" in by:
            self.plot_failure(by["failure"], timelines["failure"], timelines["trace"])
        self.plot_time_limit([r for r in rows if r["experiment"] == "time_limit"])

    # ------------------------------------------------------------------ driver
    def main(self, only: list[str]):
        a = self.args
        with npw.runtime(executors=CORES) as rt:
            self.rt = rt
            t = time.time()
            self.A = npw.random.spd(a.n, a.block, seed=1)
            self.X = self.A.numpy()
            print(f"generated A (n={a.n}, {a.block}-tiles) in {time.time() - t:.1f} s", flush=True)
            self.ref = {threads: reference_seconds(self.X, threads) for threads in (1, 2)}
            print(f"scipy.linalg.cholesky: {self.ref[1]:.2f} s (1 thread), {self.ref[2]:.2f} s (2 threads)")
            for name in only:
                getattr(self, name)()
        self.write_csv()

    def write_csv(self):
        tag = self.args.tag
        keys = sorted({k for r in self.runs for k in r}, key=lambda k: list(self.runs[0]).index(k)
                      if k in self.runs[0] else 99)
        with open(self.out / f"elasticity_runs{tag}.csv", "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=keys)
            w.writeheader()
            w.writerows(self.runs)
        with open(self.out / f"elasticity_timelines{tag}.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["run", "t", "ready", "leased", "executors", "started", "done", "launched"])
            for label, tl in self.timelines.items():
                for s in tl:
                    w.writerow([label, round(s["t"], 2), s["ready"], s["leased"], s["executors"], s["started"],
                                s["done"], s["launched"]])
        (self.out / f"elasticity_reference{tag}.json").write_text(json.dumps(self.ref))
        print(f"\n# {platform.machine()}, {CORES} cores, numpy {np.__version__}; reference scipy.linalg.cholesky "
              f"{self.ref[1]:.2f} s (1 thread), {self.ref[2]:.2f} s (2 threads)")
        cols = ["label", "wall_s", "core_s", "executors", "peak_started", "killed", "lifetime_kills", "cost_usd",
                "backward_error"]
        print("  ".join(f"{c:>15}" for c in cols))
        for r in self.runs:
            print("  ".join(f"{r.get(c, ''):>15}" for c in cols))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=16384)
    ap.add_argument("--block", type=int, default=1024)
    ap.add_argument("--sf", type=float, default=0.5, help="scaling factor of the trace, failure and time-limit runs")
    ap.add_argument("--max-executors", type=int, default=16)
    ap.add_argument("--sweep-max-executors", type=int, default=24)
    ap.add_argument("--idle-timeout", type=float, default=2.0)
    ap.add_argument("--lease", type=float, default=5.0)
    ap.add_argument("--lifetimes", type=float, nargs="+", default=[900, 60, 30, 15, 8])
    ap.add_argument("--only", default="trace,sf_sweep,failure,time_limit")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results"))
    ap.add_argument("--tag", default="", help="suffix of the trace run's label and of the CSV files")
    ap.add_argument("--replot", action="store_true", help="only redraw the plots from the CSV files in --out")
    args = ap.parse_args()
    if args.replot:
        Experiments(args).replot()
    else:
        Experiments(args).main(args.only.split(","))


if __name__ == "__main__":
    main()
