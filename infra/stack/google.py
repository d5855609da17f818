"""A local stand-in for Google's metadata server and the GKE API, for the `gke` auth path.

google-auth finds the metadata server through GCE_METADATA_HOST / GCE_METADATA_IP, exactly as on
Cloud Functions; the GKE API is reached through GKE_API_ENDPOINT. Tokens are numbered so a test
can see a refresh: `ya29.local-1`, `ya29.local-2`, ...
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

SERVICE_ACCOUNT = "pod-rebalancer@local-project.iam.gserviceaccount.com"


class GoogleServer:
    def __init__(self, *, token_lifetime: int = 3600, clusters: dict[str, Any] | None = None):
        self.token_lifetime = token_lifetime
        self.clusters = clusters or {}  # "projects/P/locations/L/clusters/C" -> {endpoint, ca}
        self.tokens_issued = 0
        self.requests: list[tuple[str, str]] = []
        self.token_scopes: list[str] = []  # the `scopes` asked for at each token request
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = int(self._httpd.server_address[1])
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def token(self, number: int) -> str:
        return f"ya29.local-{number}"

    def env(self) -> dict[str, str]:
        return {
            "GCE_METADATA_HOST": self.host,
            "GCE_METADATA_IP": self.host,
            "GKE_API_ENDPOINT": self.url,
        }

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def _send(self, status: int, body: Any, flavor: bool = True) -> None:
                data = (body if isinstance(body, str) else json.dumps(body)).encode()
                self.send_response(status)
                if flavor:
                    self.send_header("Metadata-Flavor", "Google")
                ctype = "text/plain" if isinstance(body, str) else "application/json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                path = url.path
                with server._lock:
                    server.requests.append(("GET", path))
                if path.startswith("/computeMetadata/v1/"):
                    if self.headers.get("Metadata-Flavor") != "Google":
                        self._send(403, "Missing Metadata-Flavor:Google header.")
                        return
                    self._metadata(path.removeprefix("/computeMetadata/v1/"), parse_qs(url.query))
                elif path.startswith("/v1/projects/"):
                    self._cluster(path.removeprefix("/v1/"))
                elif path == "/":
                    self._send(200, "ok")
                else:
                    self._send(404, "not found")

            def _metadata(self, path: str, query: dict[str, list[str]]) -> None:
                # The account is named "default" or by its email: google-auth asks for "default"
                # first and by email on every later refresh, as the real server allows.
                prefix = "instance/service-accounts/"
                name, _, leaf = path.removeprefix(prefix).partition("/")
                known = path.startswith(prefix) and name in ("default", SERVICE_ACCOUNT)
                if path == "project/project-id":
                    self._send(200, "local-project")
                elif known and leaf == "":
                    self._send(
                        200,
                        {"email": SERVICE_ACCOUNT, "aliases": ["default"], "scopes": ["cloud"]},
                    )
                elif known and leaf == "email":
                    self._send(200, SERVICE_ACCOUNT)
                elif known and leaf == "token":
                    with server._lock:
                        server.tokens_issued += 1
                        number = server.tokens_issued
                        server.token_scopes.append(",".join(query.get("scopes", [])))
                    self._send(
                        200,
                        {
                            "access_token": server.token(number),
                            "expires_in": server.token_lifetime,
                            "token_type": "Bearer",
                        },
                    )
                else:
                    self._send(404, "not found")

            def _cluster(self, name: str) -> None:
                expected = {f"Bearer {server.token(n)}" for n in range(1, server.tokens_issued + 1)}
                if self.headers.get("Authorization") not in expected:
                    self._send(401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}, False)
                    return
                cluster = server.clusters.get(name)
                if cluster is None:
                    self._send(404, {"error": {"code": 404, "status": "NOT_FOUND"}}, False)
                    return
                body = {
                    "name": name.rsplit("/", 1)[-1],
                    "endpoint": cluster["endpoint"],
                    "masterAuth": {"clusterCaCertificate": cluster["ca"]},
                }
                self._send(200, body, False)

        return Handler
