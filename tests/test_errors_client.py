"""The client's lifecycle errors: deleted matrices, matrices nobody holds, runtime directories after a
signal or a crash, Redis servers that never answer, matrices of another runtime (issue 11, items 6,
10, 12 and 14).

Processes and servers are real: runtimes in subprocesses that are sent SIGTERM or SIGKILL once they
have said (on stdout) that they are ready, a TCP listener that accepts connections and never
answers, the loopback redis-server of the ``redis_server`` fixture.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import numpywren2 as npw
from numpywren2.client.matrix import MatrixNotFoundError
from numpywren2.client.runtime import clean_stale_roots, open_queue, open_store
from numpywren2.core.backends import BackendError, LocalFileStore


def spd(n: int, seed: int = 0) -> np.ndarray:
    G = np.random.default_rng(seed).standard_normal((n, n))
    return G @ G.T + n * np.eye(n)


def keys(store) -> list[str]:
    return store.list("")


# --------------------------------------------------------------------------- item 6: reading a deleted matrix


def test_reading_a_deleted_matrix_raises_naming_it(tmp_path):
    store = LocalFileStore(tmp_path)
    A = npw.BigMatrix.from_numpy(np.arange(12.0).reshape(3, 4), 2, store=store, name="M")
    other = npw.BigMatrix.open(store, "M")  # a second handle: the check is on the store, not a flag
    A.delete()
    for handle in (A, other):
        for read in (handle.numpy, lambda h=handle: h.get_tile(0, 0), lambda h=handle: np.asarray(h)):
            with pytest.raises(MatrixNotFoundError, match=r"matrix M .* was deleted"):
                read()
    with pytest.raises(MatrixNotFoundError, match="matrix M"):
        A.put_tile(0, 0, np.ones((2, 2)))
    with pytest.raises(KeyError, match="no matrix named 'M'"):  # MatrixNotFoundError is a KeyError
        npw.BigMatrix.open(store, "M")
    assert keys(store) == []


def test_a_tile_never_written_still_reads_as_zeros(tmp_path):
    store = LocalFileStore(tmp_path)
    E = npw.BigMatrix.empty((4, 4), 2, store=store, name="E")
    assert not E.numpy().any() and not E.get_tile(1, 0).any()
    E.put_tile(1, 0, np.ones((2, 2)))
    assert E.numpy().sum() == 4
    with npw.runtime(executors=1):
        L = npw.cholesky(spd(8), block_size=4)  # the upper triangle's tiles are never written
        assert not L.get_tile(0, 1).any() and np.allclose(np.triu(L.numpy(), 1), 0)


# --------------------------------------------------------------------------- item 12: freeing what nobody holds


def test_ten_choleskys_leave_nothing_in_the_store():
    X1500 = spd(1500)
    with npw.runtime(executors=2) as rt:
        for _ in range(10):
            L = npw.cholesky(X1500, block_size=750).numpy()
        gc.collect()
        assert keys(rt.store) == []
    assert np.allclose(L @ L.T, X1500)


def test_a_matrix_kept_by_name_or_persist_or_opened_is_not_freed(tmp_path):
    with npw.runtime(store=f"file://{tmp_path}/tiles", queue=f"sqlite://{tmp_path}/q.db",
                     state=f"sqlite://{tmp_path}/q.db", executors=1) as rt:
        anonymous = npw.BigMatrix.from_numpy(np.ones((4, 4)), 2)
        named = npw.BigMatrix.from_numpy(np.ones((4, 4)), 2, name="kept")
        L = npw.cholesky(spd(8), block_size=4)
        assert L.persist() is L and L.persistent and not anonymous.persistent
        opened = npw.BigMatrix.open(rt.store, anonymous.name)
        factor = L.name
        del opened
        gc.collect()
        assert f"{anonymous.name}/meta" in keys(rt.store)  # the open handle did not free it
        del anonymous, named, L
        gc.collect()
        assert {k.split("/")[0] for k in keys(rt.store)} == {"kept", factor}
        still = npw.BigMatrix.open(rt.store, factor)
        assert np.allclose(still.numpy() @ still.numpy().T, spd(8))


def test_a_job_holds_its_matrices_while_it_runs():
    with npw.runtime(executors=0) as rt:  # no executors: the job stays running
        A = npw.BigMatrix.from_numpy(spd(8), 4)
        L = npw.BigMatrix.empty((8, 8), 4)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=2)
        names = A.name, L.name
        del A, L, job  # neither the user nor a Job handle: the runtime holds the running job
        gc.collect()
        assert all(f"{n}/meta" in keys(rt.store) for n in names)
        job = rt.running_jobs[next(iter(rt.running_jobs))]
        job.cancel()  # ended: the runtime lets go; the last handle goes with the Job
        del job
        gc.collect()
        assert keys(rt.store) == []


def test_matrices_left_when_a_runtime_closes_are_freed_and_reading_them_says_so(tmp_path):
    unraisable = []
    previous, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with npw.runtime(store=f"file://{tmp_path}/tiles", queue=f"sqlite://{tmp_path}/q.db",
                         state=f"sqlite://{tmp_path}/q.db", executors=1) as rt:
            L = npw.cholesky(spd(8), block_size=4)
            kept = npw.BigMatrix.from_numpy(np.ones((2, 2)), 2).persist()
        assert {k.split("/")[0] for k in LocalFileStore(tmp_path / "tiles").list()} == {kept.name}
        with pytest.raises(MatrixNotFoundError, match=f"matrix {L.name}"):
            L.numpy()
        del L  # its finalizer on a closed runtime: nothing happens, nothing is printed
        gc.collect()
    finally:
        sys.unraisablehook = previous
    assert unraisable == [] and rt.closed


# --------------------------------------------------------------------------- item 12: runtime directories

READY = "import sys, numpy as np, numpywren2 as npw\n"


def start(script: str, root: Path, **popen) -> tuple[subprocess.Popen, Path]:
    """A Python process running ``script``, which must print its runtime's directory when ready."""
    env = dict(os.environ, NPW_ROOT=str(root))
    p = subprocess.Popen([sys.executable, "-c", READY + textwrap.dedent(script)], env=env, text=True,
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, **popen)
    line = p.stdout.readline().strip()
    assert line, f"the process exited early ({p.wait()})"
    return p, Path(line)


WITH_EXECUTORS = """
    rt = npw.current_runtime()
    L = npw.cholesky(np.eye(8) * 4, block_size=4, executors=1)  # a job ran: its executor is still idle
    print(rt.urls["store"][len("file://"):-len("/tiles")], flush=True)
    sys.stdin.readline()
"""


def test_sigterm_removes_the_default_runtime_directory(tmp_path):
    p, root = start(WITH_EXECUTORS, tmp_path)
    assert root.is_dir() and root.parent == tmp_path
    p.send_signal(signal.SIGTERM)
    assert p.wait() == -signal.SIGTERM  # it still dies of the signal
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("exits", [True, False])
def test_sigterm_chains_a_handler_the_user_installed(tmp_path, exits):
    script = f"""
    import signal
    def handler(signum, frame):
        print("user handler", flush=True)
        if {exits}:
            sys.exit(3)
    signal.signal(signal.SIGTERM, handler)
    """ + WITH_EXECUTORS + """
    print("went on", flush=True)
    """
    p, root = start(script, tmp_path)
    p.send_signal(signal.SIGTERM)
    assert p.stdout.readline() == "user handler\n"
    if not exits:  # the handler returned: the process goes on, with its runtime
        assert root.is_dir()
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline() == "went on\n"
    assert p.wait() == (3 if exits else 0)
    assert list(tmp_path.iterdir()) == []


def test_a_killed_process_directory_is_removed_at_start_up_and_a_live_one_is_kept(tmp_path, monkeypatch):
    script = """
        rt = npw.current_runtime()
        print(rt.urls["store"][len("file://"):-len("/tiles")], flush=True)
        sys.stdin.readline()
    """
    live, live_root = start(script, tmp_path)
    dead, dead_root = start(script, tmp_path)
    dead.kill()
    assert dead.wait() == -signal.SIGKILL and dead_root.is_dir()  # SIGKILL leaves it
    old = tmp_path / "numpywren2-abcdefgh"  # named like ours, no lock file (an older version's): left alone
    other = tmp_path / "not-ours"
    for d in (old, other):
        d.mkdir()
        (d / "lock").touch() if d is other else None
    orphan = open_store(f"file://{dead_root}/tiles")  # like an executor that outlived its client
    assert clean_stale_roots(str(tmp_path)) == []
    orphan._root_lock.close()
    monkeypatch.setenv("NPW_ROOT", str(tmp_path))
    rt = npw.Runtime()  # start-up removes the dead process's directory
    try:
        assert not dead_root.exists() and live_root.is_dir() and old.is_dir() and other.is_dir()
        with pytest.raises(BackendError, match="no longer exists"):  # never re-created by a late executor
            open_store(f"file://{dead_root}/tiles")
        assert not dead_root.exists()
    finally:
        rt.close()
    live.stdin.close()
    assert live.wait() == 0 and not live_root.exists()


def test_interpreter_exit_with_matrices_alive_is_quiet(tmp_path):
    script = """
        A = npw.BigMatrix.from_numpy(np.ones((4, 4)), 2)
        L = npw.cholesky(np.eye(4) * 4, block_size=2, executors=1)
        print(npw.current_runtime().urls["store"][len("file://"):-len("/tiles")], flush=True)
    """
    p, _ = start(script, tmp_path, stderr=subprocess.PIPE)
    _, err = p.communicate()
    assert p.returncode == 0 and err == "" and list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- item 10: Redis timeouts


def test_a_redis_that_never_answers_fails_runtime_creation_within_seconds(tmp_path):
    from numpywren2.core.backends.redis import CONNECT_TIMEOUT

    mute = socket.socket()  # accepts connections (the kernel's backlog) and never answers
    mute.bind(("127.0.0.1", 0))
    mute.listen(16)
    url = f"redis://:secret@127.0.0.1:{mute.getsockname()[1]}/0"
    errors: dict[str, BaseException] = {}

    def create(what: str) -> None:
        try:
            if what == "state":
                npw.Runtime(store=f"file://{tmp_path}/tiles", queue=f"sqlite://{tmp_path}/q.db", state=url)
            else:
                open_queue(url, "job-1")
        except BaseException as e:
            errors[what] = e

    t0 = time.monotonic()
    threads = [threading.Thread(target=create, args=(w,)) for w in ("state", "queue")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    mute.close()
    assert set(errors) == {"state", "queue"}
    for e in errors.values():
        assert isinstance(e, BackendError)
        assert f"redis://:***@127.0.0.1:{url.rsplit(':', 1)[1]}" in str(e) and "did not answer" in str(e)
        assert "secret" not in str(e)
    assert elapsed < 3 * CONNECT_TIMEOUT  # not the 60 s of a socket timeout


def test_redis_clients_have_timeouts_and_the_real_server_works(redis_server, tmp_path):
    from numpywren2.core.backends.redis import CONNECT_TIMEOUT, SOCKET_TIMEOUT, socket_timeout

    with npw.runtime(store=f"file://{tmp_path}/tiles", queue=f"{redis_server.url}?prefix=t10:",
                     state=f"{redis_server.url}?prefix=t10:", executors=1) as rt:
        L = npw.cholesky(spd(8), block_size=4).numpy()
        assert np.allclose(L @ L.T, spd(8))
        for client in (rt.state.client, rt.queue("job-x").client):
            kw = client.connection_pool.connection_kwargs
            assert kw["socket_connect_timeout"] == CONNECT_TIMEOUT
            assert kw["socket_timeout"] == socket_timeout(redis_server.url) <= SOCKET_TIMEOUT


# --------------------------------------------------------------------------- item 14: moving a matrix


def test_a_matrix_moves_to_another_runtime_with_to():
    X = spd(8)
    home = npw.runtime(executors=1)
    with home as rt1:
        A = npw.BigMatrix.from_numpy(X, 4)
        with npw.runtime(executors=1) as rt2:
            with pytest.raises(ValueError, match=r"copy it into this one with A\.to\(runtime\)"):
                npw.submit(npw.programs.cholesky, A=A, L=npw.BigMatrix.empty((8, 8), 4), N=2)
            B = A.to(rt2)
            assert B.store is rt2.store and B.name != A.name and not B.persistent
            assert np.array_equal(B.numpy(), X) and A.to(rt1) is A
            L = npw.cholesky(B).numpy()
            assert np.allclose(L @ L.T, X)
            named = npw.BigMatrix.from_numpy(X, 4, name="shared")
            assert named.to(rt1).name == "shared"
            with pytest.raises(ValueError, match="already holds a matrix named 'shared'"):
                named.to(rt1)
        A.delete()
        with npw.runtime(executors=0) as rt3, pytest.raises(MatrixNotFoundError, match=f"matrix {A.name}"):
            A.to(rt3)
