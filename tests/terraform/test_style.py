"""The shape STYLE.md asks of Terraform: formatted, every variable typed and described, one file
per concern, the primary resource named main, and a README beside every module and example."""

from __future__ import annotations

import re

import pytest

from tests.terraform.tf import (
    EXAMPLES,
    MODULES,
    TERRAFORM_DIR,
    Module,
    Terraform,
    all_directories,
    module,
)

LAYOUT = {
    "gcp": {"versions.tf", "variables.tf", "main.tf", "triggers.tf", "iam.tf", "outputs.tf"},
    "aws": {"versions.tf", "variables.tf", "main.tf", "triggers.tf", "iam.tf", "outputs.tf"},
    "kubernetes-rbac": {"versions.tf", "variables.tf", "main.tf", "outputs.tf"},
}
PRIMARY = {
    "gcp": "google_cloudfunctions2_function",
    "aws": "aws_lambda_function",
    "kubernetes-rbac": "kubernetes_role_v1",
}


def test_terraform_fmt_check(terraform_bin: str, offline_env: dict[str, str]) -> None:
    tf = Terraform(terraform_bin, TERRAFORM_DIR.parent, offline_env)
    result = tf.run("fmt", "-check", "-recursive", "-diff", "-no-color", "terraform", check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("directory", all_directories(), ids=[*MODULES, *EXAMPLES])
def test_every_variable_is_typed_and_described_and_every_output_described(
    directory: Module,
) -> None:
    for name, body in directory.variables().items():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", name), name
        assert body.get("type"), f"{directory.directory.name}: variable {name} has no type"
        assert body.get("description"), f"{directory.directory.name}: variable {name} undescribed"
    for name, body in directory.outputs().items():
        assert body.get("description"), f"{directory.directory.name}: output {name} undescribed"
    for block in directory.resources():
        assert re.fullmatch(r"[a-z][a-z0-9_]*", block.name), block.address


@pytest.mark.parametrize("name", sorted(LAYOUT))
def test_one_file_per_concern_and_the_primary_resource_is_main(name: str) -> None:
    found = {path.name for path in module(name).files}
    assert found >= LAYOUT[name]
    assert (PRIMARY[name], "main") in {(b.type, b.name) for b in module(name).resources()}


# The rules submodule and the rbac/ roots are documented by their parents' READMEs.
@pytest.mark.parametrize(
    "name", ["settings", "gcp", "aws", "kubernetes-rbac", "examples/gke", "examples/eks"]
)
def test_every_module_and_example_has_a_readme(name: str) -> None:
    assert (TERRAFORM_DIR / name / "README.md").is_file()


def test_no_absolute_path_but_the_functions_own_in_the_terraform_sources() -> None:
    """Paths come from variables; the only absolute ones are inside the function's runtime."""
    allowed = ("/etc/secrets/", "/etc/alertmanager/", "/aws/lambda/")
    for directory in all_directories():
        for path in re.findall(r'"(/[^"\s]*)', directory.text()):
            assert path.startswith(allowed), (directory.directory, path)
