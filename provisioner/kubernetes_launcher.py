"""``KubernetesLauncher``: each executor is one Kubernetes ``Job`` (batch/v1), made through the official client.

The Job runs one pod of the given image (which must hold this package and its dependencies) with
``python -m executor``; its arguments come from ``ExecutorSpec.cli_args`` with every value taken from
an environment variable of the container (``--store $(NPW_STORE)``, expanded by Kubernetes), so the
spec is visible as the pod's environment and a URL is written once.  The environment also sets one
BLAS thread (``executor.spec.BLAS_THREAD_VARS``), plus any variables and Secrets given (AWS
credentials, a Redis password in ``NPW_STATE``: prefer ``env_from_secrets`` to plain values).

Choices, each a parameter:

- ``restartPolicy: Never`` and ``backoffLimit: 0``: a pod that fails is not retried by Kubernetes;
  the provisioner sees the failed Job (``reap``) and launches another executor if the job still
  needs one, and fails the job after ``max_failed_starts`` failures in a row, as with every launcher.
  (An executor is stateless: the task a lost pod held reappears in the queue when its lease expires.)
- ``ttlSecondsAfterFinished`` (default 600): finished Jobs and their pods are deleted by the cluster.
- ``activeDeadlineSeconds``: the spec's ``time_limit`` plus a margin, so a hung pod is ended;
  none without a time limit.
- resources: requests (default 1 CPU, 2 GiB) and limits (default: the same as the requests, so the
  pod is in the Guaranteed QoS class and is not the first evicted).
- labels ``app.kubernetes.io/name=numpywren2-executor``, ``numpywren2/job=<job>``,
  ``numpywren2/executor=<id>``: ``kubectl get jobs -l numpywren2/job=JOB`` lists a job's executors.

``launch`` calls ``BatchV1Api.create_namespaced_job``; a refusal for quota (HTTP 403) or throttling
(HTTP 429) launches fewer this time (the provisioner asks again at its next poll).  ``reap`` lists the
launcher's Jobs (``list_namespaced_job`` by label, at most every ``reap_interval`` seconds) and
reports the ones that succeeded or failed.  ``stop`` deletes every Job it created that has not
finished (``delete_namespaced_job``, propagation ``Background``: the pods go too).  Executors
heart-beat in the state store, so the provisioner counts them as alive as it does Lambda's.

No cluster runs in this project's tests: they check the Job objects built here (and that the
container's command, run as Kubernetes would run it, is a working executor) and that the create,
list and delete calls reach the ``BatchV1Api`` object passed in, a recording stand-in there.
"""

from __future__ import annotations

import re
import time

from executor.spec import BLAS_THREAD_VARS, ExecutorSpec

from .launchers import ExitedExecutor, Launcher, new_executor_id

APP_LABEL = "numpywren2-executor"
_THROTTLED = (403, 429)  # quota exceeded, too many requests


def label_value(text: str) -> str:
    """``text`` as a Kubernetes label value: at most 63 of ``[A-Za-z0-9._-]``, alphanumeric at both ends.

    >>> label_value("job-1f2e")
    'job-1f2e'
    >>> label_value("my job/42!")
    'my-job-42'
    """
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text)[:63].strip("-_.")


def env_name(flag: str) -> str:
    """The container variable holding the value of an executor flag.

    >>> env_name("--idle-timeout")
    'NPW_IDLE_TIMEOUT'
    """
    return "NPW_" + flag.lstrip("-").upper().replace("-", "_")


class KubernetesLauncher(Launcher):
    """Executors as Kubernetes Jobs (see the module docstring).

    Parameters
    ----------
    image : str
        Container image with this package installed (e.g. built from ``docs/deploy.md``'s Dockerfile).
    namespace : str
        Kubernetes namespace of the Jobs (default ``"default"``).
    api : kubernetes.client.BatchV1Api, optional
        Default: one configured from inside the cluster, else from ``~/.kube/config``.
    cpu, memory : str
        Resource requests of each executor (default ``"1"``, ``"2Gi"``).
    limits : dict, optional
        Resource limits (default: equal to the requests).
    backoff_limit : int
        Pod retries by Kubernetes (default 0: the provisioner decides).
    ttl_seconds_after_finished : int, optional
        Finished Jobs are deleted after this long (default 600; None keeps them).
    deadline_margin : float
        With a time limit, ``activeDeadlineSeconds`` is the limit plus this margin (default 120 s).
    env : dict, optional
        More environment variables of the container.
    env_from_secrets : list of str
        Secrets whose keys become environment variables (``envFrom``), e.g. AWS credentials.
    service_account : str, optional
        Service account of the pods (e.g. one bound to an IAM role for S3 access).
    image_pull_policy, node_selector, python
        As in a pod spec; ``python`` is the interpreter in the image (default ``"python"``).
    max_executors : int
        Default bound on live executors (default 100).
    start_timeout : float, optional
        Deprecated, as on every launcher: set ``ProvisionerSettings(start_timeout=...)``, the seconds a pod
        may take to be scheduled, pulled and started before the provisioner abandons it (raise it for
        clusters that pull large images).
    """

    def __init__(self, image: str, namespace: str = "default", api=None, cpu: str = "1", memory: str = "2Gi",
                 limits: dict[str, str] | None = None, backoff_limit: int = 0,
                 ttl_seconds_after_finished: int | None = 600, deadline_margin: float = 120.0,
                 env: dict[str, str] | None = None, env_from_secrets: list[str] | tuple = (),
                 service_account: str | None = None, image_pull_policy: str | None = None,
                 node_selector: dict[str, str] | None = None, python: str = "python", max_executors: int = 100,
                 start_timeout: float | None = None, reap_interval: float = 5.0):
        super().__init__(start_timeout)
        self.image, self.namespace = image, namespace
        self.requests = {"cpu": cpu, "memory": memory}
        self.limits = dict(limits) if limits is not None else dict(self.requests)
        self.backoff_limit, self.ttl, self.deadline_margin = backoff_limit, ttl_seconds_after_finished, deadline_margin
        self.env, self.env_from_secrets = dict(env or {}), list(env_from_secrets)
        self.service_account, self.image_pull_policy = service_account, image_pull_policy
        self.node_selector, self.python = node_selector, python
        self.default_max_executors = max_executors
        self.reap_interval = reap_interval
        self._api = api
        self.jobs: dict[str, str] = {}  # executor id -> Kubernetes Job name
        self.job_label: str | None = None  # numpywren2/job of the Jobs made (one numpywren2 job per launcher)
        self.finished: set[str] = set()  # executors whose Jobs were seen to end, or were deleted
        self._last_reap = float("-inf")
        self.throttled = 0

    @property
    def api(self):
        if self._api is None:
            from kubernetes import client, config

            try:
                config.load_incluster_config()
            except config.ConfigException:
                config.load_kube_config()
            self._api = client.BatchV1Api()
        return self._api

    # ------------------------------------------------------------------ the objects
    def job_name(self, executor_id: str) -> str:
        return label_value(f"npw-{executor_id}").lower()

    def container_env_and_args(self, spec: ExecutorSpec, executor_id: str) -> tuple[dict[str, str], list[str]]:
        """The container's variables made from the spec, and ``python -m executor``'s arguments naming them."""
        cli = spec.cli_args(executor_id)
        values, args = {}, []
        for flag, value in zip(cli[::2], cli[1::2]):
            values[env_name(flag)] = value
            args += [flag, f"$({env_name(flag)})"]
        return values, args

    def job_object(self, spec: ExecutorSpec, executor_id: str):
        """The ``V1Job`` of one executor."""
        from kubernetes import client as k8s

        values, args = self.container_env_and_args(spec, executor_id)
        env = {**{v: "1" for v in BLAS_THREAD_VARS}, **self.env, **values}
        labels = {"app.kubernetes.io/name": APP_LABEL, "numpywren2/job": label_value(spec.job),
                  "numpywren2/executor": label_value(executor_id)}
        container = k8s.V1Container(
            name="executor", image=self.image, image_pull_policy=self.image_pull_policy,
            command=[self.python, "-m", "executor"], args=args,
            env=[k8s.V1EnvVar(name=k, value=v) for k, v in env.items()],
            env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=s)) for s in self.env_from_secrets]
            or None,
            resources=k8s.V1ResourceRequirements(requests=dict(self.requests), limits=dict(self.limits)))
        pod = k8s.V1PodSpec(containers=[container], restart_policy="Never", service_account_name=self.service_account,
                            node_selector=self.node_selector)
        deadline = None if spec.time_limit is None else int(spec.time_limit + self.deadline_margin)
        return k8s.V1Job(
            api_version="batch/v1", kind="Job",
            metadata=k8s.V1ObjectMeta(name=self.job_name(executor_id), labels=labels),
            spec=k8s.V1JobSpec(template=k8s.V1PodTemplateSpec(metadata=k8s.V1ObjectMeta(labels=labels), spec=pod),
                               backoff_limit=self.backoff_limit, ttl_seconds_after_finished=self.ttl,
                               active_deadline_seconds=deadline, completions=1, parallelism=1))

    # ------------------------------------------------------------------ the launcher
    def launch(self, spec: ExecutorSpec, n: int) -> list[str]:
        from kubernetes.client.exceptions import ApiException

        self.job_label = label_value(spec.job)
        ids = []
        for _ in range(max(0, n)):
            eid = new_executor_id()
            try:
                self.api.create_namespaced_job(self.namespace, self.job_object(spec, eid))
            except ApiException as e:
                if e.status in _THROTTLED:
                    self.throttled += n - len(ids)
                    break
                raise
            self.jobs[eid] = self.job_name(eid)
            self.launched[eid] = time.monotonic()
            ids.append(eid)
        return ids

    def reap(self) -> list[ExitedExecutor]:
        """The executors whose Jobs succeeded (exit code 0) or failed (1) since the last call."""
        now = time.monotonic()
        if not self.jobs or now - self._last_reap < self.reap_interval:
            return []
        self._last_reap = now
        by_name = {name: eid for eid, name in self.jobs.items()}
        listed = self.api.list_namespaced_job(
            self.namespace, label_selector=f"app.kubernetes.io/name={APP_LABEL},numpywren2/job={self.job_label}")
        out = []
        for job in listed.items:
            eid = by_name.get(job.metadata.name)
            if eid is None or eid in self.finished or job.status is None:
                continue
            if job.status.succeeded:
                out.append(ExitedExecutor(eid, 0))
            elif job.status.failed:
                out.append(ExitedExecutor(eid, 1))
            else:
                continue
            self.finished.add(eid)
        return out

    def stop(self) -> None:
        """Delete the Jobs of this launcher that have not been seen to finish (their pods with them)."""
        from kubernetes.client.exceptions import ApiException

        for eid, name in self.jobs.items():
            if eid in self.finished:
                continue
            try:
                self.api.delete_namespaced_job(name, self.namespace, propagation_policy="Background")
            except ApiException as e:
                if e.status != 404:  # already gone (its ttl ran out)
                    raise
            self.finished.add(eid)
