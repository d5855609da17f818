"""Start real servers on free loopback ports, wait (bounded) until they answer, and stop them."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx

REPO = Path(__file__).resolve().parents[2]
FUNCTION_DIR = REPO / "function"
T = TypeVar("T")


def wait_until(check: Callable[[], T], timeout: float, what: str, interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy, and return that; TimeoutError otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what}: not within {timeout}s")
        time.sleep(interval)


_port_registry: Path | None = None


def reserve_ports_in(directory: Path | None) -> None:
    """Hand out each port once only among every process that names the same `directory` (the
    test workers of one run): the kernel may give two processes the same free port while
    neither has bound it yet, or a port one of them relies on nobody listening at."""
    global _port_registry  # noqa: PLW0603
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    _port_registry = directory


def free_port() -> int:
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if _port_registry is None:
            return port
        try:
            os.close(os.open(_port_registry / str(port), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            continue  # handed out before in this run, perhaps to another process
        return port


class ServerProcess:
    """A child process with its output in a log file, stopped with SIGTERM then SIGKILL."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_dir: Path,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(argv),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,  # so stop() reaches any children too
        )

    def wait_http(self, url: str, timeout: float = 20.0, ok: Sequence[int] = (200,)) -> None:
        """Poll `url` until it answers with one of `ok`; fail with the log tail otherwise."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.process.returncode}: {self.tail()}"
                )
            try:
                status = httpx.get(url, timeout=1.0).status_code
                if status in ok:
                    return
                last = f"HTTP {status}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(
            f"{self.name} not ready at {url} after {timeout}s ({last}): {self.tail()}"
        )

    def tail(self, size: int = 2000) -> str:
        if not self._log.closed:
            self._log.flush()
        with contextlib.suppress(OSError):
            return self.log_path.read_bytes()[-size:].decode(errors="replace")
        return ""

    def stop(self, grace: float = 5.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(grace)
        self._log.close()


def setting_names() -> set[str]:
    """Every variable the function reads (the machine may set some, e.g. CONTAINER_NAME)."""
    if str(FUNCTION_DIR) not in sys.path:
        sys.path.insert(0, str(FUNCTION_DIR))
    from pod_rebalancer.config import Settings  # noqa: PLC0415

    return Settings.environment_names()


def clean_env() -> dict[str, str]:
    """This process's environment without any of the function's variables."""
    names = setting_names()
    return {key: value for key, value in os.environ.items() if key.upper() not in names}


def venv_bin(name: str) -> str:
    """A console script installed beside the running interpreter (the project's .venv)."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


class FunctionServer:
    """The function served by functions-framework, as Cloud Functions runs it."""

    def __init__(
        self,
        target: str,
        env: Mapping[str, str],
        log_dir: Path,
        signature: str = "http",
        source: Path = FUNCTION_DIR,
        framework: str | None = None,
    ) -> None:
        """`source`: the directory holding main.py (the repository's, or an unpacked zip);
        `framework`: the functions-framework script of another environment than this one."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = clean_env()
        full_env.update(env)
        full_env["PYTHONPATH"] = str(source)
        argv = [
            framework or venv_bin("functions-framework"),
            f"--target={target}",
            f"--source={source / 'main.py'}",
            f"--signature-type={signature}",
            "--host=127.0.0.1",
            f"--port={self.port}",
        ]
        self.server = ServerProcess(f"function-{target}", argv, log_dir, env=full_env, cwd=source)
        # Any HTTP answer means the server is up (the function itself answers GET with 405).
        self.server.wait_http(self.url, ok=range(200, 600))

    def records(self) -> list[dict[str, Any]]:
        """The function's structured log so far: every JSON object line of its output."""
        records = []
        for line in self.server.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    records.append(json.loads(line))
        return records

    def decisions(self) -> list[dict[str, Any]]:
        """The log line of every decision the function made (one per target per invocation)."""
        return [r for r in self.records() if r.get("event") == "decision"]

    def stop(self) -> None:
        self.server.stop()


@contextlib.contextmanager
def function_server(
    target: str, env: Mapping[str, str], log_dir: Path, signature: str = "http"
) -> Iterator[FunctionServer]:
    server = FunctionServer(target, env, log_dir, signature)
    try:
        yield server
    finally:
        server.stop()
