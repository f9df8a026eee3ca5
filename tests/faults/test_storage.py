"""Item 6 of the faults list: storage faults on get and put.

Executors (threads of this process) read and write tiles through a store that fails transiently at random
(a seeded ``ConnectionResetError`` on a fifth of the gets and puts) and answers slowly (a few
milliseconds each): ``with_retries`` rides it out and the answer is right.  A store whose puts fail for
good (``EROFS``) fails the job naming the tile.  (Corrupt, truncated, missing and unreadable tiles, a full
disk and a read-only mount are in tests/test_errors_executor.py.)
"""

from __future__ import annotations

import errno
import random
import threading
import time

import numpy as np
import pytest

import numpywren2 as npw
from executor.worker import Executor
from numpywren2.core.backends import LocalFileStore, open_queue, open_state

WAIT = 120.0


class FaultyStore(LocalFileStore):
    """A local store whose gets and puts fail with probability ``p`` (``error()``) and take ``delay`` s."""

    def __init__(self, root, rng: random.Random, p: float, delay: float = 0.0, error=None):
        super().__init__(root)
        self.rng, self.p, self.delay, self.lock = rng, p, delay, threading.Lock()
        self.error = error or (lambda: ConnectionResetError(errno.ECONNRESET, "injected reset"))
        self.faults = 0

    def _maybe_fail(self):
        time.sleep(self.delay)  # a slow answer (the fault), not a synchronisation
        with self.lock:
            fail = self.rng.random() < self.p
            self.faults += fail
        if fail:
            raise self.error()

    def get(self, key):
        self._maybe_fail()
        return super().get(key)

    def put(self, key, value):
        self._maybe_fail()
        return super().put(key, value)


def spd(n: int) -> np.ndarray:
    g = np.random.default_rng(5).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def run_executors(rt, job, stores) -> list[Executor]:
    xs = [Executor(s, open_queue(rt.urls["queue"], job.id), open_state(rt.urls["state"]), job.id,
                   idle_timeout=30.0, status_interval=0.05, cache_bytes=0) for s in stores]
    for x in xs:
        threading.Thread(target=x.run, daemon=True).start()
    return xs


def test_transient_and_slow_storage_is_ridden_out(tmp_path):
    db = f"sqlite://{tmp_path}/state.db"
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=db, state=db, executors=0) as rt:
        A = npw.BigMatrix.from_numpy(spd(64), 16)
        L = npw.BigMatrix.empty((64, 64), 16)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=4)
        rng = random.Random(7)
        stores = [FaultyStore(tmp_path / "tiles", rng, 0.2, delay=0.003) for _ in range(2)]
        run_executors(rt, job, stores)
        job.wait(timeout=WAIT)
        Lm = L.numpy()
        assert np.allclose(Lm @ Lm.T, A.numpy())
        assert sum(s.faults for s in stores) > 0, "faults were injected"
        assert rt.state.job(job.id)["counters"]["completed"] == job.num_tasks


def test_a_permanent_put_error_fails_the_job_naming_the_tile(tmp_path):
    db = f"sqlite://{tmp_path}/state.db"
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=db, state=db, executors=0) as rt:
        A = npw.BigMatrix.from_numpy(spd(32), 16)
        L = npw.BigMatrix.empty((32, 32), 16)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=2)
        store = FaultyStore(tmp_path / "tiles", random.Random(0), 1.0,
                            error=lambda: OSError(errno.EROFS, "Read-only file system"))
        store.get = lambda key: LocalFileStore.get(store, key)  # reads work; every write fails
        run_executors(rt, job, [store])
        with pytest.raises(OSError, match=r"writing output tile '[^']+' \(matrix \w+, tile \(\d+, \d+\)\): EROFS"):
            job.wait(timeout=WAIT)
