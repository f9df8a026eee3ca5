"""``provisioner.aws_deploy`` (``npw aws deploy``) against moto_server's Lambda, IAM, S3, STS and Secrets Manager
APIs on loopback, through boto3.

moto creates and updates functions, roles, policies, layers and secrets as AWS does, but it cannot *invoke*
a function without Docker (it runs the code in a Lambda container image), so no invocation is tested here:
the handler itself is tested by calling it (tests/test_provisioner.py) and its key lookup against moto's
Secrets Manager below.  The layer here holds one small distribution (cloudpickle) to keep the test short;
the default layer (numpy, scipy, redis, cloudpickle, xxhash) is measured in docs/aws.md.
"""

from __future__ import annotations

import io
import json
import os
import zipfile

import boto3
import pytest

from executor.lambda_handler import resolve_secret
from provisioner import aws_deploy
from provisioner.aws_deploy import Deployer, DeployError, DeploySettings, check_sizes, execution_policy, plan


@pytest.fixture
def aws(moto_server):
    """Clients of the moto endpoint, and a fresh bucket name per test."""
    kw = {"endpoint_url": moto_server.endpoint, "region_name": "us-east-1"}
    clients = {name: boto3.client(name, **kw) for name in ("s3", "lambda", "iam", "secretsmanager")}
    bucket = f"tiles-{os.urandom(4).hex()}"
    clients["s3"].create_bucket(Bucket=bucket)
    return moto_server.endpoint, bucket, clients


def names(data: bytes) -> set[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return set(z.namelist())


def test_deploy_creates_the_role_layer_secret_and_function_then_only_updates(aws):
    endpoint, bucket, c = aws
    fn = f"npw-{os.urandom(3).hex()}"
    s = DeploySettings(fn, bucket, "jobs", endpoint_url=endpoint, layer_requirements=("cloudpickle",),
                       memory_mb=2048, secret_name=f"{fn}/key", env=("NPW_OUTAGE_S=120",))
    p = plan(s)
    assert "executor/lambda_handler.py" in names(p.function.data)
    assert not any(n.startswith("numpywren2/testing/") or "__pycache__" in n for n in names(p.function.data))
    assert "python/cloudpickle/__init__.py" in names(p.layer.data)
    assert plan(s).function.data == p.function.data, "the archives are deterministic"
    log: list[str] = []
    out = Deployer(p, log=log.append).run(wait_s=30)

    role = c["iam"].get_role(RoleName=f"{fn}-executor")["Role"]
    assert role["Arn"] == out["role_arn"]
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    doc = c["iam"].get_role_policy(RoleName=f"{fn}-executor", PolicyName="numpywren2-executor")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert by_sid["Tiles"]["Resource"] == f"arn:aws:s3:::{bucket}/jobs/*"
    assert by_sid["JobQueues"]["Resource"] == "arn:aws:sqs:us-east-1:123456789012:npw-*"
    assert by_sid["SigningKey"]["Resource"] == out["secret_arn"]
    assert all(st["Resource"] != "*" for st in doc["Statement"]), "no VPC: nothing on every resource"

    cfg = c["lambda"].get_function_configuration(FunctionName=fn)
    assert (cfg["Handler"], cfg["Timeout"], cfg["MemorySize"]) == ("executor.lambda_handler.handler", 900, 2048)
    assert cfg["Role"] == out["role_arn"] and [x["Arn"] for x in cfg["Layers"]] == [out["layer_arn"]]
    assert cfg["CodeSha256"] == p.function.sha256
    env = cfg["Environment"]["Variables"]
    assert env["NPW_SECRET_ARN"] == out["secret_arn"] and env["NPW_OUTAGE_S"] == "120"
    assert "NPW_SECRET" not in env and os.environ["NPW_SECRET"] not in json.dumps(cfg), "only the reference"
    stored = c["secretsmanager"].get_secret_value(SecretId=out["secret_arn"])["SecretString"]
    assert stored == os.environ["NPW_SECRET"], "the key of this machine, put in the secret"
    assert not any(os.environ["NPW_SECRET"] in line for line in log)
    keys = {o["Key"] for o in c["s3"].list_objects_v2(Bucket=bucket, Prefix="jobs/_deploy/")["Contents"]}
    assert keys == {s.artifact_key(p.function), s.artifact_key(p.layer)}

    # a second deployment of the same build changes nothing but the configuration
    log.clear()
    again = Deployer(plan(DeploySettings(fn, bucket, "jobs", endpoint_url=endpoint, memory_mb=4096,
                                         layer_requirements=("cloudpickle",), secret_name=f"{fn}/key")),
                     log=log.append).run(wait_s=30)
    assert again == out
    assert any("kept" in m and "layer" in m for m in log) and any("code unchanged" in m for m in log)
    assert len(c["lambda"].list_layer_versions(LayerName=s.layer_name)["LayerVersions"]) == 1
    cfg = c["lambda"].get_function_configuration(FunctionName=fn)
    assert cfg["MemorySize"] == 4096 and "NPW_OUTAGE_S" not in cfg["Environment"]["Variables"]


def test_the_handler_reads_the_key_from_the_secret_the_deployment_names(aws, monkeypatch):
    _, _, c = aws
    arn = c["secretsmanager"].create_secret(Name=f"k-{os.urandom(3).hex()}", SecretString="k" * 40)["ARN"]
    monkeypatch.delenv("NPW_SECRET")
    monkeypatch.setenv("NPW_SECRET_ARN", arn)
    assert resolve_secret(c["secretsmanager"]) and os.environ["NPW_SECRET"] == "k" * 40
    assert not resolve_secret(c["secretsmanager"]), "fetched once per container"


def test_the_cli_dry_run_prints_the_plan_and_calls_nothing(capsys, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens: any call would fail
    assert aws_deploy.main(["--function-name", "npw", "--bucket", "b", "--layer-packages", "cloudpickle",
                            "--queue", "redis", "--subnet-ids", "subnet-1,subnet-2", "--security-group-ids",
                            "sg-1", "--dry-run"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["function"]["VpcConfig"] == {"SubnetIds": ["subnet-1", "subnet-2"], "SecurityGroupIds": ["sg-1"]}
    sids = [st["Sid"] for st in shown["role"]["policy"]["Statement"]]
    assert "VpcNetworkInterfaces" in sids and "JobQueues" not in sids, "Redis in the VPC, no SQS"
    assert shown["limits"]["unzipped_total_now"] == sum(a["unzipped_bytes"] for a in shown["archives"].values())
    assert os.environ["NPW_SECRET"] not in json.dumps(shown)


def test_refusals_say_what_to_do(capsys):
    with pytest.raises(DeployError, match="needs --subnet-ids"):
        DeploySettings("f", "b", queue="redis")
    with pytest.raises(DeployError, match="never goes into the function's environment"):
        DeploySettings("f", "b", env=("NPW_SECRET=abc",))
    with pytest.raises(DeployError, match="between 1 and 900"):
        DeploySettings("f", "b", timeout=1000)
    p = plan(DeploySettings("f", "b", layer_requirements=("cloudpickle",)))
    with pytest.raises(DeployError, match="container image"):
        check_sizes(p.function, p.layer, max_unzipped=p.function.unzipped)
    with pytest.raises(DeployError, match="not installed"):
        plan(DeploySettings("f", "b", layer_requirements=("no-such-distribution-here",)))
    assert aws_deploy.main(["--function-name", "f", "--bucket", "b", "--queue", "redis", "--dry-run"]) == 2
    assert "needs --subnet-ids" in capsys.readouterr().err


def test_the_policy_names_only_this_deployments_resources():
    s = DeploySettings("fn", "bkt", "pre/fix/", region="eu-west-1", queue_prefix="jobs-")
    doc = execution_policy(s, "111122223333", "arn:aws:secretsmanager:eu-west-1:111122223333:secret:k-AbC")
    by_sid = {st["Sid"]: st for st in doc["Statement"]}
    assert by_sid["Tiles"]["Resource"] == "arn:aws:s3:::bkt/pre/fix/*"
    assert by_sid["TileListing"]["Condition"] == {"StringLike": {"s3:prefix": ["pre/fix/*"]}}
    assert by_sid["UploadListing"] == {"Sid": "UploadListing", "Effect": "Allow",
                                       "Action": "s3:ListBucketMultipartUploads", "Resource": "arn:aws:s3:::bkt"}
    assert by_sid["JobQueues"]["Resource"] == "arn:aws:sqs:eu-west-1:111122223333:jobs-*"
    assert by_sid["Logs"]["Resource"][0] == "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/fn:*"
    assert "VpcNetworkInterfaces" not in by_sid
