"""A client process for the outage tests: ``python outage_client.py TILES REDIS_URL OUT``.

It submits a fan of two chains (``T[i] = 2 X[i]``, ``T`` scratch; ``Y[i] = 2 T[i]``, ``Y[1]`` waiting at gate 1 of
``NPW_TEST_GATES``) on a runtime of
files (``TILES``) and one Redis server, writes the job's id to ``OUT/job`` and waits for it.  When ``wait``
raises (the test stops the server for longer than ``NPW_OUTAGE_S``) it writes the error to ``OUT/failed``, then
blocks until the test kills it: a client that gave up on the job and exited before the server came back.
"""

from __future__ import annotations

import sys
import textwrap
import threading
from pathlib import Path

import numpy as np

import lambdapack as lp
import numpywren2 as npw
from numpywren2.testing.gates import gated_double_marked


def main(tiles: str, url: str, out: str) -> None:
    out_dir = Path(out)
    program = lp.Program.from_source(textwrap.dedent("""
        def fan(X: lp.Matrix, T: lp.Matrix, Y: lp.Matrix, N: int):
            for i in range(N):
                T[i, 0] = double(X[i, 0], 0)
                Y[i, 0] = double(T[i, 0], i)
    """), {"double": gated_double_marked}, filename="fan.py")
    with npw.runtime(store=f"file://{tiles}", queue=url, state=url, executors=1):
        X = npw.BigMatrix.from_numpy(np.arange(1.0, 3.0).reshape(2, 1), (1, 1), name="X")
        Y = npw.BigMatrix.empty((2, 1), (1, 1), name="Y")
        job = npw.submit(program, X=X, Y=Y, N=2)
        (out_dir / "job.tmp").write_text(job.id)
        (out_dir / "job.tmp").rename(out_dir / "job")
        try:
            job.wait(timeout=120)
        except npw.JobFailedError as e:
            (out_dir / "failed.tmp").write_text(str(e))
            (out_dir / "failed.tmp").rename(out_dir / "failed")
        threading.Event().wait()  # until killed


if __name__ == "__main__":
    main(*sys.argv[1:4])
