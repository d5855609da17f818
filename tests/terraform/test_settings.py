"""terraform/settings, evaluated by Terraform itself (it needs no provider): every setting of the
function is reachable, the defaults are the function's own, and bad values fail at plan time."""

from __future__ import annotations

from typing import Any

import pytest

from infra.stack.processes import setting_names
from pod_rebalancer.config import Settings, load_settings
from tests.terraform.tf import Terraform, evaluate, module

SETTINGS = module("settings").directory
MINIMAL = {
    "prometheus_endpoint": "http://vmselect:8481/select/0/prometheus",
    "kube_namespace": "posthog",
    "deployment_name": "ingestion-consumer",
}
# Every field set to something other than its default.
FULL = {
    **MINIMAL,
    "prometheus_timeout": "45s",
    "container_name": "consumer",
    "kube_label_selector": "app=ingestion-consumer",
    "metrics_time_window": "10m",
    "imbalance_statistic": "cv",
    "cpu_variance_threshold": 0.5,
    "min_pods_required": 4,
    "max_pods_to_delete": 3,
    "min_improvement_percent": 20,
    "min_pod_age": "30m",
    "cooldown": "1h",
    "eviction_mode": "delete",
    "dry_run": False,
    "allowed_namespaces": ["posthog", "ingest"],
    "allowed_deployments": ["ingestion-*", "events"],
    "exclude_annotation": "example.com/keep",
    "log_level": "debug",
    "webhook_signature_header": "X-Signature",
    "webhook_signature_timestamp_header": "X-Timestamp",
    "sweep_concurrency": 2,
    "max_pods_per_run": 6,
    "max_ineffective_rebalances": 3,
    "ineffective_backoff": "12h",
    "imbalance_signal": "score",
    "score_weights": "cpu=0.5,lag=0.5",
    "lag_query": "sum by(pod)(kafka_lag)",
    "memory_query": "sum by(pod)(container_memory_working_set_bytes)",
    "imbalance_policy": "hpa_target",
    "tolerance_multiplier": 2,
    "pushgateway_url": "http://pushgateway.monitoring:9091",
}

# Settings the cloud modules set themselves (from their cluster, topic and secret variables).
PLATFORM = {
    "KUBE_AUTH": "gke on Google Cloud, eks on AWS",
    "GKE_CLUSTER": "gcp: cluster",
    "GKE_ENDPOINT": "gcp: cluster.endpoint",
    "GKE_CA_CERT": "gcp: cluster.ca_certificate",
    "GKE_API_ENDPOINT": "gcp: cluster.api_endpoint",
    "EKS_CLUSTER_NAME": "aws: eks_cluster.name",
    "EKS_ENDPOINT": "aws: eks_cluster.endpoint",
    "EKS_CA_CERT": "aws: eks_cluster.ca_certificate",
    "AUDIT_TOPIC": "gcp: audit_topic",
    "WEBHOOK_TOKEN_FILE": "gcp: the mounted webhook_token secret",
    "PROMETHEUS_BEARER_TOKEN_FILE": "gcp: the mounted prometheus_bearer_token secret",
    "WEBHOOK_HMAC_SECRET_FILE": "gcp: the mounted webhook_hmac_secret secret",
    "WEBHOOK_TOKEN_SECRET_ARN": "aws: the webhook token's Secrets Manager secret",
}
# Settings no module exposes, on purpose.
NOT_EXPOSED = {
    "WEBHOOK_TOKEN": "a secret: only through a secret manager (a file on GCP, an ARN on AWS)",
    "PROMETHEUS_BEARER_TOKEN": "a secret: PROMETHEUS_BEARER_TOKEN_FILE on GCP",
    "WEBHOOK_HMAC_SECRET": "a secret: WEBHOOK_HMAC_SECRET_FILE on GCP",
    "ALLOW_UNAUTHENTICATED": "local use only; the modules always set a token, which makes it inert",
}


def environment(tf: Terraform, settings: dict[str, Any]) -> dict[str, str]:
    result = evaluate(tf, SETTINGS, {"settings": settings}, ["environment", "namespaces"])
    assert isinstance(result, dict), result
    env: dict[str, str] = result["environment"]
    return env


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """What the function makes of these environment variables at cold start."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return load_settings()


def test_every_setting_of_the_function_is_reachable_or_excluded_with_a_reason(
    evaluator: Terraform,
) -> None:
    mapped = set(environment(evaluator, FULL))
    for name in sorted(setting_names()):
        assert name in mapped | set(PLATFORM) | set(NOT_EXPOSED), f"{name} is not reachable"
    assert not mapped & (set(PLATFORM) | set(NOT_EXPOSED))
    assert mapped == {key.upper() for key in FULL}


def test_defaults_are_the_functions_own_defaults(
    evaluator: Terraform, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = environment(evaluator, MINIMAL)
    assert env == {
        "PROMETHEUS_ENDPOINT": MINIMAL["prometheus_endpoint"],
        "KUBE_NAMESPACE": "posthog",
        "DEPLOYMENT_NAME": "ingestion-consumer",
        "PROMETHEUS_TIMEOUT": "30s",
        "METRICS_TIME_WINDOW": "5m",
        "IMBALANCE_STATISTIC": "variance",
        "CPU_VARIANCE_THRESHOLD": "0.3",
        "MIN_PODS_REQUIRED": "3",
        "MAX_PODS_TO_DELETE": "2",
        "MIN_IMPROVEMENT_PERCENT": "10",
        "COOLDOWN": "15m",
        "EVICTION_MODE": "evict",
        "DRY_RUN": "true",
        "ALLOWED_DEPLOYMENTS": "*",
        "EXCLUDE_ANNOTATION": "pod-rebalancer.io/exclude",
        "LOG_LEVEL": "info",
    }
    # Derived defaults (container, minimum pod age, allowed namespaces) are left to the function.
    assert settings_from(env, monkeypatch) == Settings(**MINIMAL)


def test_every_value_reaches_the_function_as_set(
    evaluator: Terraform, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(environment(evaluator, FULL), monkeypatch)
    assert settings.prometheus_timeout.total_seconds() == 45
    assert settings.container_name == "consumer"
    assert settings.kube_label_selector == "app=ingestion-consumer"
    assert settings.metrics_time_window.total_seconds() == 600
    assert settings.imbalance_statistic.value == "cv"
    assert settings.imbalance_threshold == 0.5
    assert (settings.min_pods_required, settings.max_pods_to_delete) == (4, 3)
    assert settings.min_improvement_percent == 20
    assert settings.pod_age_minimum.total_seconds() == 1800
    assert settings.cooldown.total_seconds() == 3600
    assert settings.eviction_mode == "delete"
    assert settings.dry_run is False
    assert settings.allowed_namespaces == ("posthog", "ingest")
    assert settings.allowed_deployments == ("ingestion-*", "events")
    assert settings.exclude_annotation == "example.com/keep"
    assert settings.log_level == "debug"
    assert settings.webhook_signature_header == "X-Signature"
    assert settings.webhook_signature_timestamp_header == "X-Timestamp"
    assert settings.sweep_concurrency == 2
    assert settings.max_pods_per_run == settings.run_pod_budget == 6
    assert settings.max_ineffective_rebalances == 3
    assert settings.ineffective_backoff.total_seconds() == 12 * 3600
    assert settings.imbalance_signal == "score"
    assert settings.score_weights == (("cpu", 0.5), ("lag", 0.5))
    assert settings.lag_query == "sum by(pod)(kafka_lag)"
    assert settings.memory_query == "sum by(pod)(container_memory_working_set_bytes)"
    assert settings.imbalance_policy == "hpa_target"
    assert settings.tolerance_multiplier == 2
    assert settings.policy().weights == (("cpu", 0.5), ("lag", 0.5))


def test_rbac_namespaces_are_the_allowed_namespaces_or_the_default_one(
    evaluator: Terraform, tmp_path_factory: pytest.TempPathFactory
) -> None:
    names = ["namespaces", "eviction_mode"]
    default = evaluate(evaluator, SETTINGS, {"settings": MINIMAL}, names)
    assert default == {"namespaces": ["posthog"], "eviction_mode": "evict"}
    other = Terraform(evaluator.binary, tmp_path_factory.mktemp("root"), evaluator.env)
    outputs = evaluate(other, SETTINGS, {"settings": FULL}, names)
    assert outputs == {"namespaces": ["posthog", "ingest"], "eviction_mode": "delete"}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("allowed_namespaces", ["post*"], "no wildcard"),
        ("cooldown", "15 minutes", "Durations"),
        ("imbalance_statistic", "mean", "imbalance_statistic"),
        ("eviction_mode", "drain", "eviction_mode"),
        ("prometheus_endpoint", "vm:8428", "http(s) URL"),
        ("pushgateway_url", "pushgateway:9091", "pushgateway_url must be an http(s) URL"),
        ("max_pods_to_delete", 0, "max_pods_to_delete"),
        ("imbalance_policy", "always", "imbalance_policy"),
        ("tolerance_multiplier", 0, "tolerance_multiplier"),
        ("sweep_concurrency", 0, "sweep_concurrency"),
        ("sweep_concurrency", 2.5, "sweep_concurrency"),
        ("max_pods_per_run", 1, "max_pods_per_run"),  # below max_pods_to_delete (2)
        ("max_ineffective_rebalances", 0, "max_ineffective_rebalances"),
        ("ineffective_backoff", "a day", "Durations"),
    ],
)
def test_invalid_settings_fail_at_plan_time(
    evaluator: Terraform, field: str, value: Any, message: str
) -> None:
    error = evaluate(evaluator, SETTINGS, {"settings": {**MINIMAL, field: value}}, ["environment"])
    assert isinstance(error, str)
    assert message in " ".join(error.split())


def test_the_cloud_modules_take_the_same_settings_type() -> None:
    names = ("settings", "gcp", "aws")
    types = {name: module(name).variables()["settings"]["type"] for name in names}
    assert types["gcp"] == types["settings"] == types["aws"]
