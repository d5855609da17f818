"""No IAM grant broader than listed: every google_*_iam_* resource in terraform/ (modules and
examples) is compared with the explicit allow-list in allowlist.py. A new grant fails here until it
is added there, with its reason."""

from __future__ import annotations

import re
from typing import Any

from tests.terraform.allowlist import FORBIDDEN_GCP_ROLES, GCP_GRANTS
from tests.terraform.tf import all_directories


def gcp_grants() -> dict[tuple[str, str], dict[str, Any]]:
    found = {}
    for directory in all_directories():
        for block in directory.resources("google_"):
            if re.search(r"_iam_", block.type):
                key = (block.type, block.name)
                assert key not in found, f"{key} declared twice"
                found[key] = block.body
    return found


def test_every_google_iam_grant_is_on_the_allow_list() -> None:
    found = gcp_grants()
    assert set(found) == set(GCP_GRANTS)
    for key, expected in GCP_GRANTS.items():
        body = found[key]
        assert {field: body.get(field) for field in expected} == expected, key
        unexpected = set(body) - set(expected) - {"project", "location", "__comments__"}
        assert not unexpected, f"{key}: {unexpected}"


def test_no_authoritative_or_broad_google_grant_anywhere() -> None:
    for directory in all_directories():
        for block in directory.resources("google_"):
            assert not block.type.endswith(("_iam_binding", "_iam_policy")), block.address
        text = directory.text()
        for role in FORBIDDEN_GCP_ROLES:
            assert f'"{role}"' not in text, (directory.directory, role)
    project_roles = {
        body["role"]
        for (type_, _), body in gcp_grants().items()
        if type_ == "google_project_iam_member"
    }
    assert project_roles == {"roles/container.clusterViewer"}
