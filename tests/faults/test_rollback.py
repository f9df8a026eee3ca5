"""Item 4 of the faults list, its second half: state found rolled back or lost.

A Redis server (not persistent) runs a three-task chain ``T -> Y -> Z`` (``T`` is scratch, freed when ``Y``
completes).  The test saves a snapshot (``RedisServer.snapshot``: ``SAVE``, the RDB file copied aside)
while ``Y`` waits at gate 1 (1 completion), opens the gate and waits until ``Y`` has completed (2) and
``T``'s tile is freed while ``Z`` waits at gate 2; then it stops the server and starts one on the same
port from the snapshot.  The state store now says 1 completion and ``Y`` not done, and ``T``'s tile is
gone: without a check, ``Y`` would run again and fail on a missing tile with an unrelated message.  Each
observer keeps a watermark (``core.outcome.Watermark``: the highest completed count it was told, and for an
executor the last task it finished) and fails the job with the reason "state store rolled back (… saw 2
completions, store says 1)"; the job's scratch tiles and queue are deleted and its executors stop.

Nothing here waits for time: every step waits for a gate's mark, a counter, a tile, a watermark or a status.
"""

from __future__ import annotations

import os
import re
import shutil
import textwrap
import threading
import time

import numpy as np
import pytest
from gates import gated_double_marked

import lambdapack as lp
import numpywren2 as npw
from executor.worker import Executor
from numpywren2.core.backends import open_queue, open_state, open_store, with_retries
from numpywren2.core.signing import seal_message, task_key
from numpywren2.testing import RedisServer
from provisioner import ProvisionerSettings

WAIT = 60.0
QUICK = 30.0  # seconds within which a rollback must be reported (it is noticed at the next read)


def chain_program():
    return lp.Program.from_source(textwrap.dedent("""
        def chain(X: lp.Matrix, T: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int):
            for i in range(N):
                T[i, 0] = double(X[i, 0], 0)
                Y[i, 0] = double(T[i, 0], 1)
                Z[i, 0] = double(Y[i, 0], 2)
    """), {"double": gated_double_marked}, filename="chain.py")


def submit_chain(**kw):
    X = npw.BigMatrix.from_numpy(np.ones((1, 1)), (1, 1))
    Y, Z = npw.BigMatrix.empty((1, 1), (1, 1)), npw.BigMatrix.empty((1, 1), (1, 1))
    return npw.submit(chain_program(), X=X, Y=Y, Z=Z, N=1, **kw)


def wait_for(predicate, what: str):
    deadline = time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"{what} did not happen within {WAIT} s"
        time.sleep(0.01)


def count(rt, job) -> int:
    """The completed counter as the store says it, read without any watermark."""
    return int(with_retries(rt.state.job, job.id)["counters"].get("completed", 0))


def scratch_tile(job) -> str:
    return job.spec.tile_key("T", (0, 0))


def go_back_in_time(rt, job, gates, server, tmp_path, before_restart=lambda: None) -> RedisServer:
    """Snapshot at 1 completion (Y at gate 1), let Y complete and free T (Z at gate 2), restart from the
    snapshot; returns the restored server."""
    gates.wait_started(1, 1, timeout=WAIT)
    assert count(rt, job) == 1
    snap = server.snapshot(tmp_path / "at-1-completion.rdb")
    gates.open(1)
    gates.wait_started(2, 1, timeout=WAIT)
    wait_for(lambda: count(rt, job) == 2 and not rt.store.exists(scratch_tile(job)), "Y completed, T freed")
    before_restart()
    server.stop()
    (tmp_path / "restored").mkdir()
    restored = RedisServer(tmp_path / "restored", port=server.port, snapshot=snap)
    y = job.bound.task(1, (0,)).to_json()
    assert count(rt, job) == 1 and not rt.state.is_done(job.id, y), "the store went back in time"
    return restored


def start_two_executors(rt, job):
    """Executors "a" and "b" of ``job`` in threads of this process (no provisioner), each recording the tasks it
    starts; returns (tasks started by name, executors by name, threads by name)."""
    started: dict[str, list] = {"a": [], "b": []}
    executors = {name: Executor(open_store(rt.urls["store"]), open_queue(rt.urls["queue"], job.id),
                                open_state(rt.urls["state"]), job.id, lease=2.0, idle_timeout=WAIT,
                                status_interval=0.1, executor_id=f"x-{name}",
                                hooks={"start": lambda t, name=name: started[name].append(t)})
                 for name in started}
    threads = {n: threading.Thread(target=x.run, daemon=True) for n, x in executors.items()}
    for t in threads.values():
        t.start()
    return started, executors, threads


def assert_cleaned(rt, job):
    assert rt.state.status(job.id) == "failed"
    assert rt.store.list(f"{job.id}/") == [], "no scratch tile left"
    assert rt.queue(job.id).depth() == 0, "no message left"


@pytest.mark.timeout(120)
def test_a_rolled_back_state_store_fails_the_job_with_the_reason_and_cleans_up(tmp_path, gates):
    """The whole stack: a provisioner with one executor process (held at gate 2 through the restart), and the
    client, which saw 2 completions (``job.completed()``); whichever of the client and the provisioner reads
    the restored record first fails the job, and ``wait`` raises the reason at once."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    settings = ProvisionerSettings(lease=2.0, poll_interval=0.1, idle_timeout=30.0, max_executors=1)
    try:
        with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=server.url, state=server.url,
                         provisioner=settings) as rt:
            job = submit_chain()

            def client_sees_2():
                wait_for(lambda: job.completed() == 2, "the client seeing 2 completions")

            server = go_back_in_time(rt, job, gates, server, tmp_path, before_restart=client_sees_2)
            t0 = time.monotonic()
            with pytest.raises(npw.JobFailedError, match=r"state store rolled back \(the (client|provisioner) saw 2 "
                                                         r"completions, store says 1\)"):
                job.wait(timeout=WAIT)
            assert time.monotonic() - t0 < QUICK, "reported at once, no hang"
            assert_cleaned(rt, job)
            assert "went back in time" in rt.state.job(job.id)["error"]
            gates.open(2)  # the executor held in Z's kernel finishes it, finds the job failed, and stops
            for p in job.local_executors:
                assert p.wait(timeout=WAIT) is not None, "its executor stopped"
            assert rt.store.list(f"{job.id}/") == [], "no scratch tile left after the executor's late write"
            with pytest.raises(npw.JobFailedError, match="state store rolled back"):
                job.wait(timeout=WAIT)  # stays failed
    finally:
        server.stop()


@pytest.mark.timeout(120)
def test_executors_notice_a_rolled_back_store_with_no_client_watching(tmp_path, gates):
    """No provisioner, and a client that read nothing: two executors (in threads of this process) are the only
    observers.  The one not held at gate 2 notices at its next read (the counter below its watermark, or the last
    task it finished not done), fails the job and deletes its scratch tiles and queue itself."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    try:
        with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=server.url, state=server.url,
                         executors=0) as rt:
            job = submit_chain()
            started, executors, threads = start_two_executors(rt, job)
            z = job.bound.task(2, (0,))
            free = []

            def the_free_one_saw_2():
                held = [n for n, ts in started.items() if ts and ts[-1] == z]
                assert len(held) == 1
                free.extend(n for n in executors if n not in held)
                wait_for(lambda: executors[free[0]].watermark.seen == 2, "the free executor seeing 2")

            server = go_back_in_time(rt, job, gates, server, tmp_path, before_restart=the_free_one_saw_2)
            threads[free[0]].join(timeout=WAIT)
            assert not threads[free[0]].is_alive(), "the free executor noticed and stopped"
            error = rt.state.job(job.id)["error"]
            assert f"state store rolled back (executor x-{free[0]} saw 2 completions, store says 1)" in error
            assert rt.store.list(f"{job.id}/") == [], "the executor deleted the scratch tiles"
            assert rt.queue(job.id).depth() == 0, "and the queue"
            assert job.watermark.seen == 0, "the client had read nothing"
            gates.open(2)
            for t in threads.values():
                t.join(timeout=WAIT)
                assert not t.is_alive(), "every executor stopped"
            with pytest.raises(npw.JobFailedError, match=r"state store rolled back \(executor x-[ab] saw 2"):
                job.wait(timeout=WAIT)
            assert_cleaned(rt, job)
    finally:
        gates.open_all()
        server.stop()


@pytest.mark.timeout(120)
def test_an_executor_started_after_the_restore_names_the_rollback(tmp_path, gates):
    """The executor that saw the lost progress is held in Z's kernel (gate 2) and the client read nothing, so
    the only executor that runs after the restore is one started after it, whose watermark is 0: it runs Y
    again and finds T's tile freed.  Its writer is done and Y is not, as when a tile is deleted behind the job's
    back; but the executor that freed it first wrote its watermark (2 completions) to the tile store, which the
    restore did not touch, and the state store says 1: the job fails naming the rollback, not a lost tile, and
    its scratch tiles (the watermark with them) and queue are deleted."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    try:
        with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=server.url, state=server.url,
                         executors=0) as rt:
            job = submit_chain()

            def executor(name, **hooks):
                return Executor(open_store(rt.urls["store"]), open_queue(rt.urls["queue"], job.id),
                                open_state(rt.urls["state"]), job.id, lease=2.0, idle_timeout=WAIT,
                                status_interval=0.1, executor_id=name, hooks=hooks)

            first = executor("x-before")
            threads = [threading.Thread(target=first.run, daemon=True)]
            threads[0].start()
            marks = [f"{job.id}/_watermark/x-before"]
            server = go_back_in_time(rt, job, gates, server, tmp_path,
                                     before_restart=lambda: wait_for(lambda: rt.store.list(marks[0]) == marks,
                                                                     "the freeing executor's watermark"))
            y, misses = job.bound.task(1, (0,)), []
            late = executor("x-after", start=misses.append)
            assert late.watermark.seen == 0
            threads.append(threading.Thread(target=late.run, daemon=True))
            threads[1].start()
            threads[1].join(timeout=WAIT)
            assert not threads[1].is_alive(), "the executor started after the restore noticed and stopped"
            assert misses == [y, y], "it ran Y again and read its input twice (one re-read), nothing else"
            error = rt.state.job(job.id)["error"]
            assert ("state store rolled back (executor x-before, by the watermark it wrote to the tile store before "
                    "freeing scratch tiles, saw 2 completions, store says 1)") in error
            assert "deleted while the job ran" not in error and "went back in time" in error
            assert rt.store.list(f"{job.id}/") == [], "its scratch tiles and the watermark were deleted"
            assert rt.queue(job.id).depth() == 0, "and its queue"
            assert job.watermark.seen == 0, "the client had read nothing"
            with pytest.raises(npw.JobFailedError, match=r"state store rolled back \(executor x-before, by the "
                                                         r"watermark .* saw 2 completions, store says 1\)"):
                job.wait(timeout=WAIT)
            gates.open(2)  # the held executor finishes Z, finds the job failed and stops
            threads[0].join(timeout=WAIT)
            assert not threads[0].is_alive(), "the held executor stopped"
            assert_cleaned(rt, job)
    finally:
        gates.open_all()
        server.stop()


@pytest.mark.timeout(120)
def test_a_lost_job_is_the_clear_error_from_every_accessor(tmp_path, gates):
    """A server restarted without persistence has lost the job: ``wait``, ``status``, ``completed``,
    ``stats``, ``timeline`` and ``task_records`` all raise the lost-job error (no ``KeyError``), and the job's
    scratch tiles are deleted."""
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis")
    settings = ProvisionerSettings(lease=2.0, poll_interval=0.1, idle_timeout=30.0, max_executors=1)
    try:
        with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=server.url, state=server.url,
                         provisioner=settings) as rt:
            job = submit_chain()
            gates.wait_started(1, 1, timeout=WAIT)
            assert rt.store.exists(scratch_tile(job))
            server.stop()
            (tmp_path / "empty").mkdir()
            server = RedisServer(tmp_path / "empty", port=server.port)  # same address, nothing in it
            for accessor in (job.status, job.completed, job.stats, job.timeline, job.task_records,
                             lambda: job.wait(timeout=WAIT)):
                with pytest.raises(npw.JobFailedError, match=f"has lost job {job.id}"):
                    accessor()
            assert rt.store.list(f"{job.id}/") == [], "its scratch tiles were deleted"
            gates.open(1)
            for p in job.local_executors:
                assert p.wait(timeout=WAIT) is not None, "its executor stopped"
    finally:
        server.stop()


@pytest.mark.timeout(120)
def test_a_lost_completion_made_up_by_the_count_is_noticed_by_the_last_task(tmp_path):
    """A store that lost the executor's last completion while its count is what the executor saw (as when a
    restore loses one completion and another lands before the next read): the counter alone cannot tell,
    the executor's last finished task, read with the status, can."""
    import sqlite3

    db = tmp_path / "state.db"
    program = lp.Program.from_source(textwrap.dedent("""
        def pair(X: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = double(X[i, 0], 0)
                Z[i, 0] = double(X[i, 0], 0)
    """), {"double": gated_double_marked}, filename="pair.py")
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=f"sqlite://{db}", state=f"sqlite://{db}",
                     executors=0) as rt:
        X = npw.BigMatrix.from_numpy(np.ones((1, 1)), (1, 1))
        job = npw.submit(program, X=X, Y=npw.BigMatrix.empty((1, 1), (1, 1)),
                         Z=npw.BigMatrix.empty((1, 1), (1, 1)), N=1)
        y = job.bound.task(0, (0,))
        job.queue.purge()
        job.queue.send([seal_message(task_key(rt.secret(), job.id), y.to_json())])  # z is never sent: the job runs on
        x = Executor(open_store(rt.urls["store"]), open_queue(rt.urls["queue"], job.id), open_state(rt.urls["state"]),
                     job.id, lease=2.0, idle_timeout=WAIT, status_interval=0.1, executor_id="x-1")
        thread = threading.Thread(target=x.run, daemon=True)
        thread.start()
        wait_for(lambda: x.last_done is not None, "the executor finishing y")
        with sqlite3.connect(db) as c:  # y's completion lost, the count kept
            c.execute("DELETE FROM done WHERE job = ? AND task = ?", (job.id, y.to_json()))
        thread.join(timeout=WAIT)
        assert not thread.is_alive(), "the executor noticed and stopped"
        error = rt.state.job(job.id)["error"] or ""
        assert f"state store rolled back (executor x-1 saw 1 completions, store says 1 and {y}, which it completed, " \
               "not done)" in error
        with pytest.raises(npw.JobFailedError, match="state store rolled back"):
            job.wait(timeout=WAIT)


@pytest.mark.timeout(120)
def test_an_embedded_database_restored_from_a_backup_fails_the_job_with_the_reason(tmp_path, gates):
    """The embedded backends (one SQLite file for the queue and the state): a backup of the live database is
    taken at 1 completion (SQLite's online backup API, as ``sqlite3 .backup`` does), Y completes and frees T,
    and the backup is restored into the live file (the same API the other way: every open connection sees
    it).  The client, which saw 2 completions, fails the job with the rollback's reason at its next read, and
    the job's scratch tiles are deleted — never Y run again on a freed tile."""
    import sqlite3

    db = tmp_path / "state.db"
    settings = ProvisionerSettings(lease=2.0, poll_interval=0.1, idle_timeout=30.0, max_executors=1)
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=f"sqlite://{db}", state=f"sqlite://{db}",
                     provisioner=settings) as rt:
        job = submit_chain()
        gates.wait_started(1, 1, timeout=WAIT)
        assert count(rt, job) == 1
        backup = sqlite3.connect(tmp_path / "at-1-completion.db")
        with sqlite3.connect(db) as live:
            live.backup(backup)
        gates.open(1)
        gates.wait_started(2, 1, timeout=WAIT)
        wait_for(lambda: count(rt, job) == 2 and not rt.store.exists(scratch_tile(job)), "Y completed, T freed")
        wait_for(lambda: job.completed() == 2, "the client seeing 2 completions")
        with sqlite3.connect(db) as live:
            backup.backup(live)
        backup.close()
        y = job.bound.task(1, (0,)).to_json()
        assert count(rt, job) == 1 and not rt.state.is_done(job.id, y), "the database went back in time"
        t0 = time.monotonic()
        with pytest.raises(npw.JobFailedError, match=r"state store rolled back \(the (client|provisioner) saw 2 "
                                                     r"completions, store says 1\)"):
            job.wait(timeout=WAIT)
        assert time.monotonic() - t0 < QUICK, "reported at once, no hang"
        gates.open(2)  # the executor held in Z's kernel finishes it, finds the job failed, and stops
        for p in job.local_executors:
            assert p.wait(timeout=WAIT) is not None, "its executor stopped"
        assert rt.state.status(job.id) == "failed"
        assert rt.store.list(f"{job.id}/") == [], "no scratch tile left"


def backup_to(db, path) -> None:
    """A consistent copy of the live database ``db`` in the file ``path`` (SQLite's online backup API)."""
    import sqlite3

    with sqlite3.connect(db) as live, sqlite3.connect(path) as copy:
        live.backup(copy)
    copy.close()


@pytest.mark.timeout(120)
def test_an_embedded_database_renamed_over_by_a_backup_fails_the_job_naming_the_file(tmp_path, gates):
    """The embedded backends, and a backup restored the other common way: copied to ``state.db.tmp`` at 1
    completion and renamed over the live ``state.db`` (``os.replace``) once Y has completed and freed T.  The
    client, the provisioner and the executor keep the old file open, and a process that opens the path now gets
    the new one; whichever of the client and the provisioner reads first finds that the path names another file
    than the one it opened (``StateStore.replaced``) and fails the job naming the file; ``wait`` raises at once,
    the executor held in Z's kernel stops after it, and no scratch tile is left."""
    db = tmp_path / "state.db"
    settings = ProvisionerSettings(lease=2.0, poll_interval=0.1, idle_timeout=30.0, max_executors=1)
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=f"sqlite://{db}", state=f"sqlite://{db}",
                     provisioner=settings) as rt:
        job = submit_chain()
        gates.wait_started(1, 1, timeout=WAIT)
        assert count(rt, job) == 1
        backup_to(db, tmp_path / "state.db.tmp")
        gates.open(1)
        gates.wait_started(2, 1, timeout=WAIT)
        wait_for(lambda: count(rt, job) == 2 and not rt.store.exists(scratch_tile(job)), "Y completed, T freed")
        wait_for(lambda: job.completed() == 2, "the client seeing 2 completions")
        os.replace(tmp_path / "state.db.tmp", db)
        t0 = time.monotonic()
        with pytest.raises(npw.JobFailedError, match=rf"the state database {re.escape(str(db))} was replaced while "
                                                     r"the job ran \(opened as inode \d+ of device [\d:]+, the path "
                                                     r"names inode \d+ of device [\d:]+ now\), noticed by the "
                                                     r"(client|provisioner)"):
            job.wait(timeout=WAIT)
        assert time.monotonic() - t0 < QUICK, "reported at once, no hang"
        gates.open(2)  # the executor held in Z's kernel finishes it, finds the job failed, and stops
        for p in job.local_executors:
            assert p.wait(timeout=WAIT) is not None, "its executor stopped"
        assert rt.state.status(job.id) == "failed"
        assert rt.store.list(f"{job.id}/") == [], "no scratch tile left"
        assert job.queue.depth() == 0, "no message left"


@pytest.mark.timeout(120)
def test_executors_notice_an_embedded_database_renamed_over_with_no_client_watching(tmp_path, gates):
    """No provisioner, and a client that read nothing: two executors (in threads of this process, each with
    the database open) are the only observers when a copy is renamed over the live file.  The one not held in
    Y's kernel (gate 1) notices at its next status read, fails the job naming the file, deletes its scratch
    tiles and queue, and stops; the held one stops after its kernel returns."""
    db = tmp_path / "state.db"
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=f"sqlite://{db}", state=f"sqlite://{db}",
                     executors=0) as rt:
        job = submit_chain()
        started, executors, threads = start_two_executors(rt, job)
        try:
            gates.wait_started(1, 1, timeout=WAIT)
            y = job.bound.task(1, (0,))
            held = [n for n, ts in started.items() if ts and ts[-1] == y]
            assert len(held) == 1
            free = next(n for n in executors if n not in held)
            shutil.copyfile(db, tmp_path / "state.db.tmp")  # a copy of the file as it is (its last commits in
            os.replace(tmp_path / "state.db.tmp", db)      # the -wal file): what is in it does not matter here
            threads[free].join(timeout=WAIT)
            assert not threads[free].is_alive(), "the free executor noticed and stopped"
            error = rt.state.job(job.id)["error"]
            assert (f"the state database {db} was replaced while the job ran" in error
                    and f"noticed by executor x-{free}" in error), error
            assert rt.store.list(f"{job.id}/") == [], "the executor deleted the scratch tiles"
            assert job.queue.depth() == 0, "and the queue"
            assert job.watermark.seen == 0, "the client had read nothing"
            gates.open_all()
            for t in threads.values():
                t.join(timeout=WAIT)
                assert not t.is_alive(), "every executor stopped"
            assert rt.store.list(f"{job.id}/") == [], "nothing left after the held executor's late write"
            with pytest.raises(npw.JobFailedError, match=r"was replaced while the job ran .* noticed by executor"):
                job.wait(timeout=WAIT)
        finally:
            gates.open_all()
