"""``python -m executor --store URL --queue URL --state URL --job ID``: run one executor."""

from __future__ import annotations

import argparse
import sys

from numpywren2.runtime import open_queue, open_state, open_store

from .worker import Executor


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m executor", description=__doc__)
    ap.add_argument("--store", required=True)
    ap.add_argument("--queue", required=True)
    ap.add_argument("--state", required=True)
    ap.add_argument("--job", required=True)
    ap.add_argument("--lease", type=float, default=60.0)
    ap.add_argument("--idle-timeout", type=float, default=10.0)
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--executor-id", default=None, help="id in the state store's executor registry")
    a = ap.parse_args(argv)
    ex = Executor(open_store(a.store), open_queue(a.queue, a.job), open_state(a.state), a.job, lease=a.lease,
                  idle_timeout=a.idle_timeout, time_limit=a.time_limit, executor_id=a.executor_id)
    ex.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
