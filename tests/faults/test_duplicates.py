"""Item 5 of the faults list: duplicates everywhere.

Two executors (threads of this process, each with its own backend clients) run a Cholesky factorisation
over a queue that delivers every message twice, sends earlier messages (mostly of finished tasks) again
at random (seeded), and never renews a lease, so that leases run out under running tasks and another
executor runs the same task at the same time.  Whatever the interleaving, the answer is right and each
task is counted once; and copies do not multiply down the DAG (a copy of a done task re-enqueues nothing
on this fused ledger).
"""

from __future__ import annotations

import random
import threading

import numpy as np

import numpywren2 as npw
from executor.worker import Executor
from numpywren2.core.backends import SQLiteTaskQueue, open_state, open_store

WAIT = 120.0


class Duplicating(SQLiteTaskQueue):
    """A queue whose every message is delivered twice (each distinct body is sent again once, when first
    received), where an earlier message (mostly of a finished task) is sent again with probability
    ``p_again`` at each receive, and whose leases are never renewed."""

    def __init__(self, path, name, rng: random.Random, p_again: float, seen: set, lock: threading.Lock):
        super().__init__(path, name)
        self.rng, self.p_again, self.seen, self.lock = rng, p_again, seen, lock
        self.resent = 0

    def receive(self, n=1, lease=30.0, wait=0.0):
        msgs = super().receive(n, lease=lease, wait=wait)
        again = []
        with self.lock:
            for m in msgs:
                if m.body not in self.seen:
                    self.seen.add(m.body)
                    again.append((m.body, 0))  # its second delivery
                if self.rng.random() < self.p_again:
                    again.append((self.rng.choice(sorted(self.seen)), 0))
                    self.resent += 1
        if again:
            self.send_many(again)
        return msgs

    def renew(self, receipt, lease):
        return True  # says it renewed; the lease runs out all the same


def spd(n: int) -> np.ndarray:
    g = np.random.default_rng(3).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def test_duplicated_redelivered_and_concurrent_copies_change_nothing(tmp_path):
    db = tmp_path / "state.db"
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=f"sqlite://{db}", state=f"sqlite://{db}",
                     executors=0) as rt:
        A = npw.BigMatrix.from_numpy(spd(64), 16)
        L = npw.BigMatrix.empty((64, 64), 16)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=4)
        rng, seen, lock = random.Random(13), set(), threading.Lock()
        queues = [Duplicating(db, job.id, rng, 0.3, seen, lock) for _ in range(2)]
        executors = [Executor(open_store(rt.urls["store"]), q, open_state(rt.urls["state"]), job.id, lease=0.05,
                              idle_timeout=30.0, status_interval=0.05, max_batch=2) for q in queues]
        threads = [threading.Thread(target=x.run, daemon=True) for x in executors]
        for t in threads:
            t.start()
        job.wait(timeout=WAIT)
        for t in threads:
            t.join(WAIT)
            assert not t.is_alive(), "the executors stop once the job is done"
        Lm = L.numpy()
        assert np.allclose(Lm @ Lm.T, A.numpy()) and np.allclose(Lm, np.tril(Lm))
        assert rt.state.job(job.id)["counters"]["completed"] == job.num_tasks, "each task counted once"
        assert sum(q.resent for q in queues) > 0, "finished tasks were re-enqueued"
        assert rt.store.list(f"{job.id}/") == []
