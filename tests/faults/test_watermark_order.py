"""Two completion steps of one executor, in two threads, are checked against its watermark in the store's order.

An executor completes tasks from its own thread and from ``PendingCompletions``' thread (tasks left pending
behind a long one).  Each step reads the ``completed`` counter and checks it against the executor's watermark
(``core.outcome.Watermark``).  If step A committed first (count 1) but step B's reading (count 2) were checked
before A's, A's reading would look like a store gone back in time and the job would fail as "state store
rolled back".  The test holds step A between its store call and its check, lets step B run up to the point
where it either calls the store or waits for A (an instrumented lock tells which), then releases A: no
rollback is reported and both steps complete their tasks.  Nothing waits for time: every step waits for an
event.
"""

from __future__ import annotations

import threading

import numpy as np

import numpywren2 as npw
from executor.decisions import canonical_task
from executor.worker import Executor, _Pending
from numpywren2.core import programs
from numpywren2.core.backends import open_queue, open_state, open_store
from numpywren2.core.outcome import FAILED
from numpywren2.core.signing import open_message

WAIT = 60.0


class _Gate:
    """A ledger whose first ``finish_many`` waits for ``release`` after the store answered."""

    def __init__(self, ledger, entered: threading.Event):
        self.ledger, self.fused = ledger, ledger.fused
        self.answered, self.release, self.entered = threading.Event(), threading.Event(), entered
        self.calls = 0

    def finish_many(self, *args, **kw):
        self.calls += 1
        first = self.calls == 1
        if not first:
            self.entered.set()
        out = self.ledger.finish_many(*args, **kw)
        if first:
            self.answered.set()
            assert self.release.wait(WAIT)
        return out


class _WatchedLock:
    """A lock that says when a second thread asks for it while it is held."""

    def __init__(self, asked: threading.Event):
        self.lock, self.asked = threading.Lock(), asked

    def __enter__(self):
        if not self.lock.acquire(blocking=False):
            self.asked.set()
            self.lock.acquire()
        return self

    def __exit__(self, *exc):
        self.lock.release()


def test_two_threads_completion_readings_are_checked_in_the_order_the_store_gave_them(tmp_path):
    urls = {"store": f"file://{tmp_path / 'tiles'}", "queue": f"sqlite://{tmp_path}/state.db",
            "state": f"sqlite://{tmp_path}/state.db"}
    with npw.runtime(**urls, executors=0):
        rng = np.random.default_rng(0)
        A = npw.BigMatrix.from_numpy(rng.standard_normal((8, 4)), 4)
        B = npw.BigMatrix.from_numpy(rng.standard_normal((4, 4)), 4)
        C = npw.BigMatrix.empty((8, 4), 4)
        job = npw.submit(programs.gemm, A=A, B=B, C=C, M=2, N=1, K=1)  # two independent tasks
        ex = Executor(open_store(urls["store"]), open_queue(urls["queue"], job.id), open_state(urls["state"]),
                      job.id, idle_timeout=30.0, lease=30.0)
        msgs = ex.queue.receive(2, lease=30.0)
        assert len(msgs) == 2
        items = []
        for m in msgs:
            task = canonical_task(ex.bound, open_message(ex.task_key, m.body))
            items.append(_Pending(task, ex._key(task), m, False, [], 0.0))
        second = threading.Event()
        gate = _Gate(ex.ledger, second)
        ex.ledger = gate
        ex._reading = _WatchedLock(second)  # the second step reached the store, or waits for the first's check
        results: dict[str, object] = {}

        def step(name: str, pending: _Pending) -> None:
            try:
                results[name] = ex._finish([pending], 0)
            except BaseException as e:  # reported by the asserts below
                results[name] = e

        a = threading.Thread(target=step, args=("a", items[0]), daemon=True)
        a.start()
        assert gate.answered.wait(WAIT), "the first step did not reach the store"
        b = threading.Thread(target=step, args=("b", items[1]), daemon=True)
        b.start()
        assert second.wait(WAIT), "the second step did not start"
        gate.release.set()
        a.join(WAIT)
        b.join(WAIT)
        assert not a.is_alive() and not b.is_alive()
        for name in "ab":
            assert not isinstance(results[name], BaseException), results[name]
            completions, _ = results[name]
            assert [c.status for c in completions] != [FAILED], f"step {name} reported a rollback"
        assert ex.watermark.seen == 2
        assert ex.state.status(job.id) != FAILED
        assert all(ex.state.done_many(job.id, [p.key for p in items]))
