"""Alertmanager (Debian `prometheus-alertmanager`) on a free loopback port, routing to the function.

Its configuration is infra/alertmanager/alertmanager.yml as it ships, with only what a deployment
fills in changed: the webhook URL, the token file, and (for tests and demos) shorter timings. The
route, its matchers and grouping stay as in the file, so they are what gets exercised.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from infra.stack.processes import REPO, ServerProcess, free_port

CONFIG = REPO / "infra" / "alertmanager" / "alertmanager.yml"


def webhook_config(
    url: str,
    token_file: Path,
    *,
    group_wait: str = "100ms",
    group_interval: str = "1s",
    repeat_interval: str | None = None,
    source: Path = CONFIG,
) -> dict[str, Any]:
    """The shipped configuration pointed at `url` with the bearer token read from `token_file`.

    Timings change only on the routes that lead to a webhook receiver; `repeat_interval` only when
    given (a short one makes Alertmanager send a still-firing alert again, as HA peers do).
    """
    config: dict[str, Any] = yaml.safe_load(source.read_text())
    webhooks = {r["name"] for r in config["receivers"] if r.get("webhook_configs")}
    for receiver in config["receivers"]:
        for hook in receiver.get("webhook_configs", ()):
            hook["url"] = url
            hook["http_config"]["authorization"]["credentials_file"] = str(token_file)
    routes = [config["route"], *config["route"].get("routes", ())]
    for route in routes:
        if route.get("receiver") in webhooks:
            route["group_wait"] = group_wait
            route["group_interval"] = group_interval
            if repeat_interval is not None:
                route["repeat_interval"] = repeat_interval
    return config


class Alertmanager:
    def __init__(self, workdir: Path, config: Mapping[str, Any], port: int | None = None) -> None:
        """`port` may be chosen beforehand, so Prometheus can be configured before this starts."""
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        if binary is None:
            raise RuntimeError("prometheus-alertmanager is not installed: run `make setup`")
        self.port = port or free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"
        home = workdir / f"alertmanager-{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        (home / "alertmanager.yml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
        self.server = ServerProcess(
            f"alertmanager-{self.port}",
            [
                binary,
                f"--config.file={home / 'alertmanager.yml'}",
                f"--web.listen-address={self.address}",
                "--cluster.listen-address=",  # a single instance: no gossip port
                f"--storage.path={home / 'data'}",
                "--log.level=warn",
            ],
            workdir,
        )
        self.server.wait_http(f"{self.url}/-/ready")
        self._http = httpx.Client(base_url=self.url, timeout=30.0)

    def post_alerts(self, alerts: Sequence[Mapping[str, Any]]) -> None:
        """What Prometheus does: POST /api/v2/alerts (labels, annotations, startsAt, endsAt)."""
        self._http.post("/api/v2/alerts", json=list(alerts)).raise_for_status()

    def alerts(self) -> list[dict[str, Any]]:
        response = self._http.get("/api/v2/alerts")
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    def stop(self) -> None:
        self._http.close()
        self.server.stop()


@contextlib.contextmanager
def alertmanager(
    workdir: Path, config: Mapping[str, Any], port: int | None = None
) -> Iterator[Alertmanager]:
    server = Alertmanager(workdir, config, port)
    try:
        yield server
    finally:
        server.stop()
