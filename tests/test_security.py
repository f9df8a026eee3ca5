"""Signed jobs, authenticated task messages, allow-listed kernels, isolated tenants (docs/security.md).

Every test runs real components: executors (in this process, or ``python -m executor``), a real
redis-server (with AUTH, with TLS), moto_server for S3.  An attacker is played by writes straight to
the state store or the queue, as anyone with access to those servers (but not to the key) can make.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from urllib.parse import urlparse

import boto3
import cloudpickle
import numpy as np
import pytest

import numpywren2 as npw
from executor.worker import Executor, JobRefusedError
from numpywren2.core import programs
from numpywren2.core.backends import BackendError, open_queue, open_state, open_store
from numpywren2.core.jobspec import JobSpec
from numpywren2.core.signing import (
    SigningKeyError,
    seal_message,
    sign_description,
    task_key,
)
from numpywren2.testing import RedisServer

WAIT = 60


def spd(n: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, n))
    return g @ g.T / n + np.eye(n)


def cholesky_job(n: int = 8, b: int = 4, seed: int = 0, executors: int | None = 0):
    X = spd(n, seed)
    A = npw.BigMatrix.from_numpy(X, b)
    L = npw.BigMatrix.empty((n, n), b)
    return npw.submit(programs.cholesky, A=A, L=L, N=n // b, executors=executors), X, L


def redis_url(server) -> str:
    return f"{server.url}?prefix=sec{uuid.uuid4().hex[:8]}:"


@pytest.fixture
def redis_rt(redis_server, tmp_path):
    url = redis_url(redis_server)
    with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=url, state=url, executors=0) as r:
        yield r


def executor_for(rt, job: str, **kw) -> Executor:
    return Executor(open_store(rt.urls["store"]), open_queue(rt.urls["queue"], job), open_state(rt.urls["state"]),
                    job, idle_timeout=kw.pop("idle_timeout", 0.5), **kw)


def run_executor_process(rt, job: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "executor", "--store", rt.urls["store"], "--queue", rt.urls["queue"],
                           "--state", rt.urls["state"], "--job", job, "--idle-timeout", "1"],
                          capture_output=True, text=True, timeout=120)


def rewrite_description(rt, job: str, text: str) -> None:
    """What a writer to the state server can do: replace a job's stored description."""
    st = rt.state
    st.client.hset(f"{st.prefix}job:{job}", "description", text)


class _TouchOnUnpickle:
    """A pickle that creates a file when it is loaded: the attacker's code."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


# =============================================================================== the key
def test_the_embedded_runtime_signs_with_a_key_of_its_own_readable_by_its_owner_only(monkeypatch):
    monkeypatch.delenv("NPW_SECRET", raising=False)
    monkeypatch.setenv("NPW_SECRET_FILE", "/nonexistent/npw-secret")
    X = spd(8)
    with npw.runtime(executors=1) as rt:
        key = Path(urlparse(rt.urls["state"]).path).parent / "secret"
        assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.stat().st_uid == os.getuid()
        L = npw.cholesky(X)
        assert np.allclose(L, np.linalg.cholesky(X))
        secret = key.read_text().strip()
        assert len(secret) == 64
        job, _, _ = cholesky_job()
        record = json.dumps(rt.state.job(job.id))
        assert "hmac-sha256:" in record and secret not in record, "signed, and the key is not in the record"
        job.cancel()


def test_a_non_embedded_runtime_without_a_key_refuses_to_submit_saying_how_to_set_one(redis_rt, monkeypatch,
                                                                                      tmp_path):
    monkeypatch.delenv("NPW_SECRET")
    monkeypatch.delenv("NPW_SECRET_FILE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.config/numpywren2/secret
    with pytest.raises(SigningKeyError, match=r"export NPW_SECRET=.*~/.config/numpywren2/secret.*0600"):
        cholesky_job()
    monkeypatch.setenv("NPW_SECRET", "short")
    with pytest.raises(SigningKeyError, match="shorter than 16 characters") as e:
        cholesky_job()
    assert "short" not in str(e.value).replace("shorter", ""), "the key is not in the error"


def test_a_key_file_must_be_private(redis_rt, monkeypatch, tmp_path):
    monkeypatch.delenv("NPW_SECRET")
    path = tmp_path / "npw-key"
    secret = "k" * 40
    path.write_text(secret + "\n")
    path.chmod(0o644)
    monkeypatch.setenv("NPW_SECRET_FILE", str(path))
    with pytest.raises(SigningKeyError, match=rf"accessible to other users \(mode 0644\); run `chmod 600 {path}`"):
        cholesky_job()
    path.chmod(0o600)
    job, X, L = cholesky_job()
    assert executor_for(redis_rt, job.id).run() == job.num_tasks
    job.wait(timeout=WAIT)
    assert np.allclose(L.numpy(), np.linalg.cholesky(X))
    assert secret not in json.dumps(redis_rt.state.job(job.id))


# =============================================================================== signed descriptions
def test_a_rewritten_description_is_refused_before_anything_is_unpickled(redis_rt, tmp_path):
    job, _, _ = cholesky_job()
    marker = tmp_path / "attacker-code-ran"
    d = json.loads(redis_rt.state.job(job.id)["description"])
    d["kernels"]["chol"] = {"pickle": base64.b64encode(cloudpickle.dumps(_TouchOnUnpickle(str(marker)))).decode()}
    rewrite_description(redis_rt, job.id, json.dumps(d))  # the old signature kept: it no longer verifies
    proc = run_executor_process(redis_rt, job.id)
    assert proc.returncode == 3, proc.stderr
    assert "does not verify" in proc.stderr
    assert not marker.exists(), "nothing of the description was unpickled"
    with pytest.raises(npw.JobFailedError,
                       match=rf"an executor refused job {job.id}: the signature .* does not verify"):
        job.wait(timeout=WAIT)
    secret = os.environ["NPW_SECRET"]
    assert secret not in proc.stderr and secret not in json.dumps(redis_rt.state.job(job.id))


def test_an_unsigned_or_resigned_description_is_refused(redis_rt):
    job, _, _ = cholesky_job()
    d = json.loads(redis_rt.state.job(job.id)["description"])
    del d["signature"]
    rewrite_description(redis_rt, job.id, json.dumps(d))
    with pytest.raises(JobRefusedError, match="is not signed"):
        executor_for(redis_rt, job.id)
    assert redis_rt.state.status(job.id) == "failed"

    job2, _, _ = cholesky_job()
    d = json.loads(redis_rt.state.job(job2.id)["description"])
    d["signature"] = sign_description(d, job2.id, b"another key, not the deployment's")
    rewrite_description(redis_rt, job2.id, json.dumps(d))
    with pytest.raises(JobRefusedError, match="does not verify"):
        executor_for(redis_rt, job2.id)


EVIL_MODULE = "npw_sec_untrusted_mod"
TRUSTED_MODULE = "npw_sec_trusted_kernels"
TRUSTED_SOURCE = textwrap.dedent("""
    import lambdapack as lp

    @lp.kernel
    def twice(a):
        return 2 * a

    @lp.program
    def double(A: lp.Matrix, B: lp.Matrix, N: int):
        for i in range(N):
            B[i, 0] = twice(A[i, 0])
""")


def test_ref_kernels_come_from_trusted_modules_only(redis_rt, tmp_path, monkeypatch):
    (tmp_path / f"{EVIL_MODULE}.py").write_text(f"open({str(tmp_path / 'imported')!r}, 'w').close()\n")
    (tmp_path / f"{TRUSTED_MODULE}.py").write_text(TRUSTED_SOURCE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))
    import importlib

    mod = importlib.import_module(TRUSTED_MODULE)
    X = np.arange(16.0).reshape(8, 2)
    # by default a user's kernel travels by value
    A = npw.BigMatrix.from_numpy(X[:, :1].copy(), (4, 1))
    job = npw.submit(mod.double, A=A, B=npw.BigMatrix.empty((8, 1), (4, 1)), N=2, executors=0)
    assert set(job.spec.kernels["twice"]) == {"pickle"}
    job.cancel()
    redis_rt.trusted_modules = (TRUSTED_MODULE,)
    B = npw.BigMatrix.empty((8, 1), (4, 1))
    job = npw.submit(mod.double, A=A, B=B, N=2, executors=0)
    assert dict(job.spec.kernels["twice"]) == {"ref": f"{TRUSTED_MODULE}:twice"}
    assert executor_for(redis_rt, job.id).run() == 2
    job.wait(timeout=WAIT)
    assert np.array_equal(B.numpy(), 2 * X[:, :1])

    # a description (signed by a key holder) naming a module outside the allow-list is refused unimported
    job, _, _ = cholesky_job()
    d = json.loads(redis_rt.state.job(job.id)["description"])
    d["kernels"]["chol"] = {"ref": f"{EVIL_MODULE}:chol"}
    d["signature"] = sign_description(d, job.id, os.environ["NPW_SECRET"].encode())
    rewrite_description(redis_rt, job.id, json.dumps(d))
    with pytest.raises(JobRefusedError, match=rf"'{EVIL_MODULE}:chol' is not in a trusted module"):
        executor_for(redis_rt, job.id)
    assert EVIL_MODULE not in sys.modules and not (tmp_path / "imported").exists()
    assert redis_rt.state.status(job.id) == "failed"


def test_trusted_modules_is_a_runtime_option(tmp_path):
    with npw.runtime(executors=0, trusted_modules=["mykernels"]) as rt:
        assert rt.trusted_modules == ("mykernels",)


# =============================================================================== task messages
def test_a_queue_writer_without_the_key_can_neither_run_nor_complete_anything(redis_rt):
    job, X, L = cholesky_job()
    q = job.queue
    q.purge()  # the real starters removed: only the attacker's messages are in the queue
    tasks = [t.to_json() for t in job.bound.tasks()]
    other_job = task_key(os.environ["NPW_SECRET"].encode(), "job-000000000000")
    forged = (tasks  # untagged copies of every task, premature ones included
              + [f"{t}~{'0' * 32}" for t in tasks]  # a made-up tag
              + [seal_message(task_key(b"a guess at the key, 40 bytes long......", job.id), t) for t in tasks]
              + [seal_message(other_job, t) for t in tasks])  # tagged for another job
    q.send(forged)
    started = []
    ex = executor_for(redis_rt, job.id, hooks={"start": started.append})
    assert ex.run() == 0
    assert started == [], "no forged message ran"
    assert not any(redis_rt.state.done_many(job.id, tasks)), "none completed anything"
    counters = redis_rt.state.job(job.id)["counters"]
    assert counters["tasks_forged"] == len(forged) and counters.get("completed", 0) == 0
    assert q.depth() == 0, "each was acknowledged"
    # the job's own messages, as a holder of the key sends them: it runs to the right answer
    key = task_key(redis_rt.secret(), job.id)
    q.send([seal_message(key, t.to_json()) for t in job.bound.starters()])
    assert executor_for(redis_rt, job.id).run() == job.num_tasks
    job.wait(timeout=WAIT)
    assert np.allclose(L.numpy(), np.linalg.cholesky(X))
    assert redis_rt.state.job(job.id)["counters"]["completed"] == job.num_tasks
    assert job.stats()["tasks_forged"] == len(forged) and job.stats()["tasks"] == job.num_tasks


# =============================================================================== isolation
def test_two_jobs_on_one_redis_and_one_bucket_prefix_cannot_reach_each_other(redis_server, moto_server):
    url = redis_url(redis_server)
    store = f"s3://npw-sec/shared{uuid.uuid4().hex[:6]}?endpoint_url={moto_server.endpoint}&create=1"
    with npw.runtime(store=store, queue=url, state=url, executors=0) as rt:
        b, Xb, Lb = cholesky_job(seed=1)
        c, Xc, Lc = cholesky_job(seed=2)
        assert b.spec.prefixes["S"] != c.spec.prefixes["S"]
        secret = rt.secret()

        # B's signed description copied under another job id is refused: the signature binds the id
        x = f"job-{uuid.uuid4().hex[:12]}"
        rt.state.create_job(x, rt.state.job(b.id)["description"])
        with pytest.raises(JobRefusedError, match=f"the signature of job {x}'s description does not verify"):
            executor_for(rt, x)

        # a description naming B's scratch tiles is refused, even signed with the key
        d = json.loads(rt.state.job(c.id)["description"])
        d["prefixes"]["S"] = b.spec.prefixes["S"]
        d["prefixes"]["L"] = f"{b.id}/S"
        y = f"job-{uuid.uuid4().hex[:12]}"
        d["signature"] = sign_description(d, y, secret)
        rt.state.create_job(y, json.dumps(d))
        with pytest.raises(JobRefusedError, match=rf"names tiles outside the job's own keys \(L: '{b.id}/S'; "
                                                  rf"S: '{b.id}/S'\)"):
            executor_for(rt, y)

        # B's own (valid) messages injected into C's queue are dropped there, unrun
        bkey = task_key(secret, b.id)
        c.queue.send([seal_message(bkey, t.to_json()) for t in b.bound.tasks()])

        procs = [subprocess.Popen([sys.executable, "-m", "executor", "--store", store, "--queue", url, "--state", url,
                                   "--job", j.id, "--idle-timeout", "1"], stderr=subprocess.PIPE, text=True)
                 for j in (b, c)]
        errs = [p.communicate(timeout=120)[1] for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errs
        b.wait(timeout=WAIT)
        c.wait(timeout=WAIT)
        assert np.allclose(Lb.numpy(), np.linalg.cholesky(Xb)) and np.allclose(Lc.numpy(), np.linalg.cholesky(Xc))
        assert rt.state.job(c.id)["counters"]["tasks_forged"] == b.num_tasks
        assert "tasks_forged" not in rt.state.job(b.id)["counters"]
        for j in (b, c):
            assert rt.state.job(j.id)["counters"]["completed"] == j.num_tasks


# =============================================================================== Redis AUTH and TLS
def test_redis_auth_from_the_url_or_the_environment_is_never_shown(tmp_path, monkeypatch):
    password = "pw-" + uuid.uuid4().hex
    (tmp_path / "redis").mkdir()
    server = RedisServer(tmp_path / "redis", password=password)
    try:
        host = urlparse(server.url).netloc
        url = f"redis://:{password}@{host}/0?prefix=auth:"
        with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=url, state=url, executors=1) as rt:
            assert password not in repr(rt) and ":***@" in repr(rt)
            X = spd(8)
            L = npw.cholesky(X)
            assert np.allclose(L, np.linalg.cholesky(X))
            job, _, _ = cholesky_job()
            assert password not in json.dumps(rt.state.job(job.id)), "never stored in the job record"
            job.cancel()
        bad = f"redis://:wrong-{password}@{host}/0"
        with pytest.raises(BackendError) as e:
            open_state(bad)
        said = str(e.value)
        assert password not in said and ":***@" in said and "refused this client's password" in said
        with pytest.raises(BackendError, match="NPW_REDIS_PASSWORD"):
            open_state(f"redis://{host}/0")
        monkeypatch.setenv("NPW_REDIS_PASSWORD", password)  # kept out of URLs (and executors' argv)
        st = open_state(f"redis://{host}/0?prefix=auth2:")
        st.create_job("j", "{}")
        assert st.status("j") == "running"
        st.close()
    finally:
        server.stop()


def make_certs(d: Path) -> dict:
    """A CA and a server certificate for 127.0.0.1 signed by it (openssl)."""
    def ssl(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    ssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"), "-out", str(d / "ca.crt"),
        "-days", "2", "-subj", "/CN=npw-test-ca")
    ssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "server.key"), "-out", str(d / "server.csr"),
        "-subj", "/CN=127.0.0.1")
    (d / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    ssl("x509", "-req", "-in", str(d / "server.csr"), "-CA", str(d / "ca.crt"), "-CAkey", str(d / "ca.key"),
        "-CAcreateserial", "-out", str(d / "server.crt"), "-days", "2", "-extfile", str(d / "san.ext"))
    return {"cert": d / "server.crt", "key": d / "server.key", "ca": d / "ca.crt"}


def test_a_job_runs_over_redis_with_tls(tmp_path):
    certs = make_certs(tmp_path)
    server = RedisServer(tmp_path, tls=certs)
    try:
        assert server.url.startswith("rediss://")
        url = f"{server.url}?ssl_ca_certs={certs['ca']}&prefix=tls:"
        with npw.runtime(store=f"file://{tmp_path / 'tiles'}", queue=url, state=url, executors=1) as rt:
            X = spd(8)
            L = npw.cholesky(X)
            assert np.allclose(L, np.linalg.cholesky(X))
            assert rt.state.client.connection_pool.connection_class.__name__ == "SSLConnection"
        with pytest.raises(BackendError):  # plain text to the TLS port
            open_state(server.url.replace("rediss://", "redis://"))
        with pytest.raises(BackendError, match="certificate verify failed"):  # a server this client cannot verify
            open_state(server.url)
    finally:
        server.stop()


# =============================================================================== S3 server-side encryption
@pytest.mark.parametrize("sse", ["AES256", "aws:kms"])
def test_s3_tiles_are_written_with_server_side_encryption(redis_server, moto_server, sse):
    query = f"sse={sse}"
    kms_id = None
    if sse == "aws:kms":
        kms = boto3.client("kms", endpoint_url=moto_server.endpoint, region_name="us-east-1")
        kms_id = kms.create_key()["KeyMetadata"]["KeyId"]
        query += f"&kms_key_id={kms_id}"
    bucket, prefix = "npw-sse", f"p{uuid.uuid4().hex[:6]}"
    store = f"s3://{bucket}/{prefix}?endpoint_url={moto_server.endpoint}&create=1&{query}"
    url = redis_url(redis_server)
    with npw.runtime(store=store, queue=url, state=url, executors=0) as rt:
        job, X, L = cholesky_job()
        assert executor_for(rt, job.id).run() == job.num_tasks
        job.wait(timeout=WAIT)
        assert np.allclose(L.numpy(), np.linalg.cholesky(X))
        s3 = boto3.client("s3", endpoint_url=moto_server.endpoint, region_name="us-east-1")
        keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=f"{prefix}/{L.name}/")["Contents"]]
        # L's lower tiles, written by the executor, and its meta, by the client
        assert sorted(k.split("/", 2)[2] for k in keys) == ["0/0", "1/0", "1/1", "meta"]
        for k in keys:
            head = s3.head_object(Bucket=bucket, Key=k)
            assert head["ServerSideEncryption"] == sse
            if kms_id:
                assert kms_id in head["SSEKMSKeyId"]
    with pytest.raises(ValueError, match="unsupported S3 server-side encryption"):
        open_store(f"s3://{bucket}/x?endpoint_url={moto_server.endpoint}&sse=rot13")


def test_the_spec_an_executor_runs_is_the_signed_one(redis_rt):
    job, _, _ = cholesky_job()
    ex = executor_for(redis_rt, job.id)
    assert ex.spec == job.spec == JobSpec.from_json(redis_rt.state.job(job.id)["description"])
    job.cancel()
