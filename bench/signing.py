"""The cost of signed jobs and authenticated task messages, per task and per executor.

Per task an executor opens one message (``signing.open_message``: one HMAC-SHA256 over the task's
JSON) and seals each child it enqueues (``signing.seal_message``, one HMAC each; a task has about
one child on average in the programs here).  Per executor start it verifies the description once
(``signing.verify_description``: canonical JSON plus one HMAC).  Reference, measured in the same
run: ``decisions.canonical_task``, the per-message parsing and iteration-space check every message
already goes through, and the per-task time of the control-plane benchmark (bench/RESULTS.md).

    python bench/signing.py [--repeat 7] [--n 200000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import timeit

from executor.decisions import canonical_task
from numpywren2.core import programs
from numpywren2.core.jobspec import JobSpec, encode_kernels
from numpywren2.core.signing import open_message, seal_message, sign_description, task_key, verify_description

CONTROL_PLANE_TASK_US = {"embedded (2035 tasks/s)": 1e6 / 2035, "Redis (2843 tasks/s)": 1e6 / 2843}


def best(fn, n: int, repeat: int) -> float:
    """Microseconds per call, best of ``repeat`` runs of ``n`` calls."""
    return min(timeit.repeat(fn, number=n, repeat=repeat)) / n * 1e6


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--n", type=int, default=200_000, help="calls per timing of the per-message functions")
    a = ap.parse_args(argv)
    secret, job = b"0123456789abcdef" * 4, "job-0123456789ab"
    key = task_key(secret, job)
    bound = programs.cholesky.bind(N=64)
    task = bound.task(2, (10, 30, 20))  # a trailing update deep in the factorization
    text = task.to_json()
    body = seal_message(key, text)
    spec = JobSpec(program=programs.cholesky.to_json(), params={"N": 64}, prefixes={"A": "m-a", "L": "m-l",
                   "S": f"{job}/S"}, kernels=encode_kernels(programs.cholesky.kernels()), num_tasks=bound.num_tasks(),
                   scratch=("S",))
    signed = spec.to_data()
    signed["signature"] = sign_description(signed, job, secret)
    desc = json.dumps(signed)
    seal = best(lambda: seal_message(key, text), a.n, a.repeat)
    opened = best(lambda: open_message(key, body), a.n, a.repeat)
    canon = best(lambda: canonical_task(bound, text), a.n // 4, a.repeat)
    verify = best(lambda: verify_description(desc, job, secret), 2000, a.repeat)
    per_task = seal + opened
    print(f"# {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; best of {a.repeat}; "
          f"microseconds; task {text} of cholesky N=64")
    print(f"{'operation':52s} {'us':>9s}")
    print(f"{'seal_message (per child enqueued)':52s} {seal:9.2f}")
    print(f"{'open_message (per message received)':52s} {opened:9.2f}")
    print(f"{'per task: open + seal of one child':52s} {per_task:9.2f}")
    print(f"{'reference: canonical_task (per message, already paid)':52s} {canon:9.2f}")
    print(f"{'verify_description (once per executor, ' + str(len(desc)) + ' B)':52s} {verify:9.2f}")
    print(f"per task / canonical_task: {per_task / canon:.2f}")
    for name, us in CONTROL_PLANE_TASK_US.items():
        print(f"per task / control-plane task time, {name}: {100 * per_task / us:.2f} %")


if __name__ == "__main__":
    main()
