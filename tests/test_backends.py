"""Conformance suites for the storage contracts, parametrised over every implementation.

These tests are the definition of "a backend works".  Multi-process tests use
real processes (multiprocessing's spawn start method), not threads.
"""

from __future__ import annotations

import errno
import multiprocessing as mp
import os
import shutil
import sqlite3
import time
import uuid

import numpy as np
import pytest

from numpywren2.core.backends import (
    Finish,
    Ledger,
    LocalFileStore,
    SQLiteStateStore,
    SQLiteTaskQueue,
    TileNotFoundError,
)
from numpywren2.core.backends.aws import S3TileStore, SQSTaskQueue
from numpywren2.core.backends.memory import MemoryStateStore, MemoryTaskQueue, MemoryTileStore
from numpywren2.core.backends.redis import RedisStateStore, RedisTaskQueue

SPAWN = mp.get_context("spawn")


def poll(predicate, timeout: float = 60.0, what: str = "condition"):
    """The first true value of ``predicate()``, asked every 10 ms (a hang guard, not a time budget)."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)
    return value


def make_store(kind: str, where: str):
    if kind == "file":
        return LocalFileStore(where)
    if kind == "s3":
        return S3TileStore(where)
    if kind == "memory":
        return MemoryTileStore(where)
    raise ValueError(kind)


def make_queue(kind: str, where: str, name: str = "q"):
    if kind == "sqlite":
        return SQLiteTaskQueue(f"{where}/state.db", name)
    if kind == "redis":
        return RedisTaskQueue(where, name)
    if kind == "sqs":
        return SQSTaskQueue(where, name)
    if kind == "memory":
        return MemoryTaskQueue(where, name)
    raise ValueError(kind)


def make_state(kind: str, where: str):
    if kind == "sqlite":
        return SQLiteStateStore(f"{where}/state.db")
    if kind == "redis":
        return RedisStateStore(where)
    if kind == "memory":
        return MemoryStateStore(where)
    raise ValueError(kind)


STORES = ["file", "s3", "memory"]
QUEUES = ["sqlite", "redis", "sqs", "memory"]
STATES = ["sqlite", "redis", "memory"]


def needs_processes(backend) -> None:
    """Skip a multi-process test for the in-memory backend (one process by definition)."""
    if backend.kind == "memory":
        pytest.skip("the in-memory backend is shared by the threads of one process only")


def open_backend(request, tmp_path, make):
    """A backend of kind ``request.param``, remembering where it lives (for other processes to open)."""
    where = location(request, request.param, tmp_path)
    b = make(request.param, where)
    b.kind, b.where = request.param, where
    return b


def location(request, kind: str, tmp_path) -> str:
    """Where a backend of this kind keeps its data: a directory, or a server URL with a fresh key prefix."""
    tag = uuid.uuid4().hex[:8]
    if kind == "memory":
        return f"test-{tag}"
    if kind == "redis":
        return f"{request.getfixturevalue('redis_server').url}?prefix=t{tag}:"
    if kind in ("s3", "sqs"):
        endpoint = request.getfixturevalue("moto_server").endpoint
        if kind == "s3":
            return f"s3://bucket-{tag}/pre/fix?endpoint_url={endpoint}&create=1"
        return f"sqs://?endpoint_url={endpoint}&prefix=t{tag}-"
    return str(tmp_path)


# --------------------------------------------------------------------------- tile stores


@pytest.fixture(params=STORES)
def store(request, tmp_path):
    s = open_backend(request, tmp_path, make_store)
    yield s
    s.close()


@pytest.mark.parametrize("shape, dtype", [((3, 4), np.float64), ((5, 2), np.float32), ((0, 3), np.float64),
                                          ((7,), np.int64), ((2, 3, 4), np.complex128), ((1, 1), np.float32)])
def test_tile_round_trip(store, shape, dtype):
    a = (np.arange(int(np.prod(shape))).reshape(shape) * 1.5).astype(dtype)
    n = store.put("job/A/0/0", a)
    assert n >= a.nbytes
    b = store.get("job/A/0/0")
    assert b.dtype == a.dtype and b.shape == a.shape and np.array_equal(a, b)
    b_copy = b.copy()
    b_copy[...] = 0  # tiles read back are ordinary arrays


def test_tile_store_non_contiguous_and_fortran(store):
    a = np.asfortranarray(np.random.default_rng(0).standard_normal((6, 5)))[::2, 1:]
    store.put("t", a)
    assert np.array_equal(store.get("t"), a)


def test_missing_tile(store):
    with pytest.raises(TileNotFoundError):
        store.get("nope/0")
    with pytest.raises(KeyError):  # it is a KeyError too
        store.get("nope/1")
    assert not store.exists("nope/0")


def test_overwrite_list_and_delete_prefix(store):
    for i in range(3):
        for j in range(2):
            store.put(f"job1/L/{i}/{j}", np.full((2, 2), i + j))
    store.put("job10/L/0/0", np.zeros((1, 1)))
    store.put("job1/L/0/0", np.ones((2, 2)))
    assert np.array_equal(store.get("job1/L/0/0"), np.ones((2, 2)))
    assert store.exists("job1/L/2/1")
    store.put("job1/L/2/10", np.ones(1))
    assert store.delete("job1/L/2/1") and not store.delete("job1/L/2/1")
    assert not store.exists("job1/L/2/1") and store.exists("job1/L/2/10")
    store.put("job1/L/2/1", np.full((2, 2), 3))
    store.delete("job1/L/2/10")
    assert store.list("job1/") == [f"job1/L/{i}/{j}" for i in range(3) for j in range(2)]
    assert store.list("job1/L/1/") == ["job1/L/1/0", "job1/L/1/1"]
    assert store.delete_prefix("job1/") == 6
    assert store.list("job1/") == [] and store.list("job10/") == ["job10/L/0/0"]
    assert store.delete_prefix("job1/") == 0


def test_deleting_an_s3_prefix_aborts_its_incomplete_multipart_uploads_and_no_other(request, tmp_path):
    """An upload created and never completed (one given up on a silent link, or created late by a request the
    link held) is not an object: ``list`` does not show it, yet it holds storage.  ``delete_prefix`` aborts the
    ones under its prefix, with a store prefix of its own (``pre/fix``), and leaves the others."""
    store = S3TileStore(location(request, "s3", tmp_path))
    try:
        for key in ("job1/L/0/0", "job1/L/1/0", "job10/L/0/0"):
            up = store.client.create_multipart_upload(Bucket=store.bucket, Key=store._key(key))
            store.client.upload_part(Bucket=store.bucket, Key=store._key(key), UploadId=up["UploadId"],
                                     PartNumber=1, Body=b"x" * 1024)
        store.put("job1/L/0/1", np.ones((2, 2)))
        assert store.list("job1/") == ["job1/L/0/1"], "an incomplete upload is not a tile"
        assert [k for k, _ in store.incomplete_uploads("job1/")] == ["job1/L/0/0", "job1/L/1/0"]
        assert store.delete_prefix("job1/") == 1
        assert store.incomplete_uploads("job1/") == [] and store.list("job1/") == []
        assert [k for k, _ in store.incomplete_uploads("")] == ["job10/L/0/0"], "another prefix's upload is kept"
    finally:
        store.delete_prefix("")
        store.close()


HAMMER = 50  # operations each side does while the other side is still at work


def _hammer_writer(kind, where, go, writes, readers_done, lock):
    """Rewrite one tile until both readers are done, and at least HAMMER times."""
    s = make_store(kind, where)
    go.wait(60)
    k = 0
    while k < HAMMER or readers_done.value < 2:
        s.put("hot", np.full((64, 64), float(k % 5)))
        k += 1
        writes.value = k
    return k


def _hammer_reader(kind, where, go, writes, readers_done, lock):
    """Read the tile until the writer has written at least HAMMER times, and at least HAMMER times."""
    try:
        s = make_store(kind, where)
        go.wait(60)
        reads = 0
        while reads < HAMMER or writes.value < HAMMER:
            t = s.get("hot")
            assert t.shape == (64, 64) and (t == t[0, 0]).all(), "torn read"
            reads += 1
        return reads
    finally:  # (also when it failed: the writer must not wait for it forever)
        with lock:
            readers_done.value += 1


def test_concurrent_processes_never_see_partial_tiles(store):
    needs_processes(store)
    # each side keeps going until the other has done its share: the reads and writes overlap by construction
    store.put("hot", np.zeros((64, 64)))
    manager = SPAWN.Manager()
    go, writes, readers_done = manager.Event(), manager.Value("i", 0), manager.Value("i", 0)
    with SPAWN.Pool(3) as pool:
        args = (store.kind, store.where, go, writes, readers_done, manager.Lock())
        w = pool.apply_async(_hammer_writer, args)
        rs = [pool.apply_async(_hammer_reader, args) for _ in range(2)]
        go.set()
        assert w.get(timeout=300) >= HAMMER
        assert all(r.get(timeout=300) >= HAMMER for r in rs)
    manager.shutdown()


# --------------------------------------------------------------------------- task queues


@pytest.fixture(params=QUEUES)
def queue(request, tmp_path):
    q = open_backend(request, tmp_path, make_queue)
    yield q
    q.close()


def test_queue_send_receive_ack(queue):
    assert queue.receive(5) == [] and queue.depth() == 0
    queue.send(["a", "b", "c"])
    assert queue.depth() == 3
    got = queue.receive(2, lease=30)
    rest = queue.receive(5, lease=30)
    if queue.ordered:
        assert [m.body for m in got] == ["a", "b"] and [m.body for m in rest] == ["c"]
    got += rest
    assert sorted(m.body for m in got) == ["a", "b", "c"]
    assert queue.receive(5) == []  # all leased
    assert all(queue.ack(m.receipt) for m in got[:2])
    assert queue.depth() == 1


def test_queue_lease_expires_and_renews(queue):
    queue.send(["x", "y"])
    t0 = time.monotonic()
    x, y = queue.receive(2, lease=1.0)  # whole seconds: SQS's visibility timeout granularity
    assert queue.renew(y.receipt, 120.0)
    again = poll(lambda: queue.receive(5, lease=30), what="x's lease to expire")
    assert time.monotonic() - t0 >= 0.9, "not before its lease ran out"
    assert [m.body for m in again] == ["x"]  # x's lease expired, y's was renewed
    if queue.strict_leases:
        assert not queue.ack(x.receipt), "an expired lease must not acknowledge the re-leased message"
        assert not queue.renew(x.receipt, 5.0)
    assert queue.ack(again[0].receipt) and queue.ack(y.receipt)
    assert queue.depth() == 0


def test_queue_priority(queue):
    queue.send(["low1", "low2"], priority=5)
    queue.send(["high"], priority=0)
    got = [m.body for m in queue.receive(3)]
    assert got == ["high", "low1", "low2"] if queue.ordered else sorted(got) == ["high", "low1", "low2"]


def test_queue_send_many_orders_by_priority_then_fifo(queue):
    queue.send_many([("c", 7), ("a", 2**29), ("b", 7), ("first", 0)])
    got = [m.body for m in queue.receive(4)]
    assert got == ["first", "c", "b", "a"] if queue.ordered else sorted(got) == ["a", "b", "c", "first"]


def test_queue_wait_and_purge(queue):
    t0 = time.monotonic()
    assert queue.receive(1, wait=0.3) == []
    assert time.monotonic() - t0 >= 0.25
    queue.send(["a"] * 4)
    queue.purge()
    assert queue.depth() == 0 and queue.receive(4) == []


def test_queues_are_separate(queue):
    other = make_queue(queue.kind, queue.where, name="other")
    queue.send(["mine"])
    assert other.receive(1) == [] and other.depth() == 0
    assert [m.body for m in queue.receive(1)] == ["mine"]


def _drain(kind, where, out_q, ready, go):
    """Receive and acknowledge until no message is left, visible or leased (to anyone)."""
    q = make_queue(kind, where)
    ready.release()
    go.wait(60)
    got = []
    while True:
        msgs = q.receive(3, lease=60)
        if not msgs:
            if sum(q.counts()) == 0:
                break
            time.sleep(0.01)
            continue
        for m in msgs:
            got.append(m.body)
            assert q.ack(m.receipt)
    out_q.put(got)


def test_concurrent_receivers_never_share_a_live_message(queue):
    needs_processes(queue)
    # (fewer through moto's HTTP server, whose every request is a round trip of milliseconds)
    bodies = [f"t{i}" for i in range(150 if queue.kind == "sqs" else 600)]
    out, ready, go = SPAWN.Queue(), SPAWN.Semaphore(0), SPAWN.Event()
    procs = [SPAWN.Process(target=_drain, args=(queue.kind, queue.where, out, ready, go)) for _ in range(4)]
    for p in procs:
        p.start()
    for _ in procs:
        assert ready.acquire(timeout=60)
    queue.send(bodies)
    go.set()
    results = [out.get(timeout=240) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    everything = [b for r in results for b in r]
    if queue.strict_leases:
        assert sorted(everything) == sorted(bodies), "a message was lost or delivered twice"
        assert queue.depth() == 0
    else:  # SQS standard queues deliver at least once: duplicates are possible, losses are not
        assert set(everything) == set(bodies), "a message was lost"
        # and depth() is approximate there (the contract says so): a duplicate's second lease can
        # still be counted; what must hold is that nothing but copies of the messages is left
        leftover = [m.body for m in queue.receive(10, lease=60)]
        assert set(leftover) <= set(bodies)


# --------------------------------------------------------------------------- state stores


@pytest.fixture(params=STATES)
def state(request, tmp_path):
    s = open_backend(request, tmp_path, make_state)
    yield s
    s.close()


def test_job_records(state):
    state.create_job("j1", '{"program": "x"}')
    with pytest.raises(ValueError, match="already exists"):
        state.create_job("j1", "{}")
    with pytest.raises(KeyError):
        state.job("nope")
    rec = state.job("j1")
    assert rec["status"] == "running" and rec["description"] == '{"program": "x"}' and rec["error"] is None
    state.add_counters("j1", {"bytes_read": 10, "kernel_s": 0.5})
    state.add_counters("j1", {"bytes_read": 5})
    assert state.job("j1")["counters"] == {"bytes_read": 15, "kernel_s": 0.5}
    assert state.set_status("j1", "failed", "boom")
    assert not state.set_status("j1", "done"), "the first terminal status wins"
    assert state.job("j1")["status"] == "failed" and state.job("j1")["error"] == "boom"
    assert state.status("j1") == "failed"
    with pytest.raises(KeyError):
        state.status("nope")
    state.delete_job("j1")
    with pytest.raises(KeyError):
        state.job("j1")


def test_a_sqlite_state_database_renamed_over_or_deleted_is_reported_by_replaced(tmp_path):
    """``replaced`` compares the file the path names with the one the store opened (its inode and device): a
    file renamed over the path (``os.replace``, as when a backup is moved into place) or its removal is
    reported with the path; a store opened afterwards is on the new file and reports nothing."""
    db = tmp_path / "state.db"
    state = SQLiteStateStore(db)
    assert state.replaced() is None
    shutil.copyfile(db, tmp_path / "state.db.tmp")
    os.replace(tmp_path / "state.db.tmp", db)
    fact = state.replaced()
    assert fact is not None and fact.startswith(f"the state database {db} was replaced while the job ran (opened as "
                                                "inode "), fact
    later = SQLiteStateStore(db)
    assert later.replaced() is None, "a store that opened the new file"
    os.unlink(db)
    assert "was deleted while the job ran" in later.replaced() and "the path names no file now" in later.replaced()
    state.close()
    later.close()


def test_no_state_store_reports_a_replacement_while_nothing_is_replaced(state):
    state.create_job("j", "{}")
    assert state.replaced() is None


def test_complete_counts_each_edge_once(state):
    state.create_job("j", "{}")
    # diamond: a -> b, a -> c, (b, c) -> d
    assert state.complete("j", "a", [("b", 1), ("c", 1)]) == ["b", "c"]
    assert state.complete("j", "b", [("d", 2)]) == []
    assert state.complete("j", "b", [("d", 2)]) == [], "a re-run must not count the edge b->d twice"
    assert not state.is_done("j", "c")
    assert state.complete("j", "c", [("d", 2)]) == ["d"]
    assert state.complete("j", "c", [("d", 2)]) == ["d"], "a repeated complete returns the ready children again"
    assert state.is_done("j", "c") and not state.is_done("j", "d")
    assert state.complete("j", "d", []) == []
    assert state.job("j")["counters"]["completed"] == 4


def test_done_many(state):
    state.create_job("j", "{}")
    state.complete("j", "a", [])
    state.complete("j", "c", [])
    assert state.done_many("j", []) == []
    assert state.done_many("j", ["a", "b", "c", "a"]) == [True, False, True, True]
    assert state.done_many("j", [f"t{i}" for i in range(1200)] + ["c"]) == [False] * 1200 + [True]


# --------------------------------------------------------------------------- ledgers: state store + queue

# Every pairing of a state store and a queue the suite covers: each state kind with each queue kind, and
# each kind that can fuse with its queue also with a queue of its kind kept apart (another SQLite file,
# another Redis database, another memory space), which takes the unfused path.
PAIRS = [(s, q, "shared") for s in STATES for q in QUEUES] + [(k, k, "apart") for k in STATES]


@pytest.fixture(params=PAIRS, ids=lambda p: "-".join(p))
def pair(request, tmp_path):
    """``(state, queue, ledger)``; the ledger fused exactly when the two share a database."""
    state_kind, queue_kind, placement = request.param
    state_where = location(request, state_kind, tmp_path)
    if queue_kind == state_kind and placement == "shared":
        queue_where = state_where
    else:
        queue_where = location(request, queue_kind, tmp_path / "apart")
        if queue_kind == "redis" and placement == "apart":
            queue_where = queue_where.replace("/0?", "/1?")  # same server, another database
    state = make_state(state_kind, state_where)
    queue = make_queue(queue_kind, queue_where, f"jq-{uuid.uuid4().hex[:6]}")
    ledger = state.ledger(queue)
    assert ledger.fused == (placement == "shared" and state_kind == queue_kind), ledger
    state.create_job("j", "{}")
    yield state, queue, ledger
    queue.delete()
    queue.close()
    state.close()


def bodies(queue, n: int = 10) -> list[str]:
    """Receive (and acknowledge) everything visible; the bodies in the order received."""
    got = queue.receive(n, lease=30)
    for m in got:
        assert queue.ack(m.receipt)
    return [m.body for m in got]


def test_finish_enqueues_ready_children_with_priorities_acks_and_adds_counters(pair):
    state, queue, ledger = pair
    queue.send(["a"])
    (m,) = queue.receive(1, lease=30)
    counters = {"kernel_s": 0.25, "tiles_freed": 2}
    # a -> b (priority 5), a -> c (priority 1), (a, x) -> d (priority 0)
    done = ledger.finish("j", "a", [("b", 1, 5), ("c", 1, 1), ("d", 2, 0)], m.receipt, counters)
    assert done.ready == ["b", "c"] and done.status == "running"
    assert counters == {}, "the counters were added, so the caller's dict is drained"
    c = state.job("j")["counters"]
    assert c["completed"] == 1 and c["kernel_s"] == 0.25 and c["tiles_freed"] == 2
    assert state.is_done("j", "a") and not state.is_done("j", "b")
    got = bodies(queue)
    if queue.ordered:
        assert got == ["c", "b"], "children carry their priorities"
    assert sorted(got) == ["b", "c"], "a acknowledged, both ready children enqueued, d not"
    assert queue.receive(5) == [] and (not queue.strict_leases or queue.depth() == 0)


def test_finish_counts_each_edge_once_on_duplicates(pair):
    state, queue, ledger = pair
    queue.send(["b", "b", "c"])  # b delivered twice
    m1, m2, m3 = sorted(queue.receive(3, lease=30), key=lambda m: m.body)
    assert ledger.finish("j", "b", [("d", 2, 0)], m1.receipt).ready == []
    assert ledger.finish("j", "b", [("d", 2, 0)], m2.receipt).ready == [], "the duplicate counts b -> d once"
    assert state.job("j")["counters"]["completed"] == 1
    assert queue.receive(5) == [], "both copies acknowledged, nothing enqueued"
    assert ledger.finish("j", "c", [("d", 2, 0)], m3.receipt, {"kernel_s": 1.0}).ready == ["d"]
    assert bodies(queue) == ["d"]
    # a re-delivery of c after a crash: nothing counted again, its ready child answered and enqueued again
    queue.send(["c"])
    (again,) = queue.receive(1, lease=30)
    assert ledger.finish("j", "c", [("d", 2, 0)], again.receipt, {"kernel_s": 1.0}).ready == ["d"]
    assert bodies(queue) == ["d"]
    c = state.job("j")["counters"]
    assert c["completed"] == 2 and c["kernel_s"] == 2.0, "counters are added every time, completions once"
    assert state.complete("j", "c", [("d", 3)]) == [], "d's count of done parents stayed at 2"


def test_finish_with_a_lost_lease_completes_and_leaves_the_new_lease_alone(pair):
    state, queue, ledger = pair
    queue.send(["a"])
    (old,) = queue.receive(1, lease=1.0)  # whole seconds: SQS's visibility timeout granularity
    (new,) = poll(lambda: queue.receive(1, lease=30), what="the lease to expire and the message to reappear")
    done = ledger.finish("j", "a", [("b", 1, 3)], old.receipt)  # not an error
    assert done == (["b"], "running", 1) and state.is_done("j", "a")
    if queue.strict_leases:
        assert queue.renew(new.receipt, 30), "the expired receipt acknowledged nothing"
        assert queue.depth() == 2  # a (leased anew) and b
    assert ledger.finish("j", "a", [("b", 1, 3)], new.receipt).ready == ["b"]
    assert sorted(bodies(queue)) == ["b", "b"], "the second copy found a done and forwarded b again"
    assert state.job("j")["counters"]["completed"] == 1


def test_finish_after_the_job_ended_enqueues_no_children(pair):
    state, queue, ledger = pair
    queue.send(["a", "x"])
    ma, mx = sorted(queue.receive(2, lease=30), key=lambda m: m.body)
    assert state.set_status("j", "done")
    done = ledger.finish("j", "a", [("b", 1, 0)], ma.receipt, {"kernel_s": 0.5})
    assert done == (["b"], "done", 1), "the ready children, the status and the count read in the same step"
    assert queue.receive(5) == [], "a acknowledged, b not enqueued on the ended job's queue"
    assert state.job("j")["counters"]["kernel_s"] == 0.5
    state.delete_job("j")
    assert ledger.finish("j", "x", [("y", 1, 0)], mx.receipt).status is None, "the job record is gone"
    assert queue.receive(5) == [], "x acknowledged, y not enqueued"


def test_progress_reads_status_count_and_one_task_together(pair):
    state, queue, ledger = pair
    assert state.progress("j") == ("running", 0, None)
    queue.send(["a"])
    (m,) = queue.receive(1, lease=30)
    assert ledger.finish("j", "a", [], m.receipt).completed == 1
    assert state.progress("j", "a") == ("running", 1, True)
    assert state.progress("j", "b") == ("running", 1, False)
    assert state.set_status("j", "failed")
    assert state.progress("j", "a").status == "failed"
    with pytest.raises(KeyError):
        state.progress("no-such-job")


def test_finish_many_completes_several_tasks_in_one_step(pair):
    state, queue, ledger = pair
    queue.send(["a", "b", "a"])  # a delivered twice
    m1, m2, m3 = sorted(queue.receive(3, lease=30), key=lambda m: m.body)
    counters = {"kernel_s": 0.5}
    # (a, b) -> c; a -> d; the second copy of a in the same step counts nothing again
    out = ledger.finish_many("j", [Finish("a", [("c", 2, 1), ("d", 1, 4)], m1.receipt),
                                   Finish("b", [("c", 2, 1)], m3.receipt),
                                   Finish("a", [("c", 2, 1), ("d", 1, 4)], m2.receipt)], counters)
    assert [c.ready for c in out.completions] == [["d"], ["c"], ["c", "d"]]
    assert {c.status for c in out.completions} == {"running"} and out.claimed == []
    assert counters == {}
    c = state.job("j")["counters"]
    assert c["completed"] == 2 and c["kernel_s"] == 0.5
    got = bodies(queue)
    if queue.ordered:
        assert got == sorted(got), "c (priority 1) before d (4)"
    if ledger.fused:
        assert sorted(got) == ["c", "d"], "each ready child enqueued once per step"
    else:
        assert sorted(got) == ["c", "c", "d", "d"], "the unfused sequence enqueues what each completion found"
    assert queue.receive(5) == [], "all three acknowledged"


def test_a_claimed_child_is_leased_to_the_finisher_and_runs_exactly_once(pair):
    state, queue, ledger = pair
    queue.send(["a"], priority=2)
    (m,) = queue.receive(1, lease=30)
    item = Finish("a", [("b~t", 1, 2), ("c~t", 1, 3)], m.receipt, (("b~t", "b"),))
    out = ledger.finish_many("j", [item], claim=1, lease=1.0)
    assert out.completions[0].ready == ["b~t", "c~t"]
    if not ledger.fused:
        assert out.claimed == [], "the unfused sequence claims nothing: every ready child is enqueued"
        assert sorted(bodies(queue)) == ["b~t", "c~t"]
        return
    (claimed,) = out.claimed
    assert claimed.body == "b~t"
    assert [x.body for x in queue.receive(5, lease=30)] == ["c~t"], "b is leased to the finisher, c is queued"
    assert queue.renew(claimed.receipt, 1.0), "the claim's receipt renews its lease"
    # the finisher dies: the claim's lease runs out and another executor receives b
    (again,) = poll(lambda: queue.receive(1, lease=30), what="the claimed child's lease to expire")
    assert again.body == "b~t"
    assert not queue.ack(claimed.receipt), "the expired claim acknowledges nothing"
    assert ledger.finish("j", "b", [], again.receipt).status == "running"
    assert queue.receive(5) == [] and state.is_done("j", "b")


def test_a_claim_keeps_the_queue_s_priorities_and_skips_done_children(pair):
    state, queue, ledger = pair
    if not ledger.fused:
        pytest.skip("the unfused sequence claims nothing")
    queue.send(["a", "e"], priority=5)
    ma, me = sorted(queue.receive(2, lease=30), key=lambda m: m.body)
    queue.send(["urgent"], priority=1)
    state.complete("j", "done-child", [])
    wanted = (("b", "b"), ("x", "done-child"))
    out = ledger.finish_many("j", [Finish("a", [("b", 1, 3), ("x", 1, 9)], ma.receipt, wanted)], claim=2)
    assert out.claimed == [], "b (3) is worse than the visible urgent (1); x is done already: both queued"
    assert bodies(queue) == ["urgent", "b", "x"]
    wanted = (("f", "f"), ("g", "g"))
    out = ledger.finish_many("j", [Finish("e", [("f", 1, 1), ("g", 1, 2)], me.receipt, wanted)], claim=1)
    assert [x.body for x in out.claimed] == ["f"], "the best ready child, the queue empty: at most claim of them"
    assert bodies(queue) == ["g"]
    assert queue.ack(out.claimed[0].receipt) and queue.receive(5) == []


def test_an_ended_job_claims_nothing(pair):
    state, queue, ledger = pair
    queue.send(["a"])
    (m,) = queue.receive(1, lease=30)
    assert state.set_status("j", "cancelled")
    out = ledger.finish_many("j", [Finish("a", [("b", 1, 0)], m.receipt, (("b", "b"),))], claim=1)
    assert out.claimed == [] and out.completions[0][:2] == (["b"], "cancelled")
    assert queue.receive(5) == []


class _RefusingQueue(MemoryTaskQueue):
    """A queue that refuses to enqueue (a permanent error), to see what ``finish`` leaves behind."""

    def send_many(self, items):
        raise OSError(errno.EROFS, "refused")


def test_the_unfused_finish_drains_only_the_counters_it_added():
    state, queue = MemoryStateStore("ledger-drain"), _RefusingQueue("ledger-drain-q", "q")
    ledger = state.ledger(queue)
    assert type(ledger) is Ledger, "a queue in another space: the unfused sequence"
    state.create_job("j", "{}")
    queue.send(["a"])
    (m,) = queue.receive(1, lease=30)
    counters = {"kernel_s": 1.0}
    with pytest.raises(OSError, match="refused"):
        ledger.finish("j", "a", [("b", 1, 0)], m.receipt, counters)
    assert counters == {} and state.job("j")["counters"]["kernel_s"] == 1.0, "added before the failing step"
    assert state.is_done("j", "a"), "completed before the failing step: a re-run forwards b"


def test_a_fused_finish_that_fails_keeps_the_counters(tmp_path):
    state, queue = make_state("sqlite", str(tmp_path)), make_queue("sqlite", str(tmp_path))
    state.create_job("j", "{}")
    queue.send(["a"])
    (m,) = queue.receive(1, lease=30)
    counters = {"kernel_s": 1.0}
    with pytest.raises(sqlite3.IntegrityError):  # a child key the schema refuses (NULL): the transaction rolls back
        state.ledger(queue).finish("j", "a", [(None, 1, 0)], m.receipt, counters)
    assert counters == {"kernel_s": 1.0}, "nothing was added: the caller keeps them"
    assert "kernel_s" not in state.job("j")["counters"] and not state.is_done("j", "a") and queue.depth() == 1


def test_jobs_do_not_share_task_state(state):
    state.create_job("j1", "{}")
    state.create_job("j2", "{}")
    state.complete("j1", "a", [("b", 2)])
    assert state.complete("j2", "x", [("b", 2)]) == []
    assert not state.is_done("j2", "a")


def _complete_many(kind, where, job, tasks, child, indeg, out_q):
    s = make_state(kind, where)
    ready = []
    for t in tasks:
        ready += s.complete(job, t, [(child, indeg)])
    out_q.put(ready)


def test_concurrent_complete_of_the_same_tasks(state):
    needs_processes(state)
    state.create_job("j", "{}")
    parents = [f"p{i}" for i in range(50)]
    out = SPAWN.Queue()
    # four processes complete the same 50 parents (duplicated deliveries) concurrently
    procs = [SPAWN.Process(target=_complete_many, args=(state.kind, state.where, "j", parents, "child", 50, out))
             for _ in range(4)]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
        assert p.exitcode == 0
    assert state.job("j")["counters"]["completed"] == 50
    # the child became ready exactly when its 50th distinct parent completed, and every later call sees it
    assert sum(len(r) for r in results) >= 1
    assert state.complete("j", "p0", [("child", 50)]) == ["child"]
    assert state.complete("j", "p0", [("child", 51)]) == [], "the edge count stayed at 50"


def test_with_retries_backs_off_then_gives_up():
    from numpywren2.core.backends import BackendError, with_retries

    calls = []

    def flaky(x):
        calls.append(x)
        if len(calls) < 3:
            raise OSError("transient")
        return x * 2

    assert with_retries(flaky, 21, base_delay=0.001) == 42 and len(calls) == 3

    def broken():
        raise OSError("down")

    with pytest.raises(BackendError, match="failed after 4 attempts: down"):
        with_retries(broken, attempts=4, base_delay=0.001)

    missing = []

    def not_there():
        missing.append(1)
        raise TileNotFoundError("k")

    with pytest.raises(TileNotFoundError):
        with_retries(not_there, base_delay=0.001)
    assert len(missing) == 1  # a missing tile is an answer, not retried


def test_unreachable_redis_is_a_clear_error_not_a_hang():
    from numpywren2.core.backends import BackendError
    from numpywren2.testing import reserved_port

    with reserved_port() as port:  # refuses connections, and no other process can take it meanwhile
        url = f"redis://127.0.0.1:{port}/0"
        t0 = time.monotonic()
        with pytest.raises(BackendError, match=r"cannot reach Redis at 127\.0\.0\.1"):
            RedisStateStore(url)
        with pytest.raises(BackendError, match="is redis-server running"):
            RedisTaskQueue(url, "q")
        assert time.monotonic() - t0 < 15


def test_redis_job_keys_expire_after_the_job_ends(redis_server):
    s = RedisStateStore(f"{redis_server.url}?prefix=ttl{uuid.uuid4().hex[:6]}:", ttl=3600)
    s.create_job("j", "{}")
    s.complete("j", "a", [("b", 1)])
    job_key = s._keys("j")[0]
    assert s.client.ttl(job_key) == -1  # no expiry while running
    s.set_status("j", "done")
    assert 0 < s.client.ttl(job_key) <= 3600
    assert all(0 < s.client.ttl(k) <= 3600 for k in s._keys("j"))


# --------------------------------------------------------------------------- provisioning contract


def test_queue_counts_visible_and_leased(queue):
    assert queue.counts() == (0, 0)
    queue.send(["a", "b", "c"])
    leased = queue.receive(1, lease=30)
    assert queue.counts() == (2, 1) and queue.depth() == 3
    assert queue.ack(leased[0].receipt)
    assert queue.counts() == (2, 0)


def test_queue_counts_an_expired_lease_as_visible(queue):
    if queue.kind == "sqs":
        pytest.skip("SQS's attributes are approximate and lag; its counts come straight from them")
    queue.send(["x"])
    t0 = time.monotonic()
    queue.receive(1, lease=1.0)
    assert queue.counts() == (0, 1)
    poll(lambda: queue.counts() == (1, 0), what="the lease to expire")
    assert time.monotonic() - t0 >= 0.9


def test_executor_heartbeats(state):
    state.create_job("j", "{}")
    assert state.executors("j") == []
    t0, w0 = time.monotonic(), time.time()
    state.heartbeat("j", "e1", ttl=30)
    state.heartbeat("j", "e2", ttl=1.0)
    first = {e["executor"]: e for e in state.executors("j")}
    assert first["e1"]["live"] and first["e2"]["live"] and not first["e1"]["exited"]
    poll(lambda: not {e["executor"]: e for e in state.executors("j")}["e2"]["live"], what="e2's ttl to run out")
    # SQLite keeps heartbeats in wall-clock time (shared by processes and hosts), Redis by its key expiry: the ttl
    # must not run out early by the clock the backend uses (a step of the wall clock moves one, not the other)
    assert max(time.monotonic() - t0, time.time() - w0) >= 0.9
    state.heartbeat("j", "e1", ttl=30, exited=True)
    now = {e["executor"]: e for e in state.executors("j")}
    assert not now["e1"]["live"] and now["e1"]["exited"], "an executor that exited is not live"
    assert not now["e2"]["live"] and not now["e2"]["exited"], "a heartbeat whose ttl ran out is not live"
    assert now["e1"]["started"] == first["e1"]["started"], "the start time is kept"
    assert now["e1"]["last_seen"] - now["e1"]["started"] >= 0.8
    state.heartbeat("j", "e1", ttl=30)
    assert not {e["executor"]: e for e in state.executors("j")}["e1"]["live"], "exited is final"
    assert state.executors("other") == []


def _append_records(kind, where, job, writer, n):
    s = make_state(kind, where)
    for i in range(0, n, 5):
        s.append_records(job, "tasks", [f"{writer}:{k}" for k in range(i, min(n, i + 5))])


def test_records_are_appended_concurrently_and_deleted_with_the_job(state):
    needs_processes(state)
    state.create_job("j", "{}")
    assert state.records("j", "tasks") == []
    state.append_records("j", "timeline", ["t0", "t1"])
    state.append_records("j", "timeline", [])
    procs = [SPAWN.Process(target=_append_records, args=(state.kind, state.where, "j", w, 40)) for w in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    got = state.records("j", "tasks")
    assert sorted(got) == sorted(f"{w}:{k}" for w in range(3) for k in range(40))
    for w in range(3):  # each writer's records in its own order
        assert [r for r in got if r.startswith(f"{w}:")] == [f"{w}:{k}" for k in range(40)]
    assert state.records("j", "timeline") == ["t0", "t1"]
    state.heartbeat("j", "e", ttl=5)
    state.delete_job("j")
    assert state.records("j", "tasks") == [] and state.records("j", "timeline") == [] and state.executors("j") == []


def test_tiles_of_a_never_packed_prefix_are_files_of_their_own_and_packs_elsewhere_are_kept(tmp_path):
    store = LocalFileStore(tmp_path)
    store.allocate_matrix("m", (4, 4), (2, 2), np.float64)  # tiles m/<i>/<j>: slots of m/.pack
    store.never_packed(["job-1/S"])
    a, b = np.arange(4.0).reshape(2, 2), np.ones((2, 2))
    store.put("m/1/0", a)
    store.put("job-1/S/0/0", b)
    assert store.tile_location("m/1/0")[0].endswith("/m/.pack")
    assert not store.tile_location("job-1/S/0/0")[0].endswith(".pack")
    assert np.array_equal(store.get("m/1/0"), a) and np.array_equal(store.get("job-1/S/0/0"), b)
    assert store.delete("job-1/S/0/0") and not store.exists("job-1/S/0/0")
    with pytest.raises(TileNotFoundError):
        store.get("job-1/S/0/0")


def test_deleting_a_prefix_counts_its_tiles_whether_a_pack_is_below_it_or_not(tmp_path):
    store = LocalFileStore(tmp_path)
    store.allocate_matrix("run/m", (4, 4), (2, 2), np.float64)  # 4 slots, 3 of them written below
    for i, j in [(0, 0), (0, 1), (1, 1)]:
        store.put(f"run/m/{i}/{j}", np.ones((2, 2)))
    store.put("run/meta", np.zeros(1))
    store.put("job-2/S/3/4", np.ones((1, 1)))
    store.put("job-2/S/meta", np.ones(1))
    (tmp_path / "job-2" / "S" / ".3,5.tile.1-x-0.tmp").write_bytes(b"part")  # a put cut short: not a tile
    store.put("job-20/S/0/0", np.ones((1, 1)))
    assert store.delete_prefix("run/") == 4 and not (tmp_path / "run").exists()  # with a pack: listed slots
    assert store.delete_prefix("job-2/") == 2 and not (tmp_path / "job-2").exists()  # without: one tree
    assert store.list("") == ["job-20/S/0/0"] and store.delete_prefix("job-2/") == 0


def test_a_file_store_keeps_a_tile_space_in_one_directory_and_still_reads_the_per_index_layout(tmp_path):
    store = LocalFileStore(tmp_path)
    for i in range(50):  # 50 tile rows of a scratch space: one directory, a file per tile
        store.put(f"job-1/Y/{i}/0", np.full((1, 1), float(i)))
    assert sorted(p.name for p in (tmp_path / "job-1").iterdir()) == ["Y"]
    assert all(p.is_file() for p in (tmp_path / "job-1" / "Y").iterdir())
    assert store.list("job-1/Y/1") == ["job-1/Y/1/0"] + [f"job-1/Y/{i}/0" for i in range(10, 20)]
    assert store.list("job-1/Y/7/") == ["job-1/Y/7/0"]
    # a tile written one directory per index (the layout before 2026-12): read, listed, deleted
    old = np.arange(6.0).reshape(2, 3)
    legacy = LocalFileStore(tmp_path / "legacy")
    legacy.put("m/x/0", old)  # a single trailing index: the same file in both layouts
    (tmp_path / "legacy" / "m" / "2").mkdir()
    os.replace(tmp_path / "legacy" / "m" / "x" / "0.tile", tmp_path / "legacy" / "m" / "2" / "3.tile")
    assert legacy.exists("m/2/3") and np.array_equal(legacy.get("m/2/3"), old)
    assert legacy.list("m/") == ["m/2/3"] and legacy.list("m/2/") == ["m/2/3"]
    assert legacy.delete_prefix("m/") == 1 and not legacy.exists("m/2/3")
    with pytest.raises(TileNotFoundError):
        legacy.get("m/2/3")
    with pytest.raises(ValueError, match="invalid tile key"):
        store.put("job-1/Y/1,2", old)  # "," is the layout's separator: never part of a key
    assert store.delete_prefix("job-1/") == 50 and not (tmp_path / "job-1").exists()
