"""``python -m executor --store URL --queue URL --state URL --job ID``: run one executor (see ``executor.spec``)."""

from __future__ import annotations

import sys

from .spec import ExecutorSpec
from .worker import run


def main(argv: list[str] | None = None) -> int:
    spec, executor_id = ExecutorSpec.from_cli(argv)
    run(spec, executor_id)
    return 0


if __name__ == "__main__":
    sys.exit(main())
