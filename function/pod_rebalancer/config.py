"""Settings: every environment variable of the contract, validated once at cold start.

Tests build `Settings(...)` directly; the function calls `load_settings()`, which turns any
validation failure into a ConfigError naming the variable.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from pod_rebalancer.core.model import AllowList, Policy
from pod_rebalancer.core.names import InvalidNameError, check_target, label_problem
from pod_rebalancer.core.score import DEFAULT_WEIGHTS, SIGNALS, Weights, effective_weights
from pod_rebalancer.core.stats import Statistic
from pod_rebalancer.errors import ConfigError

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_URL = re.compile(r"https?://[^\s/?#]+(/[^\s?#]*)?")
_PATTERN = re.compile(r"[a-z0-9.*-]+")
_SECRET_ARN = re.compile(r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+")
_TOPIC = re.compile(r"projects/[a-z][-a-z0-9]{4,28}[a-z0-9]/topics/[A-Za-z][\w.~+%-]{2,254}")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
PLACEHOLDERS = ("namespace", "deployment", "container", "window")
DEFAULT_MAX_PODS_PER_RUN = 10  # pods one run may remove in all, unless MAX_PODS_TO_DELETE is more


def split_credentials(url: str) -> tuple[str, str]:
    """The URL as messages may show it (a `user:password@` part replaced by `***@`), and that
    part (empty when there is none)."""
    scheme, separator, rest = url.partition("://")
    ends = [index for index in (rest.find(c) for c in "/?#") if index >= 0]
    authority = rest[: min(ends, default=len(rest))]
    if not separator or "@" not in authority:
        return url, ""
    userinfo, _, host = authority.rpartition("@")
    return f"{scheme}://***@{host}{rest[len(authority) :]}", userinfo


def parse_duration(value: object) -> object:
    """`500ms`, `30s`, `5m`, `1h` or a combination such as `1h30m`; timedelta passes through."""
    if not isinstance(value, str):
        return value
    text = value.strip()
    parts = _DURATION_PART.findall(text)
    if not text or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"{value!r} is not a duration like 500ms, 30s, 5m or 1h")
    return timedelta(seconds=sum(float(n) * _UNIT_SECONDS[u] for n, u in parts))


def _split_patterns(value: object) -> object:
    if isinstance(value, str):
        return tuple(p.strip() for p in value.split(",") if p.strip())
    return value


def parse_weights(value: object) -> object:
    """`cpu=0.4,lag=0.4,memory=0.2`: each signal once, each weight a finite number >= 0."""
    if not isinstance(value, str):
        return value
    weights: dict[str, float] = {}
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        name, equals, number = (x.strip() for x in part.partition("="))
        if not equals or name not in SIGNALS:
            raise ValueError(
                f"{part!r} is not SIGNAL=WEIGHT with SIGNAL one of {', '.join(SIGNALS)}"
            )
        if name in weights:
            raise ValueError(f"{name} is weighted twice")
        try:
            weight = float(number)
        except ValueError:
            raise ValueError(f"{name}: {number!r} is not a number") from None
        if not 0 <= weight < float("inf"):
            raise ValueError(f"{name}: the weight must be a finite number >= 0")
        weights[name] = weight
    if not weights:
        raise ValueError("names no signal")
    return tuple(weights.items())


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]
ScoreWeights = Annotated[Weights, NoDecode, BeforeValidator(parse_weights)]
Patterns = Annotated[tuple[str, ...], NoDecode, BeforeValidator(_split_patterns)]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        case_sensitive=False, extra="ignore", frozen=True, populate_by_name=True
    )

    prometheus_endpoint: str
    prometheus_timeout: Duration = timedelta(seconds=30)
    prometheus_bearer_token: SecretStr | None = None
    prometheus_bearer_token_file: Path | None = None

    kube_namespace: str
    deployment_name: str
    container_name: str | None = None
    kube_label_selector: str | None = None

    metrics_time_window: Duration = timedelta(minutes=5)
    imbalance_statistic: Statistic = Statistic.VARIANCE
    # The threshold applies to whichever IMBALANCE_STATISTIC is chosen; the variable keeps the
    # original design's name.
    imbalance_threshold: float = Field(
        default=0.3, ge=0, allow_inf_nan=False, validation_alias="cpu_variance_threshold"
    )
    # Kafka-aware signals (core/score.py): PromQL templates returning one series per pod.
    lag_query: str | None = None
    memory_query: str | None = None
    imbalance_signal: Literal["cpu", "score"] = "cpu"
    score_weights: ScoreWeights = DEFAULT_WEIGHTS
    # The HPA-target policy: hot pods are above the HPA's CPU target times this of their request.
    imbalance_policy: Literal["variance", "hpa_target"] = "variance"
    tolerance_multiplier: float = Field(default=1.5, gt=0, le=100, allow_inf_nan=False)
    min_pods_required: int = Field(default=3, ge=1)
    max_pods_to_delete: int = Field(default=2, ge=1, le=100)
    min_improvement_percent: float = Field(default=10.0, ge=0, le=100, allow_inf_nan=False)
    min_pod_age: Duration | None = None
    cooldown: Duration = timedelta(minutes=15)
    # The closed loop (core/effect.py): after this many ineffective rebalances in a row, the
    # target is left alone (not_effective) for INEFFECTIVE_BACKOFF.
    max_ineffective_rebalances: int = Field(default=2, ge=1, le=100)
    ineffective_backoff: Duration = timedelta(hours=24)
    eviction_mode: Literal["evict", "delete"] = "evict"
    dry_run: bool = True

    # Sweeps: how many targets are worked on at once, and the pods one run may remove in all
    # (every run with several targets; unset, 10 or MAX_PODS_TO_DELETE if that is more).
    sweep_concurrency: int = Field(default=4, ge=1, le=32)
    max_pods_per_run: int | None = Field(default=None, ge=1, le=1000)

    allowed_namespaces: Patterns = ()
    allowed_deployments: Patterns = ("*",)
    exclude_annotation: str = "pod-rebalancer.io/exclude"

    webhook_token: SecretStr | None = None
    webhook_token_file: Path | None = None
    # AWS Secrets Manager: read at first use and again every five minutes (adapters/secrets.py).
    webhook_token_secret_arn: str | None = None
    allow_unauthenticated: bool = False
    webhook_hmac_secret: SecretStr | None = None
    webhook_hmac_secret_file: Path | None = None
    webhook_signature_header: str = "X-Grafana-Alerting-Signature"
    webhook_signature_timestamp_header: str | None = None

    kube_auth: Literal["auto", "gke", "eks", "incluster", "kubeconfig"] = "auto"
    gke_cluster: str | None = None
    gke_endpoint: str | None = None
    gke_ca_cert: str | None = None
    gke_api_endpoint: str = "https://container.googleapis.com"
    eks_cluster_name: str | None = None
    eks_endpoint: str | None = None
    eks_ca_cert: str | None = None

    audit_topic: str | None = None
    # Each run pushes its own metrics there (telemetry.py), grouped by job and target.
    pushgateway_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @model_validator(mode="before")
    @classmethod
    def _lower_log_level(cls, data: object) -> object:
        if isinstance(data, dict) and isinstance(data.get("log_level"), str):
            data = {**data, "log_level": data["log_level"].lower()}
        return data

    @model_validator(mode="after")
    def _check(self) -> Settings:
        endpoint = self.prometheus_endpoint
        if not _URL.fullmatch(endpoint):
            # Not quoted: the value may carry credentials (https://user:key@host/...).
            raise _invalid(
                "prometheus_endpoint", "is not an http(s) URL like http://host:port/path"
            )
        try:
            check_target(self.kube_namespace, self.deployment_name)
        except InvalidNameError as exc:
            variable = {"namespace": "kube_namespace", "deployment": "deployment_name"}[exc.field]
            raise _invalid(variable, exc.problem) from exc
        problem = label_problem(self.container_name) if self.container_name is not None else None
        if problem:
            raise _invalid("container_name", problem)
        if self.metrics_time_window < timedelta(seconds=1):
            raise _invalid("metrics_time_window", "must be at least 1s")
        if self.prometheus_timeout <= timedelta(0):
            raise _invalid("prometheus_timeout", "must be positive")
        for name in ("allowed_namespaces", "allowed_deployments"):
            for pattern in getattr(self, name):
                if not _PATTERN.fullmatch(pattern):
                    raise _invalid(
                        name, f"{pattern!r} is not a name pattern (a-z, 0-9, '-', '.', '*')"
                    )
        for name in (
            "prometheus_bearer_token_file",
            "webhook_token_file",
            "webhook_hmac_secret_file",
        ):
            path = getattr(self, name)
            if path is not None and not path.is_file():
                raise _invalid(name, f"{path} is not a readable file")
        arn = self.webhook_token_secret_arn
        if arn is not None and not _SECRET_ARN.fullmatch(arn):
            raise _invalid(
                "webhook_token_secret_arn",
                "must look like arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME",
            )
        if self.audit_topic is not None and not _TOPIC.fullmatch(self.audit_topic):
            raise _invalid("audit_topic", "must look like projects/PROJECT/topics/TOPIC")
        return self

    @model_validator(mode="after")
    def _check_backoff(self) -> Settings:
        if not timedelta(0) <= self.ineffective_backoff <= timedelta(days=90):
            raise _invalid("ineffective_backoff", "must be between 0s and 90 days (2160h)")
        return self

    @model_validator(mode="after")
    def _check_pushgateway(self) -> Settings:
        if self.pushgateway_url is not None and not _URL.fullmatch(self.pushgateway_url):
            # Not quoted, as PROMETHEUS_ENDPOINT: the value may carry credentials.
            raise _invalid("pushgateway_url", "is not an http(s) URL like http://host:port/path")
        return self

    @model_validator(mode="after")
    def _check_run_budget(self) -> Settings:
        if self.max_pods_per_run is not None and self.max_pods_per_run < self.max_pods_to_delete:
            raise _invalid(
                "max_pods_per_run",
                f"must be at least MAX_PODS_TO_DELETE ({self.max_pods_to_delete}), or a target "
                "could never act",
            )
        return self

    @model_validator(mode="after")
    def _check_signals(self) -> Settings:
        for name in ("lag_query", "memory_query"):
            template = getattr(self, name)
            if template is None:
                continue
            if not template.strip():
                raise _invalid(name, "is empty (unset it to leave the signal out)")
            unknown = sorted({m for m in _PLACEHOLDER.findall(template) if m not in PLACEHOLDERS})
            if unknown:
                raise _invalid(
                    name,
                    f"unknown placeholder {{{unknown[0]}}}: use {{namespace}}, {{deployment}}, "
                    "{container} or {window}",
                )
        if self.imbalance_signal == "score":
            try:
                effective_weights(self.score_weights, self.configured_signals)
            except ValueError as exc:
                raise _invalid("score_weights", str(exc)) from exc
        return self

    @property
    def configured_signals(self) -> tuple[str, ...]:
        """CPU, and lag and memory when their queries are set."""
        extra = [("lag", self.lag_query), ("memory", self.memory_query)]
        return ("cpu", *(name for name, query in extra if query is not None))

    @property
    def signal_queries(self) -> dict[str, str]:
        """The templates of the signals beside CPU that the score weighs (none with cpu)."""
        if self.imbalance_signal != "score" or self.imbalance_policy == "hpa_target":
            return {}
        weighted = {name for name, _ in self.policy().weights}
        queries = {"lag": self.lag_query, "memory": self.memory_query}
        return {n: q for n, q in queries.items() if q is not None and n in weighted}

    @property
    def pod_age_minimum(self) -> timedelta:
        return self.min_pod_age if self.min_pod_age is not None else 2 * self.metrics_time_window

    @property
    def run_pod_budget(self) -> int:
        """MAX_PODS_PER_RUN, or its default: 10, or MAX_PODS_TO_DELETE when that is larger."""
        if self.max_pods_per_run is not None:
            return self.max_pods_per_run
        return max(DEFAULT_MAX_PODS_PER_RUN, self.max_pods_to_delete)

    @property
    def allow_list(self) -> AllowList:
        return AllowList(
            namespaces=self.allowed_namespaces or (self.kube_namespace,),
            deployments=self.allowed_deployments or ("*",),
        )

    def policy(self) -> Policy:
        return Policy(
            statistic=self.imbalance_statistic,
            threshold=self.imbalance_threshold,
            min_pods=self.min_pods_required,
            max_delete=self.max_pods_to_delete,
            min_improvement_percent=self.min_improvement_percent,
            min_pod_age=self.pod_age_minimum,
            signal=self.imbalance_signal,
            weights=(
                effective_weights(self.score_weights, self.configured_signals)
                if self.imbalance_signal == "score"
                else (("cpu", 1.0),)
            ),
            kind=self.imbalance_policy,
            tolerance=self.tolerance_multiplier,
        )

    @classmethod
    def environment_names(cls) -> set[str]:
        """Every environment variable this object reads."""
        return {
            str(info.validation_alias or name).upper() for name, info in cls.model_fields.items()
        }

    def webhook_secret(self) -> str | None:
        """The token HTTP callers must present; the file is re-read so it can be rotated live."""
        return _secret(self.webhook_token, self.webhook_token_file)

    @property
    def token_required(self) -> bool:
        return (
            self.webhook_token is not None
            or self.webhook_token_file is not None
            or self.webhook_token_secret_arn is not None
        )

    @property
    def signature_required(self) -> bool:
        return self.webhook_hmac_secret is not None or self.webhook_hmac_secret_file is not None

    def hmac_secret(self) -> str | None:
        return _secret(self.webhook_hmac_secret, self.webhook_hmac_secret_file)

    def metrics_secret(self) -> str | None:
        return _secret(self.prometheus_bearer_token, self.prometheus_bearer_token_file)


class _InvalidSettingError(ValueError):
    pass


def _invalid(field: str, problem: str) -> _InvalidSettingError:
    return _InvalidSettingError(f"{field.upper()}: {problem}")


def _secret(value: SecretStr | None, path: Path | None) -> str | None:
    """A secret from its `_FILE` variable (read now, so a rotation needs no restart) or its value.

    An unreadable or empty file yields None: a configured token that cannot be read admits nobody.
    """
    if path is not None:
        try:
            return path.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None
    return value.get_secret_value() if value is not None else None


def load_settings() -> Settings:
    """Read and validate the environment; raise ConfigError naming the first bad variable."""
    try:
        return Settings()  # required fields come from the environment
    except ValidationError as exc:
        raise config_error(exc) from exc


def config_error(exc: ValidationError) -> ConfigError:
    problems = []
    for error in exc.errors():
        loc = error.get("loc") or ()
        message = str(error.get("msg", "invalid"))
        if loc:
            variable = str(loc[0]).upper()
            problem = "is required" if error.get("type") == "missing" else message
        else:
            # Cross-field checks carry "VARIABLE: problem" in their message.
            message = message.removeprefix("Value error, ")
            variable, _, problem = message.partition(": ")
        problems.append((variable, problem))
    variable, problem = problems[0]
    more = "; ".join(f"{v}: {p}" for v, p in problems[1:])
    return ConfigError(variable, problem + (f" (also {more})" if more else ""))
