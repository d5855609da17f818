"""The alerting side in infra/: rules checked and unit-tested by promtool, configs by amtool."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from pod_rebalancer.config import Settings

INFRA = Path(__file__).resolve().parents[2] / "infra"
RULES = INFRA / "prometheus" / "rules.yml"


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed: run `make setup`"
    return path


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_accepts_the_rules() -> None:
    result = run(tool("promtool"), "check", "rules", RULES.name, cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 4 rules found" in result.stdout


def test_rule_unit_tests_fire_on_skew_and_stay_silent_when_balanced() -> None:
    result = run(tool("promtool"), "test", "rules", "rules.test.yml", cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_rule_unit_tests_can_fail(tmp_path: Path) -> None:
    """The rule tests are not vacuous: with the threshold raised, the firing case must fail."""
    (tmp_path / "rules.yml").write_text(RULES.read_text().replace("> 0.3", "> 0.9"))
    shutil.copy(RULES.parent / "rules.test.yml", tmp_path / "rules.test.yml")
    result = run(tool("promtool"), "test", "rules", "rules.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_prometheusrule_manifest_carries_exactly_the_plain_rules() -> None:
    manifest = yaml.safe_load((RULES.parent / "prometheusrule.yaml").read_text())
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["spec"] == yaml.safe_load(RULES.read_text())


def test_alert_threshold_matches_the_functions_default() -> None:
    alert = next(
        rule
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if rule.get("alert") == "PodCPUImbalance"
    )
    threshold = float(re.search(r">\s*([0-9.]+)", alert["expr"]).group(1))
    default = Settings.model_fields["imbalance_threshold"].default
    assert threshold == default
    assert "stdvar" in (RULES.read_text())  # the same statistic as IMBALANCE_STATISTIC=variance
    assert alert["for"] == "10m"


@pytest.mark.parametrize("config", ["alertmanager.yml"])
def test_amtool_accepts_the_alertmanager_config(config: str) -> None:
    result = run(tool("amtool"), "check-config", config, cwd=INFRA / "alertmanager")
    assert result.returncode == 0, result.stdout + result.stderr


def test_alertmanager_route_sends_resolved_with_a_bearer_token_file() -> None:
    config = yaml.safe_load((INFRA / "alertmanager" / "alertmanager.yml").read_text())
    (route,) = config["route"]["routes"]
    receiver = next(r for r in config["receivers"] if r["name"] == route["receiver"])
    (webhook,) = receiver["webhook_configs"]
    assert webhook["send_resolved"] is True
    assert webhook["http_config"]["authorization"]["credentials_file"]
    assert route["group_by"] == ["namespace", "deployment"]
    # Re-notify only after the function's cooldown (15m) has passed.
    assert route["repeat_interval"] == "30m"


SELF_RULES = INFRA / "prometheus" / "rebalancer-rules.yml"


def test_promtool_accepts_the_rules_on_the_rebalancer_itself() -> None:
    result = run(tool("promtool"), "check", "rules", SELF_RULES.name, cwd=SELF_RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 5 rules found" in result.stdout


def test_rule_unit_tests_of_failures_evictions_and_not_effective_pass() -> None:
    result = run(tool("promtool"), "test", "rules", "rebalancer-rules.test.yml", cwd=RULES.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("  ) >= 3\n", "  ) >= 4\n"),  # the third failure would no longer alert
        ("increase1h > 10", "increase1h > 11"),  # nor the eleventh eviction
        ("    or rebalancer_executions_total\n", "\n"),  # nor a new series' first counts
    ],
    ids=["failures", "evictions", "new-series"],
)
def test_rebalancer_rule_unit_tests_can_fail(tmp_path: Path, before: str, after: str) -> None:
    text = SELF_RULES.read_text()
    assert before in text
    (tmp_path / SELF_RULES.name).write_text(text.replace(before, after))
    shutil.copy(RULES.parent / "rebalancer-rules.test.yml", tmp_path / "rebalancer-rules.test.yml")
    result = run(tool("promtool"), "test", "rules", "rebalancer-rules.test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr
