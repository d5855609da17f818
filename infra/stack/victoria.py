"""VictoriaMetrics (Debian package `victoria-metrics`) on a free loopback port, and data import."""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from infra.stack.processes import ServerProcess, free_port


class VictoriaMetrics:
    def __init__(self, workdir: Path, latency_offset: str | None = None) -> None:
        """`latency_offset` (e.g. "1s") lets instant queries see samples younger than VM's
        default 30 s; the demo uses it to show the cluster seconds after a rebalance."""
        binary = shutil.which("victoria-metrics")
        if binary is None:
            raise RuntimeError("victoria-metrics is not installed: run `make setup`")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        data = workdir / "victoria-data"
        data.mkdir(parents=True, exist_ok=True)
        self.server = ServerProcess(
            "victoria-metrics",
            [
                binary,
                f"-httpListenAddr=127.0.0.1:{self.port}",
                f"-storageDataPath={data}",
                "-retentionPeriod=1",
                # Tests import history after querying: never answer from a stale cache.
                "-search.disableCache",
                "-loggerLevel=WARN",
                *([f"-search.latencyOffset={latency_offset}"] if latency_offset else []),
            ],
            workdir,
        )
        self.server.wait_http(f"{self.url}/health")
        self._http = httpx.Client(base_url=self.url, timeout=60.0)

    def import_series(self, series: Iterable[Mapping[str, object]]) -> None:
        """Push JSON-line series ({metric, values, timestamps in ms}); make them visible."""
        body = "\n".join(json.dumps(s, separators=(",", ":")) for s in series).encode()
        response = self._http.post("/api/v1/import", content=body)
        response.raise_for_status()
        self.flush()

    def flush(self) -> None:
        self._http.get("/internal/force_flush").raise_for_status()

    def query(self, promql: str, at: float) -> list[dict[str, object]]:
        response = self._http.post("/api/v1/query", data={"query": promql, "time": f"{at:.3f}"})
        response.raise_for_status()
        result: list[dict[str, object]] = response.json()["data"]["result"]
        return result

    def export(self, match: str, start: float, end: float | None = None) -> list[dict[str, Any]]:
        """Raw samples of the series matching `match` (JSON lines, one or more per series)."""
        params = {"match[]": match, "start": f"{start:.3f}"}
        if end is not None:
            params["end"] = f"{end:.3f}"
        response = self._http.get("/api/v1/export", params=params)
        response.raise_for_status()
        return [json.loads(line) for line in response.text.splitlines() if line.strip()]

    def stop(self) -> None:
        self._http.close()
        self.server.stop()


@contextlib.contextmanager
def victoria_metrics(workdir: Path, latency_offset: str | None = None) -> Iterator[VictoriaMetrics]:
    vm = VictoriaMetrics(workdir, latency_offset)
    try:
        yield vm
    finally:
        vm.stop()


def scalar(vm: VictoriaMetrics, promql: str, at: float) -> float:
    result = vm.query(promql, at)
    if len(result) != 1:
        raise AssertionError(f"{promql} returned {len(result)} series")
    value = result[0]["value"]
    assert isinstance(value, Sequence)
    return float(value[1])
