"""Batched completions, claims and prefetches (docs/runtime.md, "Performance design"): executors in this
process on the embedded backends, each step driven by hooks, not by timing."""

from __future__ import annotations

import dataclasses
import textwrap
import threading

import numpy as np
import pytest
from gates import gated_double

import lambdapack as lp
import numpywren2 as npw
from executor.worker import Executor
from numpywren2.core.backends import LocalFileStore, open_queue, open_state, open_store


@pytest.fixture
def rt(tmp_path):
    db = f"sqlite://{tmp_path}/state.db"
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=db, state=db, executors=0) as r:
        yield r


def chain(N: int):
    """``T[0] = 2 X``, ``T[i] = 2 T[i - 1]``, ``Y = T[N - 1]`` doubled: every task the only child of the last."""
    return lp.Program.from_source(textwrap.dedent("""
        def chain(X: lp.Matrix, T: lp.Matrix, Y: lp.Matrix, N: int):
            T[0, 0] = double(X[0, 0], 0, 0)
            for i in range(1, N):
                T[i, 0] = double(T[i - 1, 0], 0, 0)
            Y[0, 0] = double(T[N - 1, 0], 0, 0)
    """), {"double": gated_double}, filename="chain.py")


def fan(N: int):
    """``Y[i] = 2 X[i]``, N independent tasks, each reading its own input tile."""
    return lp.Program.from_source(textwrap.dedent("""
        def fan(X: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = double(X[i, 0], 0, 0)
    """), {"double": gated_double}, filename="fan.py")


def executor(rt, job, **kw) -> Executor:
    return Executor(kw.pop("store", None) or open_store(rt.urls["store"]), open_queue(rt.urls["queue"], job.id),
                    open_state(rt.urls["state"]), job.id, **kw)


class CrashError(Exception):
    pass


def test_a_claimed_child_whose_executor_dies_is_run_by_another_once(rt):
    X = npw.BigMatrix.from_numpy(np.array([[3.0]]), (1, 1))
    Y = npw.BigMatrix.empty((1, 1), (1, 1))
    job = npw.submit(chain(3), X=X, Y=Y, N=3)
    started = []

    def crash_on_the_claimed_child(task):
        started.append(task)
        if len(started) == 2:  # the child of the first task: leased in its parent's completion step
            raise CrashError(task)

    a = executor(rt, job, lease=0.5, idle_timeout=0.5, hooks={"start": crash_on_the_claimed_child})
    with pytest.raises(CrashError):
        a.run()
    assert a.tasks_run == 1 and started[0].stmt != started[1].stmt
    assert rt.state.job(job.id)["counters"]["tasks_claimed"] == 1, "the first task's child was claimed"
    assert open_queue(rt.urls["queue"], job.id).counts() == (0, 1), "the child is in the queue, leased to the dead one"
    # the claim's lease runs out (nothing renews it any more) and another executor receives the child
    b = executor(rt, job, lease=30, idle_timeout=60)
    ran = []
    t = threading.Thread(target=lambda: ran.append(b.run()))
    t.start()
    job.wait(timeout=60)  # records the job done: b stops at its next status read
    t.join(timeout=60)
    assert ran == [3], "the claimed child, then its own claims down the chain"
    st = job.stats()
    assert st["tasks"] == job.num_tasks == 4 and st["status"] == "done"
    assert st["tasks_claimed"] == 1 + 2, "one claim of the dead executor, two of the other's"
    assert Y.numpy()[0, 0] == 3.0 * 2 ** 4
    assert rt.state.job(job.id)["counters"]["completed"] == 4, "every task completed once"


def test_short_tasks_are_completed_together(rt):
    N = 12
    X = npw.BigMatrix.from_numpy(np.arange(1.0, N + 1).reshape(N, 1), (1, 1))
    Y = npw.BigMatrix.empty((N, 1), (1, 1))
    job = npw.submit(fan(N), X=X, Y=Y, N=N)
    # batch_target far above any task's time, so that neither the task times nor the machine's load decide
    # the batches: one message leased first (no task time known yet), then the 11 others in one lease,
    # completed in one step when none is left (with the default 20 ms, a loaded machine's 20 ms tasks
    # were completed one by one)
    x = executor(rt, job, idle_timeout=0.2, batch_target=60.0)
    steps = []
    finish_many = x.ledger.finish_many

    def spy(job_id, items, *a, **kw):
        steps.append(len(items))
        return finish_many(job_id, items, *a, **kw)

    x.ledger.finish_many = spy
    assert x.run() == N
    job.wait(timeout=60)
    assert steps == [1, N - 1], f"several tasks per completion step: {steps}"
    assert np.array_equal(Y.numpy(), 2 * X.numpy())


class RecordingStore(LocalFileStore):
    """A file store whose reads are recorded with the thread that made them."""

    def __init__(self, root):
        super().__init__(root)
        self.reads: list[tuple[str, str]] = []

    def get(self, key):
        self.reads.append((key, threading.current_thread().name))
        return super().get(key)


def test_the_next_task_s_inputs_are_read_while_a_kernel_runs(rt, tmp_path):
    N = 6
    X = npw.BigMatrix.from_numpy(np.arange(1.0, N + 1).reshape(N, 1), (1, 1))
    Y = npw.BigMatrix.empty((N, 1), (1, 1))
    job = npw.submit(fan(N), X=X, Y=Y, N=N)
    store = RecordingStore(tmp_path / "tiles")
    x = executor(rt, job, idle_timeout=0.2, store=store)
    x.limits = dataclasses.replace(x.limits, batch_target=10.0)  # one completion step for the batch
    x.loop.task_s = 1e-3  # short tasks: the first lease takes them all

    def keep_reads_slow(task):  # as from a remote store (above decisions.CONCURRENT_READ_S): prefetch
        x.loop.read_s = 1.0

    x.hooks["start"] = keep_reads_slow
    assert x.run() == N
    job.wait(timeout=60)
    assert np.array_equal(Y.numpy(), 2 * X.numpy())
    keys = [k for k, _ in store.reads]
    assert len(keys) == len(set(keys)) == N, f"each input read once, prefetched or not: {keys}"
    background = [k for k, t in store.reads if t != threading.main_thread().name]
    assert len(background) >= N - 1, f"all but the first read by the read pool, ahead of its task: {store.reads}"
    assert job.stats()["bytes_fetched"] == N * 8, "the bytes of the input tiles, each fetched once"
