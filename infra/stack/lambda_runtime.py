"""The Lambda side of the local stack: a Runtime API server and the real runtime interface client.

`RuntimeApi` speaks the documented protocol (`GET /2018-06-01/runtime/invocation/next`, then
`POST .../invocation/{id}/response` or `.../error`, and `.../init/error`) on a loopback port, one
invocation at a time, as the Lambda service does for one execution environment. `LambdaProcess`
runs `python -m awslambdaric main.lambda_handler` from an unpacked package with nothing else on
its path (`python -S`: no site-packages), as Lambda runs the deployed zip.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from infra.stack.processes import ServerProcess, clean_env

API = "/2018-06-01/runtime"
FUNCTION_ARN = "arn:aws:lambda:us-east-1:123456789012:function:pod-rebalancer"


@dataclass(frozen=True)
class Result:
    """What the function answered: its response, or the error it raised."""

    kind: str  # "response" or "error"
    payload: Any


class RuntimeApi(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pending: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.results: dict[str, queue.Queue[Result]] = {}
        self.init_errors: list[Any] = []
        self._thread = threading.Thread(target=self.serve_forever, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def invoke(
        self, event: Any, timeout: float = 60.0, alive: Callable[[], bool] = lambda: True
    ) -> Result:
        """Hand one event to the next `invocation/next` and wait (bounded, and only while the
        function's process lives) for its outcome."""
        request_id = str(uuid.uuid4())
        self.results[request_id] = queue.Queue(maxsize=1)
        self.pending.put((request_id, json.dumps(event).encode()))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and alive():
            try:
                return self.results[request_id].get(timeout=0.2)
            except queue.Empty:
                continue
        raise TimeoutError(f"no answer to invocation {request_id}: function exited or too slow")

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class _Handler(BaseHTTPRequestHandler):
    server: RuntimeApi

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _answer(self, status: int, body: bytes = b"", headers: Mapping[str, str] = {}) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != f"{API}/invocation/next":
            self._answer(404)
            return
        try:
            # The client long-polls; a bounded wait keeps a stopped test from leaking a thread.
            request_id, body = self.server.pending.get(timeout=120)
        except queue.Empty:
            self._answer(500)
            return
        self._answer(
            200,
            body,
            {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": request_id,
                "Lambda-Runtime-Deadline-Ms": "9999999999999",
                "Lambda-Runtime-Invoked-Function-Arn": FUNCTION_ARN,
                "Lambda-Runtime-Trace-Id": f"Root=1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:24]}",
            },
        )

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        payload = json.loads(body) if body else None
        if self.path == f"{API}/init/error":
            self.server.init_errors.append(payload)
            self._answer(202)
            return
        parts = self.path.removeprefix(f"{API}/invocation/").split("/")
        if len(parts) != 2 or parts[1] not in ("response", "error"):
            self._answer(404)
            return
        waiting = self.server.results.get(parts[0])
        if waiting is None:
            self._answer(400)
            return
        waiting.put(Result(parts[1], payload))
        self._answer(202)


class LambdaProcess:
    """The unpacked package at `task_root`, run by awslambdaric from `runtime_dir` only."""

    def __init__(
        self,
        task_root: Path,
        runtime_dir: Path,
        api: RuntimeApi,
        env: Mapping[str, str],
        log_dir: Path,
        name: str = "lambda",
    ) -> None:
        full_env = clean_env()
        for key in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"):
            full_env.pop(key, None)
        full_env.update(
            {
                "PYTHONPATH": f"{task_root}:{runtime_dir}",
                "LAMBDA_TASK_ROOT": str(task_root),
                "AWS_LAMBDA_RUNTIME_API": api.address,
                "AWS_LAMBDA_FUNCTION_NAME": "pod-rebalancer",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "512",
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "_HANDLER": "main.lambda_handler",
                **env,
            }
        )
        argv = [sys.executable, "-S", "-m", "awslambdaric", "main.lambda_handler"]
        self.server = ServerProcess(name, argv, log_dir, env=full_env, cwd=task_root)

        self.api = api

    def invoke(self, event: Any, timeout: float = 60.0) -> Result:
        return self.api.invoke(event, timeout, alive=lambda: self.server.process.poll() is None)

    def log(self) -> str:
        return self.server.log_path.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log().splitlines():
            if line.startswith("{"):
                try:
                    records.append(json.loads(line))
                except ValueError:
                    continue
        return records

    def stop(self) -> None:
        self.server.stop()
