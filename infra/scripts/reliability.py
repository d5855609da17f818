"""Prints `make reliability`'s summary table from the run's JUnit XML and the suites' reports.

Each suite leaves a JSON report (tests/reliability.py); pytest's JUnit XML says how many tests ran
and passed. Exit status 1 if any test failed or any figure that must be zero is not.

Run: python infra/scripts/reliability.py DIR   (DIR holds junit.xml and the suites' *.json)
"""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path
from typing import Any

# suite → (title, the test files whose tests it counts)
SUITES = {
    "fault_matrix": ("fault matrix", ("test_fault_matrix",)),
    "fuzz": ("hostile input", ("test_fuzz_",)),
    "secrets": ("secrets", ("test_secrets",)),
    "load": ("load", ("test_load",)),
}
MUST_BE_ZERO = (
    "pods_removed_where_forbidden",
    "server_errors_on_bad_input",
    "cluster_writes",
    "leaks",
    "server_errors",
)


def test_counts(junit: Path) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {suite: Counter() for suite in SUITES}
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314  (pytest's own report)
        where = f"{case.get('classname', '')}.{case.get('name', '')}"
        suite = next((s for s, (_, files) in SUITES.items() if any(f in where for f in files)), "")
        if not suite:
            continue
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        counts[suite][outcome] += 1
    return counts


def figure(report: dict[str, Any], *keys: str) -> str:
    for key in keys:
        if key in report:
            return str(report[key])
    return "—"


def main() -> int:
    directory = Path(sys.argv[1] if len(sys.argv) > 1 else "build/reliability")
    counts = test_counts(directory / "junit.xml")
    reports = {
        suite: json.loads(path.read_text())
        for suite in SUITES
        if (path := directory / f"{suite}.json").exists()
    }
    header = (
        "| suite | tests run | passed | cases / examples | pods removed where forbidden "
        "| 5xx on bad input | leaks | p50 / p99 |"
    )
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    bad = False
    for suite, (title, _) in SUITES.items():
        report = reports.get(suite, {})
        count = counts[suite]
        run = sum(count.values())
        latency = "—"
        if "p50_ms" in report:
            latency = f"{report['p50_ms']} ms / {report['p99_ms']} ms"
        print(
            f"| {title} | {run} | {count['passed']} "
            f"| {figure(report, 'cases', 'outputs_scanned', 'deliveries')} "
            f"| {figure(report, 'pods_removed_where_forbidden', 'cluster_writes')} "
            f"| {figure(report, 'server_errors_on_bad_input', 'server_errors')} "
            f"| {figure(report, 'leaks')} | {latency} |"
        )
        bad = bad or count["failed"] > 0 or run == 0
        bad = bad or any(report.get(key, 0) for key in MUST_BE_ZERO)
    rows = reports.get("fault_matrix", {}).get("rows") or []
    if rows:
        print("\nfault matrix:\n")
        keys = list(rows[0])
        print("| " + " | ".join(keys) + " |")
        print("|" + "---|" * len(keys))
        for row in rows:
            print("| " + " | ".join(str(row.get(k, "")) for k in keys) + " |")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
