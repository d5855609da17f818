"""Settings: the DESIGN table's defaults, duration parsing, and errors that name the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from pod_rebalancer.config import Settings, load_settings
from pod_rebalancer.core.model import AllowList, Policy
from pod_rebalancer.core.stats import Statistic
from pod_rebalancer.errors import ConfigError, RebalancerError

REQUIRED = {
    "prometheus_endpoint": "http://victoria:8428",
    "kube_namespace": "posthog",
    "deployment_name": "ingestion-consumer",
}
TOKEN = "hunter2-webhook-token"
METRICS_TOKEN = "hunter3-metrics-token"


def make(**changes: object) -> Settings:
    return Settings(**{**REQUIRED, **changes})  # type: ignore[arg-type]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """The three required variables set; each test adds or removes the ones it is about."""
    monkeypatch.setenv("PROMETHEUS_ENDPOINT", REQUIRED["prometheus_endpoint"])
    monkeypatch.setenv("KUBE_NAMESPACE", REQUIRED["kube_namespace"])
    monkeypatch.setenv("DEPLOYMENT_NAME", REQUIRED["deployment_name"])
    return monkeypatch


def refused_variable() -> str:
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return caught.value.variable


# --- defaults --------------------------------------------------------------------------------


def test_defaults_follow_the_design_table() -> None:
    settings = make()

    assert settings.prometheus_timeout == timedelta(seconds=30)
    assert settings.prometheus_bearer_token is None
    assert settings.prometheus_bearer_token_file is None
    assert settings.kube_label_selector is None
    assert settings.metrics_time_window == timedelta(minutes=5)
    assert settings.imbalance_statistic is Statistic.VARIANCE
    assert settings.imbalance_threshold == 0.3
    assert settings.min_pods_required == 3
    assert settings.max_pods_to_delete == 2
    assert settings.min_improvement_percent == 10.0
    assert settings.cooldown == timedelta(minutes=15)
    assert settings.eviction_mode == "evict"
    assert settings.dry_run is True
    assert settings.exclude_annotation == "pod-rebalancer.io/exclude"
    assert settings.webhook_token is None
    assert settings.webhook_token_file is None
    assert settings.allow_unauthenticated is False
    assert settings.kube_auth == "auto"
    assert settings.gke_cluster is None
    assert settings.eks_cluster_name is None
    assert settings.audit_topic is None
    assert settings.log_level == "info"
    assert settings.sweep_concurrency == 4
    assert settings.run_pod_budget == 10


def test_loads_the_same_defaults_from_the_environment(env: pytest.MonkeyPatch) -> None:
    assert load_settings() == make()


def test_the_run_budget_defaults_to_ten_or_max_pods_to_delete_when_that_is_more() -> None:
    assert make(max_pods_to_delete=3).run_pod_budget == 10
    assert make(max_pods_to_delete=25).run_pod_budget == 25
    assert make(max_pods_to_delete=3, max_pods_per_run=3).run_pod_budget == 3


def test_max_pods_per_run_below_max_pods_to_delete_is_refused_naming_it(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("MAX_PODS_TO_DELETE", "4")
    env.setenv("MAX_PODS_PER_RUN", "3")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.variable == "MAX_PODS_PER_RUN"
    assert "MAX_PODS_TO_DELETE (4)" in caught.value.problem


def test_container_name_is_unset_unless_configured() -> None:
    # Unset, the container label comes from the Deployment itself (core/container.py).
    assert make().container_name is None
    assert make(container_name="consumer").container_name == "consumer"


def test_the_threshold_is_read_from_cpu_variance_threshold(env: pytest.MonkeyPatch) -> None:
    # The variable keeps the original design's name; the threshold applies to any statistic.
    env.setenv("CPU_VARIANCE_THRESHOLD", "0.7")
    env.setenv("IMBALANCE_STATISTIC", "cv")

    assert load_settings().imbalance_threshold == 0.7
    assert "CPU_VARIANCE_THRESHOLD" in Settings.environment_names()
    assert "IMBALANCE_THRESHOLD" not in Settings.environment_names()


def test_min_pod_age_defaults_to_twice_the_window() -> None:
    assert make().pod_age_minimum == timedelta(minutes=10)
    assert make(metrics_time_window="2m").pod_age_minimum == timedelta(minutes=4)
    assert make(min_pod_age="1m").pod_age_minimum == timedelta(minutes=1)


def test_allowed_namespaces_default_to_the_kube_namespace() -> None:
    assert make().allow_list == AllowList(namespaces=("posthog",), deployments=("*",))


def test_allowed_deployments_default_to_every_deployment() -> None:
    assert make().allowed_deployments == ("*",)


def test_allowed_namespaces_fall_back_to_the_kube_namespace_when_set_empty(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("ALLOWED_NAMESPACES", "")

    assert load_settings().allow_list.namespaces == ("posthog",)


def test_dry_run_is_on_unless_turned_off(env: pytest.MonkeyPatch) -> None:
    assert load_settings().dry_run is True
    env.setenv("DRY_RUN", "false")
    assert load_settings().dry_run is False


# --- values from the environment -------------------------------------------------------------


def test_reads_every_variable_from_the_environment(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    for name, value in {
        "PROMETHEUS_TIMEOUT": "5s",
        "CONTAINER_NAME": "consumer",
        "KUBE_LABEL_SELECTOR": "app=ingestion",
        "METRICS_TIME_WINDOW": "10m",
        "IMBALANCE_STATISTIC": "cv",
        "CPU_VARIANCE_THRESHOLD": "0.5",
        "MIN_PODS_REQUIRED": "4",
        "MAX_PODS_TO_DELETE": "3",
        "MIN_IMPROVEMENT_PERCENT": "25",
        "MIN_POD_AGE": "30m",
        "COOLDOWN": "1h",
        "EVICTION_MODE": "delete",
        "DRY_RUN": "false",
        "ALLOWED_NAMESPACES": "posthog,team-*",
        "ALLOWED_DEPLOYMENTS": "ingestion-*",
        "EXCLUDE_ANNOTATION": "example.com/keep",
        "WEBHOOK_TOKEN_FILE": str(token_file),
        "ALLOW_UNAUTHENTICATED": "true",
        "KUBE_AUTH": "gke",
        "GKE_CLUSTER": "projects/p/locations/europe-west1/clusters/c",
        "AUDIT_TOPIC": "projects/my-project/topics/rebalances",
        "LOG_LEVEL": "DEBUG",
        "SWEEP_CONCURRENCY": "8",
        "MAX_PODS_PER_RUN": "6",
        "MAX_INEFFECTIVE_REBALANCES": "3",
        "INEFFECTIVE_BACKOFF": "6h",
    }.items():
        env.setenv(name, value)

    settings = load_settings()

    assert settings.prometheus_timeout == timedelta(seconds=5)
    assert settings.container_name == "consumer"
    assert settings.kube_label_selector == "app=ingestion"
    assert settings.metrics_time_window == timedelta(minutes=10)
    assert settings.imbalance_statistic is Statistic.CV
    assert settings.imbalance_threshold == 0.5
    assert (settings.sweep_concurrency, settings.max_pods_per_run) == (8, 6)
    assert settings.max_ineffective_rebalances == 3
    assert settings.ineffective_backoff == timedelta(hours=6)
    assert settings.min_pods_required == 4
    assert settings.max_pods_to_delete == 3
    assert settings.min_improvement_percent == 25.0
    assert settings.pod_age_minimum == timedelta(minutes=30)
    assert settings.cooldown == timedelta(hours=1)
    assert settings.eviction_mode == "delete"
    assert settings.dry_run is False
    assert settings.allow_list == AllowList(("posthog", "team-*"), ("ingestion-*",))
    assert settings.exclude_annotation == "example.com/keep"
    assert settings.webhook_secret() == TOKEN
    assert settings.allow_unauthenticated is True
    assert settings.kube_auth == "gke"
    assert settings.gke_cluster == "projects/p/locations/europe-west1/clusters/c"
    assert settings.audit_topic == "projects/my-project/topics/rebalances"
    assert settings.log_level == "debug"


def test_splits_comma_separated_patterns_and_trims_spaces(env: pytest.MonkeyPatch) -> None:
    env.setenv("ALLOWED_NAMESPACES", "a, b*,c")

    assert load_settings().allowed_namespaces == ("a", "b*", "c")


def test_splits_patterns_given_as_a_keyword_string() -> None:
    assert make(allowed_deployments="x-*, y").allowed_deployments == ("x-*", "y")


# --- durations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("30s", timedelta(seconds=30)),
        ("5m", timedelta(minutes=5)),
        ("1h", timedelta(hours=1)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1m30s", timedelta(seconds=90)),
        ("1.5s", timedelta(milliseconds=1500)),
    ],
)
def test_parses_durations(text: str, expected: timedelta) -> None:
    assert make(prometheus_timeout=text).prometheus_timeout == expected


@pytest.mark.parametrize("text", ["5", "5x", "-1s", "", "s", "5 m", "1h-30m", "1d"])
def test_refuses_malformed_durations(text: str) -> None:
    with pytest.raises(ValidationError):
        make(cooldown=text)


@pytest.mark.parametrize("text", ["5", "5x", "-1s", ""])
def test_refuses_malformed_durations_from_the_environment(
    env: pytest.MonkeyPatch, text: str
) -> None:
    env.setenv("PROMETHEUS_TIMEOUT", text)

    assert refused_variable() == "PROMETHEUS_TIMEOUT"


def test_accepts_a_timedelta_as_it_is() -> None:
    assert make(cooldown=timedelta(seconds=7)).cooldown == timedelta(seconds=7)


def test_refuses_a_zero_timeout(env: pytest.MonkeyPatch) -> None:
    env.setenv("PROMETHEUS_TIMEOUT", "0s")

    assert refused_variable() == "PROMETHEUS_TIMEOUT"


def test_refuses_a_window_shorter_than_a_second(env: pytest.MonkeyPatch) -> None:
    env.setenv("METRICS_TIME_WINDOW", "500ms")

    assert refused_variable() == "METRICS_TIME_WINDOW"


# --- errors name the variable ----------------------------------------------------------------


@pytest.mark.parametrize("missing", ["PROMETHEUS_ENDPOINT", "KUBE_NAMESPACE", "DEPLOYMENT_NAME"])
def test_names_a_missing_required_variable(env: pytest.MonkeyPatch, missing: str) -> None:
    env.delenv(missing)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert caught.value.variable == missing
    assert "required" in caught.value.problem
    assert str(caught.value).startswith(f"{missing}: ")
    assert isinstance(caught.value, RebalancerError)


def test_refuses_an_empty_environment() -> None:
    with pytest.raises(ConfigError):
        load_settings()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("CPU_VARIANCE_THRESHOLD", "abc"),
        ("CPU_VARIANCE_THRESHOLD", "-0.1"),
        ("CPU_VARIANCE_THRESHOLD", "nan"),
        ("CPU_VARIANCE_THRESHOLD", "inf"),
        ("MIN_PODS_REQUIRED", "0"),
        ("MIN_PODS_REQUIRED", "three"),
        ("MAX_PODS_TO_DELETE", "0"),
        ("SWEEP_CONCURRENCY", "0"),
        ("SWEEP_CONCURRENCY", "33"),
        ("SWEEP_CONCURRENCY", "four"),
        ("MAX_PODS_PER_RUN", "0"),
        ("MAX_PODS_PER_RUN", "1001"),
        ("MAX_PODS_PER_RUN", "1"),  # below MAX_PODS_TO_DELETE (2)
        ("MAX_INEFFECTIVE_REBALANCES", "0"),
        ("MAX_INEFFECTIVE_REBALANCES", "101"),
        ("INEFFECTIVE_BACKOFF", "a day"),
        ("INEFFECTIVE_BACKOFF", "2161h"),
        ("MIN_IMPROVEMENT_PERCENT", "101"),
        ("IMBALANCE_STATISTIC", "stdvar"),
        ("EVICTION_MODE", "kill"),
        ("DRY_RUN", "maybe"),
        ("KUBE_AUTH", "magic"),
        ("LOG_LEVEL", "verbose"),
        ("COOLDOWN", "soon"),
        ("MIN_POD_AGE", "5"),
        ("PROMETHEUS_ENDPOINT", "ftp://x"),
        ("PROMETHEUS_ENDPOINT", "victoria:8428"),
        ("PROMETHEUS_ENDPOINT", "http://victoria:8428?x=1"),
        ("KUBE_NAMESPACE", "Bad_NS"),
        ("KUBE_NAMESPACE", 'x"} or vector(1) #'),
        ("DEPLOYMENT_NAME", "Ingestion"),
        ("CONTAINER_NAME", "con.tainer"),
        ("ALLOWED_NAMESPACES", "posthog,Bad_NS"),
        ("ALLOWED_NAMESPACES", 'x"}'),
        ("ALLOWED_DEPLOYMENTS", "ingestion-?"),
        ("AUDIT_TOPIC", "rebalances"),
        ("AUDIT_TOPIC", "projects/my-project/subscriptions/rebalances"),
        ("AUDIT_TOPIC", "projects/P/topics/T"),
    ],
)
def test_names_the_invalid_variable(env: pytest.MonkeyPatch, variable: str, value: str) -> None:
    env.setenv(variable, value)

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert caught.value.variable == variable
    assert caught.value.problem


def test_names_a_webhook_token_file_that_does_not_exist(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("WEBHOOK_TOKEN_FILE", str(tmp_path / "missing"))

    assert refused_variable() == "WEBHOOK_TOKEN_FILE"


def test_names_a_metrics_token_file_that_is_a_directory(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env.setenv("PROMETHEUS_BEARER_TOKEN_FILE", str(tmp_path))

    assert refused_variable() == "PROMETHEUS_BEARER_TOKEN_FILE"


def test_chains_the_validation_error(env: pytest.MonkeyPatch) -> None:
    env.setenv("CPU_VARIANCE_THRESHOLD", "abc")

    with pytest.raises(ConfigError) as caught:
        load_settings()

    assert isinstance(caught.value.__cause__, ValidationError)


# --- secrets ---------------------------------------------------------------------------------


def test_keeps_secrets_out_of_repr_and_str(env: pytest.MonkeyPatch) -> None:
    env.setenv("WEBHOOK_TOKEN", TOKEN)
    env.setenv("PROMETHEUS_BEARER_TOKEN", METRICS_TOKEN)

    settings = load_settings()

    assert isinstance(settings.webhook_token, SecretStr)
    assert isinstance(settings.prometheus_bearer_token, SecretStr)
    for text in (repr(settings), str(settings)):
        assert TOKEN not in text
        assert METRICS_TOKEN not in text
    assert settings.webhook_secret() == TOKEN
    assert settings.metrics_secret() == METRICS_TOKEN


def test_has_no_secret_when_none_is_configured() -> None:
    assert make().webhook_secret() is None
    assert make().metrics_secret() is None


def test_rereads_the_webhook_token_file_after_rotation(
    env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first-token\n")
    env.setenv("WEBHOOK_TOKEN_FILE", str(token_file))
    settings = load_settings()
    assert settings.webhook_secret() == "first-token"

    token_file.write_text("second-token\n")

    assert settings.webhook_secret() == "second-token"
    assert "first-token" not in repr(settings)


def test_rereads_the_metrics_token_file_after_rotation(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("first")
    settings = make(prometheus_bearer_token_file=token_file)

    token_file.write_text("second")

    assert settings.metrics_secret() == "second"


def test_refuses_every_caller_when_the_token_file_disappears(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    settings = make(webhook_token_file=token_file)

    token_file.unlink()

    assert settings.webhook_secret() is None


def test_an_empty_token_file_is_no_token(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("  \n")

    assert make(webhook_token_file=token_file).webhook_secret() is None


# --- policy ----------------------------------------------------------------------------------


def test_policy_maps_settings_onto_the_core_policy() -> None:
    settings = make(
        imbalance_statistic="stddev",
        cpu_variance_threshold=0.2,
        min_pods_required=5,
        max_pods_to_delete=4,
        min_improvement_percent=15,
        metrics_time_window="3m",
    )

    assert settings.policy() == Policy(
        statistic=Statistic.STDDEV,
        threshold=0.2,
        min_pods=5,
        max_delete=4,
        min_improvement_percent=15.0,
        min_pod_age=timedelta(minutes=6),
    )


def test_default_policy_matches_the_design_table() -> None:
    assert make().policy() == Policy(
        statistic=Statistic.VARIANCE,
        threshold=0.3,
        min_pods=3,
        max_delete=2,
        min_improvement_percent=10.0,
        min_pod_age=timedelta(minutes=10),
    )


def test_policy_uses_an_explicit_min_pod_age() -> None:
    assert make(min_pod_age="90s").policy().min_pod_age == timedelta(seconds=90)


def test_settings_are_frozen() -> None:
    settings = make()

    with pytest.raises(ValidationError):
        settings.dry_run = False  # type: ignore[misc]


def test_an_invalid_metrics_url_is_named_without_quoting_it(env: pytest.MonkeyPatch) -> None:
    # It may carry credentials: https://user:key@host/...
    env.setenv("PROMETHEUS_ENDPOINT", "http://reader:s3cr3t-key@bad host/prom")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert caught.value.variable == "PROMETHEUS_ENDPOINT"
    assert "s3cr3t-key" not in str(caught.value)


@pytest.mark.parametrize(
    "value", ["pushgateway:9091", "ftp://pgw:9091", "http://", "http://pgw 9091"]
)
def test_pushgateway_url_must_be_an_http_url(env: pytest.MonkeyPatch, value: str) -> None:
    env.setenv("PUSHGATEWAY_URL", value)
    assert refused_variable() == "PUSHGATEWAY_URL"


def test_pushgateway_url_is_optional_and_taken_as_given(env: pytest.MonkeyPatch) -> None:
    assert load_settings().pushgateway_url is None
    env.setenv("PUSHGATEWAY_URL", "http://pushgateway.monitoring:9091")
    assert load_settings().pushgateway_url == "http://pushgateway.monitoring:9091"


# --- Kafka-aware signals and the HPA policy --------------------------------------------------


def test_the_new_options_default_to_todays_behaviour() -> None:
    settings = make()
    assert (settings.imbalance_signal, settings.imbalance_policy) == ("cpu", "variance")
    assert settings.score_weights == (("cpu", 0.4), ("lag", 0.4), ("memory", 0.2))
    assert settings.tolerance_multiplier == 1.5
    assert settings.signal_queries == {}
    policy = settings.policy()
    assert (policy.signal, policy.kind, policy.weights) == ("cpu", "variance", (("cpu", 1.0),))
    assert policy.measured_as == "variance"


def test_weights_of_unconfigured_signals_are_dropped_and_the_rest_renormalised() -> None:
    settings = make(imbalance_signal="score", lag_query="sum by(pod)(lag)")
    assert settings.policy().weights == (("cpu", 0.5), ("lag", 0.5))
    assert settings.signal_queries == {"lag": "sum by(pod)(lag)"}


def test_score_weights_are_read_from_the_environment(env: pytest.MonkeyPatch) -> None:
    env.setenv("IMBALANCE_SIGNAL", "score")
    env.setenv("SCORE_WEIGHTS", " cpu=1, memory=3 ")
    env.setenv("MEMORY_QUERY", "sum by(pod)(container_memory_working_set_bytes)")
    assert load_settings().policy().weights == (("cpu", 0.25), ("memory", 0.75))


@pytest.mark.parametrize(
    "weights",
    ["cpu=x", "disk=1", "cpu", "cpu=1,cpu=2", "cpu=-1", "cpu=inf", "", "cpu=0,lag=0"],
)
def test_invalid_score_weights_name_the_variable(env: pytest.MonkeyPatch, weights: str) -> None:
    env.setenv("IMBALANCE_SIGNAL", "score")
    env.setenv("LAG_QUERY", "sum by(pod)(lag)")
    env.setenv("SCORE_WEIGHTS", weights)
    assert refused_variable() == "SCORE_WEIGHTS"


def test_a_score_whose_only_weighted_signal_has_no_query_is_refused(
    env: pytest.MonkeyPatch,
) -> None:
    env.setenv("IMBALANCE_SIGNAL", "score")
    env.setenv("SCORE_WEIGHTS", "lag=1")
    assert refused_variable() == "SCORE_WEIGHTS"


@pytest.mark.parametrize("variable", ["LAG_QUERY", "MEMORY_QUERY"])
@pytest.mark.parametrize("template", ["sum by(pod)(x{namespace={ns}})", "  "])
def test_a_template_with_an_unknown_placeholder_or_nothing_is_refused(
    env: pytest.MonkeyPatch, variable: str, template: str
) -> None:
    env.setenv(variable, template)
    assert refused_variable() == variable


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("IMBALANCE_SIGNAL", "lag"),
        ("IMBALANCE_POLICY", "hpa"),
        ("TOLERANCE_MULTIPLIER", "0"),
        ("TOLERANCE_MULTIPLIER", "nan"),
    ],
)
def test_invalid_signal_and_policy_choices_name_the_variable(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    env.setenv(variable, value)
    assert refused_variable() == variable


def test_the_hpa_policy_reads_no_other_signal() -> None:
    settings = make(
        imbalance_policy="hpa_target", imbalance_signal="score", lag_query="sum by(pod)(lag)"
    )
    assert settings.signal_queries == {}
    assert settings.policy().measured_as == "variance"
