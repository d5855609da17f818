"""The Google Cloud Pub/Sub emulator (shipped with the Google Cloud CLI) on a free loopback port."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from infra.stack.processes import ServerProcess, free_port


def emulator_launcher() -> str:
    """The emulator's own launcher script inside the Cloud SDK (found at run time)."""
    gcloud = shutil.which("gcloud")
    if gcloud is None:
        raise RuntimeError(
            "the Google Cloud CLI is not installed: the Pub/Sub emulator comes with it"
        )
    root = subprocess.run(
        [gcloud, "info", "--format=value(installation.sdk_root)"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    launcher = Path(root) / "platform" / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
    if not launcher.exists():
        raise RuntimeError(f"no Pub/Sub emulator at {launcher}")
    return str(launcher)


class PubSubEmulator:
    """Started by its launcher (not `gcloud beta emulators`, whose Java child outlives it)."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.host = f"127.0.0.1:{self.port}"
        data = workdir / "pubsub-data"
        data.mkdir(parents=True, exist_ok=True)
        self.server = ServerProcess(
            "pubsub-emulator",
            [emulator_launcher(), "--host=127.0.0.1", f"--port={self.port}", f"--dir={data}"],
            workdir,
            env={**os.environ, "JAVA_TOOL_OPTIONS": "-Xmx512m"},
        )
        self.server.wait_http(f"http://{self.host}/", timeout=60)

    def env(self) -> dict[str, str]:
        """What a client needs to talk to the emulator instead of Google."""
        return {"PUBSUB_EMULATOR_HOST": self.host, "PUBSUB_PROJECT_ID": "local-project"}

    def stop(self) -> None:
        self.server.stop()
