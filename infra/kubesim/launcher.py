"""Start the simulator as a child process on a free loopback port, and drive its control API."""

from __future__ import annotations

import json
import ssl
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from infra.kubesim.tls import ensure_certs
from infra.stack.processes import REPO, ServerProcess, free_port


class KubeSim:
    def __init__(
        self,
        workdir: Path,
        scenario: Mapping[str, Any],
        *,
        tls: bool = False,
        victoria_url: str | None = None,
        tick: float = 0.2,
    ) -> None:
        self.port = free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        self.scenario_path = workdir / f"kubesim-{self.port}.json"
        self.scenario_path.write_text(json.dumps(scenario, indent=1))
        self.ca_file: Path | None = None
        scheme = "http"
        argv = [
            sys.executable,
            "-m",
            "infra.kubesim",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--scenario",
            str(self.scenario_path),
            "--tick",
            str(tick),
        ]
        verify: ssl.SSLContext | bool = True
        if tls:
            tls_dir = workdir / f"kubesim-tls-{self.port}"
            self.ca_file, _, _ = ensure_certs(tls_dir)
            argv += ["--tls-dir", str(tls_dir)]
            verify = ssl.create_default_context(cafile=str(self.ca_file))
            scheme = "https"
        if victoria_url:
            argv += ["--victoria-url", victoria_url]
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        self.server = ServerProcess(f"kubesim-{self.port}", argv, workdir, cwd=REPO)
        self.control = httpx.Client(base_url=self.url, verify=verify, timeout=30.0)
        self._wait_ready()

    def _wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.server.process.poll() is not None:
                self.control.close()
                raise RuntimeError(f"kubesim exited: {self.server.tail()}")
            try:
                if self.control.get("/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"kubesim not ready at {self.url} ({last}): {self.server.tail()}")

    # ------------------------------------------------------------------ control API

    def _ok(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise RuntimeError(f"{response.request.method} {response.request.url}: {response.text}")
        return response.json()

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(self.control.get("/_sim/state"))
        return result

    def set_fault(self, route: str | None = None, **rule: Any) -> dict[str, Any]:
        """Add a fault rule (faults.py): `route` a route-name glob ("pods.list", "leases.*",
        "*"), or `path=` a URL glob or ^regex, with `method`, `status`, `reason`, `message`,
        `body`, `delay`, `drop`, `after`, `count`, `phase`, `action`, `target`, ...; the old
        `latency` and `times` still mean `delay` and `count`. Returns the rule with its `id`."""
        spec = {**({"route": route} if route is not None else {}), **rule}
        result: dict[str, Any] = self._ok(self.control.post("/_sim/faults", json=spec))
        return result

    def faults(self) -> list[dict[str, Any]]:
        """The rules in force, with how many requests each has seen and been applied to."""
        rules: list[dict[str, Any]] = self._ok(self.control.get("/_sim/faults"))["faults"]
        return rules

    def clear_fault(self, rule_id: int) -> None:
        self._ok(self.control.delete(f"/_sim/faults/{rule_id}"))

    def clear_faults(self) -> None:
        self._ok(self.control.delete("/_sim/faults"))

    def delete_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """Force-delete a pod behind the client's back: an eviction naming it then answers 404."""
        result: dict[str, Any] = self._ok(self.control.delete(f"/_sim/pods/{namespace}/{name}"))
        return result

    def replace_pod(self, namespace: str, name: str) -> dict[str, Any]:
        """The pod made again under its name with a new UID: a UID precondition then says 409."""
        result: dict[str, Any] = self._ok(
            self.control.post(f"/_sim/pods/{namespace}/{name}/replace")
        )
        return result

    def rollout(self, namespace: str, name: str) -> dict[str, Any]:
        """Start a rollout of the Deployment (a new template annotation, as `kubectl rollout
        restart` does): the controllers really roll its pods."""
        result: dict[str, Any] = self._ok(
            self.control.post(f"/_sim/deployments/{namespace}/{name}/rollout")
        )
        return result

    def pods(self, namespace: str, deployment: str) -> list[dict[str, Any]]:
        params = {"namespace": namespace, "deployment": deployment}
        items: list[dict[str, Any]] = self._ok(self.control.get("/_sim/pods", params=params))[
            "items"
        ]
        return items

    def set_pod(self, namespace: str, name: str, **change: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(
            self.control.post(f"/_sim/pods/{namespace}/{name}", json=change)
        )
        return result

    def set_deployment(self, namespace: str, name: str, **change: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._ok(
            self.control.post(f"/_sim/deployments/{namespace}/{name}", json=change)
        )
        return result

    def settled(self, namespace: str, deployment: str, replicas: int) -> bool:
        """Every replica Ready and none terminating: the replacements of evicted pods are up."""
        pods = self.pods(namespace, deployment)
        ready = [
            p
            for p in pods
            if not p["metadata"].get("deletionTimestamp")
            and any(
                c["type"] == "Ready" and c["status"] == "True"
                for c in p["status"].get("conditions", ())
            )
        ]
        return len(pods) == len(ready) == replicas

    def cpu(self, namespace: str, deployment: str) -> dict[str, Any]:
        params = {"namespace": namespace, "deployment": deployment}
        result: dict[str, Any] = self._ok(self.control.get("/_sim/cpu", params=params))
        return result

    def requests(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._ok(self.control.get("/_sim/requests"))["requests"]
        return items

    def clear_requests(self) -> None:
        self._ok(self.control.delete("/_sim/requests"))

    def tick(self) -> None:
        self._ok(self.control.post("/_sim/tick"))

    def stop(self) -> None:
        self.control.close()
        self.server.stop()
