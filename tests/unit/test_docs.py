"""The README documents every stable string an SRE may match on, and every setting."""

from __future__ import annotations

import re
from pathlib import Path

from pod_rebalancer.config import Settings
from pod_rebalancer.core.model import PodSkip, Reason
from pod_rebalancer.report import DEPENDENCY_UNAVAILABLE

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end]


def test_every_reason_code_is_in_the_reason_codes_table() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", section("Reason codes"), re.M))
    assert documented == {r.value for r in Reason} | {DEPENDENCY_UNAVAILABLE}


def test_every_ignored_pod_reason_is_documented() -> None:
    contract = section("HTTP contract")
    assert all(f"`{skip.value}`" in contract for skip in PodSkip)


def test_every_setting_is_in_the_configuration_table() -> None:
    table = section("Configuration")
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    assert Settings.environment_names() <= documented
