"""terraform/gcp, read as data: no Google provider is available offline, so what matters is checked
in the parsed HCL (the settings mapping it uses is evaluated for real in test_settings.py, and the
schedule body expression, shared with the AWS module, is applied against moto in test_aws.py)."""

from __future__ import annotations

import re
import sys
from typing import Any

import yaml

from tests.terraform.tf import dynamic, module, one

GCP = module("gcp")
URL = "https://pod-rebalancer-abc-ew.a.run.app"


def function() -> dict[str, Any]:
    return GCP.resource("google_cloudfunctions2_function", "main")


def test_two_functions_from_one_source_zip_named_by_its_md5() -> None:
    assert GCP.locals()["functions"] == {
        "http": {"name": "${var.name}", "entry_point": "rebalance"},
        "pubsub": {"name": "${var.name}-scheduled", "entry_point": "rebalance_pubsub"},
    }
    body = function()
    assert body["for_each"] == "${local.functions}"
    build = one(body["build_config"])
    assert build["entry_point"] == "${each.value.entry_point}"
    assert build["runtime"] == "${var.runtime}"
    assert one(one(build["source"])["storage_source"]) == {
        "bucket": "${google_storage_bucket_object.source.bucket}",
        "object": "${google_storage_bucket_object.source.name}",
    }
    source = GCP.resource("google_storage_bucket_object", "source")
    assert "${filemd5(var.source_zip)}" in source["name"]
    assert source["source"] == "${var.source_zip}"
    variables = GCP.variables()
    # The runtime the tests run is the runtime deployed.
    assert (
        variables["runtime"]["default"] == f"python{sys.version_info.major}{sys.version_info.minor}"
    )
    for name in ("available_memory", "timeout_seconds", "max_instance_count"):
        assert "default" in variables[name], name


def test_the_pubsub_function_is_triggered_by_the_scheduler_topic_with_retries() -> None:
    (trigger,) = dynamic(function(), "event_trigger")
    assert trigger["for_each"] == '${each.key == "pubsub" ? [1] : []}'
    content = one(trigger["content"])
    assert content["event_type"] == "google.cloud.pubsub.topic.v1.messagePublished"
    assert content["pubsub_topic"] == "${google_pubsub_topic.scheduler.id}"
    assert content["service_account_email"] == "${google_service_account.trigger.email}"
    assert content["retry_policy"] == "RETRY_POLICY_RETRY"
    why = " ".join(comment["value"] for comment in content["__comments__"])
    assert "10 minutes" in why
    assert "raises only" in why
    # The topic keeps messages no longer than the function would act on them.
    topic = GCP.resource("google_pubsub_topic", "scheduler")
    assert topic["message_retention_duration"] == "600s"
    # The Pub/Sub function is never reachable from outside.
    service = one(function()["service_config"])
    assert service["ingress_settings"] == (
        '${each.key == "http" ? var.ingress_settings : "ALLOW_INTERNAL_ONLY"}'
    )


def test_one_scheduler_job_per_target_publishing_the_manual_body() -> None:
    job = GCP.resource("google_cloud_scheduler_job", "main")
    assert job["for_each"] == "${var.schedules}"
    assert job["schedule"] == "${each.value.schedule}"
    assert job["time_zone"] == "${each.value.time_zone}"
    assert one(job["pubsub_target"]) == {
        "topic_name": "${google_pubsub_topic.scheduler.id}",
        "data": "${base64encode(jsonencode(local.schedule_bodies[each.key]))}",
    }
    schedules_type = GCP.variables()["schedules"]["type"]
    for field in ("schedule", "time_zone", "namespace", "deployment", "dry_run", "sweep"):
        assert f"{field} =" in schedules_type, field
    # The very expression the AWS module uses for its schedules' input, applied in test_aws.py.
    aws_locals = module("aws").locals()
    assert GCP.locals()["schedule_bodies"] == aws_locals["schedule_inputs"]


def test_secrets_are_mounted_files_of_version_latest_never_environment_variables() -> None:
    service = one(function()["service_config"])
    assert "secret_environment_variables" not in service
    assert not dynamic(service, "secret_environment_variables")
    (volume,) = dynamic(service, "secret_volumes")
    assert volume["for_each"] == "${local.secrets}"
    content = one(volume["content"])
    secret = "${google_secret_manager_secret.mounted[secret_volumes.key].secret_id}"
    assert content["secret"] == secret
    assert one(content["versions"]) == {"version": "latest", "path": "${secret_volumes.value.file}"}
    # The environment names the mounted files; no variable carries a secret value.
    assert {key: secret["env"] for key, secret in GCP.locals()["all_secrets"].items()} == {
        "webhook_token": "WEBHOOK_TOKEN_FILE",
        "prometheus_bearer_token": "PROMETHEUS_BEARER_TOKEN_FILE",
        "webhook_hmac_secret": "WEBHOOK_HMAC_SECRET_FILE",
    }
    platform = GCP.locals()["platform_environment"]
    assert 'secret.env => "${secret.mount_path}/${secret.file}"' in platform
    assert service["environment_variables"] == "${local.environment}"
    for plain in ("WEBHOOK_TOKEN", "PROMETHEUS_BEARER_TOKEN", "WEBHOOK_HMAC_SECRET"):
        assert not re.search(rf"\b{plain}\s*=", GCP.text()), plain


def test_secret_values_are_write_only_from_an_ephemeral_source() -> None:
    version = GCP.resource("google_secret_manager_secret_version", "managed")
    assert set(version) == {"for_each", "secret", "secret_data_wo", "secret_data_wo_version"}
    assert "var.secret_values" in version["secret_data_wo"]
    assert "ephemeral.random_password.generated" in version["secret_data_wo"]
    variables = GCP.variables()
    assert variables["secret_values"]["ephemeral"] is True
    assert variables["secret_values"]["sensitive"] is True
    assert variables["secret_value_versions"]["default"] == {"webhook_token": 1}
    assert [block.type for block in GCP.blocks("ephemeral")] == ["random_password"]
    assert "secret_data =" not in GCP.text()


def test_the_environment_has_the_cluster_and_every_platform_setting() -> None:
    platform = GCP.locals()["platform_environment"]
    assert 'KUBE_AUTH = "gke"' in platform
    assert (
        'GKE_CLUSTER = "projects/${local.cluster_project}/locations/${var.cluster.location}'
        '/clusters/${var.cluster.name}"'
    ) in platform
    for name in ("GKE_ENDPOINT", "GKE_CA_CERT", "GKE_API_ENDPOINT", "AUDIT_TOPIC"):
        assert f"{name} =" in platform, name
    assert GCP.locals()["environment"] == (
        "${merge(module.settings.environment, local.platform_environment)}"
    )
    settings_call = next(block.body for block in GCP.blocks("module") if block.name == "settings")
    assert settings_call == {"source": "../settings", "settings": "${var.settings}"}


def test_public_invocation_only_behind_its_variable() -> None:
    public = GCP.resource("google_cloud_run_v2_service_iam_member", "public")
    assert public["count"] == "${var.allow_public_invocation ? 1 : 0}"
    assert public["member"] == "allUsers"
    assert GCP.variables()["allow_public_invocation"]["default"] is False
    assert GCP.text().count('"allUsers"') == 2  # this grant, and the invoker_members validation
    (check,) = GCP.variables()["invoker_members"]["validation"]
    assert "allUsers" in check["condition"]


def test_vpc_egress_by_connector_or_direct() -> None:
    service = one(function()["service_config"])
    assert service["vpc_connector"] == "${var.network.vpc_connector}"
    (interface,) = dynamic(service, "direct_vpc_network_interface")
    assert one(interface["content"])["network"] == "${direct_vpc_network_interface.value.network}"
    assert "direct_vpc_egress" in service


def test_outputs_for_alertmanager_and_the_rbac_root() -> None:
    outputs = GCP.outputs()
    for name in ("function_url", "scheduler_topic", "service_account_email", "rbac_inputs"):
        assert name in outputs, name
    receiver = outputs["alertmanager_receiver"]["value"].replace('\\"', '"')
    uri = '${google_cloudfunctions2_function.main["http"].service_config[0].uri}'
    rendered = yaml.safe_load(
        receiver.replace(uri, URL).replace("${var.alertmanager_credentials_file}", "/etc/token")
    )
    assert rendered == [
        {
            "name": "pod-rebalancer",
            "webhook_configs": [
                {
                    "url": URL,
                    "send_resolved": True,
                    "max_alerts": 0,
                    "http_config": {
                        "authorization": {"type": "Bearer", "credentials_file": "/etc/token"}
                    },
                }
            ],
        }
    ]
    subject = outputs["rbac_inputs"]["value"]["subject"]
    assert subject == {"kind": "User", "name": "${google_service_account.main.email}"}
