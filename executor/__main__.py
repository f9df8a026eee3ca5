"""``python -m executor --store URL --queue URL --state URL --job ID``: run one executor (see ``executor.spec``)."""

from __future__ import annotations

import sys

from .spec import ExecutorSpec
from .worker import JobRefusedError, run

REFUSED_EXIT = 3  # the exit status of an executor that refused its job (signature, key, kernel allow-list)


def main(argv: list[str] | None = None) -> int:
    spec, executor_id = ExecutorSpec.from_cli(argv)
    try:
        run(spec, executor_id)
    except JobRefusedError as e:
        print(f"executor {executor_id or ''}: {e}", file=sys.stderr, flush=True)
        return REFUSED_EXIT
    return 0


if __name__ == "__main__":
    sys.exit(main())
