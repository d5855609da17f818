terraform {
  # 1.11: write-only arguments, so a secret value given to Terraform never lands in state.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.100: write-only secret_string_wo, EventBridge Scheduler, EKS access entries.
      version = ">= 5.100, < 7.0"
    }
  }
}
