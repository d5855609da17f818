"""How the function reaches and authenticates to the Kubernetes API, chosen by KUBE_AUTH.

gke: the function's own Google identity (workload identity / metadata server): an OAuth access
     token refreshed before it expires; endpoint and CA from GKE_ENDPOINT/GKE_CA_CERT or looked up
     through the GKE API from GKE_CLUSTER.
eks: the IAM identity's `k8s-aws-v1.` token (a presigned STS GetCallerIdentity URL bound to the
     cluster by the `x-k8s-aws-id` header), cached well inside its 15-minute life; endpoint and CA
     from EKS_ENDPOINT/EKS_CA_CERT or DescribeCluster.
incluster: the pod's service account. kubeconfig: $KUBECONFIG or ~/.kube/config.
auto: the first of gke, eks, incluster, kubeconfig whose settings are present.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from kubernetes.client import ApiClient, Configuration
from urllib3.util.retry import Retry

from pod_rebalancer.config import Settings
from pod_rebalancer.errors import ConfigError, KubernetesError

GKE_SCOPES = (
    "https://www.googleapis.com/auth/cloud-platform",
    "https://www.googleapis.com/auth/userinfo.email",
)
EKS_TOKEN_PREFIX = "k8s-aws-v1."  # noqa: S105  (a format prefix, not a secret)
# One retry, for a dropped connection or a timed-out idempotent request, and never a wait for a
# Retry-After header: the client would sleep for as long as the server says, and a run stalled
# past its platform's time limit is killed mid-way. A server that asks for time gets it from the
# trigger (Alertmanager, Pub/Sub, Lambda), which retries the whole run later.
CLIENT_RETRIES = Retry(total=1, respect_retry_after_header=False)
SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")
EKS_TOKEN_REUSE_SECONDS = 10 * 60  # tokens are accepted for 15 minutes; renew well before


def resolve_mode(settings: Settings, environ: dict[str, str] | None = None) -> str:
    if settings.kube_auth != "auto":
        return settings.kube_auth
    env = os.environ if environ is None else environ
    if settings.gke_cluster or settings.gke_endpoint:
        return "gke"
    if settings.eks_cluster_name or settings.eks_endpoint:
        return "eks"
    if env.get("KUBERNETES_SERVICE_HOST"):
        return "incluster"
    return "kubeconfig"


def api_client(settings: Settings) -> ApiClient:
    """A configured ApiClient; ConfigError when the chosen mode lacks what it needs."""
    mode = resolve_mode(settings)
    builders: dict[str, Callable[[Settings], Configuration]] = {
        "gke": _gke,
        "eks": _eks,
        "incluster": _incluster,
        "kubeconfig": _kubeconfig,
    }
    configuration = builders[mode](settings)
    # Beyond one retry the trigger retries the whole run, which is safe because nothing is done
    # on partial information.
    configuration.retries = CLIENT_RETRIES
    # A sweep works on SWEEP_CONCURRENCY targets at once over this one client: room in the pool
    # for each of them (and reads of one target made together), so no connection is thrown away.
    configuration.connection_pool_maxsize = max(
        configuration.connection_pool_maxsize or 0, 4 * settings.sweep_concurrency
    )
    return ApiClient(configuration)


def _ca_file(pem_base64: str, variable: str) -> str:
    try:
        # Line breaks are allowed, as Go's decoder (kubectl, Terraform) allows them: `base64 ca.crt`
        # wraps at 76 columns.
        pem = base64.b64decode("".join(pem_base64.split()), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ConfigError(variable, "must be a base64-encoded PEM certificate") from exc
    if b"BEGIN CERTIFICATE" not in pem:
        raise ConfigError(variable, "does not decode to a PEM certificate")
    handle, path = tempfile.mkstemp(prefix="kube-ca-", suffix=".crt")
    with os.fdopen(handle, "wb") as out:
        out.write(pem)
    return path


def _https(endpoint: str) -> str:
    return endpoint if endpoint.startswith(("https://", "http://")) else f"https://{endpoint}"


def _bearer(configuration: Configuration, token: Callable[[], str]) -> None:
    """Install a hook the client calls before every request to fetch a fresh token."""

    def refresh(config: Configuration) -> None:
        config.api_key = {"authorization": token()}
        config.api_key_prefix = {"authorization": "Bearer"}

    refresh(configuration)
    configuration.refresh_api_key_hook = refresh  # type: ignore[assignment]


# GKE


class GoogleToken:
    """The function's Google access token, refreshed by google-auth before it expires."""

    def __init__(self) -> None:
        import google.auth  # noqa: PLC0415  (imported only when this mode is used)
        import google.auth.transport.requests  # noqa: PLC0415

        try:
            self._credentials, _ = google.auth.default(scopes=list(GKE_SCOPES))
        except google.auth.exceptions.DefaultCredentialsError as exc:
            raise ConfigError("KUBE_AUTH", f"gke: no Google credentials available: {exc}") from exc
        self._request = google.auth.transport.requests.Request()
        self._lock = threading.Lock()

    def __call__(self) -> str:
        import google.auth.exceptions  # noqa: PLC0415

        with self._lock:
            # `valid` turns False shortly before expiry (google-auth keeps a refresh margin).
            if not self._credentials.valid:
                try:
                    self._credentials.refresh(self._request)  # type: ignore[no-untyped-call]
                except google.auth.exceptions.GoogleAuthError as exc:
                    raise KubernetesError(f"could not refresh the Google token: {exc}") from exc
            return str(self._credentials.token)


def gke_cluster_lookup(
    cluster: str, token: str, api: str, transport: httpx.BaseTransport | None = None
) -> tuple[str, str]:
    """Endpoint and base64 CA of a GKE cluster `projects/P/locations/L/clusters/C`."""
    url = f"{api.rstrip('/')}/v1/{cluster}"
    try:
        with httpx.Client(transport=transport, timeout=15.0) as client:
            response = client.get(url, headers={"Authorization": f"Bearer {token}"})
    except httpx.HTTPError as exc:
        raise KubernetesError(f"GKE API unreachable looking up {cluster}: {exc}") from exc
    if response.status_code != 200:
        raise KubernetesError(
            f"GKE API answered HTTP {response.status_code} for {cluster}: {response.text[:300]}",
            response.status_code,
        )
    try:
        body: dict[str, Any] = response.json()
        return str(body["endpoint"]), str(body["masterAuth"]["clusterCaCertificate"])
    except (ValueError, KeyError, TypeError) as exc:
        raise KubernetesError(f"GKE API answer for {cluster} lacks endpoint or CA") from exc


def _gke(settings: Settings) -> Configuration:
    # Settings first, so a missing variable is named before any credential lookup.
    if settings.gke_endpoint and not settings.gke_ca_cert:
        raise ConfigError("GKE_CA_CERT", "is required with GKE_ENDPOINT")
    if not settings.gke_endpoint and not settings.gke_cluster:
        raise ConfigError("GKE_CLUSTER", "KUBE_AUTH=gke needs GKE_CLUSTER or GKE_ENDPOINT")
    token = GoogleToken()
    if settings.gke_endpoint and settings.gke_ca_cert:
        endpoint, ca = settings.gke_endpoint, settings.gke_ca_cert
    else:
        assert settings.gke_cluster is not None  # checked above
        endpoint, ca = gke_cluster_lookup(settings.gke_cluster, token(), settings.gke_api_endpoint)
    configuration = Configuration(host=_https(endpoint))
    configuration.ssl_ca_cert = _ca_file(ca, "GKE_CA_CERT")
    _bearer(configuration, token)
    return configuration


# EKS


class EksToken:
    """`k8s-aws-v1.` tokens for one cluster, from the ambient AWS identity (boto3's chain)."""

    def __init__(self, cluster: str, clock: Callable[[], float] = time.monotonic) -> None:
        import boto3  # noqa: PLC0415  (imported only when this mode is used)

        self._cluster = cluster
        self._clock = clock
        self._sts = boto3.session.Session().client("sts")
        self._sts.meta.events.register(
            "before-sign.sts.GetCallerIdentity", self._add_cluster_header
        )
        self._token: str | None = None
        self._minted = 0.0
        self._lock = threading.Lock()

    def _add_cluster_header(self, request: Any, **_: Any) -> None:
        request.headers["x-k8s-aws-id"] = self._cluster

    def mint(self) -> str:
        import botocore.exceptions  # noqa: PLC0415

        try:
            url = self._sts.generate_presigned_url(
                "get_caller_identity", Params={}, ExpiresIn=60, HttpMethod="GET"
            )
        except botocore.exceptions.BotoCoreError as exc:
            raise KubernetesError(f"could not sign the EKS token: {exc}") from exc
        encoded = base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
        return EKS_TOKEN_PREFIX + encoded

    def __call__(self) -> str:
        with self._lock:
            now = self._clock()
            if self._token is None or now - self._minted >= EKS_TOKEN_REUSE_SECONDS:
                self._token = self.mint()
                self._minted = now
            return self._token


def eks_cluster_lookup(name: str) -> tuple[str, str]:
    import boto3  # noqa: PLC0415
    import botocore.exceptions  # noqa: PLC0415

    try:
        cluster = boto3.session.Session().client("eks").describe_cluster(name=name)["cluster"]
        return str(cluster["endpoint"]), str(cluster["certificateAuthority"]["data"])
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
        raise KubernetesError(f"EKS DescribeCluster {name} failed: {exc}") from exc
    except (KeyError, TypeError) as exc:
        raise KubernetesError(f"EKS DescribeCluster {name} lacks endpoint or CA") from exc


def _eks(settings: Settings) -> Configuration:
    if not settings.eks_cluster_name:
        raise ConfigError("EKS_CLUSTER_NAME", "KUBE_AUTH=eks needs the cluster name (token scope)")
    if settings.eks_endpoint:
        if not settings.eks_ca_cert:
            raise ConfigError("EKS_CA_CERT", "is required with EKS_ENDPOINT")
        endpoint, ca = settings.eks_endpoint, settings.eks_ca_cert
    else:
        endpoint, ca = eks_cluster_lookup(settings.eks_cluster_name)
    configuration = Configuration(host=_https(endpoint))
    configuration.ssl_ca_cert = _ca_file(ca, "EKS_CA_CERT")
    _bearer(configuration, EksToken(settings.eks_cluster_name))
    return configuration


# In-cluster and kubeconfig


def _incluster(settings: Settings) -> Configuration:
    from kubernetes.config import ConfigException  # noqa: PLC0415
    from kubernetes.config.incluster_config import InClusterConfigLoader  # noqa: PLC0415

    configuration = Configuration()
    # The projected token is re-read by the client every minute, so rotation needs no restart.
    loader = InClusterConfigLoader(  # type: ignore[no-untyped-call]
        token_filename=str(SERVICE_ACCOUNT_DIR / "token"),
        cert_filename=str(SERVICE_ACCOUNT_DIR / "ca.crt"),
    )
    try:
        loader.load_and_set(configuration)  # type: ignore[no-untyped-call]
    except ConfigException as exc:
        raise ConfigError("KUBE_AUTH", f"incluster: {exc}") from exc
    return configuration


def _kubeconfig(settings: Settings) -> Configuration:
    from kubernetes import config  # noqa: PLC0415

    configuration = Configuration()
    try:
        # The library reads $KUBECONFIG once at import; read it now so the current value counts.
        config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None,
            client_configuration=configuration,
        )  # type: ignore[no-untyped-call]
    except (config.ConfigException, OSError, TypeError) as exc:
        raise ConfigError("KUBE_AUTH", f"kubeconfig: {exc}") from exc
    return configuration
