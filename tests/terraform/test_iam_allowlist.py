"""No IAM grant broader than listed: every google_*_iam_* resource and every AWS policy statement in
terraform/ (modules and examples) is compared with the explicit allow-list in allowlist.py. A new
grant fails here until it is added there, with its reason. test_aws.py checks the applied policies
against the same AWS list, with the ARNs Terraform rendered."""

from __future__ import annotations

import re
from typing import Any

from tests.terraform.allowlist import (
    ASSUME_ROLE,
    AWS_IAM_RESOURCES,
    AWS_STATEMENTS,
    CONDITIONAL,
    FORBIDDEN_GCP_ROLES,
    GCP_GRANTS,
    STAR_RESOURCES,
)
from tests.terraform.tf import all_directories, dynamic, module


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


def aws_statements() -> dict[tuple[str, str], dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for directory in all_directories():
        for block in directory.blocks("data"):
            if block.type != "aws_iam_policy_document" or block.name in ASSUME_ROLE:
                continue
            statements = [(s, None) for s in block.body.get("statement", [])]
            for entry in dynamic(block.body, "statement"):
                statements += [(content, entry["for_each"]) for content in entry["content"]]
            for statement, condition in statements:
                key = (block.name, statement["sid"])
                assert key not in found, f"{key} declared twice"
                found[key] = {**statement, "for_each": condition}
    return found


def test_every_aws_policy_statement_is_on_the_allow_list() -> None:
    found = aws_statements()
    assert set(found) == set(AWS_STATEMENTS)
    for key, expected in AWS_STATEMENTS.items():
        statement = found[key]
        assert statement["actions"] == expected["actions"], key
        assert statement["resources"] == expected["resources"], key
        assert set(statement) <= {"sid", "actions", "resources", "for_each", "__comments__"}, key
        assert statement["for_each"] == CONDITIONAL.get(key), key
        for action in statement["actions"]:
            assert "*" not in action, (key, action)
        if "*" in statement["resources"]:
            assert key in STAR_RESOURCES, f"{key}: '*' resource without a listed reason"


def test_roles_are_assumed_only_by_their_service() -> None:
    for directory in all_directories():
        for block in directory.blocks("data"):
            if block.type == "aws_iam_policy_document" and block.name in ASSUME_ROLE:
                (statement,) = block.body["statement"]
                assert statement["actions"] == ["sts:AssumeRole"]
                principals = statement["principals"][0]
                assert principals == {"type": "Service", "identifiers": [ASSUME_ROLE[block.name]]}


def test_no_other_aws_iam_resource_managed_policy_or_resource_policy() -> None:
    found = {
        block.address
        for directory in all_directories()
        for block in directory.resources()
        if block.type.startswith("aws_iam_")
    }
    assert found == AWS_IAM_RESOURCES
    aws = module("aws")
    for name in ("main", "scheduler"):
        policy = aws.resource("aws_iam_role_policy", name)["policy"]
        assert policy == f"${{data.aws_iam_policy_document.{name}.json}}"
    # The function URL's public statement is the provider's own (see test_aws.py); no other
    # resource-based permission, and no EKS managed access policy.
    for directory in all_directories():
        types = {block.type for block in directory.resources()}
        assert "aws_lambda_permission" not in types
        assert "aws_eks_access_policy_association" not in types
