terraform {
  # No provider: the rules are plain data, so the tests evaluate them offline against
  # infra/kubernetes/rbac.yaml.
  required_version = ">= 1.11"
}
