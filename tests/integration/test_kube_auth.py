"""KUBE_AUTH providers against real servers on loopback: a Google metadata server and GKE API
stand-in, moto_server's STS and EKS, and the Kubernetes API simulator checking each identity."""

from __future__ import annotations

import base64
import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from google.auth._helpers import REFRESH_THRESHOLD
from kubernetes.client import ApiClient

from infra.kubesim.eks import EksVerifier, TokenError, canonical_arn, presigned_url
from infra.kubesim.launcher import KubeSim
from infra.stack.google import SERVICE_ACCOUNT, GoogleServer
from infra.stack.moto import Moto, start_moto
from infra.stack.processes import FUNCTION_DIR, clean_env
from pod_rebalancer.adapters import kube_auth
from pod_rebalancer.adapters.kube import Cluster
from pod_rebalancer.adapters.kube_auth import (
    EKS_TOKEN_PREFIX,
    EKS_TOKEN_REUSE_SECONDS,
    GKE_SCOPES,
    EksToken,
    api_client,
    eks_cluster_lookup,
    resolve_mode,
)
from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import Target
from pod_rebalancer.errors import ConfigError, KubernetesError
from tests.kube import REBALANCER_RULES, TOKEN, USER, deployment, kubeconfig, scenario
from tests.kube import api_client as static_client

pytestmark = pytest.mark.integration

NS = "auth"
DEP = "web"
EXCLUDE = "pod-rebalancer.io/exclude"
CLUSTER_ID = "rebalancer-test"
ACCOUNT = "123456789012"
# What moto's GetCallerIdentity names a caller whose keys it did not issue (`testing`).
MOTO_CALLER = f"arn:aws:sts::{ACCOUNT}:user/moto"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/pod-rebalancer"
EKS_USER = "eks:pod-rebalancer"
ROLE_USER = "eks:pod-rebalancer-role"
# GKE names a Google service account by its email.
GKE_USER = SERVICE_ACCOUNT
GOOGLE_TOKENS = [f"ya29.local-{n}" for n in range(1, 5)]
AWS_TEST_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


# ---------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("kube-auth")


@pytest.fixture(scope="module")
def role_credentials(moto: Moto) -> dict[str, str]:
    """Temporary credentials of an assumed IAM role, issued by moto's STS."""
    session = moto.session()
    session.client("iam", endpoint_url=moto.url).create_role(
        RoleName="pod-rebalancer", AssumeRolePolicyDocument="{}"
    )
    answer = session.client("sts", endpoint_url=moto.url).assume_role(
        RoleArn=ROLE, RoleSessionName="function-instance"
    )
    credentials: dict[str, str] = answer["Credentials"]
    return credentials


def bindings(*users: str) -> list[dict[str, Any]]:
    return [{"user": user, "namespace": NS, "rules": REBALANCER_RULES} for user in users]


@pytest.fixture(scope="module")
def sim(workdir: Path, moto: Moto, role_credentials: dict[str, str]) -> Iterator[KubeSim]:
    """One TLS cluster for every identity: Google tokens, EKS tokens verified through moto's STS
    (signatures checked with the keys' secrets, as STS would), and the kubeconfig token."""
    body = scenario(
        [NS],
        [deployment(NS, DEP, 3)],
        users={
            TOKEN: {"name": USER, "groups": []},
            **{token: {"name": GKE_USER, "groups": []} for token in GOOGLE_TOKENS},
        },
        bindings=bindings(USER, GKE_USER, EKS_USER, ROLE_USER),
        eks={
            "clusterId": CLUSTER_ID,
            "stsEndpoint": moto.url,
            "secretAccessKeys": {
                "testing": "testing",
                role_credentials["AccessKeyId"]: role_credentials["SecretAccessKey"],
            },
            "users": {
                MOTO_CALLER: {"name": EKS_USER, "groups": []},
                ROLE: {"name": ROLE_USER, "groups": []},
            },
        },
    )
    server = KubeSim(workdir, body, tls=True, tick=0.1)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def kube(sim: KubeSim) -> KubeSim:
    sim.clear_requests()
    return sim


def ca_base64(sim: KubeSim) -> str:
    assert sim.ca_file is not None
    return base64.b64encode(Path(sim.ca_file).read_bytes()).decode()


def settings(**auth: Any) -> Settings:
    return Settings(
        prometheus_endpoint="http://127.0.0.1:9",
        kube_namespace=NS,
        deployment_name=DEP,
        **auth,
    )


@contextlib.contextmanager
def connected(api: ApiClient) -> Iterator[Cluster]:
    cluster = Cluster(api, exclude_annotation=EXCLUDE, timeout=5.0)
    try:
        yield cluster
    finally:
        cluster.close()


def cluster_for(config: Settings) -> contextlib.AbstractContextManager[Cluster]:
    return connected(api_client(config))


def bearer(api: ApiClient) -> str:
    """The token the client sent last (its refresh hook sets it before every request)."""
    return str(api.configuration.api_key["authorization"])


def read_target(cluster: Cluster) -> None:
    found = cluster.deployment(Target(NS, DEP))
    assert found is not None
    assert len(cluster.pods(NS, found.selector)) == 3


def api_users(sim: KubeSim) -> list[tuple[str | None, int]]:
    return [(r["user"], r["status"]) for r in sim.requests()]


# ---------------------------------------------------------------------- GKE


@pytest.fixture
def metadata(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Callable[..., GoogleServer]]:
    """Start a metadata server + GKE API and make it the only place google-auth can look."""
    from google.auth.compute_engine import _metadata  # noqa: PLC0415

    started: list[GoogleServer] = []

    def start(**kw: Any) -> GoogleServer:
        server = GoogleServer(**kw)
        started.append(server)
        for key, value in server.env().items():
            monkeypatch.setenv(key, value)
        (tmp_path / "gcloud").mkdir(exist_ok=True)
        monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))  # no gcloud ADC file
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        # google-auth reads GCE_METADATA_HOST once, when _metadata is first imported (a cold
        # start sets it before that); this process may have imported it already.
        # test_google_auth_finds_the_metadata_server_from_the_environment_alone shows the
        # variable alone suffices in a fresh process.
        monkeypatch.setattr(_metadata, "_GCE_METADATA_HOST", server.host)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


def test_gke_identity_from_the_metadata_server_reaches_the_cluster(
    kube: KubeSim, metadata: Callable[..., GoogleServer]
) -> None:
    google = metadata()
    config = settings(kube_auth="gke", gke_endpoint=kube.url, gke_ca_cert=ca_base64(kube))
    with cluster_for(config) as cluster:
        read_target(cluster)
    assert google.tokens_issued == 1
    assert google.token_scopes == [",".join(GKE_SCOPES)]
    assert api_users(kube) == [(GKE_USER, 200), (GKE_USER, 200)]


def test_gke_token_is_refreshed_before_it_expires(
    kube: KubeSim, metadata: Callable[..., GoogleServer]
) -> None:
    # google-auth treats a token as expired REFRESH_THRESHOLD (3m45s in 2.62) before its end:
    # a token living 4 s longer than that is fresh for 4 s.
    fresh = 4.0
    google = metadata(token_lifetime=int(REFRESH_THRESHOLD.total_seconds() + fresh))
    config = settings(kube_auth="gke", gke_endpoint=kube.url, gke_ca_cert=ca_base64(kube))
    issued = time.monotonic()
    api = api_client(config)
    with connected(api) as cluster:
        assert cluster.deployment(Target(NS, DEP)) is not None
        assert bearer(api) == "ya29.local-1"
        assert google.tokens_issued == 1
        time.sleep(max(0.0, issued + fresh + 0.3 - time.monotonic()))
        assert cluster.deployment(Target(NS, DEP)) is not None
        assert bearer(api) == "ya29.local-2"
    assert google.tokens_issued == 2
    assert api_users(kube) == [(GKE_USER, 200), (GKE_USER, 200)]


def test_gke_cluster_endpoint_and_ca_are_looked_up_through_the_gke_api(
    kube: KubeSim, metadata: Callable[..., GoogleServer]
) -> None:
    name = "projects/local-project/locations/europe-west1/clusters/main"
    google = metadata(
        clusters={name: {"endpoint": f"127.0.0.1:{kube.port}", "ca": ca_base64(kube)}}
    )
    config = settings(kube_auth="gke", gke_cluster=name, gke_api_endpoint=google.url)
    with cluster_for(config) as cluster:
        read_target(cluster)
    assert ("GET", f"/v1/{name}") in google.requests
    assert google.tokens_issued == 1  # the lookup and the cluster share one token
    assert api_users(kube) == [(GKE_USER, 200), (GKE_USER, 200)]


def test_an_unknown_gke_cluster_is_a_kubernetes_error(
    metadata: Callable[..., GoogleServer],
) -> None:
    google = metadata()
    config = settings(
        kube_auth="gke",
        gke_cluster="projects/local-project/locations/europe-west1/clusters/absent",
        gke_api_endpoint=google.url,
    )
    with pytest.raises(KubernetesError, match="HTTP 404") as caught:
        api_client(config)
    assert caught.value.status == 404


@pytest.mark.parametrize(
    ("auth", "variable"),
    [
        ({}, "GKE_CLUSTER"),
        ({"gke_endpoint": "127.0.0.1:1"}, "GKE_CA_CERT"),
        ({"gke_endpoint": "127.0.0.1:1", "gke_ca_cert": "not base64!"}, "GKE_CA_CERT"),
        ({"gke_endpoint": "127.0.0.1:1", "gke_ca_cert": "aGVsbG8="}, "GKE_CA_CERT"),
    ],
)
def test_incomplete_gke_settings_name_the_variable(
    metadata: Callable[..., GoogleServer], auth: dict[str, str], variable: str
) -> None:
    metadata()
    with pytest.raises(ConfigError) as caught:
        api_client(settings(kube_auth="gke", **auth))
    assert caught.value.variable == variable


def test_google_auth_finds_the_metadata_server_from_the_environment_alone(
    tmp_path: Path,
) -> None:
    google = GoogleServer()
    try:
        env = clean_env()
        env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
        env.update(google.env(), CLOUDSDK_CONFIG=str(tmp_path), PYTHONPATH=str(FUNCTION_DIR))
        code = "from pod_rebalancer.adapters.kube_auth import GoogleToken; print(GoogleToken()())"
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        google.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ya29.local-1"


# ---------------------------------------------------------------------- EKS


@pytest.fixture
def aws(moto: Moto, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Moto:
    """boto3's default chain sees only the test keys, and its STS and EKS are moto's."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    env = {
        **AWS_TEST_KEYS,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(tmp_path / "absent-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "absent-credentials"),
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_ENDPOINT_URL_STS": moto.url,
        "AWS_ENDPOINT_URL_EKS": moto.url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return moto


def eks_settings(sim: KubeSim, cluster: str = CLUSTER_ID) -> Settings:
    return settings(
        kube_auth="eks", eks_cluster_name=cluster, eks_endpoint=sim.url, eks_ca_cert=ca_base64(sim)
    )


def test_eks_token_is_verified_through_sts_and_mapped_to_a_user(kube: KubeSim, aws: Moto) -> None:
    api = api_client(eks_settings(kube))
    with connected(api) as cluster:
        read_target(cluster)
    token = bearer(api)
    assert token.startswith(EKS_TOKEN_PREFIX)
    url = presigned_url(token)
    assert urlsplit(url).netloc == urlsplit(aws.url).netloc
    assert "x-k8s-aws-id" in url.lower()
    assert api_users(kube) == [(EKS_USER, 200), (EKS_USER, 200)]


def test_a_ca_wrapped_across_lines_is_accepted(kube: KubeSim, aws: Moto) -> None:
    assert kube.ca_file is not None
    wrapped = base64.encodebytes(Path(kube.ca_file).read_bytes()).decode()  # as `base64 ca.crt`
    assert "\n" in wrapped.strip()
    config = settings(
        kube_auth="eks", eks_cluster_name=CLUSTER_ID, eks_endpoint=kube.url, eks_ca_cert=wrapped
    )
    with cluster_for(config) as cluster:
        assert cluster.deployment(Target(NS, DEP)) is not None


def test_an_assumed_role_is_mapped_through_its_role_arn(
    kube: KubeSim,
    aws: Moto,
    role_credentials: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", role_credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", role_credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", role_credentials["SessionToken"])
    with cluster_for(eks_settings(kube)) as cluster:
        read_target(cluster)
    assert api_users(kube) == [(ROLE_USER, 200), (ROLE_USER, 200)]


def test_a_token_minted_for_another_cluster_is_refused(kube: KubeSim, aws: Moto) -> None:
    token = EksToken("another-cluster")()
    with connected(static_client(kube, token)) as cluster, pytest.raises(KubernetesError) as caught:
        cluster.deployment(Target(NS, DEP))
    assert caught.value.status == 401
    assert api_users(kube) == [(None, 401)]


class CountingEksToken(EksToken):
    def __init__(self, cluster: str, clock: Callable[[], float]) -> None:
        super().__init__(cluster, clock)
        self.minted = 0

    def mint(self) -> str:
        self.minted += 1
        return super().mint()


def test_eks_tokens_are_reused_for_ten_minutes_then_renewed(kube: KubeSim, aws: Moto) -> None:
    now = [1000.0]
    tokens = CountingEksToken(CLUSTER_ID, clock=lambda: now[0])
    first = tokens()
    now[0] += EKS_TOKEN_REUSE_SECONDS - 1
    assert tokens() == first
    assert tokens.minted == 1
    now[0] += 1
    tokens()
    assert tokens.minted == 2
    for token in (first, tokens()):  # the kept token and the renewed one both sign in
        with connected(static_client(kube, token)) as cluster:
            assert cluster.deployment(Target(NS, DEP)) is not None
    assert api_users(kube) == [(EKS_USER, 200), (EKS_USER, 200)]


def test_describe_cluster_gives_the_endpoint_and_ca(aws: Moto) -> None:
    eks = aws.session().client("eks", endpoint_url=aws.url)
    eks.create_cluster(
        name="described",
        roleArn=ROLE,
        resourcesVpcConfig={"subnetIds": [], "securityGroupIds": []},
    )
    described = eks.describe_cluster(name="described")["cluster"]
    assert eks_cluster_lookup("described") == (
        described["endpoint"],
        described["certificateAuthority"]["data"],
    )


def test_a_missing_eks_cluster_is_a_kubernetes_error(aws: Moto) -> None:
    with pytest.raises(KubernetesError, match="DescribeCluster absent"):
        eks_cluster_lookup("absent")
    with pytest.raises(KubernetesError, match="DescribeCluster absent"):
        api_client(settings(kube_auth="eks", eks_cluster_name="absent"))


@pytest.mark.parametrize(
    ("auth", "variable"),
    [
        ({}, "EKS_CLUSTER_NAME"),
        ({"eks_cluster_name": "c", "eks_endpoint": "127.0.0.1:1"}, "EKS_CA_CERT"),
    ],
)
def test_incomplete_eks_settings_name_the_variable(
    aws: Moto, auth: dict[str, str], variable: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        api_client(settings(kube_auth="eks", **auth))
    assert caught.value.variable == variable


def test_the_simulator_keeps_a_verified_token_for_a_minute_without_asking_sts_again(
    workdir: Path, aws: Moto, monkeypatch: pytest.MonkeyPatch
) -> None:
    sts = start_moto(workdir)
    body = scenario(
        [NS],
        [deployment(NS, DEP, 3)],
        users={},
        bindings=bindings(EKS_USER),
        eks={
            "clusterId": CLUSTER_ID,
            "stsEndpoint": sts.url,
            "users": {MOTO_CALLER: {"name": EKS_USER}},
        },
    )
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts.url)
    try:
        sim = KubeSim(workdir, body, tick=0.1)
        try:
            known = EksToken(CLUSTER_ID)()
            assert _status(sim, known) == 200
            sts.server.stop()  # STS gone: only what the simulator remembers still works
            assert _status(sim, known) == 200
            monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDNEVERSEENBEFORE")  # a different token
            assert _status(sim, EksToken(CLUSTER_ID)()) == 401
        finally:
            sim.stop()
    finally:
        sts.server.stop()


def _status(sim: KubeSim, token: str) -> int:
    response = sim.control.get(
        f"/apis/apps/v1/namespaces/{NS}/deployments/{DEP}",
        headers={"Authorization": f"Bearer {token}"},
    )
    return response.status_code


# The simulator's checks before it asks STS, with a clock it does not share with the signer.


def signed_url(aws: Moto, cluster: str = CLUSTER_ID) -> str:
    return presigned_url(EksToken(cluster)())


def test_the_simulator_refuses_a_token_older_than_fifteen_minutes(aws: Moto) -> None:
    url = signed_url(aws)
    verifier = EksVerifier(CLUSTER_ID, aws.url, {"testing": "testing"})
    signed_at = verifier.check(url, time.time() + 14 * 60)
    assert abs(signed_at - datetime.now(UTC)) < timedelta(minutes=1)
    with pytest.raises(TokenError, match="expired"):
        verifier.check(url, time.time() + 16 * 60)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda u: u.replace("Action=GetCallerIdentity", "Action=GetSessionToken"), "not a Get"),
        (lambda u: u.replace("%3Bx-k8s-aws-id", ""), "x-k8s-aws-id is not signed"),
        (lambda u: u.replace("http://127.0.0.1", "http://169.254.169.254"), "unexpected host"),
        (lambda u: u.replace("/?", "/other?"), "unexpected path"),
        (lambda u: u.replace("X-Amz-Date=", "X-Amz-Date=1"), "X-Amz-Date"),
        (lambda u: u.replace("&X-Amz-Expires=60", ""), "X-Amz-Expires"),
        (lambda u: u.replace("X-Amz-Signature=", "X-Amz-Signature=0"), "signature mismatch"),
    ],
)
def test_the_simulator_refuses_a_presigned_url_that_is_not_what_the_authenticator_expects(
    aws: Moto, change: Callable[[str], str], problem: str
) -> None:
    verifier = EksVerifier(CLUSTER_ID, aws.url, {"testing": "testing"})
    url = signed_url(aws)
    verifier.check(url, time.time())  # the untouched URL passes
    with pytest.raises(TokenError, match=problem):
        verifier.check(change(url), time.time())


def test_the_simulator_reads_padded_and_unpadded_tokens(aws: Moto) -> None:
    url = signed_url(aws)
    padded = EKS_TOKEN_PREFIX + base64.urlsafe_b64encode(url.encode()).decode()
    assert presigned_url(padded) == url
    assert presigned_url(padded.rstrip("=")) == url
    with pytest.raises(TokenError):
        presigned_url(EKS_TOKEN_PREFIX + "%%%")


@pytest.mark.parametrize(
    ("arn", "canonical"),
    [
        (f"arn:aws:sts::{ACCOUNT}:assumed-role/pod-rebalancer/i-123", ROLE),
        (
            f"arn:aws:sts::{ACCOUNT}:assumed-role/path/to/role/session",
            f"arn:aws:iam::{ACCOUNT}:role/path/to/role",
        ),
        (f"arn:aws:iam::{ACCOUNT}:user/jane", f"arn:aws:iam::{ACCOUNT}:user/jane"),
        (MOTO_CALLER, MOTO_CALLER),
    ],
)
def test_assumed_role_arns_are_canonicalised_to_the_role(arn: str, canonical: str) -> None:
    assert canonical_arn(arn) == canonical


# ---------------------------------------------------------------------- auto, kubeconfig, incluster


@pytest.mark.parametrize(
    ("auth", "environ", "mode"),
    [
        ({"gke_cluster": "projects/p/locations/l/clusters/c"}, {}, "gke"),
        ({"gke_endpoint": "10.0.0.1", "eks_cluster_name": "c"}, {}, "gke"),
        ({"eks_cluster_name": "c"}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "eks"),
        ({"eks_endpoint": "https://x.eks.amazonaws.com"}, {}, "eks"),
        ({}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBECONFIG": "/k"}, "incluster"),
        ({}, {"KUBERNETES_SERVICE_HOST": ""}, "kubeconfig"),
        ({}, {}, "kubeconfig"),
        (
            {"kube_auth": "incluster", "gke_cluster": "projects/p/locations/l/clusters/c"},
            {},
            "incluster",
        ),
        ({"kube_auth": "eks"}, {}, "eks"),
    ],
)
def test_auto_picks_the_first_provider_whose_settings_are_present(
    auth: dict[str, str], environ: dict[str, str], mode: str
) -> None:
    assert resolve_mode(settings(**auth), environ) == mode


def test_kubeconfig_reaches_the_cluster_and_is_the_auto_fallback(
    kube: KubeSim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig(kube, tmp_path / "config")))
    for config in (settings(kube_auth="kubeconfig"), settings()):
        with cluster_for(config) as cluster:
            read_target(cluster)
    assert api_users(kube) == [(USER, 200)] * 4


def test_a_missing_kubeconfig_names_kube_auth(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "absent"))
    with pytest.raises(ConfigError) as caught:
        api_client(settings(kube_auth="kubeconfig"))
    assert caught.value.variable == "KUBE_AUTH"


@pytest.fixture
def service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A pod's service-account directory, as the kubelet projects it, in a temp dir."""
    directory = tmp_path / "serviceaccount"
    directory.mkdir()
    monkeypatch.setattr(kube_auth, "SERVICE_ACCOUNT_DIR", directory)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_PORT", raising=False)
    return directory


def test_incluster_uses_the_pods_service_account_and_is_chosen_by_auto(
    kube: KubeSim, service_account: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert kube.ca_file is not None
    (service_account / "token").write_text(TOKEN)
    (service_account / "ca.crt").write_bytes(Path(kube.ca_file).read_bytes())
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", kube.url.rsplit(":", 1)[1])
    assert resolve_mode(settings()) == "incluster"
    for config in (settings(kube_auth="incluster"), settings()):
        with cluster_for(config) as cluster:
            read_target(cluster)
    assert api_users(kube) == [(USER, 200)] * 4


@pytest.mark.parametrize("service_env", [False, True])
def test_incluster_outside_a_pod_names_kube_auth(
    service_account: Path, monkeypatch: pytest.MonkeyPatch, service_env: bool
) -> None:
    if service_env:  # the variables alone, without the token and CA files, are not enough
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", "443")
    with pytest.raises(ConfigError, match="incluster") as caught:
        api_client(settings(kube_auth="incluster"))
    assert caught.value.variable == "KUBE_AUTH"
