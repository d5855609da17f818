"""checkov on terraform/ passes, and every check it skips is skipped inline with its reason.

checkov runs from its own venv (`make setup` builds .venv-checkov): its dependency pins fight the
project's boto3/botocore pins. --skip-download keeps it offline."""

from __future__ import annotations

import json
import re
import subprocess
from typing import Any

import pytest

from tests.terraform.tf import REPO, TERRAFORM_DIR

pytestmark = pytest.mark.terraform

CHECKOV = REPO / ".venv-checkov" / "bin" / "checkov"
# Every check the modules skip, and where. Adding a skip means adding it here too.
SKIPPED = {
    "CKV_AWS_50": "aws_lambda_function.main",
    "CKV_AWS_115": "aws_lambda_function.main",
    "CKV_AWS_116": "aws_lambda_function.main",
    "CKV_AWS_117": "aws_lambda_function.main",
    "CKV_AWS_173": "aws_lambda_function.main",
    "CKV_AWS_272": "aws_lambda_function.main",
    "CKV_AWS_258": "aws_lambda_function_url.main",
    "CKV_AWS_158": "aws_cloudwatch_log_group.main",
    "CKV_AWS_338": "aws_cloudwatch_log_group.main",
    "CKV_AWS_149": "aws_secretsmanager_secret.webhook_token",
    "CKV2_AWS_57": "aws_secretsmanager_secret.webhook_token",
    "CKV_AWS_297": "aws_scheduler_schedule.main",
    "CKV_GCP_83": "google_pubsub_topic",
    "CKV_GCP_124": "google_cloudfunctions2_function.main",
}


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: run `make setup` (or `make checkov`)"
    result = subprocess.run(
        [str(CHECKOV), "--framework", "terraform", "-d", str(TERRAFORM_DIR), "--skip-download",
         "-o", "json"],
        capture_output=True, text=True, timeout=300, check=False, cwd=REPO,
    )  # fmt: skip
    assert result.stdout.strip(), result.stderr[-3000:]
    parsed: dict[str, Any] = json.loads(result.stdout)
    return parsed


def test_checkov_finds_nothing(report: dict[str, Any]) -> None:
    failed = report["results"]["failed_checks"]
    assert report["summary"]["parsing_errors"] == 0
    assert [f"{c['check_id']} {c['resource']} {c['file_path']}" for c in failed] == []
    assert report["summary"]["passed"] > 50


def test_every_skip_is_listed_and_has_a_reason(report: dict[str, Any]) -> None:
    for check in report["results"]["skipped_checks"]:
        check_id = check["check_id"]
        assert check_id in SKIPPED, f"unlisted skip {check_id} on {check['resource']}"
        assert SKIPPED[check_id] in check["resource"], (check_id, check["resource"])
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check_id


def test_every_inline_skip_in_the_sources_carries_a_reason() -> None:
    skips = []
    for path in TERRAFORM_DIR.rglob("*.tf"):
        for line in path.read_text().splitlines():
            if "checkov:skip" in line:
                skips.append(line)
                assert re.search(r"#checkov:skip=[A-Z0-9_]+:\S.{20,}", line), line
    assert {re.findall(r"skip=([A-Z0-9_]+)", skip)[0] for skip in skips} == set(SKIPPED)
