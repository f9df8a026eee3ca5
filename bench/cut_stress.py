"""S3 and SQS calls through a ``TcpProxy`` cut again and again: does any call return a wrong answer?

moto_server behind a proxy that is cut (every connection reset, the client's side closed first: see
``numpywren2.testing.proxy``) for ``--down`` seconds every ``--every`` seconds; ``--threads`` threads each loop
over four calls: an SQS queue's ``depth()`` and ``counts()`` (the queue holds ``MESSAGES`` messages, none
received, so both answers are known), an S3 listing of two tiles and a read of one.  Every answer is
checked; a wrong one (a depth other than ``MESSAGES``, a listing without both keys, a tile that differs,
``QueueLostError`` for a queue that exists) is counted and printed.  Outage errors (``OutageError``: a call
that met more than ``NPW_OUTAGE_S`` of cuts) are counted apart: they are right (a clear error).  The number
of answers cut short and asked again (``aws.WholeAnswer``) is counted in this process.

``--unchecked`` runs the same calls without ``aws.WholeAnswer``'s check (the behaviour before it), the reference
that shows the cuts do reach answers; results in bench/RESULTS.md.

    .venv/bin/python bench/cut_stress.py [--seconds 120] [--threads 6] [--every 0.02] [--down 0.01]
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import threading
import time
import uuid

import numpy as np

from numpywren2.core.backends import OutageError, QueueLostError, aws, open_queue, open_store
from numpywren2.testing import MotoServer, TcpProxy

# read when the clients are made and the calls ride out cuts (not at import)
for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
             "NPW_OUTAGE_S": "60"}.items():
    os.environ.setdefault(k, v)

MESSAGES = 7
TILE = np.arange(16.0).reshape(4, 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=float, default=120.0)
    ap.add_argument("--threads", type=int, default=6)
    ap.add_argument("--every", type=float, default=0.02, help="seconds up between cuts")
    ap.add_argument("--down", type=float, default=0.01, help="seconds each cut lasts")
    ap.add_argument("--unchecked", action="store_true",
                    help="without aws.WholeAnswer's check (as before it): answers cut short are parsed")
    args = ap.parse_args()

    cut_short = collections.Counter()
    check = aws.WholeAnswer.__call__

    def counted(self, operation_model, response_dict, **kw):
        if args.unchecked:
            return None
        try:
            return check(self, operation_model, response_dict, **kw)
        except aws.AnswerCutShortError:
            cut_short[operation_model.name] += 1
            raise

    aws.WholeAnswer.__call__ = counted
    moto = MotoServer()
    proxy = TcpProxy(moto.port)
    tag = uuid.uuid4().hex[:8]
    queue_url = f"sqs://?endpoint_url={proxy.endpoint}&prefix=stress{tag}-"
    store_url = f"s3://npw-stress-{tag}/t?endpoint_url={proxy.endpoint}&create=1"
    open_queue(queue_url, "job").send([f"m{i}" for i in range(MESSAGES)])
    store = open_store(store_url)
    store.put("m/0_0", TILE)
    store.put("m/0_1", TILE)
    stop = threading.Event()
    calls, wrong, outages = collections.Counter(), [], collections.Counter()
    lock = threading.Lock()

    def loop(queue, store, k: int) -> None:
        checks = [("depth", queue.depth, lambda r: r == MESSAGES),
                  ("counts", queue.counts, lambda r: r == (MESSAGES, 0)),
                  ("list", lambda: sorted(store.list("m/")), lambda r: r == ["m/0_0", "m/0_1"]),
                  ("get", lambda: store.get("m/0_1"), lambda r: np.array_equal(r, TILE))]
        i = k
        while not stop.is_set():
            name, call, right = checks[i % len(checks)]
            i += 1
            try:
                result = call()
                ok = right(result)
            except OutageError:
                with lock:
                    outages[name] += 1
                continue
            except QueueLostError as e:
                result, ok = e, False
            with lock:
                calls[name] += 1
                if not ok:
                    wrong.append((name, repr(result)[:200]))
                    print(f"WRONG {name}: {result!r:.200}", flush=True)

    threads = [threading.Thread(target=loop, args=(open_queue(queue_url, "job"), open_store(store_url), k),
                                daemon=True) for k in range(args.threads)]  # opened before the cuts begin
    for t in threads:
        t.start()
    cuts, end = 0, time.monotonic() + args.seconds
    try:
        while time.monotonic() < end:
            time.sleep(args.every)
            proxy.cut()
            time.sleep(args.down)
            proxy.restore()
            cuts += 1
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=120)
        proxy.close()
        moto.stop()
    print(f"{time.strftime('%Y-%m-%d')}  {platform.processor() or platform.machine()}  "
          f"{'unchecked' if args.unchecked else 'checked'}  {args.seconds:g} s, "
          f"{args.threads} threads, cut {args.down:g} s every {args.every:g} s: {cuts} cuts")
    print(f"calls answered: {dict(calls)}  wrong: {len(wrong)}  outage errors: {dict(outages)}")
    print(f"answers cut short and asked again: {dict(cut_short)}")
    raise SystemExit(1 if wrong else 0)


if __name__ == "__main__":
    main()
