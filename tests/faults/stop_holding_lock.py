"""An executor that stops itself (SIGSTOP) inside its first task's completion transaction, holding the
embedded database's write lock; every other process that writes to the database waits for that lock.

Run as ``python stop_holding_lock.py <executor arguments>``.  Only the first process to claim the file
``stopper`` in the gate directory (``NPW_TEST_GATES``) stops; it touches ``stopped-<pid>`` first, so the
test knows when the lock is held by a stopped process.  The others are ordinary executors.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from executor.__main__ import main
from numpywren2.core.backends import sqlite


def stop_inside_the_completion() -> None:
    finish = sqlite.SQLiteLedger._finish_many
    gates = Path(os.environ["NPW_TEST_GATES"])

    def _finish(self, job, items, counters, claim, lease):
        c = self.state._conn()
        try:
            fd = os.open(gates / "stopper", os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return finish(self, job, items, counters, claim, lease)
        os.close(fd)
        c.execute("BEGIN IMMEDIATE")  # the write lock, as the completion's transaction takes it
        (gates / f"stopped-{os.getpid()}").touch()
        os.kill(os.getpid(), signal.SIGSTOP)
        c.execute("ROLLBACK")  # never reached: the provisioner kills this process while it is stopped
        return finish(self, job, items, counters, claim, lease)

    sqlite.SQLiteLedger._finish_many = _finish


if __name__ == "__main__":
    stop_inside_the_completion()
    sys.exit(main(sys.argv[1:]))
