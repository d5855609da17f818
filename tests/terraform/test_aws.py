"""terraform/examples/eks applied for real against moto_server: init from the local provider mirror,
validate, plan, apply, then boto3 reads back what was created, and destroy must leave nothing.

Not checked here because moto 5.2 cannot: the EKS access entry (CreateAccessEntry answers 404, so
the example runs with create_eks_access_entry = false and the entry is checked statically), and
invoking the function (moto needs Docker for that; the handler is the function side's tests)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from infra.stack.moto import Moto, start_moto
from pod_rebalancer import telemetry
from pod_rebalancer.aws_lambda import METRICS_NAMESPACE
from tests.terraform.allowlist import AWS_STATEMENTS, STAR_RESOURCES
from tests.terraform.tf import REPO, TIMINGS, Terraform, module, one

pytestmark = pytest.mark.terraform

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's
CLUSTER = "prod"
NAME = "pod-rebalancer"
QUEUE_ARN = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{NAME}-dead-letter"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{NAME}"
SCHEDULES = {
    "every-30m": {"schedule": "rate(30 minutes)"},
    "nightly-dry-run": {
        "schedule": "cron(0 3 * * ? *)",
        "time_zone": "Europe/Berlin",
        "dry_run": True,
    },
    # One schedule for every opted-in Deployment of the allowed namespaces: no target named.
    "sweep-hourly": {"schedule": "rate(1 hour)", "sweep": True},
}
ALLOWED_NAMESPACES = ["posthog", "ingest"]
TARGET = {"namespace": "posthog", "deployment": "ingestion-consumer"}


@dataclass
class Deployment:
    tf: Terraform
    moto: Moto
    zip_path: Path
    network: dict[str, Any]
    outputs: dict[str, Any] = field(default_factory=dict)
    destroyed: bool = False

    @property
    def token(self) -> str:
        secret = self.moto.client("secretsmanager").get_secret_value(
            SecretId=self.outputs["webhook_token_secret_arn"]
        )
        value: str = secret["SecretString"]
        return value


@pytest.fixture(scope="module")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Moto]:
    """A moto of this module's own (not the session's): destroy must leave it empty."""
    server = start_moto(tmp_path_factory.mktemp("moto"), region=REGION)
    try:
        yield server
    finally:
        server.stop()


def network(moto: Moto) -> dict[str, Any]:
    """A VPC to put the function in: the private-endpoint case, the one with the ENI grants."""
    ec2 = moto.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.40.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(
        GroupName="pod-rebalancer", Description="pod-rebalancer egress", VpcId=vpc
    )["GroupId"]
    return {"subnet_ids": [subnet], "security_group_ids": [group]}


def oncall(moto: Moto) -> str:
    """An SNS topic for the alarms to notify."""
    arn: str = moto.client("sns").create_topic(Name="oncall")["TopicArn"]
    return arn


@pytest.fixture(scope="module")
def deployed(
    moto: Moto,
    workspace: Path,
    terraform_bin: str,
    mirror_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Deployment]:
    scratch = tmp_path_factory.mktemp("aws")
    env = {
        **mirror_env,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(scratch / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(scratch / "no-credentials"),
    }
    tf = Terraform(terraform_bin, workspace / "examples" / "eks", env, TIMINGS)
    # Neither step reads a variable's value, so they run while another xdist worker may still be
    # building the zip (the session's lambda_package, asked for only when the plan needs it).
    tf.run("init", "-no-color", timed="init")
    tf.run("validate", "-no-color", timed="validate")
    # What `make package-lambda` builds: the zip that is deployed.
    zip_path: Path = request.getfixturevalue("lambda_package")
    deployment = Deployment(tf, moto, zip_path, network(moto))
    (tf.workdir / "moto.auto.tfvars.json").write_text(
        json.dumps(
            {
                "aws_endpoint": moto.url,
                "region": REGION,
                "eks_cluster_name": CLUSTER,
                "source_zip": str(zip_path),
                "prometheus_endpoint": "http://vmselect.monitoring:8481/select/0/prometheus",
                **TARGET,
                "schedules": SCHEDULES,
                "allowed_namespaces": ALLOWED_NAMESPACES,
                "vpc": deployment.network,
                "create_eks_access_entry": False,  # moto 5.2 has no CreateAccessEntry
                "secret_recovery_window_in_days": 0,
                "alarm_actions": [oncall(moto)],
            }
        )
    )
    tf.run("plan", "-no-color", "-out=plan.tfplan", timed="plan")
    tf.run("apply", "-no-color", "plan.tfplan", timed="apply")
    deployment.outputs = tf.outputs()
    try:
        yield deployment
    finally:
        if not deployment.destroyed:
            tf.run("destroy", "-auto-approve", "-no-color", check=False)


def statements(document: dict[str, Any]) -> dict[str, dict[str, set[str]]]:
    """A policy's statements by Sid, with Action and Resource as sets."""
    found = {}
    for statement in document["Statement"]:
        assert statement["Effect"] == "Allow"
        actions, resources = statement["Action"], statement["Resource"]
        found[statement["Sid"]] = {
            "actions": {actions} if isinstance(actions, str) else set(actions),
            "resources": {resources} if isinstance(resources, str) else set(resources),
        }
    return found


def role_policy(deployed: Deployment, role: str) -> dict[str, dict[str, set[str]]]:
    iam = deployed.moto.client("iam")
    assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
    (name,) = iam.list_role_policies(RoleName=role)["PolicyNames"]
    return statements(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])


def test_execution_role_has_exactly_the_listed_grants(deployed: Deployment) -> None:
    secret_arn = deployed.outputs["webhook_token_secret_arn"]
    eni = f"arn:aws:ec2:{REGION}:{ACCOUNT}:network-interface/*"
    (subnet,) = deployed.network["subnet_ids"]
    (group,) = deployed.network["security_group_ids"]
    expected = {
        "WriteOwnLogs": {
            "actions": {"logs:CreateLogStream", "logs:PutLogEvents"},
            "resources": {f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/{NAME}:*"},
        },
        "DescribeOwnCluster": {
            "actions": {"eks:DescribeCluster"},
            "resources": {f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/{CLUSTER}"},
        },
        "ReadWebhookToken": {
            "actions": {"secretsmanager:GetSecretValue"},
            "resources": {secret_arn},
        },
        "SendToDeadLetterQueue": {"actions": {"sqs:SendMessage"}, "resources": {QUEUE_ARN}},
        "CreateNetworkInterfaces": {
            "actions": {"ec2:CreateNetworkInterface"},
            "resources": {
                eni,
                f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{subnet}",
                f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{group}",
            },
        },
        "ManageNetworkInterfaces": {
            "actions": {
                "ec2:DeleteNetworkInterface",
                "ec2:AssignPrivateIpAddresses",
                "ec2:UnassignPrivateIpAddresses",
            },
            "resources": {eni},
        },
        "DescribeNetworkInterfaces": {
            "actions": {"ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"},
            "resources": {"*"},
        },
    }
    applied = role_policy(deployed, NAME)
    assert applied == expected
    for sid, statement in applied.items():
        assert set(AWS_STATEMENTS[("main", sid)]["actions"]) == statement["actions"]
        assert not any("*" in action for action in statement["actions"])
        if "*" in statement["resources"]:
            assert ("main", sid) in STAR_RESOURCES


def test_scheduler_role_may_only_invoke_this_function_and_reach_the_queue(
    deployed: Deployment,
) -> None:
    applied = role_policy(deployed, f"{NAME}-scheduler")
    assert applied == {
        "InvokeFunction": {"actions": {"lambda:InvokeFunction"}, "resources": {FUNCTION_ARN}},
        "SendToDeadLetterQueue": {"actions": {"sqs:SendMessage"}, "resources": {QUEUE_ARN}},
    }
    for sid in applied:
        assert ("scheduler", sid) in AWS_STATEMENTS


def test_roles_trust_only_their_service(deployed: Deployment) -> None:
    iam = deployed.moto.client("iam")
    trusted = {}
    for role in (NAME, f"{NAME}-scheduler"):
        (statement,) = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"]
        assert statement["Action"] == "sts:AssumeRole"
        trusted[role] = (statement["Principal"], statement.get("Condition"))
    assert trusted == {
        NAME: ({"Service": "lambda.amazonaws.com"}, None),
        f"{NAME}-scheduler": (
            {"Service": "scheduler.amazonaws.com"},
            {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
        ),
    }


def test_each_schedule_invokes_the_function_with_the_manual_body(deployed: Deployment) -> None:
    scheduler = deployed.moto.client("scheduler")
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{NAME}-scheduler"
    names = sorted(s["Name"] for s in scheduler.list_schedules()["Schedules"])
    assert names == [f"{NAME}-{key}" for key in sorted(SCHEDULES)]
    for key, job in SCHEDULES.items():
        schedule = scheduler.get_schedule(Name=f"{NAME}-{key}")
        assert schedule["ScheduleExpression"] == job["schedule"]
        assert schedule["ScheduleExpressionTimezone"] == job.get("time_zone", "Etc/UTC")
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
        target = schedule["Target"]
        assert target["Arn"] == FUNCTION_ARN
        assert target["RoleArn"] == role_arn
        body = {"sweep": True} if job.get("sweep") else dict(TARGET)
        body.update({"dry_run": True} if job.get("dry_run") else {})
        assert json.loads(target["Input"]) == body
        assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 600
        assert target["DeadLetterConfig"] == {"Arn": QUEUE_ARN}


def test_function_url_is_public_for_url_calls_only(deployed: Deployment) -> None:
    lambda_ = deployed.moto.client("lambda")
    url = lambda_.get_function_url_config(FunctionName=NAME)
    assert url["AuthType"] == "NONE"
    assert url["FunctionUrl"] == deployed.outputs["function_url"]
    (statement,) = json.loads(lambda_.get_policy(FunctionName=NAME)["Policy"])["Statement"]
    # moto keeps the condition flat; AWS nests it under Condition.StringEquals.
    condition = (
        statement.get("FunctionUrlAuthType")
        or (statement["Condition"]["StringEquals"]["lambda:FunctionUrlAuthType"])
    )
    assert statement["Sid"] == "FunctionURLAllowPublicAccess"
    assert (statement["Action"], statement["Principal"], condition) == (
        "lambda:InvokeFunctionUrl",
        "*",
        "NONE",
    )


def test_function_runs_the_zip_with_settings_and_no_secret_in_its_environment(
    deployed: Deployment,
) -> None:
    config = deployed.moto.client("lambda").get_function_configuration(FunctionName=NAME)
    assert (config["Handler"], config["Runtime"]) == ("main.lambda_handler", "python3.11")
    assert (config["MemorySize"], config["Timeout"]) == (512, 120)
    digest = base64.b64encode(hashlib.sha256(deployed.zip_path.read_bytes()).digest()).decode()
    assert config["CodeSha256"] == digest
    assert config["VpcConfig"]["SubnetIds"] == deployed.network["subnet_ids"]
    assert config["VpcConfig"]["SecurityGroupIds"] == deployed.network["security_group_ids"]
    env = config["Environment"]["Variables"]
    assert env["KUBE_AUTH"] == "eks"
    assert env["EKS_CLUSTER_NAME"] == CLUSTER
    assert env["WEBHOOK_TOKEN_SECRET_ARN"] == deployed.outputs["webhook_token_secret_arn"]
    assert (env["KUBE_NAMESPACE"], env["DEPLOYMENT_NAME"]) == tuple(TARGET.values())
    assert env["DRY_RUN"] == "true"
    assert env["ALLOWED_NAMESPACES"] == ",".join(ALLOWED_NAMESPACES)
    token = deployed.token
    assert all(token not in value for value in env.values())
    secretish = {name for name in env if "TOKEN" in name or "SECRET" in name}
    assert secretish == {"WEBHOOK_TOKEN_SECRET_ARN"}


def test_failed_scheduled_runs_are_capped_at_ten_minutes_and_land_in_the_queue(
    deployed: Deployment,
) -> None:
    lambda_ = deployed.moto.client("lambda")
    config = lambda_.get_function_event_invoke_config(FunctionName=NAME)
    assert config["MaximumEventAgeInSeconds"] == 600
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"] == {"Destination": QUEUE_ARN}
    sqs = deployed.moto.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{NAME}-dead-letter")["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["QueueArn"] == QUEUE_ARN
    assert attributes["SqsManagedSseEnabled"] == "true"
    logs = deployed.moto.client("logs")
    (group,) = logs.describe_log_groups(logGroupNamePrefix=f"/aws/lambda/{NAME}")["logGroups"]
    assert group["retentionInDays"] == 90


def test_token_is_in_secrets_manager_and_nowhere_in_plan_or_state(deployed: Deployment) -> None:
    token = deployed.token
    assert len(token) == 48
    assert token.isalnum()
    state = deployed.tf.run("state", "pull").stdout
    plan = deployed.tf.run("show", "-json", "-no-color", "plan.tfplan").stdout
    assert token not in state
    assert token not in plan
    for path in deployed.tf.workdir.rglob("*"):
        if path.is_file() and ".terraform" not in path.parts:
            assert token.encode() not in path.read_bytes(), path


def test_alarms_watch_the_embedded_metrics_for_failures_evictions_and_not_effective(
    deployed: Deployment,
) -> None:
    alarms = deployed.moto.client("cloudwatch").describe_alarms(AlarmNamePrefix=NAME)
    found = {alarm["AlarmName"]: alarm for alarm in alarms["MetricAlarms"]}
    assert sorted(found) == [f"{NAME}-evictions", f"{NAME}-failing", f"{NAME}-not-effective"]
    topic = f"arn:aws:sns:{REGION}:{ACCOUNT}:oncall"
    shape = {
        name: (
            alarm["Namespace"],
            alarm["MetricName"],
            {d["Name"]: d["Value"] for d in alarm["Dimensions"]},
            alarm["Statistic"],
            alarm["Period"],
            alarm["EvaluationPeriods"],
            alarm.get("DatapointsToAlarm"),
            alarm["ComparisonOperator"],
            alarm["Threshold"],
            alarm["TreatMissingData"],
            alarm["AlarmActions"],
        )
        for name, alarm in found.items()
    }
    executions, deleted = telemetry.EXECUTIONS.name, telemetry.PODS_DELETED.name
    assert shape == {
        # Failed results in 3 half-hour periods in a row (the module's defaults).
        f"{NAME}-failing": (
            METRICS_NAMESPACE, executions, {"action": "failed"}, "Sum", 1800, 3, 3,
            "GreaterThanOrEqualToThreshold", 1.0, "notBreaching", [topic],
        ),
        f"{NAME}-evictions": (
            METRICS_NAMESPACE, deleted, {}, "Sum", 3600, 1, None,
            "GreaterThanThreshold", 10.0, "notBreaching", [topic],
        ),
        f"{NAME}-not-effective": (
            METRICS_NAMESPACE, executions, {"reason": "not_effective"}, "Sum", 300, 1, None,
            "GreaterThanThreshold", 0.0, "notBreaching", [topic],
        ),
    }  # fmt: skip
    # Each alarm reads a series the function writes: a rollup of the metric it names.
    assert ("action",) in telemetry.EXECUTIONS.rollups
    assert ("reason",) in telemetry.EXECUTIONS.rollups
    assert () in telemetry.PODS_DELETED.rollups


def test_a_second_plan_changes_nothing_and_needs_no_token(deployed: Deployment) -> None:
    result = deployed.tf.run(
        "plan", "-no-color", "-detailed-exitcode", check=False, timed="second plan"
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_outputs_are_the_rbac_roots_inputs(deployed: Deployment) -> None:
    inputs = deployed.outputs["rbac_inputs"]
    assert set(inputs) == set(module("examples/eks/rbac").variables())
    assert inputs == {
        "namespaces": ALLOWED_NAMESPACES,
        "eviction_mode": "evict",
        "sweep": True,  # a schedule sweeps: the Roles may list Deployments
        "subject": {"kind": "Group", "name": "pod-rebalancer"},
        "cluster": {"name": CLUSTER, "region": REGION},
    }
    receiver = deployed.outputs["alertmanager_receiver"]
    assert f"url: {deployed.outputs['function_url']}" in receiver
    assert "credentials_file: /etc/alertmanager/secrets/pod-rebalancer/token" in receiver


def test_the_access_entry_is_declared_but_moto_cannot_create_it(deployed: Deployment) -> None:
    entry = module("aws").resource("aws_eks_access_entry", "main")
    assert entry["count"] == "${var.create_eks_access_entry ? 1 : 0}"
    assert entry["principal_arn"] == "${aws_iam_role.main.arn}"
    assert entry["kubernetes_groups"] == ["${var.kubernetes_group}"]
    assert entry["type"] == "STANDARD"
    assert module("aws").variables()["create_eks_access_entry"]["default"] is True
    assert "moto" in (REPO / "terraform" / "aws" / "README.md").read_text()
    resources = deployed.tf.run("state", "list").stdout.split()
    assert not [address for address in resources if "aws_eks_access" in address]
    # The reason for the switch, checked rather than assumed: if moto learns access entries, this
    # fails and the example should create the entry here too.
    eks = deployed.moto.client("eks")
    eks.create_cluster(
        name=CLUSTER,
        roleArn=f"arn:aws:iam::{ACCOUNT}:role/eks",
        resourcesVpcConfig={"subnetIds": deployed.network["subnet_ids"]},
    )
    with pytest.raises(ClientError) as raised:
        eks.create_access_entry(
            clusterName=CLUSTER,
            principalArn=deployed.outputs["role_arn"],
            kubernetesGroups=["pod-rebalancer"],
        )
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    eks.delete_cluster(name=CLUSTER)


def test_destroy_leaves_nothing(deployed: Deployment) -> None:
    deployed.tf.run("destroy", "-auto-approve", "-no-color", timed="destroy")
    deployed.destroyed = True
    assert deployed.tf.run("state", "list").stdout.split() == []
    moto = deployed.moto
    assert moto.client("lambda").list_functions()["Functions"] == []
    roles = [role["RoleName"] for role in moto.client("iam").list_roles()["Roles"]]
    assert not [role for role in roles if role.startswith(NAME)]
    assert moto.client("scheduler").list_schedules()["Schedules"] == []
    assert moto.client("secretsmanager").list_secrets()["SecretList"] == []
    assert "QueueUrls" not in moto.client("sqs").list_queues()
    groups = moto.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")
    assert groups["logGroups"] == []
    assert moto.client("cloudwatch").describe_alarms()["MetricAlarms"] == []


def test_module_variables_the_example_does_not_set_have_safe_defaults() -> None:
    variables = module("aws").variables()
    assert variables["function_url_authorization_type"]["default"] == "NONE"
    # The runtime the tests run is the runtime deployed: the Lambda zip is built for it.
    assert (
        variables["runtime"]["default"]
        == f"python{sys.version_info.major}.{sys.version_info.minor}"
    )
    assert variables["webhook_token_version"]["default"] == 1
    assert variables["webhook_token"]["ephemeral"] is True
    version = module("aws").resource("aws_secretsmanager_secret_version", "webhook_token")
    assert "secret_string_wo" in version
    assert "secret_string" not in version
    handler = module("aws").resource("aws_lambda_function", "main")
    assert handler["source_code_hash"] == "${filebase64sha256(var.source_zip)}"
    assert one(handler["environment"])["variables"] == "${local.environment}"
