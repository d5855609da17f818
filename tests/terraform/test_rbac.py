"""terraform/kubernetes-rbac. The rules live in a provider-less submodule that Terraform evaluates
here and that must equal infra/kubernetes/rbac.yaml (pods delete only in delete mode) plus, for
sweeps, infra/kubernetes/rbac-sweep.yaml (Deployments list). The kubernetes provider is not
available offline, so the rest of the module and the examples' rbac/ roots are checked
statically."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.terraform.tf import REPO, Terraform, dynamic, evaluate, module, one

RBAC_YAML = REPO / "infra" / "kubernetes" / "rbac.yaml"
SWEEP_YAML = REPO / "infra" / "kubernetes" / "rbac-sweep.yaml"
RBAC = module("kubernetes-rbac")


def yaml_rules(path: Path = RBAC_YAML) -> list[dict[str, Any]]:
    role = next(doc for doc in yaml.safe_load_all(path.read_text()) if doc["kind"] == "Role")
    rules: list[dict[str, Any]] = role["rules"]
    return rules


def normalised(rules: list[dict[str, Any]]) -> list[tuple[tuple[str, ...], ...]]:
    return sorted(
        (
            tuple(rule.get("apiGroups", rule.get("api_groups"))),
            tuple(rule["resources"]),
            tuple(sorted(rule["verbs"])),
        )
        for rule in rules
    )


def expected_rules(eviction_mode: str, sweep: bool) -> list[dict[str, Any]]:
    """The YAML's rules, with pods delete only in delete mode, and for sweeps the sweep YAML's
    verbs added to the rule of the same resource (the module keeps one Role)."""
    extra = {
        (tuple(rule["apiGroups"]), tuple(rule["resources"])): rule["verbs"]
        for rule in yaml_rules(SWEEP_YAML)
    }
    rules = []
    for rule in yaml_rules():
        verbs = list(rule["verbs"])
        if rule["resources"] == ["pods"] and eviction_mode != "delete":
            verbs.remove("delete")
        if sweep:
            verbs += extra.pop((tuple(rule["apiGroups"]), tuple(rule["resources"])), [])
        rules.append({**rule, "verbs": verbs})
    assert not (sweep and extra), f"sweep rules for resources rbac.yaml lacks: {extra}"
    return rules


def test_the_yaml_is_what_the_module_mirrors() -> None:
    by_resource = {tuple(rule["resources"]): rule["verbs"] for rule in yaml_rules()}
    assert by_resource[("pods",)] == ["list", "delete"]
    assert by_resource[("deployments",)] == ["get"]


def test_the_sweep_yaml_grants_deployments_list_and_nothing_else() -> None:
    assert yaml_rules(SWEEP_YAML) == [
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["list"]}
    ]
    documents = list(yaml.safe_load_all(SWEEP_YAML.read_text()))
    assert [doc["kind"] for doc in documents] == ["Role", "RoleBinding"]
    role, binding = documents
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": role["metadata"]["name"],
    }
    assert role["metadata"]["name"] != "pod-rebalancer"  # applied next to rbac.yaml's Role


@pytest.mark.parametrize("sweep", [False, True])
@pytest.mark.parametrize("eviction_mode", ["evict", "delete"])
def test_role_rules_are_those_of_rbac_yaml(
    evaluator: Terraform, eviction_mode: str, sweep: bool
) -> None:
    inputs = {"eviction_mode": eviction_mode, "sweep": sweep}
    outputs = evaluate(evaluator, RBAC.directory / "rules", inputs, ["rules"])
    assert isinstance(outputs, dict), outputs
    assert normalised(outputs["rules"]) == normalised(expected_rules(eviction_mode, sweep))
    verbs = {rule["resources"][0]: rule["verbs"] for rule in outputs["rules"]}
    assert ("delete" in verbs["pods"]) == (eviction_mode == "delete")
    assert ("list" in verbs["deployments"]) == sweep


def test_only_namespaced_roles_and_bindings_are_created() -> None:
    assert sorted(block.address for block in RBAC.resources()) == [
        "kubernetes_role_binding_v1.main",
        "kubernetes_role_v1.main",
    ]
    assert "cluster_role" not in RBAC.text()


def test_each_namespace_gets_the_rules_and_a_binding_to_the_given_subject() -> None:
    role = RBAC.resource("kubernetes_role_v1", "main")
    assert role["for_each"] == "${toset(var.namespaces)}"
    assert one(role["metadata"])["namespace"] == "${each.value}"
    (rule,) = dynamic(role, "rule")
    assert rule["for_each"] == "${module.rules.rules}"
    assert one(rule["content"]) == {
        "api_groups": "${rule.value.api_groups}",
        "resources": "${rule.value.resources}",
        "verbs": "${rule.value.verbs}",
    }
    rules_call = next(block.body for block in RBAC.blocks("module") if block.name == "rules")
    assert rules_call == {
        "source": "./rules",
        "eviction_mode": "${var.eviction_mode}",
        "sweep": "${var.sweep}",
    }

    binding = RBAC.resource("kubernetes_role_binding_v1", "main")
    assert binding["for_each"] == "${toset(var.namespaces)}"
    assert one(binding["role_ref"]) == {
        "api_group": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "${kubernetes_role_v1.main[each.value].metadata[0].name}",
    }
    assert one(binding["subject"]) == {
        "api_group": "rbac.authorization.k8s.io",
        "kind": "${var.subject.kind}",
        "name": "${var.subject.name}",
    }


def test_subjects_are_users_or_groups_and_namespaces_concrete() -> None:
    variables = RBAC.variables()
    subject_checks = " ".join(v["condition"] for v in variables["subject"]["validation"])
    assert 'contains(["User", "Group"], var.subject.kind)' in subject_checks
    assert 'startswith(var.subject.name, "system:")' in subject_checks
    (namespace_check,) = variables["namespaces"]["validation"]
    assert "regex" in namespace_check["condition"]


@pytest.mark.parametrize(
    ("root", "cloud_module", "subject_kind"),
    [("examples/gke", "gcp", "User"), ("examples/eks", "aws", "Group")],
)
def test_each_example_applies_the_module_from_its_own_rbac_root(
    root: str, cloud_module: str, subject_kind: str
) -> None:
    """The rbac/ root takes exactly the cloud root's rbac_inputs output as its variables."""
    rbac_root = module(f"{root}/rbac")
    inputs = module(cloud_module).outputs()["rbac_inputs"]["value"]
    assert set(rbac_root.variables()) == set(inputs)
    assert inputs["subject"]["kind"] == subject_kind
    call = next(block.body for block in rbac_root.blocks("module") if block.name == "rbac")
    assert call == {
        "source": "../../../kubernetes-rbac",
        "namespaces": "${var.namespaces}",
        "eviction_mode": "${var.eviction_mode}",
        "sweep": "${var.sweep}",
        "subject": "${var.subject}",
    }
    # The cloud-side root needs its cloud provider only.
    cloud_root = module(root)
    assert "kubernetes" not in cloud_root.text()


def test_no_cluster_credential_is_kept_in_rbac_state() -> None:
    """The kubernetes provider gets short-lived credentials that never enter state."""
    eks = module("examples/eks/rbac")
    assert any(block.type == "aws_eks_cluster_auth" for block in eks.blocks("ephemeral"))
    assert not any(block.type == "aws_eks_cluster_auth" for block in eks.blocks("data"))
    gke = module("examples/gke/rbac")
    assert "gke-gcloud-auth-plugin" in gke.text()
    assert "google_client_config" not in gke.text()
