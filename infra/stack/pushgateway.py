"""Prometheus Pushgateway (Debian `prometheus-pushgateway`) on a free loopback port."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from infra.stack.processes import ServerProcess, free_port


class Pushgateway:
    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
        if binary is None:
            raise RuntimeError("prometheus-pushgateway is not installed: run `make setup`")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = ServerProcess(
            f"pushgateway-{self.port}",
            [
                binary,
                f"--web.listen-address=127.0.0.1:{self.port}",
                # Debian's default persists to a file under /var/lib shared by every instance.
                "--persistence.file=",
                "--log.level=warn",
            ],
            workdir,
        )
        self.server.wait_http(f"{self.url}/-/ready")
        self._http = httpx.Client(base_url=self.url, timeout=10.0)

    def exposition(self) -> str:
        """What a Prometheus scraping the gateway reads (GET /metrics)."""
        response = self._http.get("/metrics")
        response.raise_for_status()
        return response.text

    def groups(self) -> list[dict[str, Any]]:
        """The groups it holds, as its API gives them (GET /api/v1/metrics)."""
        response = self._http.get("/api/v1/metrics")
        response.raise_for_status()
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    def stop(self) -> None:
        self._http.close()
        self.server.stop()


@contextlib.contextmanager
def pushgateway(workdir: Path) -> Iterator[Pushgateway]:
    server = Pushgateway(workdir)
    try:
        yield server
    finally:
        server.stop()
