"""In-memory backends for one process: ``MemoryTileStore``, ``MemoryTaskQueue``, ``MemoryStateStore``.

Every object opened with the same ``name`` shares one space (a dict guarded by one lock), so
executors run as threads of one process, and tests, see each other's tiles, messages and task
state, as they would through a shared server.  Nothing survives the process and nothing is
visible to another process: the conformance tests that spawn processes do not apply (concurrent
readers and writers of tiles, concurrent receivers, concurrent ``complete`` and record appends
from several processes); their threaded equivalents are what the lock guarantees.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
import uuid

import numpy as np

from .base import (
    Completion,
    Finish,
    Finished,
    Ledger,
    Message,
    Progress,
    StateStore,
    TaskQueue,
    TileNotFoundError,
    TileStore,
    decode_tile,
    encode_tile,
    plan_claims,
    ready_items,
)

_SPACES: dict[str, _Space] = {}
_SPACES_LOCK = threading.Lock()


class _Space:
    """The shared data of one ``memory://NAME``."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.tiles: dict[str, bytes] = {}
        self.queues: dict[str, dict] = {}  # queue -> {"msgs": {id: [body, priority, seq, lease until, receipt]}}
        self.jobs: dict[str, dict] = {}
        self.seq = itertools.count()


def space(name: str) -> _Space:
    """The shared space called ``name`` (created on first use)."""
    with _SPACES_LOCK:
        s = _SPACES.get(name)
        if s is None:
            s = _SPACES[name] = _Space()
        return s


class MemoryTileStore(TileStore):
    """Tiles as encoded bytes (checksummed, as on disk) in a dict; ``get`` returns read-only arrays."""

    def __init__(self, name: str = "default"):
        self.url = f"memory://{name}"
        self._s = space(name)

    def get(self, key: str) -> np.ndarray:
        with self._s.lock:
            raw = self._s.tiles.get(key)
        if raw is None:
            raise TileNotFoundError(key)
        tile = decode_tile(raw, key)
        tile.flags.writeable = False
        return tile

    def put(self, key: str, tile: np.ndarray) -> int:
        raw = b"".join(bytes(p) for p in encode_tile(tile))
        with self._s.lock:
            self._s.tiles[key] = raw
        return len(raw)

    def exists(self, key: str) -> bool:
        with self._s.lock:
            return key in self._s.tiles

    def delete(self, key: str) -> bool:
        with self._s.lock:
            return self._s.tiles.pop(key, None) is not None

    def delete_prefix(self, prefix: str) -> int:
        with self._s.lock:
            keys = [k for k in self._s.tiles if k.startswith(prefix)]
            for k in keys:
                del self._s.tiles[k]
        return len(keys)

    def list(self, prefix: str = "") -> list[str]:
        with self._s.lock:
            return sorted(k for k in self._s.tiles if k.startswith(prefix))


class MemoryTaskQueue(TaskQueue):
    """A leased priority queue (priority, then FIFO) in a dict; leases on the monotonic clock."""

    def __init__(self, name: str, queue: str):
        self.url = f"memory://{name}"
        self.name = queue
        self._s = space(name)

    @property
    def space(self) -> _Space:
        """The shared space this queue lives in (a ``MemoryLedger`` holds its lock across a whole step)."""
        return self._s

    def _q(self) -> dict:
        return self._s.queues.setdefault(self.name, {"msgs": {}})

    def send(self, bodies: list[str], priority: int = 0) -> None:
        with self._s.lock:
            msgs = self._q()["msgs"]
            for b in bodies:
                msgs[uuid.uuid4().hex] = [b, priority, next(self._s.seq), 0.0, None]
            self._s.lock.notify_all()

    def receive(self, n: int = 1, lease: float = 30.0, wait: float = 0.0) -> list[Message]:
        deadline = time.monotonic() + wait
        with self._s.lock:
            while True:
                now = time.monotonic()
                msgs = self._q()["msgs"]
                visible = heapq.nsmallest(n, ((m[1], m[2], mid) for mid, m in msgs.items() if m[3] <= now))
                if visible or now >= deadline:
                    break
                self._s.lock.wait(deadline - now)
            out = []
            for _, _, mid in visible:
                m = msgs[mid]
                m[3] = now + lease
                m[4] = f"{mid}.{uuid.uuid4().hex}"
                out.append(Message(m[0], m[4]))
            return out

    def _send_leased(self, body: str, priority: int, lease: float) -> Message:
        """Enqueue ``body`` already leased to the caller for ``lease`` seconds (the caller holds the lock)."""
        mid = uuid.uuid4().hex
        receipt = f"{mid}.{uuid.uuid4().hex}"
        self._q()["msgs"][mid] = [body, priority, next(self._s.seq), time.monotonic() + lease, receipt]
        return Message(body, receipt)

    def _best_visible(self) -> int | None:
        """The best priority of a visible message (the caller holds the lock); None if none is."""
        now = time.monotonic()
        return min((m[1] for m in self._q()["msgs"].values() if m[3] <= now), default=None)

    def _live(self, receipt: str) -> list | None:
        m = self._q()["msgs"].get(receipt.split(".", 1)[0])
        if m is None or m[4] != receipt or m[3] <= time.monotonic():
            return None
        return m

    def renew(self, receipt: str, lease: float) -> bool:
        with self._s.lock:
            m = self._live(receipt)
            if m is None:
                return False
            m[3] = time.monotonic() + lease
            return True

    def ack(self, receipt: str) -> bool:
        with self._s.lock:
            if self._live(receipt) is None:
                return False
            del self._q()["msgs"][receipt.split(".", 1)[0]]
            return True

    def depth(self) -> int:
        with self._s.lock:
            return len(self._q()["msgs"])

    def purge(self) -> None:
        with self._s.lock:
            self._q()["msgs"].clear()

    def delete(self) -> None:
        with self._s.lock:
            self._s.queues.pop(self.name, None)

    def counts(self) -> tuple[int, int]:
        now = time.monotonic()
        with self._s.lock:
            msgs = self._q()["msgs"].values()
            leased = sum(1 for m in msgs if m[3] > now)
            return len(msgs) - leased, leased


class MemoryStateStore(StateStore):
    """Job records, task completion, heartbeats and records in dicts, each operation under the space's lock."""

    def __init__(self, name: str = "default"):
        self.url = f"memory://{name}"
        self._s = space(name)

    def _job(self, job: str) -> dict:
        rec = self._s.jobs.get(job)
        if rec is None:
            raise KeyError(job)
        return rec

    def create_job(self, job: str, description: str) -> None:
        with self._s.lock:
            if job in self._s.jobs:
                raise ValueError(f"job {job!r} already exists")
            self._s.jobs[job] = {"status": "running", "description": description, "counters": {}, "error": None,
                                 "done": set(), "parents": {}, "executors": {}, "records": {}}

    def job(self, job: str) -> dict:
        with self._s.lock:
            r = self._job(job)
            return {"status": r["status"], "description": r["description"], "counters": dict(r["counters"]),
                    "error": r["error"]}

    def status(self, job: str) -> str:
        with self._s.lock:
            return self._job(job)["status"]

    def set_status(self, job: str, status: str, error: str | None = None) -> bool:
        with self._s.lock:
            r = self._job(job)
            if r["status"] != "running":
                return False
            r["status"], r["error"] = status, error
            return True

    def add_counters(self, job: str, deltas: dict[str, float]) -> None:
        with self._s.lock:
            c = self._s.jobs.get(job, {}).get("counters")
            if c is None:
                return
            for k, v in deltas.items():
                c[k] = c.get(k, 0) + v

    def complete(self, job: str, task: str, children: list[tuple[str, int]]) -> list[str]:
        with self._s.lock:
            r = self._s.jobs.get(job)
            if r is None:
                return []
            parents = r["parents"]
            if task not in r["done"]:
                r["done"].add(task)
                r["counters"]["completed"] = r["counters"].get("completed", 0) + 1
                for child, _ in children:
                    parents[child] = parents.get(child, 0) + 1
            return [child for child, indeg in children if parents.get(child, 0) == indeg]

    def complete_with_status(self, job: str, task: str, children: list[tuple[str, int]]) -> Completion:
        with self._s.lock:
            ready = self.complete(job, task, children)
            r = self._s.jobs.get(job)
            if r is None:
                return Completion(ready, None)
            return Completion(ready, r["status"], int(r["counters"].get("completed", 0)))

    def progress(self, job: str, task: str | None = None) -> Progress:
        with self._s.lock:
            r = self._job(job)
            done = task in r["done"] if task is not None else None
            return Progress(r["status"], int(r["counters"].get("completed", 0)), done)

    def is_done(self, job: str, task: str) -> bool:
        with self._s.lock:
            r = self._s.jobs.get(job)
            return r is not None and task in r["done"]

    def ledger(self, queue: TaskQueue) -> Ledger:
        if isinstance(queue, MemoryTaskQueue) and queue.space is self._s:
            return MemoryLedger(self, queue)
        return super().ledger(queue)

    def job_ids(self) -> list[str]:
        with self._s.lock:
            return list(self._s.jobs)

    def delete_job(self, job: str) -> None:
        with self._s.lock:
            self._s.jobs.pop(job, None)

    def heartbeat(self, job: str, executor: str, ttl: float, exited: bool = False) -> None:
        now = time.time()
        with self._s.lock:
            r = self._s.jobs.get(job)
            if r is None:
                return
            e = r["executors"].setdefault(executor, {"executor": executor, "started": now, "exited": False})
            e["last_seen"] = now
            e["until"] = now + ttl
            e["exited"] = e["exited"] or exited

    def executors(self, job: str) -> list[dict]:
        now = time.time()
        with self._s.lock:
            r = self._s.jobs.get(job)
            if r is None:
                return []
            return [{"executor": e["executor"], "started": e["started"], "last_seen": e["last_seen"],
                     "live": not e["exited"] and e["until"] > now, "exited": e["exited"]}
                    for e in r["executors"].values()]

    def append_records(self, job: str, kind: str, records: list[str]) -> None:
        with self._s.lock:
            r = self._s.jobs.get(job)
            if r is not None and records:
                r["records"].setdefault(kind, []).extend(records)

    def records(self, job: str, kind: str) -> list[str]:
        with self._s.lock:
            r = self._s.jobs.get(job)
            return list(r["records"].get(kind, [])) if r is not None else []


class MemoryLedger(Ledger):
    """``Ledger.finish_many`` for a state store and a queue in one space: the base class's sequence, made
    one atomic step by holding the space's (re-entrant) lock across it, with the claims of the fused
    ledgers."""

    fused = True
    state: MemoryStateStore
    queue: MemoryTaskQueue

    def finish_many(self, job: str, items: list[Finish], counters: dict[str, float] | None = None,
                    claim: int = 0, lease: float = 30.0) -> Finished:
        state, queue = self.state, self.queue
        with queue.space.lock:
            if counters:
                state.add_counters(job, dict(counters))
                counters.clear()
            readies = [state.complete(job, it.task, [(k, d) for k, d, _ in it.children]) for it in items]
            r = queue.space.jobs.get(job)
            status = r["status"] if r is not None else None
            claimed = []
            if status == "running":
                pending: dict[str, int] = {}
                for it, ready in zip(items, readies):
                    for k, p in ready_items(it.children, ready):
                        pending.setdefault(k, p)
                wanted = {k: t for it in items for k, t in it.claim}
                if claim and any(k in wanted for k in pending):
                    done = {wanted[k] for k in pending if k in wanted and state.is_done(job, wanted[k])}
                    for k in plan_claims(list(pending.items()), wanted, done, queue._best_visible(), claim):
                        claimed.append(queue._send_leased(k, pending.pop(k), lease))
                queue.send_many(list(pending.items()))
            for it in items:
                queue.ack(it.receipt)
            completed = int(r["counters"].get("completed", 0)) if r is not None else None
            return Finished([Completion(ready, status, completed) for ready in readies], claimed)
