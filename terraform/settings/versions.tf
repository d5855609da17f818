terraform {
  # No provider: this module only maps typed settings to environment variables, so the tests
  # can evaluate it with Terraform itself, offline.
  required_version = ">= 1.11"
}
