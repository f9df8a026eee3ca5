"""``npw aws deploy`` (``python -m provisioner.aws_deploy``): the AWS Lambda function that runs executors.

One command creates, or brings up to date, everything ``AwsLambdaLauncher`` invokes (docs/aws.md):

1. **Two zip archives**, built here from this machine's installed code:

   - the *function package*: the packages an executor imports (``lambdapack``, ``numpywren2`` without
     its test support, ``executor``) from this source tree; its handler is
     ``executor.lambda_handler.handler``;
   - the *dependency layer*: the installed distributions of the executor's requirements (numpy, scipy,
     redis, cloudpickle, xxhash and what they require) copied from this Python's site-packages under
     ``python/``, as Lambda's Python runtimes expect, without test suites and byte code.  boto3 and its
     own requirements are left out: every Lambda Python runtime provides them.

   Lambda's limits: an archive uploaded in the request may be at most 50 MB zipped, and a function with
   all its layers at most 250 MB unzipped.  numpy and scipy alone are close to 50 MB zipped, so both
   archives go to S3 (under ``<prefix>/_deploy/`` of the tile bucket) and Lambda reads them from there,
   which allows up to the 250 MB unzipped; the total unzipped size is checked here first and a package set
   above it is refused with the sizes (a container image, up to 10 GB, is then the way:
   docs/deploy.md).  The layer's site-packages must match the function's runtime: build on Linux with
   the same Python minor version (``--runtime python3.11`` for this interpreter's 3.11) and architecture.
   The archives are deterministic (sorted entries, fixed timestamps), so an unchanged build is
   recognised by its SHA-256: the layer is not published again and the function code not updated.

2. **An IAM role** that Lambda assumes, with one inline policy of least privilege (``execution_policy``):
   objects under the tile prefix of one bucket; the job queues (``sqs:`` on queues named
   ``<queue prefix>*``) when the queue is SQS; network interfaces in the VPC when Redis is reached
   through subnets and security groups; the function's own CloudWatch log group; and reading the one
   secret that holds the job-signing key.

3. **The job-signing key as a reference**: the key lives in AWS Secrets Manager (``--secret-name``;
   created from this machine's key, ``NPW_SECRET`` or its key file, if it does not exist), and the
   function's environment holds only its ARN, ``NPW_SECRET_ARN``, which ``executor.lambda_handler``
   resolves at a cold start.  The key's value is never written to a file here, nor printed.

4. **The function**: created, or its code and configuration updated (memory, timeout 900 s, the layer,
   the role, the VPC configuration, the environment).

``--dry-run`` builds the archives and prints the plan (sizes, policy, configuration) without calling AWS.
The CLI that mounts this as ``npw aws deploy`` calls ``add_arguments(parser)`` and ``run(args)``.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import importlib.metadata as metadata
import io
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

from executor.spec import SOURCE_ROOT
from numpywren2.core.signing import SECRET_ARN_ENV, SECRET_ENV, load_secret

HANDLER = "executor.lambda_handler.handler"
MAX_ZIPPED_DIRECT = 50 * 2**20  # bytes: an archive sent in the request itself
MAX_UNZIPPED = 250 * 2**20  # bytes: the function and all its layers, unzipped
FUNCTION_PACKAGES = ("lambdapack", "numpywren2", "executor")  # what an executor imports
EXCLUDED_FROM_FUNCTION = ("numpywren2/testing",)
LAYER_REQUIREMENTS = ("numpy", "scipy", "redis", "cloudpickle", "xxhash")  # setup.cfg's, less boto3
PROVIDED_BY_RUNTIME = frozenset({"boto3", "botocore", "s3transfer", "jmespath", "urllib3", "python-dateutil",
                                 "six"})
ZIP_TIME = (1980, 1, 1, 0, 0, 0)

TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


class DeployError(RuntimeError):
    """A deployment that cannot be made as asked (too large, no key, a refused call); the message says why."""


# --------------------------------------------------------------------------------------------- archives
@dataclasses.dataclass(frozen=True)
class Archive:
    """A zip archive built in memory: its bytes, unzipped size and entry count."""

    name: str
    data: bytes
    unzipped: int
    entries: int

    @property
    def sha256(self) -> str:
        """Base64 SHA-256, as Lambda reports ``CodeSha256``."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _skipped(rel: str) -> bool:
    parts = rel.split("/")
    return "__pycache__" in parts or rel.endswith((".pyc", ".pyo")) or "tests" in parts[1:-1]


def build_archive(name: str, files: list[tuple[str, Path]]) -> Archive:
    """A deterministic zip of ``(name in the archive, file)`` pairs: sorted, fixed timestamps and modes."""
    buf, unzipped = io.BytesIO(), 0
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=6) as z:
        for arcname, path in sorted(files):
            info = zipfile.ZipInfo(arcname, ZIP_TIME)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            unzipped += len(data)
            z.writestr(info, data)
    return Archive(name, buf.getvalue(), unzipped, len(files))


def function_files(root: str = SOURCE_ROOT) -> list[tuple[str, Path]]:
    """The files of the function package: the executor's packages from the source tree ``root``."""
    out = []
    base = Path(root)
    for pkg in FUNCTION_PACKAGES:
        for path in (base / pkg).rglob("*"):
            rel = path.relative_to(base).as_posix()
            if path.is_file() and not _skipped(rel) and not rel.startswith(EXCLUDED_FROM_FUNCTION):
                out.append((rel, path))
    if not out:
        raise DeployError(f"no executor packages under {root}")
    return out


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(dist: metadata.Distribution) -> list[str]:
    """The distributions ``dist`` requires on this interpreter (no extras; markers evaluated here)."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # no packaging: only requirements without a marker
        Requirement = None
    names = []
    for text in dist.requires or []:
        if Requirement is None:
            if ";" not in text:
                names.append(re.match(r"[A-Za-z0-9_.-]+", text).group(0))
            continue
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate({"extra": ""}):
            names.append(req.name)
    return names


def layer_distributions(requirements=LAYER_REQUIREMENTS) -> list[metadata.Distribution]:
    """The installed distributions of ``requirements`` and everything they require, less what Lambda provides."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(requirements)
    while todo:
        name = _canonical(todo.pop())
        if name in seen or name in PROVIDED_BY_RUNTIME:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            raise DeployError(f"the layer needs {name}, which is not installed in {sys.prefix}") from None
        seen[name] = dist
        todo += _requirement_names(dist)
    return [seen[k] for k in sorted(seen)]


def layer_files(requirements=LAYER_REQUIREMENTS) -> list[tuple[str, Path]]:
    """The layer's files: each distribution's installed files under ``python/`` (scripts outside
    site-packages, test suites and byte code left out)."""
    out = {}
    for dist in layer_distributions(requirements):
        for f in dist.files or []:
            rel = f.as_posix()
            if rel.startswith("../") or _skipped(rel):
                continue
            path = Path(dist.locate_file(f))
            if path.is_file():
                out["python/" + rel] = path
    return list(out.items())


def check_sizes(function: Archive, layer: Archive | None, max_unzipped: int = MAX_UNZIPPED) -> None:
    """Refuse a deployment whose function and layer exceed Lambda's unzipped limit, with the sizes."""
    total = function.unzipped + (layer.unzipped if layer else 0)
    if total > max_unzipped:
        raise DeployError(
            f"the function ({function.unzipped / 2**20:.1f} MB) and its layer "
            f"({(layer.unzipped if layer else 0) / 2**20:.1f} MB) unzip to {total / 2**20:.1f} MB, above Lambda's "
            f"{max_unzipped / 2**20:.0f} MB: deploy a container image instead (docs/deploy.md), or fewer packages")


# --------------------------------------------------------------------------------------------- the plan
@dataclasses.dataclass
class DeploySettings:
    """What ``run`` deploys; each field is a command-line option of the same name."""

    function_name: str
    bucket: str
    prefix: str = "npw"
    region: str = "us-east-1"
    endpoint_url: str | None = None
    role_name: str | None = None
    memory_mb: int = 3008
    timeout: int = 900
    runtime: str = f"python3.{sys.version_info.minor}"
    architecture: str = "x86_64"
    queue: str = "sqs"  # "sqs" or "redis"
    queue_prefix: str = "npw-"
    subnet_ids: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    secret_name: str = "numpywren2/job-signing-key"
    layer_requirements: tuple[str, ...] = LAYER_REQUIREMENTS
    env: tuple[str, ...] = ()  # KEY=VALUE
    ephemeral_storage_mb: int = 512

    def __post_init__(self) -> None:
        if not 1 <= self.timeout <= 900:
            raise DeployError(f"--timeout must be between 1 and 900 seconds (Lambda's longest), got {self.timeout}")
        if not 128 <= self.memory_mb <= 10240:
            raise DeployError(f"--memory-mb must be between 128 and 10240, got {self.memory_mb}")
        if self.queue not in ("sqs", "redis"):
            raise DeployError(f"--queue is sqs or redis, got {self.queue!r}")
        if self.queue == "redis" and not self.subnet_ids:
            raise DeployError("--queue redis needs --subnet-ids and --security-group-ids: the function reaches "
                              "Redis inside its VPC")
        if bool(self.subnet_ids) != bool(self.security_group_ids):
            raise DeployError("--subnet-ids and --security-group-ids go together")
        for kv in self.env:
            key = kv.partition("=")[0]
            if "=" not in kv:
                raise DeployError(f"--env takes KEY=VALUE, got {kv!r}")
            if key == SECRET_ENV:
                raise DeployError(f"the key never goes into the function's environment as {SECRET_ENV}: it is read "
                                  f"from Secrets Manager (--secret-name)")
        self.prefix = self.prefix.strip("/")

    @property
    def role(self) -> str:
        return self.role_name or f"{self.function_name}-executor"

    def artifact_key(self, archive: Archive) -> str:
        return f"{self.prefix}/_deploy/{archive.name}-{archive.digest[:16]}.zip"

    @property
    def layer_name(self) -> str:
        return f"{self.function_name}-dependencies"

    @property
    def vpc(self) -> dict | None:
        if not self.subnet_ids:
            return None
        return {"SubnetIds": list(self.subnet_ids), "SecurityGroupIds": list(self.security_group_ids)}


def execution_policy(s: DeploySettings, account: str, secret_arn: str) -> dict:
    """The role's inline policy: what an executor does, on the resources of this deployment only.

    >>> p = execution_policy(DeploySettings("npw", "tiles", "jobs"), "123456789012", "arn:secret")
    >>> [st["Sid"] for st in p["Statement"]]
    ['Tiles', 'TileListing', 'UploadListing', 'JobQueues', 'Logs', 'SigningKey']
    >>> p["Statement"][0]["Resource"], p["Statement"][3]["Resource"]
    ('arn:aws:s3:::tiles/jobs/*', 'arn:aws:sqs:us-east-1:123456789012:npw-*')
    """
    r, a = s.region, account
    log_group = f"arn:aws:logs:{r}:{a}:log-group:/aws/lambda/{s.function_name}"
    statements = [
        {"Sid": "Tiles", "Effect": "Allow",
         "Action": ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"],
         "Resource": f"arn:aws:s3:::{s.bucket}/{s.prefix}/*"},
        {"Sid": "TileListing", "Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{s.bucket}",
         "Condition": {"StringLike": {"s3:prefix": [f"{s.prefix}/*"]}}},
        # deleting a prefix aborts its incomplete multipart uploads (S3TileStore.delete_prefix); the listing of
        # uploads takes no prefix condition, so it is granted on the bucket
        {"Sid": "UploadListing", "Effect": "Allow", "Action": "s3:ListBucketMultipartUploads",
         "Resource": f"arn:aws:s3:::{s.bucket}"},
    ]
    if s.queue == "sqs":  # executors open the job's queue (CreateQueue of an existing queue returns its URL)
        statements.append({"Sid": "JobQueues", "Effect": "Allow",
                           "Action": ["sqs:CreateQueue", "sqs:GetQueueUrl", "sqs:GetQueueAttributes",
                                      "sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                                      "sqs:ChangeMessageVisibility"],
                           "Resource": f"arn:aws:sqs:{r}:{a}:{s.queue_prefix}*"})
    if s.vpc:  # network interfaces in the VPC that reaches Redis; these actions take no narrower resource
        statements.append({"Sid": "VpcNetworkInterfaces", "Effect": "Allow",
                           "Action": ["ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces",
                                      "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                                      "ec2:UnassignPrivateIpAddresses"], "Resource": "*"})
    statements += [
        {"Sid": "Logs", "Effect": "Allow", "Action": ["logs:CreateLogGroup", "logs:CreateLogStream",
                                                      "logs:PutLogEvents"],
         "Resource": [log_group + ":*", log_group + ":log-stream:*"]},
        {"Sid": "SigningKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": secret_arn},
    ]
    return {"Version": "2012-10-17", "Statement": statements}


def function_environment(s: DeploySettings, secret_arn: str) -> dict[str, str]:
    """The function's environment: the key's ARN (never its value), one BLAS thread, and ``--env``."""
    env = {SECRET_ARN_ENV: secret_arn, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    env.update(kv.split("=", 1) for kv in s.env)
    return env


def function_configuration(s: DeploySettings, role_arn: str, layer_arn: str | None, secret_arn: str) -> dict:
    """The arguments of ``create_function`` / ``update_function_configuration`` (no code)."""
    cfg = {"FunctionName": s.function_name, "Runtime": s.runtime, "Role": role_arn, "Handler": HANDLER,
           "Timeout": s.timeout, "MemorySize": s.memory_mb, "EphemeralStorage": {"Size": s.ephemeral_storage_mb},
           "Environment": {"Variables": function_environment(s, secret_arn)},
           "Description": "numpywren2 executor (executor.lambda_handler)",
           "Layers": [layer_arn] if layer_arn else []}
    if s.vpc:
        cfg["VpcConfig"] = s.vpc
    return cfg


@dataclasses.dataclass
class Plan:
    settings: DeploySettings
    function: Archive
    layer: Archive | None

    def describe(self, account: str = "ACCOUNT", secret_arn: str | None = None) -> dict:
        s = self.settings
        secret_arn = secret_arn or f"arn:aws:secretsmanager:{s.region}:{account}:secret:{s.secret_name}-*"
        role_arn = f"arn:aws:iam::{account}:role/{s.role}"
        layer = f"arn:aws:lambda:{s.region}:{account}:layer:{s.layer_name}:N" if self.layer else None
        sizes = {a.name: {"zipped_bytes": len(a.data), "unzipped_bytes": a.unzipped, "files": a.entries,
                          "s3": f"s3://{s.bucket}/{s.artifact_key(a)}"}
                 for a in (self.function, self.layer) if a}
        return {"archives": sizes,
                "limits": {"zipped_in_request_bytes": MAX_ZIPPED_DIRECT, "unzipped_total_bytes": MAX_UNZIPPED,
                           "unzipped_total_now": sum(a.unzipped for a in (self.function, self.layer) if a)},
                "role": {"name": s.role, "trust": TRUST_POLICY, "policy": execution_policy(s, account, secret_arn)},
                "secret": {"name": s.secret_name, "environment": SECRET_ARN_ENV},
                "function": function_configuration(s, role_arn, layer, secret_arn)}


def plan(s: DeploySettings) -> Plan:
    """Build the archives and check their sizes (no AWS call)."""
    function = build_archive("function", function_files())
    layer = build_archive("layer", layer_files(s.layer_requirements)) if s.layer_requirements else None
    check_sizes(function, layer)
    return Plan(s, function, layer)


# --------------------------------------------------------------------------------------------- AWS calls
def _code(e) -> str:
    return e.response.get("Error", {}).get("Code", "")


class Deployer:
    """Carries out a ``Plan`` through boto3 clients (each step idempotent; ``log`` says what it did)."""

    def __init__(self, p: Plan, session=None, log=print):
        import boto3

        self.plan, self.s, self.log = p, p.settings, log
        session = session or boto3.session.Session(region_name=self.s.region)
        kw = {"region_name": self.s.region}
        if self.s.endpoint_url:
            kw["endpoint_url"] = self.s.endpoint_url
        self.iam, self.sts = session.client("iam", **kw), session.client("sts", **kw)
        self.s3, self.lam = session.client("s3", **kw), session.client("lambda", **kw)
        self.secrets = session.client("secretsmanager", **kw)

    def run(self, wait_s: float = 120.0) -> dict:
        account = self.sts.get_caller_identity()["Account"]
        secret_arn = self.secret()
        role_arn = self.role(account, secret_arn)
        keys = {a.name: self.upload(a) for a in (self.plan.function, self.plan.layer) if a}
        layer_arn = self.layer(keys["layer"]) if self.plan.layer else None
        cfg = function_configuration(self.s, role_arn, layer_arn, secret_arn)
        arn = self.function(cfg, keys["function"], wait_s)
        return {"function_arn": arn, "role_arn": role_arn, "layer_arn": layer_arn, "secret_arn": secret_arn}

    def secret(self) -> str:
        from botocore.exceptions import ClientError

        try:
            arn = self.secrets.describe_secret(SecretId=self.s.secret_name)["ARN"]
            self.log(f"secret {self.s.secret_name}: exists, kept")
            return arn
        except ClientError as e:
            if _code(e) != "ResourceNotFoundException":
                raise
        try:  # this machine's key, by the signing rules (NPW_SECRET, then the key file); held in memory only
            key = load_secret("redis://deploy")
        except Exception as e:
            raise DeployError(f"secret {self.s.secret_name} does not exist and there is no key here to put in it: "
                              f"{e}") from e
        arn = self.secrets.create_secret(Name=self.s.secret_name, SecretString=key.decode(),
                                         Description="numpywren2 job-signing key")["ARN"]
        self.log(f"secret {self.s.secret_name}: created from this machine's key")
        return arn

    def role(self, account: str, secret_arn: str) -> str:
        from botocore.exceptions import ClientError

        try:
            arn = self.iam.get_role(RoleName=self.s.role)["Role"]["Arn"]
            self.iam.update_assume_role_policy(RoleName=self.s.role, PolicyDocument=json.dumps(TRUST_POLICY))
            self.log(f"role {self.s.role}: exists")
        except ClientError as e:
            if _code(e) != "NoSuchEntity":
                raise
            arn = self.iam.create_role(RoleName=self.s.role, AssumeRolePolicyDocument=json.dumps(TRUST_POLICY),
                                       Description="numpywren2 executors (Lambda)")["Role"]["Arn"]
            self.log(f"role {self.s.role}: created")
        self.iam.put_role_policy(RoleName=self.s.role, PolicyName="numpywren2-executor",
                                 PolicyDocument=json.dumps(execution_policy(self.s, account, secret_arn)))
        return arn

    def upload(self, a: Archive) -> str:
        from botocore.exceptions import ClientError

        key = self.s.artifact_key(a)  # named by its digest: present means identical
        try:
            self.s3.head_object(Bucket=self.s.bucket, Key=key)
            self.log(f"s3://{self.s.bucket}/{key}: already there")
        except ClientError as e:
            if _code(e) not in ("404", "NoSuchKey", "NotFound"):
                raise
            self.s3.put_object(Bucket=self.s.bucket, Key=key, Body=a.data)
            self.log(f"s3://{self.s.bucket}/{key}: uploaded ({len(a.data) / 2**20:.1f} MB)")
        return key

    def layer(self, key: str) -> str:
        digest = self.plan.layer.digest
        versions = self.lam.list_layer_versions(LayerName=self.s.layer_name).get("LayerVersions", [])
        for v in versions:
            if digest in v.get("Description", ""):
                self.log(f"layer {self.s.layer_name}: version {v['Version']} has this build, kept")
                return v["LayerVersionArn"]
        out = self.lam.publish_layer_version(
            LayerName=self.s.layer_name, Description=f"numpywren2 executor dependencies sha256:{digest}",
            Content={"S3Bucket": self.s.bucket, "S3Key": key}, CompatibleRuntimes=[self.s.runtime],
            CompatibleArchitectures=[self.s.architecture])
        self.log(f"layer {self.s.layer_name}: published version {out['Version']}")
        return out["LayerVersionArn"]

    def _wait(self, wait_s: float) -> None:
        deadline = time.monotonic() + wait_s
        while True:
            c = self.lam.get_function_configuration(FunctionName=self.s.function_name)
            if c.get("State", "Active") != "Pending" and c.get("LastUpdateStatus", "Successful") != "InProgress":
                if c.get("State") == "Failed" or c.get("LastUpdateStatus") == "Failed":
                    raise DeployError(f"function {self.s.function_name}: {c.get('StateReason') or c}")
                return
            if time.monotonic() > deadline:
                raise DeployError(f"function {self.s.function_name} still updating after {wait_s:.0f} s")
            time.sleep(2)

    def function(self, cfg: dict, key: str, wait_s: float) -> str:
        from botocore.exceptions import ClientError

        code = {"S3Bucket": self.s.bucket, "S3Key": key}
        try:
            current = self.lam.get_function_configuration(FunctionName=self.s.function_name)
        except ClientError as e:
            if _code(e) != "ResourceNotFoundException":
                raise
            current = None
        if current is None:
            deadline = time.monotonic() + wait_s
            while True:  # a role just made takes a few seconds before Lambda may assume it
                try:
                    out = self.lam.create_function(**cfg, Code=code, Architectures=[self.s.architecture],
                                                   PackageType="Zip")
                    break
                except ClientError as e:
                    if _code(e) != "InvalidParameterValueException" or "assume" not in str(e) \
                            or time.monotonic() > deadline:
                        raise
                    time.sleep(3)
            self.log(f"function {self.s.function_name}: created")
            self._wait(wait_s)
            return out["FunctionArn"]
        if current.get("CodeSha256") != self.plan.function.sha256:
            self.lam.update_function_code(FunctionName=self.s.function_name, **code,
                                          Architectures=[self.s.architecture])
            self.log(f"function {self.s.function_name}: code updated")
            self._wait(wait_s)
        else:
            self.log(f"function {self.s.function_name}: code unchanged")
        out = self.lam.update_function_configuration(**cfg)
        self.log(f"function {self.s.function_name}: configuration updated")
        self._wait(wait_s)
        return out["FunctionArn"]


# --------------------------------------------------------------------------------------------- the CLI
def _csv(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of ``npw aws deploy`` (each a ``DeploySettings`` field)."""
    d = DeploySettings.__dataclass_fields__
    parser.add_argument("--function-name", required=True, help="the Lambda function to create or update")
    parser.add_argument("--bucket", required=True, help="the tile bucket (the archives go under PREFIX/_deploy/)")
    parser.add_argument("--prefix", default=d["prefix"].default, help="the tile prefix the function may use")
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", d["region"].default))
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"),
                        help="an AWS-compatible endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    parser.add_argument("--role-name", help="the IAM role (default: FUNCTION-executor)")
    parser.add_argument("--memory-mb", type=int, default=d["memory_mb"].default)
    parser.add_argument("--timeout", type=int, default=d["timeout"].default, help="seconds, at most 900")
    parser.add_argument("--runtime", default=d["runtime"].default,
                        help="the Lambda runtime: the Python minor version of this interpreter, whose packages "
                             "the layer holds")
    parser.add_argument("--architecture", choices=["x86_64", "arm64"], default=d["architecture"].default)
    parser.add_argument("--queue", choices=["sqs", "redis"], default=d["queue"].default,
                        help="the job queues the executors use (redis: also give the VPC)")
    parser.add_argument("--queue-prefix", default=d["queue_prefix"].default, help="names of the SQS job queues")
    parser.add_argument("--subnet-ids", type=_csv, default=(), help="comma-separated subnets that reach Redis")
    parser.add_argument("--security-group-ids", type=_csv, default=(), help="comma-separated security groups")
    parser.add_argument("--secret-name", default=d["secret_name"].default,
                        help="the Secrets Manager secret holding the job-signing key (made from NPW_SECRET or "
                             "the key file if missing)")
    parser.add_argument("--layer-packages", type=_csv, default=LAYER_REQUIREMENTS,
                        help="comma-separated distributions of the layer, with what they require")
    parser.add_argument("--env", action="append", default=[], metavar="KEY=VALUE",
                        help="another variable of the function's environment (repeatable)")
    parser.add_argument("--dry-run", action="store_true", help="build the archives and print the plan; call nothing")


def settings_from(args: argparse.Namespace) -> DeploySettings:
    return DeploySettings(
        function_name=args.function_name, bucket=args.bucket, prefix=args.prefix, region=args.region,
        endpoint_url=args.endpoint_url, role_name=args.role_name, memory_mb=args.memory_mb, timeout=args.timeout,
        runtime=args.runtime, architecture=args.architecture, queue=args.queue, queue_prefix=args.queue_prefix,
        subnet_ids=tuple(args.subnet_ids), security_group_ids=tuple(args.security_group_ids),
        secret_name=args.secret_name, layer_requirements=tuple(args.layer_packages), env=tuple(args.env))


def run(args: argparse.Namespace) -> int:
    """``npw aws deploy``: print the plan (``--dry-run``) or carry it out; 0 on success, 2 on a refusal."""
    try:
        s = settings_from(args)
        p = plan(s)
        if args.dry_run:
            print(json.dumps(p.describe(), indent=2))
            return 0
        out = Deployer(p, log=lambda m: print(m, file=sys.stderr)).run()
    except DeployError as e:
        print(f"npw aws deploy: {e}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m provisioner.aws_deploy", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add_arguments(ap)
    return run(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
