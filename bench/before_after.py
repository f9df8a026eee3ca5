"""Two versions of the code measured in the same run: analysis, control plane, Cholesky.

A change that should not alter speed (a restructuring) is checked by measuring the
version before it and the version after it side by side, in alternating rounds, so that
a machine whose speed drifts (other jobs, turbo, caches) gives both the same conditions.
Each measurement runs in a fresh process whose ``PYTHONPATH`` is one version's tree (the
base revision is checked out into a temporary git worktree); the process checks which
tree it imported.

Measured, each round, for each version:

- analysis: median µs per edge of ``children(t)`` + ``in_degree(child)`` over random tasks of
  Cholesky N=256 (as ``bench/analysis.py``);
- control plane: tasks/s of the no-op map + binary-tree program of ``bench/control_plane.py``
  with 2 executors, on the embedded backend and on Redis (files + Redis queue + Redis state);
- Cholesky: ``npw.cholesky(A)`` of an n×n BigMatrix (default block size, default policy, a
  runtime of at most 2 executors), GFLOP/s = n³/3 / seconds, and its backward error.

    python bench/before_after.py [--base REV] [--head REV|.] [--rounds 3] [--n 8192] [--tasks 10000]

``--head .`` (the default) is the working tree this script lives in.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent

# Runs inside each version's tree.  Written against the API both versions share.
PROBE = r'''
import json, os, sys, time, random, statistics
# this version's tree only: drop the editable install's finder, which maps the project's packages
# to the tree the virtual environment was installed from
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in getattr(f, "__module__", "")
                    and "editable" not in getattr(f, "__name__", "")]
sys.path_hooks[:] = [h for h in sys.path_hooks if "editable" not in getattr(h, "__module__", "")]
sys.path_importer_cache.clear()
import numpy as np
import numpywren2 as npw
tree = os.environ["NPW_BA_TREE"]
assert os.path.realpath(npw.__file__).startswith(os.path.realpath(tree)), (npw.__file__, tree)
what = sys.argv[1]

def check_tree():
    for name, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None) or ""
        if name.split(".")[0] in ("numpywren2", "lambdapack", "executor", "provisioner") and f:
            assert os.path.realpath(f).startswith(os.path.realpath(tree)), (name, f, tree)

def runtime(**kw):
    import inspect
    if "executors" in inspect.signature(npw.runtime).parameters:
        return npw.runtime(executors=2, **kw)
    return npw.runtime(workers=2, **kw)  # the retired name, for a version from before the rename

if what == "analysis":
    bound = npw.programs.cholesky.bind(N=256)
    rng = random.Random(0)
    per = []
    for _ in range(int(sys.argv[2])):
        t = bound.random_task(rng)
        t0 = time.perf_counter()
        kids = bound.children(t)
        for c in kids:
            bound.in_degree(c)
        dt = time.perf_counter() - t0
        if kids:
            per.append(dt / len(kids))
    check_tree()
    print(json.dumps({"us_per_edge": statistics.median(per) * 1e6}))

elif what == "control":
    n_leaves, urls = int(sys.argv[2]) // 2, json.loads(sys.argv[3])
    sys.path.insert(0, os.path.join(tree, "bench"))
    from control_plane import PROGRAM as prog  # this version's own control-plane program
    with runtime(**urls):
        t0 = time.perf_counter()
        job = npw.submit(prog, N=n_leaves)
        job.wait(timeout=3600)
        dt = time.perf_counter() - t0
    check_tree()
    print(json.dumps({"tasks_per_s": job.num_tasks / dt, "tasks": job.num_tasks}))

elif what == "cholesky":
    X = np.load(sys.argv[2], mmap_mode="r")
    n = X.shape[0]
    with runtime():
        A = npw.BigMatrix.from_numpy(np.asarray(X))
        t0 = time.perf_counter()
        L = npw.cholesky(A)
        dt = time.perf_counter() - t0
        Lx = L.numpy()
    Xa = np.asarray(X)
    idx = np.random.default_rng(0).choice(n, 256, replace=False)
    err = float(np.linalg.norm(Lx[idx] @ Lx.T - Xa[idx]) / np.linalg.norm(Xa[idx]))
    check_tree()
    print(json.dumps({"gflops": n ** 3 / 3 / dt / 1e9, "seconds": dt, "block": A.block_size, "error": err}))
'''


def run_probe(tree: Path, *args: str) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree), NPW_BA_TREE=str(tree))
    p = subprocess.run([sys.executable, "-W", "ignore::DeprecationWarning", "-c", PROBE, *args], cwd=tree,
                       env=env, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        raise SystemExit(f"probe {args[0]} in {tree} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", default="7e19e21", help="the version before (a git revision)")
    ap.add_argument("--head", default=".", help="the version after: a git revision, or . for this tree")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=8192, help="Cholesky size (0: skip)")
    ap.add_argument("--tasks", type=int, default=10000, help="control-plane tasks (0: skip)")
    ap.add_argument("--samples", type=int, default=20000, help="analysis samples (0: skip)")
    args = ap.parse_args()
    # a SIGTERM unwinds like an exception, so the finally below stops the server and removes the worktree
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sys.path.insert(0, str(HERE))
    import numpy as np

    from numpywren2.testing import RedisServer  # test support of this tree: only starts a server

    tmp = Path(tempfile.mkdtemp(prefix="npw-ba-"))
    trees: dict[str, Path] = {}
    made: list[Path] = []
    for label, rev in (("before", args.base), ("after", args.head)):
        if rev == ".":
            trees[label] = HERE
            continue
        path = tmp / label
        subprocess.run(["git", "-C", str(HERE), "worktree", "add", "--detach", str(path), rev], check=True,
                       capture_output=True)
        trees[label], made = path, made + [path]
    revs = {k: subprocess.run(["git", "-C", str(v), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip() + ("+" if v == HERE and subprocess.run(
                                  ["git", "-C", str(v), "status", "--porcelain", "--untracked-files=no"],
                                  capture_output=True, text=True).stdout.strip() else "")
            for k, v in trees.items()}
    # the Redis and S3 runs are a deployment of their own: one signing key for client and executors
    os.environ.setdefault("NPW_SECRET", secrets.token_hex(32))
    redis = RedisServer(str(tmp))
    results: dict[str, dict[str, list[float]]] = {k: {} for k in trees}
    try:
        xpath = tmp / "x.npy"
        if args.n:
            rng = np.random.default_rng(1)
            G = rng.standard_normal((args.n, args.n))
            np.save(xpath, G @ G.T + args.n * np.eye(args.n))
            del G
        for r in range(args.rounds):
            order = list(trees) if r % 2 == 0 else list(reversed(trees))
            for label in order:
                tree, res = trees[label], results[label]
                if args.samples:
                    res.setdefault("analysis us/edge", []).append(
                        run_probe(tree, "analysis", str(args.samples // args.rounds))["us_per_edge"])
                if args.tasks:
                    res.setdefault("control embedded tasks/s", []).append(
                        run_probe(tree, "control", str(args.tasks), "{}")["tasks_per_s"])
                    urls = {"store": f"file://{tmp}/tiles-{label}-{r}", "queue": redis.url, "state": redis.url}
                    res.setdefault("control Redis tasks/s", []).append(
                        run_probe(tree, "control", str(args.tasks), json.dumps(urls))["tasks_per_s"])
                if args.n:
                    c = run_probe(tree, "cholesky", str(xpath))
                    res.setdefault(f"cholesky n={args.n} GFLOP/s", []).append(c["gflops"])
                    res.setdefault("cholesky error", []).append(c["error"])
                print(f"# round {r + 1} {label}: " + ", ".join(f"{k} {v[-1]:.3g}" for k, v in res.items()),
                      flush=True)
    finally:
        redis.stop()
        for path in made:
            subprocess.run(["git", "-C", str(HERE), "worktree", "remove", "--force", str(path)], capture_output=True)

    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"before = {revs['before']}, after = {revs['after']}; {args.rounds} alternating rounds, median of rounds")
    print(f"{'measure':<34}{'before':>12}{'after':>12}{'after/before':>14}   rounds (before | after)")
    for key in results["before"]:
        b, a = results["before"][key], results["after"][key]
        mb, ma = statistics.median(b), statistics.median(a)
        fmt = (lambda v: f"{v:.1e}") if "error" in key else (lambda v: f"{v:.2f}" if v < 100 else f"{v:.0f}")
        print(f"{key:<34}{fmt(mb):>12}{fmt(ma):>12}{ma / mb:>14.3f}   "
              f"{' '.join(fmt(v) for v in b)} | {' '.join(fmt(v) for v in a)}")


if __name__ == "__main__":
    main()
