"""End to end on the embedded runtime: real executor processes sharing only files and SQLite."""

from __future__ import annotations

import os
import signal
import textwrap
import time
import uuid

import numpy as np
import pytest
from gates import gated_add, gated_double

import lambdapack as lp
import numpywren2 as npw
from numpywren2.core.signing import signed_for


def spd(n: int, dtype=np.float64, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return (g @ g.T / n + np.eye(n)).astype(dtype)


@pytest.fixture
def rt():
    with npw.runtime(executors=2) as r:
        yield r


@pytest.mark.parametrize("executors", [1, 2, 4])
@pytest.mark.parametrize("n, block, dtype", [(256, 64, np.float64), (301, 64, np.float64), (200, 48, np.float32)])
def test_cholesky(rt, executors, n, block, dtype):
    X = spd(n, dtype)
    L = npw.cholesky(X, block_size=block, executors=executors)
    assert isinstance(L, npw.BigMatrix) and L.dtype == dtype
    Ln = np.asarray(L)
    eps = np.finfo(dtype).eps
    assert np.allclose(np.triu(Ln, 1), 0)
    assert np.linalg.norm(X - Ln @ Ln.T) / np.linalg.norm(X) <= 10 * n * eps


@pytest.mark.parametrize("blas", ["openblas", "auto"])
def test_cholesky_and_matmul_on_each_blas_of_the_kernels(monkeypatch, blas):
    """The executors' kernels on scipy's OpenBLAS and on the default (MKL where the mkl package is installed, as
    the test extra does on x86-64): right answers on ragged tiles in float64 and float32 either way."""
    monkeypatch.setenv("NPW_BLAS", blas)
    with npw.runtime(executors=2):
        for n, block, dtype in ((301, 64, np.float64), (200, 48, np.float32)):
            X = spd(n, dtype, seed=n)
            Ln = np.asarray(npw.cholesky(X, block_size=block))
            eps = np.finfo(dtype).eps
            assert Ln.dtype == dtype and not np.triu(Ln, 1).any()
            assert np.linalg.norm(X - Ln @ Ln.T) / np.linalg.norm(X) <= 10 * n * eps
            B = np.random.default_rng(n).standard_normal((n, 70)).astype(dtype)
            C = np.asarray(npw.matmul(X, B, block_size=block))
            assert np.linalg.norm(C - X @ B) / (np.linalg.norm(X) * np.linalg.norm(B)) <= 10 * n * eps


def test_an_unknown_blas_choice_fails_the_job_naming_npw_blas(monkeypatch):
    monkeypatch.setenv("NPW_BLAS", "atlas")
    with npw.runtime(executors=1), pytest.raises(ValueError, match=r"NPW_BLAS='atlas': expected one of auto, mkl"):
        npw.cholesky(spd(64), block_size=32)


def test_cholesky_upper_and_bigmatrix_input(rt):
    X = spd(130)
    A = npw.BigMatrix.from_numpy(X, 40)
    U = npw.cholesky(A, lower=False).numpy()
    assert np.allclose(U, np.linalg.cholesky(X).T)
    assert np.array_equal(A.numpy(), X)  # the input is untouched


@pytest.mark.parametrize("executors", [1, 2, 4])
@pytest.mark.parametrize("m, k, n, block, dtype", [(128, 128, 128, 32, np.float64), (97, 150, 61, 32, np.float64),
                                                   (50, 20, 70, 16, np.float32)])
def test_matmul(rt, m, k, n, block, dtype, executors):
    rng = np.random.default_rng(1)
    A, B = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    C = npw.matmul(A, B, block_size=block, executors=executors).numpy()
    assert C.dtype == dtype
    ref = A.astype(float) @ B.astype(float)
    assert np.linalg.norm(C - ref) / (np.linalg.norm(A) * np.linalg.norm(B)) <= 10 * k * np.finfo(dtype).eps


@pytest.mark.parametrize("executors", [1, 2, 4])
@pytest.mark.parametrize("m, n, rows", [(400, 20, 50), (333, 17, 40), (64, 8, 64)])
def test_tsqr(rt, m, n, rows, executors):
    A = np.random.default_rng(2).standard_normal((m, n))
    Q, R = npw.tsqr(A, block_size=rows, executors=executors)
    Qn, Rn = Q.numpy(), R.numpy()
    assert Qn.shape == (m, n) and Rn.shape == (n, n)
    assert np.linalg.norm(A - Qn @ Rn) / np.linalg.norm(A) <= 20 * m * np.finfo(float).eps
    assert np.linalg.norm(Qn.T @ Qn - np.eye(n)) <= 20 * m * np.finfo(float).eps


@lp.kernel
def slow_double(x, seconds):
    time.sleep(seconds)
    return 2 * x


@lp.kernel
def plus(a, b):
    return a + b


def user_program():
    return lp.Program.from_source(textwrap.dedent("""
        def chain(X: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = slow_double(X[i, 0], 0.05)
            Z[0, 0] = plus(Y[0, 0], Y[0, 0])
            for i in range(1, N):
                Z[i, 0] = plus(Z[i - 1, 0], Y[i, 0])
    """), {"slow_double": slow_double, "plus": plus}, filename="user_chain.py")


def gated_chain() -> lp.Program:
    """The user chain with its first chain task held at gate 1 (tests/gates.py)."""
    return lp.Program.from_source(textwrap.dedent("""
        def chain(X: lp.Matrix, Y: lp.Matrix, Z: lp.Matrix, N: int):
            for i in range(N):
                Y[i, 0] = double(X[i, 0], 0.0, 0)
            Z[0, 0] = add(Y[0, 0], Y[0, 0], 0.0, 1)
            for i in range(1, N):
                Z[i, 0] = add(Z[i - 1, 0], Y[i, 0], 0.0, 0)
    """), {"double": gated_double, "add": gated_add}, filename="gated_chain.py")


def test_user_program_with_user_kernels(rt):
    N = 6
    X = npw.BigMatrix.from_numpy(np.arange(N, dtype=float)[:, None] + 1, (1, 1))
    Y = npw.BigMatrix.empty((N, 1), (1, 1))
    Z = npw.BigMatrix.empty((N, 1), (1, 1))
    job = npw.submit(user_program(), X=X, Y=Y, Z=Z, N=N)
    job.wait(timeout=120)
    ys = 2 * (np.arange(N) + 1.0)
    assert np.allclose(Y.numpy()[:, 0], ys)
    expected = np.cumsum(ys) + ys[0]
    assert np.allclose(Z.numpy()[:, 0], expected)
    st = job.stats()
    assert st["tasks"] == job.num_tasks == 2 * N and st["bytes_written"] > 0 and st["kernel_s"] >= 0.05 * N


def test_stats_report_flops_and_gflops_per_kernel_from_the_ragged_tiles(rt):
    n, b = 70, 30  # tiles of 30, 30 and 10 rows: the edge tiles are ragged
    A = npw.BigMatrix.from_numpy(spd(n), b)
    L = npw.BigMatrix.empty((n, n), b)
    N = A.grid[0]
    job = npw.submit(npw.programs.cholesky, A=A, L=L, N=N)
    job.wait(timeout=120)
    st = job.stats()
    # the textbook counts, tile by tile: potrf b³/3, trsm m b², syrk b_j² b, gemm 2 m n b
    size = [min(b, n - i * b) for i in range(N)]
    want = {"chol": sum(size[k] ** 3 / 3 for k in range(N)),
            "trsm": sum(size[i] * size[k] ** 2 for k in range(N) for i in range(k + 1, N)),
            "syrk": sum(size[j] ** 2 * size[k] for k in range(N) for j in range(k + 1, N)),
            "gemm_nt": sum(2 * size[i] * size[j] * size[k] for k in range(N) for j in range(k + 1, N)
                           for i in range(j + 1, N))}
    tasks = {"chol": N, "trsm": N * (N - 1) // 2, "syrk": N * (N - 1) // 2, "gemm_nt": N * (N - 1) * (N - 2) // 6}
    assert set(st["kernels"]) == set(want)
    for name, k in st["kernels"].items():
        assert k["tasks"] == tasks[name] and k["flops"] == pytest.approx(want[name], rel=1e-12)
        assert k["kernel_s"] > 0 and 0 < k["gflops"] < float("inf")
        assert k["gflops"] == pytest.approx(k["flops"] / k["kernel_s"] / 1e9)
    assert st["flops"] == pytest.approx(sum(want.values()), rel=1e-12)
    assert abs(st["flops"] - n**3 / 3) <= n * n * b  # n³/3 plus lower-order terms
    assert 0 < st["gflops"] < float("inf") and st["gflops"] == pytest.approx(st["flops"] / st["wall_s"] / 1e9)
    assert all(r["kernel"] in want and r["flops"] > 0 for r in job.task_records())


def test_every_builtin_kernel_counts_its_flops_and_a_bad_formula_counts_none():
    from numpywren2.core.kernels import BUILTIN

    assert [name for name, k in BUILTIN.items() if k.flops is None] == []
    tile = np.ones((3, 2))
    assert BUILTIN["matmul"].count_flops(tile, tile.T) == 2 * 3 * 2 * 3
    assert lp.kernel(flops=lambda a: a.missing)(lambda a: a).count_flops(tile) is None  # the formula fails
    assert lp.kernel(flops=lambda a: -1)(lambda a: a).count_flops(tile) is None
    assert lp.kernel(lambda a: a).count_flops(tile) is None  # no formula


def test_non_spd_input_raises_linalg_error_naming_the_task(rt):
    X = spd(120)
    X[70, 70] = -50.0
    with pytest.raises(np.linalg.LinAlgError, match=r"task chol@L18\(k=2\) \(line 18 of .*cholesky.py\)"):
        npw.cholesky(X, block_size=30)


def run_chain_killing_an_executor(N: int, gates) -> None:
    """Run the gated chain on the current runtime, SIGKILL the executor in the middle of the chain's first
    task (held at its gate), then open the gate; check the answer."""
    X = npw.BigMatrix.from_numpy(np.arange(N, dtype=float)[:, None], (1, 1))
    Z = npw.BigMatrix.empty((N, 1), (1, 1))
    job = npw.submit(gated_chain(), X=X, Y=npw.BigMatrix.empty((N, 1), (1, 1)), Z=Z, N=N, executors=2, lease=1.0)
    [pid] = gates.wait_started(1)
    assert pid in {p.pid for p in job.local_executors}
    os.kill(pid, signal.SIGKILL)
    gates.open(1)
    job.wait(timeout=120)
    ys = 2 * np.arange(N, dtype=float)
    assert np.allclose(Z.numpy()[:, 0], np.cumsum(ys) + ys[0])
    assert job.stats()["tasks"] == job.num_tasks  # nothing counted twice
    assert len(gates.started(1)) >= 2, "the killed task ran again"


def test_killing_an_executor_mid_job_still_completes(rt, gates):
    run_chain_killing_an_executor(40, gates)


def test_wait_reports_executors_that_cannot_start(rt):
    from provisioner import LocalProcessLauncher, ProvisionerSettings

    N = 30
    X = npw.BigMatrix.from_numpy(np.ones((N, 1)), (1, 1))
    job = npw.submit(user_program(), X=X, Y=npw.BigMatrix.empty((N, 1), (1, 1)),
                     Z=npw.BigMatrix.empty((N, 1), (1, 1)), N=N, launcher=LocalProcessLauncher(python="false"),
                     settings=ProvisionerSettings(poll_interval=0.1, max_failed_starts=3))
    with pytest.raises(npw.JobFailedError, match=r"\d executors in a row exited with an error \(last exit code 1\)"):
        job.wait(timeout=60)


def test_bad_arguments_are_clear_errors(rt):
    X = npw.BigMatrix.from_numpy(spd(40), 20)
    L = npw.BigMatrix.from_numpy(np.ones((40, 40)), 20)
    with pytest.raises(ValueError, match="is not empty"):
        npw.submit(npw.programs.cholesky, A=X, L=L, N=2)
    with pytest.raises(ValueError, match="square matrix"):
        npw.cholesky(np.ones((4, 3)))
    with pytest.raises(ValueError, match="not aligned"):
        npw.matmul(np.ones((4, 3)), np.ones((4, 3)))
    with pytest.raises(TypeError, match="unknown argument"):
        npw.submit(npw.programs.cholesky, A=X, Q=X, N=2)
    with pytest.raises(TypeError, match="input matrix A not given"):
        npw.submit(npw.programs.cholesky, N=2)
    with npw.runtime() as other:
        with pytest.raises(ValueError, match="belongs to the runtime it was created under"):
            npw.submit(npw.programs.cholesky, A=X, N=2, runtime=other)


def test_scratch_tiles_are_freed_once_consumed_and_result(rt):
    n, b = 160, 32
    A = npw.BigMatrix.from_numpy(spd(n), b)
    L = npw.BigMatrix.empty((n, n), b)
    job = npw.submit(npw.programs.cholesky, A=A, L=L, N=5)
    assert job.result(timeout=120) == {"L": L}
    d = npw.programs.cholesky.bind(N=5)
    s_tiles = sum(1 for t in d.tasks() for m, _ in d.writes(t) if m == "S")
    # S tiles are deleted by the executors of their readers while the job runs, gathered and deleted at most every
    # status_interval after a watermark write (the first at once); the last ones gathered may go with the clean-up
    assert 1 <= job.stats()["tiles_freed"] <= s_tiles
    assert rt.store.list(f"{job.id}/") == []


def test_default_embedded_runtime_out_of_the_box():
    X = spd(90)
    L = npw.cholesky(X, block_size=32)
    assert np.allclose(L.numpy(), np.linalg.cholesky(X))
    assert npw.current_runtime() is L.runtime or L.store.url == npw.current_runtime().store.url


def test_generators_run_in_executors_and_are_deterministic(rt):
    A = npw.random.spd(300, 64, seed=3)
    X = A.numpy()
    assert np.allclose(X, X.T) and np.linalg.eigvalsh(X).min() > 0
    assert np.array_equal(npw.random.spd(300, 64, seed=3).numpy(), X)
    assert not np.array_equal(npw.random.spd(300, 64, seed=4).numpy(), X)
    L = npw.cholesky(A).numpy()
    assert np.linalg.norm(X - L @ L.T) / np.linalg.norm(X) <= 10 * 300 * np.finfo(float).eps
    G = npw.random.normal((130, 70), (32, 20), seed=1)
    assert G.grid == (5, 4) and G.get_tile(4, 3).shape == (2, 10)
    g = G.numpy()
    assert np.array_equal(g, npw.random.normal((130, 70), (32, 20), seed=1).numpy())
    assert abs(g.mean()) < 0.05 and abs(g.std() - 1) < 0.05


def test_progress_cancel_and_idle_executors(rt, capsys):
    X = npw.random.normal((64, 64), 16, seed=0)
    assert X.grid == (4, 4)
    job = npw.submit(npw.programs.gemm, A=X, B=X, C=npw.BigMatrix.empty((64, 64), 16), M=4, N=4, K=4)
    job.wait(timeout=60, progress=True)
    assert capsys.readouterr().err == ""  # the bar shows on a terminal only (tests/test_cli.py shows it)
    st = job.stats()
    assert st["status"] == "done" and st["tasks"] == job.num_tasks
    # cancelling a running job stops it and wait() says so
    N = 200
    slow = npw.submit(user_program(), X=npw.BigMatrix.from_numpy(np.ones((N, 1)), (1, 1)),
                      Y=npw.BigMatrix.empty((N, 1), (1, 1)), Z=npw.BigMatrix.empty((N, 1), (1, 1)), N=N)
    slow.cancel()
    assert slow.status() == "cancelled"
    with pytest.raises(npw.JobFailedError, match="cancelled"):
        slow.wait(timeout=30)
    for p in slow.local_executors:
        assert p.wait(timeout=30) == 0  # executors notice and stop by themselves


def test_executor_stops_after_idle_timeout(rt):
    import subprocess
    import sys

    X = npw.BigMatrix.from_numpy(np.ones((2, 1)), (1, 1))
    job = npw.submit(user_program(), X=X, Y=npw.BigMatrix.empty((2, 1), (1, 1)),
                     Z=npw.BigMatrix.empty((2, 1), (1, 1)), N=2)
    job.wait(timeout=60)
    # a running job with nothing queued: the executor must retire after its idle timeout
    rt.state.create_job("idle-job", signed_for(rt.state.job(job.id)["description"], "idle-job", rt.secret()))
    subprocess.run([sys.executable, "-m", "executor", "--store", rt.urls["store"], "--queue", rt.urls["queue"],
                    "--state", rt.urls["state"], "--job", "idle-job", "--idle-timeout", "1.0"], check=True, timeout=120)
    assert rt.state.job("idle-job")["counters"]["executors"] == 1
    [entry] = rt.state.executors("idle-job")
    assert entry["exited"] and entry["last_seen"] - entry["started"] >= 1.0, "it waited out its idle timeout"


def test_cholesky_and_executor_kill_with_redis_queue_and_state(redis_server, tmp_path, gates):
    prefix = f"?prefix=e2e{os.getpid()}:"
    with npw.runtime(store=f"file://{tmp_path}/tiles", queue=redis_server.url + prefix,
                     state=redis_server.url + prefix, executors=2):
        X = spd(257)
        L = npw.cholesky(X, block_size=64).numpy()
        assert np.linalg.norm(X - L @ L.T) / np.linalg.norm(X) <= 10 * 257 * np.finfo(float).eps
        run_chain_killing_an_executor(30, gates)


@pytest.mark.parametrize("queue_kind", ["sqs", "redis"])
def test_cloud_backends_end_to_end(redis_server, moto_server, queue_kind, gates):
    """Tiles in S3, tasks in SQS or Redis, state in Redis, executors started as `python -m executor`."""
    tag = f"{queue_kind}{uuid.uuid4().hex[:10]}"
    store = f"s3://npw-e2e-{tag}/jobs?endpoint_url={moto_server.endpoint}&create=1"
    queue = (f"sqs://?endpoint_url={moto_server.endpoint}&prefix={tag}-" if queue_kind == "sqs"
             else f"{redis_server.url}?prefix={tag}:")
    with npw.runtime(store=store, queue=queue, state=f"{redis_server.url}?prefix={tag}:", executors=2) as r:
        X = spd(200)
        L = npw.cholesky(X, block_size=64).numpy()
        assert np.linalg.norm(X - L @ L.T) / np.linalg.norm(X) <= 10 * 200 * np.finfo(float).eps
        rng = np.random.default_rng(5)
        A, B = rng.standard_normal((90, 70)), rng.standard_normal((70, 50))
        Cm = npw.matmul(A, B, block_size=32)
        assert np.allclose(Cm.numpy(), A @ B)
        assert f"{Cm.name}/meta" in r.store.list()  # the matrices really live in S3
        # an executor killed mid-job: its leased task reappears and the job completes correctly
        run_chain_killing_an_executor(16, gates)


def test_unreachable_servers_fail_fast_at_runtime(tmp_path):
    from numpywren2.core.backends import BackendError
    from numpywren2.testing import reserved_port

    with reserved_port() as port:  # refuses connections, and no other process can take it meanwhile
        t0 = time.monotonic()
        with pytest.raises(BackendError, match="cannot reach Redis"):
            with npw.runtime(store=f"file://{tmp_path}/tiles", queue=f"redis://127.0.0.1:{port}/0",
                             state=f"redis://127.0.0.1:{port}/0"):
                pass
        with pytest.raises(BackendError, match="cannot reach S3"):
            npw.runtime(store=f"s3://b?endpoint_url=http://127.0.0.1:{port}&retries=1",
                        queue=f"sqlite://{tmp_path}/x.db", state=f"sqlite://{tmp_path}/x.db").__enter__()
        assert time.monotonic() - t0 < 30


def test_redis_restart_without_persistence_is_reported(tmp_path, gates):
    from conftest import RedisServer

    server = RedisServer(tmp_path)
    try:
        with npw.runtime(store=f"file://{tmp_path}/tiles", queue=server.url, state=server.url, executors=2):
            N = 8
            job = npw.submit(gated_chain(), X=npw.BigMatrix.from_numpy(np.ones((N, 1)), (1, 1)),
                             Y=npw.BigMatrix.empty((N, 1), (1, 1)), Z=npw.BigMatrix.empty((N, 1), (1, 1)), N=N)
            gates.wait_started(1)  # the job is running, and cannot finish while the gate is closed
            server.stop()
            restarted = RedisServer(tmp_path, port=server.port)  # same address, empty: the job state is gone
            try:
                with pytest.raises(npw.JobFailedError, match="has lost job"):
                    job.wait(timeout=60)
            finally:
                restarted.stop()
    finally:
        server.stop()


def test_a_runtime_with_local_executors_starts_the_zygote_and_one_without_does_not(monkeypatch):
    from executor.warm import WarmStarter

    started = []
    monkeypatch.setattr(WarmStarter, "prestart", classmethod(lambda cls, prefix=(): started.append(prefix)))
    with npw.runtime(executors=0):
        assert started == [], "executors run elsewhere: no zygote here"
    with npw.runtime(executors=2):
        assert started == [()], "started when the runtime is made, not at the first launch"
    monkeypatch.setenv("NPW_COLD_START", "1")
    with npw.runtime(executors=2):
        assert started == [()], "cold starts: no zygote"


def test_a_zygote_started_in_the_background_is_the_one_executors_fork_from():
    from executor.warm import WarmStarter

    WarmStarter.prestart().join(timeout=60)
    z = WarmStarter._instances[()]
    assert z.alive()
    WarmStarter.prestart().join(timeout=60)  # running already: not started again
    assert WarmStarter.shared() is z and z.alive()
    p = WarmStarter.start(["--help"])
    assert p.wait(timeout=60) == 0 and WarmStarter._instances[()] is z


def test_warm_started_executors_run_jobs_report_exit_codes_and_can_be_killed():
    # (that they see the caller's environment at launch is shown by the cloud tests: AWS credentials)
    from executor.warm import WarmStarter

    ok = WarmStarter.start(["--help"])
    bad = WarmStarter.start(["--no-such-flag"])
    assert ok.wait(timeout=60) == 0 and ok.poll() == 0
    assert bad.wait(timeout=60) == 2  # argparse's usage error
    with npw.runtime(executors=0) as rt:
        A = npw.BigMatrix.from_numpy(spd(40), 20)
        L = npw.BigMatrix.empty((40, 40), 20)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=2)
        args = ["--store", rt.urls["store"], "--queue", rt.urls["queue"], "--state", rt.urls["state"],
                "--job", job.id, "--idle-timeout", "60"]
        p = WarmStarter.start(args)
        job.wait(timeout=60)
        assert np.allclose(L.numpy() @ L.numpy().T, A.numpy())
        assert p.poll() is None or p.poll() == 0
        p.kill()
        assert p.wait(timeout=30) in (0, -signal.SIGKILL)
