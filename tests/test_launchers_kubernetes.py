"""``provisioner.KubernetesLauncher``: the Job objects it builds, and the calls it makes.

No Kubernetes cluster can run here, so the ``BatchV1Api`` is a stand-in (``FakeBatchV1Api``) that
records the calls; with ``run=True`` it also runs each Job's container the way a kubelet would (the
command and arguments with ``$(VAR)`` expanded from the container's environment) as a local process
of this machine's interpreter, which shows that the objects built describe a working executor.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

import numpywren2 as npw
from executor.spec import SOURCE_ROOT, ExecutorSpec
from provisioner import KubernetesLauncher, ProvisionerSettings

kubernetes = pytest.importorskip("kubernetes", reason="the kubernetes extra is not installed (pip install "
                                                      "'.[kubernetes]')")
from kubernetes import client as k8s  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' expansion of ``$(VAR)`` in a container's command and arguments (``$$`` is a ``$``)."""
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
                  lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def container_command(job: k8s.V1Job) -> tuple[list[str], dict[str, str]]:
    [c] = job.spec.template.spec.containers
    env = {e.name: e.value for e in c.env}
    return [expand(a, env) for a in c.command + c.args], env


class FakeBatchV1Api:
    """Records ``create_namespaced_job``, ``list_namespaced_job`` and ``delete_namespaced_job``; with
    ``run=True`` runs each created Job's container as a local process (``sys.executable`` as its python)."""

    def __init__(self, run: bool = False, refuse_after: int | None = None):
        self.calls: list[tuple] = []
        self.jobs: dict[str, k8s.V1Job] = {}
        self.processes: dict[str, subprocess.Popen] = {}
        self.status: dict[str, str] = {}  # job name -> "succeeded" / "failed", set by a test
        self.run, self.refuse_after = run, refuse_after

    def create_namespaced_job(self, namespace, body):
        self.calls.append(("create", namespace, body))
        if self.refuse_after is not None and len(self.jobs) >= self.refuse_after:
            raise ApiException(status=403, reason="Forbidden: exceeded quota")
        assert isinstance(body, k8s.V1Job)
        self.jobs[body.metadata.name] = body
        if self.run:
            argv, env = container_command(body)
            assert argv[0] == sys.executable
            env = {**env, "PATH": os.environ["PATH"], "PYTHONPATH": SOURCE_ROOT}  # what the image would provide
            self.processes[body.metadata.name] = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL)
        return body

    def list_namespaced_job(self, namespace, label_selector=None):
        self.calls.append(("list", namespace, label_selector))
        wanted = dict(kv.split("=") for kv in label_selector.split(",")) if label_selector else {}
        items = []
        for name, job in self.jobs.items():
            if any(job.metadata.labels.get(k) != v for k, v in wanted.items()):
                continue
            state = self.status.get(name)
            p = self.processes.get(name)
            if p is not None and p.poll() is not None:
                state = "succeeded" if p.returncode == 0 else "failed"
            items.append(k8s.V1Job(metadata=job.metadata, status=k8s.V1JobStatus(
                succeeded=1 if state == "succeeded" else None, failed=1 if state == "failed" else None,
                active=None if state else 1)))
        return k8s.V1JobList(items=items)

    def delete_namespaced_job(self, name, namespace, propagation_policy=None):
        self.calls.append(("delete", name, namespace, propagation_policy))
        if name not in self.jobs:
            raise ApiException(status=404, reason="Not Found")
        p = self.processes.get(name)
        if p is not None and p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)

    def wait_all(self) -> None:
        for p in self.processes.values():
            p.wait(timeout=60)


SPEC = ExecutorSpec("s3://bucket/npw?region=us-east-1", "sqs://?region=us-east-1&prefix=npw-",
                    "redis://redis.npw.svc:6379/0", "job-0123abcd", lease=30, idle_timeout=5)


def test_the_job_object():
    launcher = KubernetesLauncher("registry.example/npw:1.0", namespace="npw", api=FakeBatchV1Api(), cpu="2",
                                  memory="4Gi", env={"AWS_DEFAULT_REGION": "us-east-1"},
                                  env_from_secrets=["npw-aws"], service_account="npw-executor")
    job = k8s.ApiClient().sanitize_for_serialization(launcher.job_object(SPEC, "x-00aa11bb22cc"))
    assert job["apiVersion"] == "batch/v1" and job["kind"] == "Job"
    assert job["metadata"]["name"] == "npw-x-00aa11bb22cc"
    labels = {"app.kubernetes.io/name": "numpywren2-executor", "numpywren2/job": "job-0123abcd",
              "numpywren2/executor": "x-00aa11bb22cc"}
    assert job["metadata"]["labels"] == labels and job["spec"]["template"]["metadata"]["labels"] == labels
    spec = job["spec"]
    assert spec["backoffLimit"] == 0 and spec["ttlSecondsAfterFinished"] == 600
    assert spec["completions"] == 1 and spec["parallelism"] == 1
    assert "activeDeadlineSeconds" not in spec  # no time limit
    pod = spec["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["serviceAccountName"] == "npw-executor"
    [c] = pod["containers"]
    assert c["image"] == "registry.example/npw:1.0" and c["command"] == ["python", "-m", "executor"]
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "4Gi"}, "limits": {"cpu": "2", "memory": "4Gi"}}
    assert c["envFrom"] == [{"secretRef": {"name": "npw-aws"}}]
    env = {e["name"]: e["value"] for e in c["env"]}
    assert env["NPW_STORE"] == SPEC.store and env["NPW_QUEUE"] == SPEC.queue and env["NPW_STATE"] == SPEC.state
    assert env["NPW_JOB"] == SPEC.job and env["NPW_LEASE"] == "30" and env["NPW_IDLE_TIMEOUT"] == "5"
    assert env["NPW_EXECUTOR_ID"] == "x-00aa11bb22cc" and env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert c["args"][:4] == ["--store", "$(NPW_STORE)", "--queue", "$(NPW_QUEUE)"]
    argv = [expand(a, env) for a in c["command"] + c["args"]]
    assert ExecutorSpec.from_cli(argv[3:]) == (SPEC, "x-00aa11bb22cc"), "the container's arguments are the spec"


def test_time_limit_sets_the_active_deadline_and_limits_can_differ():
    launcher = KubernetesLauncher("npw:1", api=FakeBatchV1Api(), limits={"memory": "3Gi"},
                                  ttl_seconds_after_finished=None)
    spec = ExecutorSpec(SPEC.store, SPEC.queue, SPEC.state, SPEC.job, time_limit=300)
    job = k8s.ApiClient().sanitize_for_serialization(launcher.job_object(spec, "x-1"))
    assert job["spec"]["activeDeadlineSeconds"] == 420 and "ttlSecondsAfterFinished" not in job["spec"]
    [c] = job["spec"]["template"]["spec"]["containers"]
    assert c["resources"]["limits"] == {"memory": "3Gi"} and "$(NPW_TIME_LIMIT)" in c["args"]
    assert "envFrom" not in c


def test_launch_reap_and_stop_go_to_the_api():
    api = FakeBatchV1Api()
    launcher = KubernetesLauncher("npw:1", namespace="npw", api=api, reap_interval=0.0)
    ids = launcher.launch(SPEC, 3)
    assert len(ids) == 3 and set(launcher.launched) == set(ids)
    creates = [c for c in api.calls if c[0] == "create"]
    assert [c[1] for c in creates] == ["npw"] * 3
    assert [c[2].metadata.name for c in creates] == [f"npw-{e}" for e in ids]
    api.status[f"npw-{ids[0]}"], api.status[f"npw-{ids[1]}"] = "succeeded", "failed"
    exits = launcher.reap()
    assert [(e.executor, e.returncode) for e in exits] == [(ids[0], 0), (ids[1], 1)]
    assert ("list", "npw", "app.kubernetes.io/name=numpywren2-executor,numpywren2/job=job-0123abcd") in api.calls
    assert launcher.reap() == []  # each reported once
    launcher.stop()  # deletes only the Job still running
    assert [c for c in api.calls if c[0] == "delete"] == [("delete", f"npw-{ids[2]}", "npw", "Background")]
    # the default bound on executors, and Lambda-like liveness: registered and live, or still starting
    assert launcher.default_max_executors == 100
    assert launcher.alive({ids[2]: {"live": True}}) == set(ids)


def test_quota_refusals_launch_fewer_and_other_errors_raise():
    api = FakeBatchV1Api(refuse_after=1)
    launcher = KubernetesLauncher("npw:1", api=api)
    assert len(launcher.launch(SPEC, 3)) == 1 and launcher.throttled == 2

    class Broken(FakeBatchV1Api):
        def create_namespaced_job(self, namespace, body):
            raise ApiException(status=422, reason="Unprocessable Entity")

    with pytest.raises(ApiException, match="Unprocessable"):
        KubernetesLauncher("npw:1", api=Broken()).launch(SPEC, 1)


def test_a_job_runs_on_executors_made_from_the_job_objects(tmp_path):
    api = FakeBatchV1Api(run=True)
    launcher = KubernetesLauncher("npw:1", api=api, python=sys.executable, reap_interval=0.0)
    with npw.runtime(root=str(tmp_path)):
        g = np.random.default_rng(2).standard_normal((96, 96))
        X = g @ g.T / 96 + np.eye(96)
        A, L = npw.BigMatrix.from_numpy(X, 32), npw.BigMatrix.empty((96, 96), 32)
        job = npw.submit(npw.programs.cholesky, A=A, L=L, N=3, launcher=launcher,
                         settings=ProvisionerSettings(poll_interval=0.1, idle_timeout=2.0))
        job.wait(timeout=120)
        assert np.allclose(L.numpy(), np.linalg.cholesky(X))
        assert launcher.jobs and {r["executor"] for r in job.task_records()} <= set(launcher.jobs)
        api.wait_all()  # the job is done: each executor stops by itself, with exit code 0
        assert all(p.returncode == 0 for p in api.processes.values())
        launcher.reap()  # (the provisioner may have reaped some already)
        assert launcher.finished == set(launcher.jobs), "reap sees every Job succeed"


def test_the_standalone_provisioner_builds_kubernetes_and_lambda_launchers_from_its_options(capsys):
    """``python -m provisioner --launcher kubernetes|lambda|dask``: the launcher made from the command line (the
    objects only: no cluster here) and the options each needs."""
    from provisioner import AwsLambdaLauncher
    from provisioner.__main__ import make_launcher, parser

    base = ["--store", "file:///t", "--queue", "sqlite:///q", "--state", "sqlite:///q", "--job", "j-1"]
    ap = parser()
    a = ap.parse_args([*base, "--launcher", "kubernetes", "--image", "registry.example/npw:1", "--namespace", "npw",
                       "--cpu", "2", "--memory", "8Gi", "--env-from-secret", "npw-aws",
                       "--env-from-secret", "npw-redis", "--service-account", "npw-exec",
                       "--image-pull-policy", "IfNotPresent"])
    k = make_launcher(a, ap)
    assert isinstance(k, KubernetesLauncher) and k.namespace == "npw" and k._api is None, "no cluster contacted"
    job = k.job_object(ExecutorSpec("s3://b/p", "redis://r:6379/0", "redis://r:6379/0", "j-1"), "x-1")
    [c] = job.spec.template.spec.containers
    assert c.image == "registry.example/npw:1" and c.image_pull_policy == "IfNotPresent"
    assert c.resources.requests == {"cpu": "2", "memory": "8Gi"} == c.resources.limits
    assert [e.secret_ref.name for e in c.env_from] == ["npw-aws", "npw-redis"]
    assert job.spec.template.spec.service_account_name == "npw-exec"
    assert {e.name: e.value for e in c.env}["NPW_JOB"] == "j-1"

    for name in ("lambda", "aws-lambda"):
        a = ap.parse_args([*base, "--launcher", name, "--function-name", "npw-executor", "--region", "eu-west-1",
                           "--qualifier", "live"])
        lam = make_launcher(a, ap)
        assert isinstance(lam, AwsLambdaLauncher) and (lam.function_name, lam.qualifier) == ("npw-executor", "live")
        assert lam.client.meta.region_name == "eu-west-1"

    for args, needs in [(["--launcher", "kubernetes"], "--image"), (["--launcher", "lambda"], "--function-name"),
                        (["--launcher", "dask"], "--dask-scheduler")]:
        a = ap.parse_args([*base, *args])
        with pytest.raises(SystemExit):
            make_launcher(a, ap)
        assert f"needs {needs}" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ap.parse_args([*base, "--dask-resources", "npw_executor"])  # NAME=AMOUNT
