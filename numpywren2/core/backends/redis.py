"""Redis task queue and state store: every multi-key step is one Lua script.

A Lua script runs atomically on the server (no other command interleaves), and
it is the only way to make "check, then update several keys" one step without
optimistic-locking retries.  Time comes from the server (``TIME``), so leases
do not depend on the clocks of the hosts that run executors.

Keys (``P`` is the key prefix from the URL, ``?prefix=``):

queue ``Q``
    ``P q:Q:ready``   sorted set: message id, score = priority·2^23 + (sequence mod 2^23)
                      (exact in a double for priorities below 2^30; FIFO within a priority
                      except across a wrap of the sequence every 8M messages)
    ``P q:Q:leased``  sorted set: message id, score = lease deadline (server time, seconds)
    ``P q:Q:body``    hash: id -> body;  ``P q:Q:score`` hash: id -> ready score
    ``P q:Q:receipt`` hash: id -> token of the live lease;  ``P q:Q:seq`` counter
job ``J``
    ``P job:J`` hash (status, description, error); ``P counters:J`` hash of floats;
    ``P done:J`` set of completed tasks; ``P edges:J`` hash: child -> done parents.
    When a job leaves "running" its keys expire after ``ttl`` seconds (default 7 days).
    ``P ex:J`` hash: executor -> "started last_seen expires exited" (server time);
    ``P rec:J:KIND`` list of records, ``P rec:J`` set of the kinds; these expire ``ttl`` seconds
    after their last write.
"""

from __future__ import annotations

import os
import time
import uuid
from typing import NamedTuple
from urllib.parse import parse_qs, urlencode, urlparse

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from ..signing import redact_url
from .base import (
    BackendError,
    Completion,
    Finish,
    Finished,
    Ledger,
    Message,
    Progress,
    StateStore,
    TaskQueue,
    outage_timeout,
    with_retries,
)

CONNECT_TIMEOUT = 5.0  # seconds to connect, and for a new client's first answer (PING)
SOCKET_TIMEOUT = 30.0  # the longest wait for any reply afterwards (``socket_timeout``)
# No command used here blocks on the server (no BLPOP or BZPOPMIN: the queue's ``receive(wait=...)`` polls
# with short scripts and sleeps on the client), so any reply later than the socket timeout means a stuck
# server or a link that drops packets silently.


def socket_timeout(url: str) -> float:
    """Seconds a client of ``url`` waits for a reply before it gives the call up (``redis.TimeoutError``,
    the connection closed): ``base.outage_timeout`` of the URL's ``?socket_timeout=``, else a quarter of
    ``outage_s()`` between ``MIN_TIMEOUT`` (1 s) and ``SOCKET_TIMEOUT`` (15 s for the default outage_s of 60 s).

    ``with_retries`` tries a timed-out call again on a new connection until ``outage_s`` has passed since
    its first attempt began, so a call on a link that drops packets without a reset never waits for ever
    (redis-py's default has no timeout).

    >>> socket_timeout("redis://h:6379/0?socket_timeout=2.5")
    2.5
    """
    return outage_timeout(url, "socket_timeout", SOCKET_TIMEOUT)


def redact(url: str) -> str:
    """``url`` without its password (for messages); ``signing.redact_url``.

    >>> redact("rediss://:s3cret@cache.example:6379/0?prefix=npw:")
    'rediss://:***@cache.example:6379/0?prefix=npw:'
    """
    return redact_url(url)


PASSWORD_ENV = "NPW_REDIS_PASSWORD"  # the password of a redis:// URL that gives none (kept out of argv)


def connect(url: str) -> tuple[redis.Redis, str]:
    """A client for ``redis://[:password@]host:port/db?prefix=...`` (or ``rediss://``), checked with PING.

    A server that cannot be reached, or that accepts the connection but does not answer, is a
    ``BackendError`` naming the URL after at most ``CONNECT_TIMEOUT`` seconds (the check uses a
    client of its own with that socket timeout; the returned client waits ``socket_timeout(url)``).
    """
    u = urlparse(url)
    query = parse_qs(u.query)
    prefix = query.pop("prefix", ["npw:"])[0]
    clean = u._replace(query=urlencode(query, doseq=True)).geturl()  # TLS options (ssl_ca_certs=...) stay
    auth = {}
    if u.password is None and os.environ.get(PASSWORD_ENV):
        auth["password"] = os.environ[PASSWORD_ENV]
    probe = redis.Redis.from_url(clean, socket_connect_timeout=CONNECT_TIMEOUT, socket_timeout=CONNECT_TIMEOUT,
                                 retry=Retry(NoBackoff(), 0), **auth)  # one try: the timeout is the bound
    where = f"{u.hostname}:{u.port or 6379} ({redact(url)})"
    try:
        probe.ping()
    except redis.TimeoutError as e:
        raise BackendError(f"Redis at {where} did not answer within {CONNECT_TIMEOUT:g} s ({e}); "
                           "is it a Redis server, and is it reachable and not overloaded?") from e
    except redis.RedisError as e:
        if isinstance(e, redis.AuthenticationError) or "auth" in str(e).lower():
            raise BackendError(f"Redis at {where} refused this client's password, or wants one ({e}); give it in "
                               f"the URL (redis://:PASSWORD@host) or in ${PASSWORD_ENV}") from e
        raise BackendError(f"cannot reach Redis at {where}: {e}; "
                           "is redis-server running and the URL right?") from e
    finally:
        probe.close()
    timeout = socket_timeout(url)
    # one try per call (redis-py's Retry with 0 retries): a timed-out call is retried by ``with_retries``, which
    # counts the time against ``outage_s``; connections idle for ``timeout`` are checked with a PING first
    client = redis.Redis.from_url(clean, socket_connect_timeout=min(CONNECT_TIMEOUT, timeout), socket_timeout=timeout,
                                  health_check_interval=max(1, int(timeout)), retry=Retry(NoBackoff(), 0), **auth)
    return client, prefix


MAX_PRIORITY = 2**30


class QueueKeys(NamedTuple):
    """The Redis keys of one queue, in the order every script that acts on a queue takes them:
    ``KEYS[1]`` to ``KEYS[6]``, named in Lua by the ``_QUEUE`` fragment (``Q.ready``, ``Q.leased``...).

    This is the queue's interface for scripts that act on it together with other keys (the fused
    ``RedisLedger``): they pass these six first and use the queue's own Lua functions on them.
    """

    ready: str
    leased: str
    body: str
    score: str
    receipt: str
    seq: str


# --------------------------------------------------------------------------- Lua fragments
# Each piece of the protocol is spelled once, as a Lua function; the scripts below are put together
# from these fragments (a script is one atomic step, so a fused step must contain the code it fuses).

_NOW = """
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1e6
end
"""

# The queue's keys (KEYS[1..6], see QueueKeys) and its operations on them.
_QUEUE = _NOW + """
local Q = {ready = KEYS[1], leased = KEYS[2], body = KEYS[3], score = KEYS[4], receipt = KEYS[5], seq = KEYS[6]}

-- Enqueue one body with its priority.
local function enqueue(priority, body)
  local id = redis.call('INCR', Q.seq)
  local score = tonumber(priority) * 8388608 + id % 8388608
  redis.call('HSET', Q.body, id, body)
  redis.call('HSET', Q.score, id, score)
  redis.call('ZADD', Q.ready, score, id)
end

-- Enqueue one body with its priority, leased from the start until deadline under token; its id.
local function enqueue_leased(priority, body, deadline, token)
  local id = redis.call('INCR', Q.seq)
  redis.call('HSET', Q.body, id, body)
  redis.call('HSET', Q.score, id, tonumber(priority) * 8388608 + id % 8388608)
  redis.call('ZADD', Q.leased, deadline, id)
  redis.call('HSET', Q.receipt, id, token)
  return id
end

-- Whether message id holds a live lease with this token (only such a lease may be renewed or acknowledged).
local function live_lease(id, token)
  local deadline = redis.call('ZSCORE', Q.leased, id)
  return deadline and tonumber(deadline) > now() and redis.call('HGET', Q.receipt, id) == token
end

-- Delete the message of a live lease; 0 if the lease was lost.
local function ack(id, token)
  if not live_lease(id, token) then return 0 end
  redis.call('ZREM', Q.leased, id)
  redis.call('HDEL', Q.receipt, id)
  redis.call('HDEL', Q.body, id)
  redis.call('HDEL', Q.score, id)
  return 1
end
"""

# Complete a task: marking it done and counting its edges happen together, once; readiness is
# answered every time.  args[first], args[first + 1] are a child and its in-degree, every stride
# arguments up to args[last].  Returns the positions in args of the ready children.
_COMPLETE_TASK = """
local function complete(done, counters, edges, task, args, first, last, stride)
  if redis.call('SADD', done, task) == 1 then
    redis.call('HINCRBYFLOAT', counters, 'completed', 1)
    for i = first, last, stride do redis.call('HINCRBY', edges, args[i], 1) end
  end
  local ready = {}
  for i = first, last, stride do
    local c = redis.call('HGET', edges, args[i])
    if c and tonumber(c) >= tonumber(args[i + 1]) then table.insert(ready, i) end
  end
  return ready
end
"""

# --------------------------------------------------------------------------- queue scripts (KEYS: QueueKeys)

# ARGV: priority, body pairs.
_SEND = _QUEUE + """
for i = 1, #ARGV, 2 do enqueue(ARGV[i], ARGV[i + 1]) end
return (#ARGV) / 2
"""

# ARGV: n, lease seconds, token...  Expired leases go back to the ready set first, then up to n
# messages are leased.
_RECEIVE = _QUEUE + """
local t = now()
local expired = redis.call('ZRANGEBYSCORE', Q.leased, '-inf', t)
for _, id in ipairs(expired) do
  redis.call('ZREM', Q.leased, id)
  redis.call('HDEL', Q.receipt, id)
  redis.call('ZADD', Q.ready, redis.call('HGET', Q.score, id), id)
end
local got = redis.call('ZPOPMIN', Q.ready, tonumber(ARGV[1]))
local out = {}
for i = 1, #got, 2 do
  local id = got[i]
  local token = ARGV[2 + (i + 1) / 2]
  redis.call('ZADD', Q.leased, t + tonumber(ARGV[2]), id)
  redis.call('HSET', Q.receipt, id, token)
  table.insert(out, redis.call('HGET', Q.body, id))
  table.insert(out, id .. ':' .. token)
end
return out
"""

# ARGV: id, token, lease seconds.
_RENEW = _QUEUE + """
if not live_lease(ARGV[1], ARGV[2]) then return 0 end
redis.call('ZADD', Q.leased, now() + tonumber(ARGV[3]), ARGV[1])
return 1
"""

# ARGV: id, token.
_ACK = _QUEUE + """
return ack(ARGV[1], ARGV[2])
"""

# Leases that have run out count as visible (the next receive requeues them).
_COUNTS = _QUEUE + """
local expired = redis.call('ZCOUNT', Q.leased, '-inf', now())
return {redis.call('ZCARD', Q.ready) + expired, redis.call('ZCARD', Q.leased) - expired}
"""


class RedisTaskQueue(TaskQueue):
    def __init__(self, url: str, name: str):
        self.client, prefix = connect(url)
        self.url = url
        self.name = name
        k = f"{prefix}q:{name}:"
        self.keys = QueueKeys(*(k + part for part in QueueKeys._fields))
        self._send = self.client.register_script(_SEND)
        self._receive = self.client.register_script(_RECEIVE)
        self._renew = self.client.register_script(_RENEW)
        self._ack = self.client.register_script(_ACK)
        self._counts = self.client.register_script(_COUNTS)

    def send(self, bodies: list[str], priority: int = 0) -> None:
        self.send_many([(b, priority) for b in bodies])

    def send_many(self, items: list[tuple[str, int]]) -> None:
        for i in range(0, len(items), 1000):  # bounded script arguments
            self._send(keys=self.keys, args=_pairs(items[i:i + 1000]))

    def same_server(self, client: redis.Redis) -> bool:
        """Whether ``client`` talks to this queue's Redis server and database."""
        a, b = self.client.connection_pool.connection_kwargs, client.connection_pool.connection_kwargs
        return all(a.get(k) == b.get(k) for k in ("host", "port", "db", "path"))

    def receive(self, n: int = 1, lease: float = 30.0, wait: float = 0.0) -> list[Message]:
        deadline = time.monotonic() + wait
        delay = 0.002
        while True:
            tokens = [uuid.uuid4().hex for _ in range(n)]
            flat = self._receive(keys=self.keys, args=[n, float(lease), *tokens])
            if flat or time.monotonic() >= deadline:
                return [Message(flat[i].decode(), flat[i + 1].decode()) for i in range(0, len(flat), 2)]
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.1)

    def renew(self, receipt: str, lease: float) -> bool:
        mid, token = receipt.split(":", 1)
        return self._renew(keys=self.keys, args=[mid, token, float(lease)]) == 1

    def ack(self, receipt: str) -> bool:
        mid, token = receipt.split(":", 1)
        return self._ack(keys=self.keys, args=[mid, token]) == 1

    def depth(self) -> int:
        with self.client.pipeline(transaction=True) as p:
            p.zcard(self.keys.ready)
            p.zcard(self.keys.leased)
            a, b = p.execute()
        return int(a) + int(b)

    def purge(self) -> None:
        self.client.delete(*self.keys)

    def counts(self) -> tuple[int, int]:
        visible, leased = self._counts(keys=self.keys)
        return int(visible), int(leased)

    def close(self) -> None:
        self.client.close()


def _pairs(items: list[tuple[str, int]]) -> list:
    args: list = []
    for body, priority in items:
        if not 0 <= int(priority) < MAX_PRIORITY:
            raise ValueError(f"priority {priority} outside [0, 2**30)")
        args += [int(priority), body]
    return args


_CREATE = """
-- KEYS: job.  ARGV: description.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'status', 'running', 'description', ARGV[1])
return 1
"""

_SET_STATUS = """
-- KEYS: job, counters, done, edges.  ARGV: status, error, ttl.  The first terminal status wins.
if redis.call('HGET', KEYS[1], 'status') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'status', ARGV[1], 'error', ARGV[2])
for i = 1, 4 do redis.call('EXPIRE', KEYS[i], tonumber(ARGV[3])) end
return 1
"""

# KEYS: done, counters, edges.  ARGV: task, then child, in-degree pairs.  Returns the ready children.
_COMPLETE = _COMPLETE_TASK + """
local ready = {}
for _, i in ipairs(complete(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV, 2, #ARGV, 2)) do table.insert(ready, ARGV[i]) end
return ready
"""

# complete, then the job's status, in one script.  KEYS: done, counters, edges, job.  ARGV as _COMPLETE.
# Returns the status ('' if the job record is gone), the completed counter, then the ready children.
_COMPLETE_WITH_STATUS = _COMPLETE_TASK + """
local ready = complete(KEYS[1], KEYS[2], KEYS[3], ARGV[1], ARGV, 2, #ARGV, 2)
local out = {redis.call('HGET', KEYS[4], 'status') or '', redis.call('HGET', KEYS[2], 'completed') or '0'}
for _, i in ipairs(ready) do table.insert(out, ARGV[i]) end
return out
"""

# Ledger.finish_many as one script (the queue and the state on one server): add the counters, complete
# each task, then, while the job is running, lease to the caller the ready children it claims
# (``plan_claims``: asked for, not done, no worse than any other ready child or visible message) and
# enqueue the others, each ready child once; acknowledge each live lease.
# KEYS: the queue's (QueueKeys), then done, counters, edges, job.
# ARGV: number of tasks, number of counters, counter name/increment pairs, claims wanted, lease seconds,
# lease token; then per task: task, message id, lease token, number of children, and per child: key,
# in-degree, priority, task key if the caller asks to claim it (else '').
# Returns the job's status ('' if its record is gone), the completed counter, then per task the number of
# its ready children and their keys, then the claimed children as key, receipt pairs.
_FINISH_MANY = _QUEUE + _COMPLETE_TASK + """
local n_tasks, n_counters = tonumber(ARGV[1]), tonumber(ARGV[2])
local p = 3
for _ = 1, n_counters do
  redis.call('HINCRBYFLOAT', KEYS[8], ARGV[p], ARGV[p + 1])
  p = p + 2
end
local claim, lease, token = tonumber(ARGV[p]), tonumber(ARGV[p + 1]), ARGV[p + 2]
p = p + 3
local tasks, readies = {}, {}
for t = 1, n_tasks do
  local first, last = p + 4, p + 3 + 4 * tonumber(ARGV[p + 3])
  tasks[t] = p
  readies[t] = complete(KEYS[7], KEYS[8], KEYS[9], ARGV[p], ARGV, first, last, 4)
  p = last + 1
end
local status = redis.call('HGET', KEYS[10], 'status') or ''
local out = {status, redis.call('HGET', KEYS[8], 'completed') or '0'}
for t = 1, n_tasks do
  table.insert(out, #readies[t])
  for _, i in ipairs(readies[t]) do table.insert(out, ARGV[i]) end
end
if status == 'running' then
  local seen, pending, cands, others = {}, {}, {}, {}
  for t = 1, n_tasks do
    for _, i in ipairs(readies[t]) do
      if not seen[ARGV[i]] then
        seen[ARGV[i]] = true
        if ARGV[i + 3] ~= '' and redis.call('SISMEMBER', KEYS[7], ARGV[i + 3]) == 0 then
          table.insert(cands, i)
        else
          table.insert(pending, i)
          table.insert(others, tonumber(ARGV[i + 2]))
        end
      end
    end
  end
  local chosen = {}
  if claim > 0 and #cands > 0 then
    local head = redis.call('ZRANGE', Q.ready, 0, 0, 'WITHSCORES')
    if #head > 0 then table.insert(others, math.floor(tonumber(head[2]) / 8388608)) end
    local best = nil
    for _, v in ipairs(others) do if best == nil or v < best then best = v end end
    table.sort(cands, function(a, b)
      local pa, pb = tonumber(ARGV[a + 2]), tonumber(ARGV[b + 2])
      if pa ~= pb then return pa < pb end
      return a < b
    end)
    for _, i in ipairs(cands) do
      if #chosen < claim and (best == nil or tonumber(ARGV[i + 2]) <= best) then
        table.insert(chosen, i)
      else
        table.insert(pending, i)
      end
    end
  else
    for _, i in ipairs(cands) do table.insert(pending, i) end
  end
  table.sort(pending)
  for _, i in ipairs(pending) do enqueue(ARGV[i + 2], ARGV[i]) end
  local deadline = now() + lease
  for n, i in ipairs(chosen) do
    local id = enqueue_leased(ARGV[i + 2], ARGV[i], deadline, token .. n)
    table.insert(out, ARGV[i])
    table.insert(out, id .. ':' .. token .. n)
  end
end
for t = 1, n_tasks do ack(ARGV[tasks[t] + 1], ARGV[tasks[t] + 2]) end
return out
"""


_HEARTBEAT = """
-- KEYS: executors hash.  ARGV: executor, ttl, exited (0/1), key ttl.  Keeps the first start time.
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local started, exited = now, tonumber(ARGV[3])
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local s, _, _, x = string.match(cur, '^(%S+) (%S+) (%S+) (%S+)$')
  started = tonumber(s)
  exited = math.max(exited, tonumber(x))
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.6f %.6f %.6f %d', started, now, now + tonumber(ARGV[2]), exited))
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return 1
"""


def _completion(reply: list[bytes]) -> Completion:
    """A script's ``{status, completed, ready children...}`` reply."""
    status = reply[0].decode()
    return Completion([r.decode() for r in reply[2:]], status or None, int(float(reply[1])))


class RedisStateStore(StateStore):
    def __init__(self, url: str, ttl: int = 7 * 24 * 3600):
        self.client, self.prefix = connect(url)
        self.url = url
        self.ttl = ttl
        self._create = self.client.register_script(_CREATE)
        self._set_status = self.client.register_script(_SET_STATUS)
        self._complete = self.client.register_script(_COMPLETE)
        self._complete_with_status = self.client.register_script(_COMPLETE_WITH_STATUS)
        self._heartbeat = self.client.register_script(_HEARTBEAT)

    def _keys(self, job: str) -> list[str]:
        p = self.prefix
        return [f"{p}job:{job}", f"{p}counters:{job}", f"{p}done:{job}", f"{p}edges:{job}"]

    def create_job(self, job: str, description: str) -> None:
        if not self._create(keys=self._keys(job)[:1], args=[description]):
            raise ValueError(f"job {job!r} already exists")

    def job(self, job: str) -> dict:
        k = self._keys(job)
        with self.client.pipeline(transaction=True) as p:
            p.hgetall(k[0])
            p.hgetall(k[1])
            rec, counters = p.execute()
        if not rec:
            raise KeyError(f"no job {job!r}")
        rec = {a.decode(): b.decode() for a, b in rec.items()}
        return {"status": rec["status"], "description": rec["description"], "error": rec.get("error") or None,
                "counters": {a.decode(): float(b) for a, b in counters.items()}}

    def status(self, job: str) -> str:
        st = self.client.hget(self._keys(job)[0], "status")
        if st is None:
            raise KeyError(f"no job {job!r}")
        return st.decode()

    def progress(self, job: str, task: str | None = None) -> Progress:
        k = self._keys(job)
        with self.client.pipeline(transaction=True) as p:
            p.hget(k[0], "status")
            p.hget(k[1], "completed")
            if task is not None:
                p.sismember(k[2], task)
            got = p.execute()
        if got[0] is None:
            raise KeyError(f"no job {job!r}")
        done = bool(got[2]) if task is not None else None
        return Progress(got[0].decode(), int(float(got[1] or 0)), done)

    def set_status(self, job: str, status: str, error: str | None = None) -> bool:
        return self._set_status(keys=self._keys(job), args=[status, error or "", self.ttl]) == 1

    def add_counters(self, job: str, deltas: dict[str, float]) -> None:
        if not deltas:
            return
        key = self._keys(job)[1]
        with self.client.pipeline(transaction=True) as p:
            for name, v in deltas.items():
                p.hincrbyfloat(key, name, float(v))
            p.execute()

    def complete(self, job: str, task: str, children: list[tuple[str, int]]) -> list[str]:
        k = self._keys(job)
        args = [task]
        for c, d in children:
            args += [c, int(d)]
        return [r.decode() for r in self._complete(keys=[k[2], k[1], k[3]], args=args)]

    def complete_with_status(self, job: str, task: str, children: list[tuple[str, int]]) -> Completion:
        k = self._keys(job)
        args = [task]
        for c, d in children:
            args += [c, int(d)]
        return _completion(self._complete_with_status(keys=[k[2], k[1], k[3], k[0]], args=args))

    def ledger(self, queue: TaskQueue) -> Ledger:
        if isinstance(queue, RedisTaskQueue) and queue.same_server(self.client):
            return RedisLedger(self, queue)
        return super().ledger(queue)

    def is_done(self, job: str, task: str) -> bool:
        return bool(self.client.sismember(self._keys(job)[2], task))

    def done_many(self, job: str, tasks: list[str]) -> list[bool]:
        if not tasks:
            return []
        return [bool(x) for x in self.client.smismember(self._keys(job)[2], tasks)]

    def job_ids(self) -> list[str]:
        head = f"{self.prefix}job:"
        pattern = "".join("\\" + ch if ch in "*?[]\\" else ch for ch in head) + "*"
        return [k.decode()[len(head):] for k in self.client.scan_iter(match=pattern, count=500)]

    def delete_job(self, job: str) -> None:
        kinds = [k.decode() for k in self.client.smembers(f"{self.prefix}rec:{job}")]
        self.client.delete(*self._keys(job), f"{self.prefix}ex:{job}", f"{self.prefix}rec:{job}",
                           *(f"{self.prefix}rec:{job}:{k}" for k in kinds))

    def close(self) -> None:
        self.client.close()

    def heartbeat(self, job: str, executor: str, ttl: float, exited: bool = False) -> None:
        self._heartbeat(keys=[f"{self.prefix}ex:{job}"], args=[executor, float(ttl), int(exited), self.ttl])

    def executors(self, job: str) -> list[dict]:
        with self.client.pipeline(transaction=False) as p:
            p.time()
            p.hgetall(f"{self.prefix}ex:{job}")
            (sec, usec), rows = p.execute()
        now = sec + usec / 1e6
        out = []
        for name, value in rows.items():
            started, seen, expires, exited = value.decode().split()
            out.append({"executor": name.decode(), "started": float(started), "last_seen": float(seen),
                        "live": exited == "0" and float(expires) > now, "exited": exited == "1"})
        return out

    def append_records(self, job: str, kind: str, records: list[str]) -> None:
        if not records:
            return
        key, kinds = f"{self.prefix}rec:{job}:{kind}", f"{self.prefix}rec:{job}"
        with self.client.pipeline(transaction=True) as p:
            p.rpush(key, *records)
            p.sadd(kinds, kind)
            p.expire(key, self.ttl)
            p.expire(kinds, self.ttl)
            p.execute()

    def records(self, job: str, kind: str) -> list[str]:
        return [r.decode() for r in self.client.lrange(f"{self.prefix}rec:{job}:{kind}", 0, -1)]



class RedisLedger(Ledger):
    """``Ledger.finish_many`` as one Lua script (``_FINISH_MANY``), for a state store and a queue on one server.

    The script is built from the same fragments as the queue's ``_SEND`` and ``_ACK`` and the state
    store's ``_COMPLETE``; it reaches the queue through ``RedisTaskQueue.keys`` only.
    """

    fused = True
    state: RedisStateStore
    queue: RedisTaskQueue

    def __init__(self, state: RedisStateStore, queue: RedisTaskQueue):
        super().__init__(state, queue)
        self._script = state.client.register_script(_FINISH_MANY)

    def finish_many(self, job: str, items: list[Finish], counters: dict[str, float] | None = None,
                    claim: int = 0, lease: float = 30.0) -> Finished:
        pending = counters or {}
        args: list = [len(items), len(pending)]
        for name, v in pending.items():
            args += [name, float(v)]
        args += [int(claim), float(lease), uuid.uuid4().hex]
        for it in items:
            mid, token = it.receipt.split(":", 1)
            wanted = dict(it.claim)
            args += [it.task, mid, token, len(it.children)]
            for c, d, p in it.children:
                if not 0 <= int(p) < MAX_PRIORITY:
                    raise ValueError(f"priority {p} outside [0, 2**30)")
                args += [c, int(d), int(p), wanted.get(c, "")]
        k = self.state._keys(job)
        keys = [*self.queue.keys, k[2], k[1], k[3], k[0]]
        reply = with_retries(self._script, keys, args)
        if counters:
            counters.clear()
        status = reply[0].decode() or None
        completed = int(float(reply[1]))
        pos, completions = 2, []
        for _ in items:
            n = int(reply[pos])
            completions.append(Completion([r.decode() for r in reply[pos + 1:pos + 1 + n]], status, completed))
            pos += 1 + n
        claimed = [Message(reply[i].decode(), reply[i + 1].decode()) for i in range(pos, len(reply), 2)]
        return Finished(completions, claimed)
