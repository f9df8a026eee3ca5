"""``python -m executor --store URL --queue URL --state URL --job ID``: run one executor (see ``executor.spec``)."""

from __future__ import annotations

import os
import sys

from .spec import ExecutorSpec
from .worker import JobRefusedError, run

# a directory: each executor runs under cProfile and writes its statistics there (for bench/ profiling)
PROFILE_ENV = "NPW_PROFILE_DIR"
REFUSED_EXIT = 3  # the exit status of an executor that refused its job (signature, key, kernel allow-list)


def main(argv: list[str] | None = None) -> int:
    spec, executor_id = ExecutorSpec.from_cli(argv)
    profile_dir = os.environ.get(PROFILE_ENV)
    try:
        if profile_dir:
            import cProfile
            import signal

            # a launcher stops its executors with SIGTERM when the runtime closes: exit through the finally
            signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
            prof = cProfile.Profile()
            try:
                prof.runcall(run, spec, executor_id)
            finally:
                prof.dump_stats(os.path.join(profile_dir, f"executor-{os.getpid()}.prof"))
        else:
            run(spec, executor_id)
    except JobRefusedError as e:
        print(f"executor {executor_id or ''}: {e}", file=sys.stderr, flush=True)
        return REFUSED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
