terraform {
  # 1.11: write-only arguments, so a secret value given to Terraform never lands in state.
  required_version = ">= 1.11"

  required_providers {
    google = {
      source = "hashicorp/google"
      # 7.21: Direct VPC egress on google_cloudfunctions2_function.
      version = ">= 7.21, < 8.0"
    }
    random = {
      source = "hashicorp/random"
      # 3.7: ephemeral random_password, a generated token that never lands in state.
      version = ">= 3.7, < 4.0"
    }
  }
}
