"""The least-privilege allow-list: every IAM grant the modules may make, with its reason. The static
test (test_iam_allowlist.py) and the applied one against moto (test_aws.py) both compare with it."""

from __future__ import annotations

from typing import Any

RUNTIME = "${google_service_account.main.member}"
TRIGGER = "${google_service_account.trigger.member}"

# (resource type, name) -> the grant: role, member, and what it is attached to.
GCP_GRANTS: dict[tuple[str, str], dict[str, str]] = {
    # GKE requires container.clusters.get of any identity that authenticates to a cluster; it also
    # resolves GKE_CLUSTER. The only project-level role.
    ("google_project_iam_member", "cluster_viewer"): {
        "role": "roles/container.clusterViewer",
        "member": RUNTIME,
        "project": "${local.cluster_project}",
    },
    # Read the mounted secrets, each on its own secret.
    ("google_secret_manager_secret_iam_member", "accessor"): {
        "role": "roles/secretmanager.secretAccessor",
        "member": RUNTIME,
        "for_each": "${google_secret_manager_secret.mounted}",
        "secret_id": "${each.value.secret_id}",
    },
    # Publish audit records to the audit topic only.
    ("google_pubsub_topic_iam_member", "audit_publisher"): {
        "role": "roles/pubsub.publisher",
        "member": RUNTIME,
        "topic": "${local.audit_topic_id}",
        "count": "${var.audit_topic == null ? 0 : 1}",
    },
    # Eventarc's identity invokes the scheduled function, not the HTTP one.
    ("google_cloud_run_v2_service_iam_member", "trigger_invoker"): {
        "role": "roles/run.invoker",
        "member": TRIGGER,
        "name": '${google_cloudfunctions2_function.main["pubsub"].service_config[0].service}',
    },
    # Callers the operator names (e.g. an OIDC scheduler identity), on the HTTP function.
    ("google_cloud_run_v2_service_iam_member", "invoker"): {
        "role": "roles/run.invoker",
        "member": "${each.value}",
        "name": '${google_cloudfunctions2_function.main["http"].service_config[0].service}',
        "for_each": "${toset(var.invoker_members)}",
    },
    # Public invocation, only with allow_public_invocation (the token is still required).
    ("google_cloud_run_v2_service_iam_member", "public"): {
        "role": "roles/run.invoker",
        "member": "allUsers",
        "name": '${google_cloudfunctions2_function.main["http"].service_config[0].service}',
        "count": "${var.allow_public_invocation ? 1 : 0}",
    },
    # Projects created before April 2021 only: Pub/Sub mints push tokens for the trigger identity.
    ("google_service_account_iam_member", "pubsub_token_creator"): {
        "role": "roles/iam.serviceAccountTokenCreator",
        "member": (
            "serviceAccount:service-${data.google_project.main[0].number}"
            "@gcp-sa-pubsub.iam.gserviceaccount.com"
        ),
        "service_account_id": "${google_service_account.trigger.name}",
        "count": "${var.grant_pubsub_token_creator ? 1 : 0}",
    },
}
FORBIDDEN_GCP_ROLES = (
    "roles/owner", "roles/editor", "roles/viewer", "roles/container.developer",
    "roles/container.admin", "roles/container.clusterAdmin", "roles/iam.serviceAccountUser",
)  # fmt: skip

# (policy document, sid) -> actions and resources (as written in HCL); "*" only where AWS has no
# resource-level permission, each case in STAR_RESOURCES with its reason.
AWS_STATEMENTS: dict[tuple[str, str], dict[str, Any]] = {
    ("main", "WriteOwnLogs"): {
        "actions": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "resources": ["${aws_cloudwatch_log_group.main.arn}:*"],
    },
    ("main", "DescribeOwnCluster"): {
        "actions": ["eks:DescribeCluster"],
        "resources": ["${local.cluster_arn}"],
    },
    ("main", "ReadWebhookToken"): {
        "actions": ["secretsmanager:GetSecretValue"],
        "resources": ["${aws_secretsmanager_secret.webhook_token.arn}"],
    },
    ("main", "SendToDeadLetterQueue"): {
        "actions": ["sqs:SendMessage"],
        "resources": ["${local.dead_letter_queue_arn}"],
    },
    ("main", "CreateNetworkInterfaces"): {
        "actions": ["ec2:CreateNetworkInterface"],
        "resources": (
            "${concat([local.eni_arn], [for id in statement.value.subnet_ids : "
            '"arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"], '
            "[for id in statement.value.security_group_ids : "
            '"arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${id}"])}'
        ),
    },
    ("main", "ManageNetworkInterfaces"): {
        "actions": [
            "ec2:DeleteNetworkInterface",
            "ec2:AssignPrivateIpAddresses",
            "ec2:UnassignPrivateIpAddresses",
        ],
        "resources": ["${local.eni_arn}"],
    },
    ("main", "DescribeNetworkInterfaces"): {
        "actions": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"],
        "resources": ["*"],
    },
    ("scheduler", "InvokeFunction"): {
        "actions": ["lambda:InvokeFunction"],
        "resources": ["${aws_lambda_function.main.arn}"],
    },
    ("scheduler", "SendToDeadLetterQueue"): {
        "actions": ["sqs:SendMessage"],
        "resources": ["${local.dead_letter_queue_arn}"],
    },
}
STAR_RESOURCES = {
    ("main", "DescribeNetworkInterfaces"): (
        "EC2 Describe actions support no resource-level permissions; Lambda needs them to manage "
        "the function's network interfaces, and only when var.vpc is set"
    ),
}
# Statements present only with the optional VPC attachment, or only without an explicit endpoint.
CONDITIONAL = {
    ("main", "DescribeOwnCluster"): "${local.lookup_eks ? [1] : []}",
    ("main", "CreateNetworkInterfaces"): "${var.vpc == null ? [] : [var.vpc]}",
    ("main", "ManageNetworkInterfaces"): "${var.vpc == null ? [] : [1]}",
    ("main", "DescribeNetworkInterfaces"): "${var.vpc == null ? [] : [1]}",
}
ASSUME_ROLE = {
    "assume_lambda": "lambda.amazonaws.com",
    "assume_scheduler": "scheduler.amazonaws.com",
}
AWS_IAM_RESOURCES = {
    "aws_iam_role.main",
    "aws_iam_role.scheduler",
    "aws_iam_role_policy.main",
    "aws_iam_role_policy.scheduler",
}
