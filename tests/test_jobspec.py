"""The job description (``JobSpec``) and the one rule for a job's outcome (``job_outcome``).

- a spec survives its stored form unchanged, and the spec an executor and a provisioner parse is the
  one ``submit`` built;
- a description of an unknown version is an error naming the job, wherever it is read;
- ``JobSpec.tile_key`` is where the tiles of a real job are: inputs, outputs and scratch tiles, as an
  executor wrote them (checked at its ``written`` hook, before any scratch tile can be freed);
- ``job_outcome``'s cases, on records alone (no store, no process).
"""

from __future__ import annotations

import dataclasses
import json
import textwrap
import threading

import numpy as np
import pytest

import lambdapack as lp
import numpywren2 as npw
from executor.worker import Executor
from numpywren2.core import programs
from numpywren2.core.backends import open_queue, open_state, open_store
from numpywren2.core.jobspec import JOBSPEC_VERSION, JobSpec, JobSpecVersionError, MatrixMeta, tile_path
from numpywren2.core.outcome import JobOutcome, job_outcome, parse_error
from provisioner import LocalProcessLauncher, Provisioner

WAIT = 60


@lp.kernel
def scaled(x, alpha):
    return x * alpha


SCALE = lp.Program.from_source(textwrap.dedent("""
    def scale(A: lp.Matrix, B: lp.Matrix, T: lp.Matrix, N: int):
        for i in range(N):
            T[i, 0, 0] = scaled(A[i, 0], 2.0)
            B[i, 0] = scaled(T[i, 0, 0], 0.5)
"""), {"scaled": scaled}, filename="user_program.py")


@pytest.fixture
def rt():
    with npw.runtime(executors=0) as r:  # executors run in this process, where a test starts them
        yield r


def stored_spec(rt, job) -> JobSpec:
    return JobSpec.from_json(rt.state.job(job.id)["description"], job=job.id)


def spd(n: int) -> np.ndarray:
    g = np.random.default_rng(0).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


# =============================================================================== the stored form


def test_a_spec_survives_its_json_and_is_the_one_submit_built(rt):
    A = npw.BigMatrix.from_numpy(np.arange(12.0).reshape(6, 2), (2, 2))
    B = npw.BigMatrix.empty((6, 2), (2, 2))
    job = npw.submit(SCALE, A=A, B=B, N=3, check_finite={"A": "the input"})
    spec = job.spec
    assert JobSpec.from_json(spec.to_json()) == spec
    assert stored_spec(rt, job) == spec
    assert spec.params == {"N": 3} and spec.num_tasks == 6 and spec.scratch == ("T",)
    assert spec.prefixes == {"A": A.name, "B": B.name, "T": f"{job.id}/T"}
    assert spec.check_finite == {"A": "the input"}
    assert spec.matrices == {"A": MatrixMeta((6, 2), (2, 2), "<f8"), "B": MatrixMeta((6, 2), (2, 2), "<f8")}
    assert set(spec.kernels["scaled"]) == {"pickle"}  # a user's kernel travels by value
    d = json.loads(spec.to_json())
    assert d["version"] == JOBSPEC_VERSION and d["signature"].startswith("hmac-sha256:")  # readable, signed
    unsigned = dataclasses.replace(spec, signature=None)
    assert "signature" not in json.loads(unsigned.to_json())  # no empty slot
    assert JobSpec.from_json(unsigned.to_json()) == unsigned != spec
    bound, kernels = spec.bind()
    assert bound.num_tasks() == spec.num_tasks and kernels["scaled"](np.ones((1, 1)), 3.0)[0, 0] == 3.0
    job.cancel()


def test_a_spec_is_immutable():
    spec = JobSpec(program="{}", params={"N": 2}, prefixes={"A": "m"}, kernels={"k": {"builtin": "k"}}, num_tasks=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.num_tasks = 2
    for mapping in (spec.params, spec.prefixes, spec.kernels, spec.kernels["k"], spec.check_finite, spec.matrices):
        with pytest.raises(TypeError):
            mapping["x"] = 1
    params = {"N": 2}
    assert JobSpec(program="{}", params=params, prefixes={}, kernels={}, num_tasks=1).params is not params


def test_views_travel_as_tile_offsets_stored_only_when_a_job_has_views(rt):
    plain = JobSpec(program="{}", params={}, prefixes={"A": "m"}, kernels={}, num_tasks=1)
    assert "offsets" not in plain.to_data() and plain.tile_key("A", (1, 2)) == "m/1/2"
    spec = JobSpec(program="{}", params={}, prefixes={"A": "m", "S": "job/S"}, kernels={}, num_tasks=1,
                   offsets={"A": (2, 1)})
    again = JobSpec.from_json(spec.to_json())
    assert again == spec and again.to_data()["offsets"] == {"A": [2, 1]}
    assert again.tile_key("A", (1, 2)) == "m/3/3" and again.tile_key("S", (1, 2, 0)) == "job/S/1/2/0"
    X = np.arange(64.0).reshape(8, 8)
    A = npw.BigMatrix.from_numpy(X, 4)
    V, out = A[4:8, 0:8], npw.BigMatrix.empty((8, 4), 4)
    job = npw.submit(programs.transpose_all, A=V, X=out, GR=1, GC=2, executors=1)
    assert dict(job.spec.offsets) == {"A": (1, 0)} and job.spec.prefixes["A"] == A.name
    job.wait()
    assert np.array_equal(out.numpy(), X[4:8].T)


def test_the_executor_and_the_provisioner_parse_the_spec_submit_stored(rt):
    A = npw.BigMatrix.from_numpy(spd(8), 4)
    L = npw.BigMatrix.empty((8, 8), 4)
    job = npw.submit(programs.cholesky, A=A, L=L, N=2)
    x = Executor(open_store(rt.urls["store"]), open_queue(rt.urls["queue"], job.id), open_state(rt.urls["state"]),
                 job.id)
    p = Provisioner(rt.urls, job.id, LocalProcessLauncher(max_executors=1))
    assert x.spec == p.jobspec == job.spec and p.num_tasks == job.num_tasks
    assert x.bound.num_tasks() == job.num_tasks and x.scratch_root == f"{job.id}/"
    p.close()
    job.cancel()


@pytest.mark.parametrize("version", [JOBSPEC_VERSION + 1, 0, None, "1"])
def test_a_description_of_an_unknown_version_is_an_error_naming_the_job(rt, version):
    A = npw.BigMatrix.from_numpy(spd(8), 4)
    job = npw.submit(programs.cholesky, A=A, L=npw.BigMatrix.empty((8, 8), 4), N=2)
    d = job.spec.to_data()
    if version is None:
        del d["version"]
    else:
        d["version"] = version
    rt.state.create_job("job-from-elsewhere", json.dumps(d))
    said = "no version" if version is None else f"version {version!r}"
    with pytest.raises(JobSpecVersionError, match=f"job job-from-elsewhere has {said}; .* reads version 1 only"):
        JobSpec.from_json(rt.state.job("job-from-elsewhere")["description"], job="job-from-elsewhere")
    with pytest.raises(JobSpecVersionError, match="job-from-elsewhere"):
        Executor(open_store(rt.urls["store"]), open_queue(rt.urls["queue"], "job-from-elsewhere"),
                 open_state(rt.urls["state"]), "job-from-elsewhere")
    with pytest.raises(JobSpecVersionError, match="job-from-elsewhere"):
        Provisioner(rt.urls, "job-from-elsewhere", LocalProcessLauncher(max_executors=1))
    job.cancel()


def test_a_description_that_is_not_json_is_an_error_naming_the_job():
    with pytest.raises(ValueError, match="the description of job job-x is not JSON"):
        JobSpec.from_json('{"program": "x"', job="job-x")
    with pytest.raises(ValueError, match="the description of job job-x is not a JSON object"):
        JobSpec.from_json("[1]", job="job-x")


# =============================================================================== tile keys


def test_tile_key_is_where_a_real_job_keeps_its_tiles(rt):
    """A real Cholesky, run by an executor: every tile a task writes (scratch ``S`` included) is in the
    store under ``spec.tile_key`` when the task's outputs are written, the output matrix holds exactly
    the keys of the tiles written to it, and a ``BigMatrix`` names its tiles as the job does."""
    nb, b = 3, 4
    X = spd(nb * b)
    A = npw.BigMatrix.from_numpy(X, b)
    L = npw.BigMatrix.empty(X.shape, b)
    job = npw.submit(programs.cholesky, A=A, L=L, N=nb)
    spec = job.spec
    assert spec.tile_key("S", (2, 1, 0)) == f"{job.id}/S/2/1/0" == tile_path(spec.prefixes["S"], (2, 1, 0))
    seen, missing, lock = [], [], threading.Lock()

    def written(task):
        for m, idx in job.bound.writes(task):
            key = spec.tile_key(m, idx)
            with lock:
                seen.append((m, idx))
                if not rt.store.exists(key):
                    missing.append(key)

    x = Executor(open_store(rt.urls["store"]), open_queue(rt.urls["queue"], job.id), open_state(rt.urls["state"]),
                 job.id, idle_timeout=30.0, status_interval=0.05, hooks={"written": written})
    thread = threading.Thread(target=x.run, daemon=True)
    thread.start()
    job.wait(timeout=WAIT)
    thread.join(WAIT)
    assert not thread.is_alive() and not missing, missing
    written_to = {m for m, _ in seen}
    assert written_to == {"L", "S"} and len(seen) == sum(len(job.bound.writes(t)) for t in job.bound.tasks())
    L_keys = {spec.tile_key("L", idx) for m, idx in seen if m == "L"}
    assert set(rt.store.list(f"{L.name}/")) - {f"{L.name}/meta"} == L_keys
    assert L_keys == {L.tile_key(i, j) for i in range(nb) for j in range(i + 1)}  # the lower triangle
    assert all(spec.tile_key("A", (i, j)) == A.tile_key(i, j) and rt.store.exists(A.tile_key(i, j))
               for i in range(nb) for j in range(nb))
    assert np.allclose(L.numpy(), np.linalg.cholesky(X))


# =============================================================================== the outcome


def record(status="running", completed=None, error=None) -> dict:
    return {"status": status, "description": "{}", "counters": {} if completed is None else {"completed": completed},
            "error": error}


@pytest.mark.parametrize("rec, num_tasks, want", [
    (record(completed=None), 4, JobOutcome("running", 0, 4)),
    (record(completed=3), 4, JobOutcome("running", 3, 4)),
    (record(completed=4), 4, JobOutcome("done", 4, 4, mark_done=True)),
    (record(completed=5), 4, JobOutcome("done", 5, 4, mark_done=True)),
    (record(completed=None), 0, JobOutcome("done", 0, 0, mark_done=True)),  # a job of no tasks
    (record("done", completed=4), 4, JobOutcome("done", 4, 4)),  # recorded already: nothing to mark
    (record("failed", 4, '{"message": "boom"}'), 4, JobOutcome("failed", 4, 4, error={"message": "boom"})),
    (record("failed", 1, "disk full"), 4, JobOutcome("failed", 1, 4, error={"message": "disk full"})),
    (record("failed", 1, None), 4, JobOutcome("failed", 1, 4, error={})),
    (record("cancelled", 4), 4, JobOutcome("cancelled", 4, 4)),  # the first final status wins over the count
    (record("cancelled", 2), 4, JobOutcome("cancelled", 2, 4)),
    (record("abandoned", 2), 4, JobOutcome("abandoned", 2, 4, error={})),  # its reason is parsed as a failure's
])
def test_job_outcome(rec, num_tasks, want):
    out = job_outcome(rec, num_tasks)
    assert out == want
    assert out.ended == (want.status != "running")


def test_a_failed_jobs_task_error_is_kept_whole():
    err = {"task": "trsm(k=0, i=1)", "line": 12, "file": "cholesky.py", "type": "builtins.ValueError",
           "message": "bad tile", "traceback": "Traceback ..."}
    assert job_outcome(record("failed", 0, json.dumps(err)), 3).error == err
    assert parse_error("[1, 2]") == {"message": "[1, 2]"}  # JSON, but not an error record


def test_job_status_and_wait_follow_the_outcome(rt):
    """``Job.status`` and ``Job.wait`` on records the test writes: the client says what the rule says."""
    A = npw.BigMatrix.from_numpy(spd(8), 4)
    job = npw.submit(programs.cholesky, A=A, L=npw.BigMatrix.empty((8, 8), 4), N=2)
    assert job.status() == "running"
    with pytest.raises(TimeoutError, match=f"job {job.id}: 0/{job.num_tasks} tasks"):
        job.wait(timeout=0.0)
    rt.state.add_counters(job.id, {"completed": job.num_tasks})  # as the executors' completions count
    assert job.status() == "done" and rt.state.status(job.id) == "running"  # status() only reads
    assert job.wait(timeout=WAIT) is job and rt.state.status(job.id) == "done"  # wait() records it
