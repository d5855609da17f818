"""moto_server: AWS (STS, EKS, IAM, Lambda, Scheduler, Secrets Manager, SQS) on a loopback port."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.stack.processes import ServerProcess, free_port, venv_bin

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account
TEST_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass(frozen=True)
class Moto:
    url: str
    server: ServerProcess
    region: str = REGION

    def session(self, **credentials: str) -> Any:
        import boto3  # noqa: PLC0415  (only the tests that talk to AWS pay for it)

        keys = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        keys.update(credentials)
        return boto3.session.Session(region_name=self.region, **keys)

    def client(self, service: str, **credentials: str) -> Any:
        return self.session(**credentials).client(service, endpoint_url=self.url)

    def stop(self) -> None:
        self.server.stop()


def start_moto(workdir: Path, region: str = REGION) -> Moto:
    port = free_port()
    argv = [venv_bin("moto_server"), "-H", "127.0.0.1", "-p", str(port)]
    server = ServerProcess(f"moto-{port}", argv, workdir)
    url = f"http://127.0.0.1:{port}"
    server.wait_http(f"{url}/moto-api/data.json")
    return Moto(url, server, region)
