"""Prometheus (Debian `prometheus`) on a free loopback port, evaluating the project's alert rules.

The rules are infra/prometheus/rules.yml as they ship, except the alert's `for`, which a test or
demo may shorten in a temporary copy: configuration only, the repository's file is never touched.

A scrape-only Prometheus would need five minutes before `rate(...[5m])` means anything, so it can
start with history: series (e.g. exported from VictoriaMetrics) written into its TSDB as blocks by
`promtool tsdb create-blocks-from openmetrics` before it starts. Scraping then continues the same
series (same labels, later timestamps), and rules evaluated "now" see both.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx
import yaml

from infra.stack.processes import REPO, ServerProcess, free_port

RULES = REPO / "infra" / "prometheus" / "rules.yml"


def rules_with_for(hold: str, source: Path = RULES) -> dict[str, Any]:
    """The rule file with every alerting rule's `for` set to `hold` (e.g. "2s"), nothing else."""
    rules: dict[str, Any] = yaml.safe_load(source.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "alert" in rule:
                rule["for"] = hold
    return rules


def openmetrics(series: Iterable[Mapping[str, Any]]) -> str:
    """VictoriaMetrics export lines ({metric, values, timestamps in ms}) as OpenMetrics text:
    each series once, samples in time order, metric families contiguous (as promtool wants)."""
    merged: dict[tuple[tuple[str, str], ...], dict[int, float]] = {}
    for line in series:
        key = tuple(sorted((str(k), str(v)) for k, v in line["metric"].items()))
        merged.setdefault(key, {}).update(zip(line["timestamps"], line["values"], strict=True))
    out = []
    for key in sorted(merged, key=lambda k: (dict(k)["__name__"], k)):
        labels = dict(key)
        name = labels.pop("__name__")
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
        for stamp, value in sorted(merged[key].items()):
            out.append(f"{name}{{{text}}} {float(value)!r} {stamp / 1000:.3f}\n")
    return "".join(out) + "# EOF\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def write_blocks(history: str, data_dir: Path, workdir: Path) -> None:
    """Turn OpenMetrics text into TSDB blocks in `data_dir` (before Prometheus opens it)."""
    promtool = shutil.which("promtool")
    if promtool is None:
        raise RuntimeError("promtool is not installed: run `make setup`")
    source = workdir / "history.om"
    source.write_text(history)
    result = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(source), str(data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"promtool could not write the history: {result.stderr[-2000:]}")


def scrape_job(
    name: str, url: str, metrics_path: str, ca_file: Path | None = None
) -> dict[str, Any]:
    """A static scrape job for one target (`url` is scheme://host:port) keeping its own labels."""
    scheme, _, address = url.partition("://")
    job: dict[str, Any] = {
        "job_name": name,
        "scheme": scheme,
        "metrics_path": metrics_path,
        "honor_labels": True,
        "static_configs": [{"targets": [address]}],
        # The series keep exactly the exposed labels plus `job` (no `instance`), so they continue
        # history written under the same labels, e.g. by the simulator into VictoriaMetrics.
        "metric_relabel_configs": [{"action": "labeldrop", "regex": "instance"}],
    }
    if ca_file is not None:
        job["tls_config"] = {"ca_file": str(ca_file)}
    return job


class Prometheus:
    def __init__(
        self,
        workdir: Path,
        scrape_configs: Sequence[Mapping[str, Any]],
        rules: Mapping[str, Any] | None = None,
        alertmanager: str | None = None,
        interval: str = "1s",
        history: str | None = None,
        port: int | None = None,
    ) -> None:
        """`alertmanager` is host:port; `interval` is both the scrape and evaluation interval;
        `history` is OpenMetrics text loaded before start (see `openmetrics`)."""
        binary = shutil.which("prometheus")
        if binary is None:
            raise RuntimeError("prometheus is not installed: run `make setup`")
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = workdir / f"prometheus-{self.port}"
        home.mkdir(parents=True, exist_ok=True)
        if history is not None:
            write_blocks(history, home / "data", home)
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [dict(job) for job in scrape_configs],
        }
        if rules is not None:
            (home / "rules.yml").write_text(yaml.safe_dump(dict(rules), sort_keys=False))
            config["rule_files"] = [str(home / "rules.yml")]
        if alertmanager is not None:
            config["alerting"] = {
                "alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]
            }
        (home / "prometheus.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        self.server = ServerProcess(
            f"prometheus-{self.port}",
            [
                binary,
                f"--config.file={home / 'prometheus.yml'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}",  # alerts' generatorURL, not the host name
                f"--storage.tsdb.path={home / 'data'}",
                # Alerts reach Alertmanager a second after they change, not a minute.
                "--rules.alert.resend-delay=1s",
                "--log.level=warn",
            ],
            workdir,
        )
        self.server.wait_http(f"{self.url}/-/ready")
        self._http = httpx.Client(base_url=self.url, timeout=30.0)

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's vector (at `at`, else now)."""
        data = {"query": promql, **({"time": f"{at:.3f}"} if at is not None else {})}
        response = self._http.post("/api/v1/query", data=data)
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def alerts(self, name: str | None = None) -> list[dict[str, Any]]:
        """Active alerts (pending and firing), optionally only those called `name`."""
        response = self._http.get("/api/v1/alerts")
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return [a for a in alerts if name is None or a["labels"].get("alertname") == name]

    def stop(self) -> None:
        self._http.close()
        self.server.stop()


@contextlib.contextmanager
def prometheus(
    workdir: Path,
    scrape_configs: Sequence[Mapping[str, Any]],
    rules: Mapping[str, Any] | None = None,
    alertmanager: str | None = None,
    interval: str = "1s",
    history: str | None = None,
) -> Iterator[Prometheus]:
    server = Prometheus(workdir, scrape_configs, rules, alertmanager, interval, history)
    try:
        yield server
    finally:
        server.stop()
