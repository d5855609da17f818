provider "aws" {
  region = var.region

  # Only for an emulator (var.aws_endpoint); all null and false against real AWS.
  skip_credentials_validation = var.aws_endpoint != null
  skip_region_validation      = var.aws_endpoint != null
  skip_metadata_api_check     = var.aws_endpoint != null ? "true" : null

  endpoints {
    cloudwatch     = var.aws_endpoint
    cloudwatchlogs = var.aws_endpoint
    ec2            = var.aws_endpoint
    eks            = var.aws_endpoint
    iam            = var.aws_endpoint
    lambda         = var.aws_endpoint
    scheduler      = var.aws_endpoint
    secretsmanager = var.aws_endpoint
    sqs            = var.aws_endpoint
    sts            = var.aws_endpoint
  }
}

module "pod_rebalancer" {
  source = "../../aws"

  source_zip  = var.source_zip
  eks_cluster = { name = var.eks_cluster_name }

  settings = {
    prometheus_endpoint = var.prometheus_endpoint
    kube_namespace      = var.namespace
    deployment_name     = var.deployment
    dry_run             = var.dry_run
    allowed_namespaces  = var.allowed_namespaces
  }

  # A sweep schedule names no target (it covers every opted-in Deployment); the others run the
  # default target.
  schedules = {
    for key, job in var.schedules : key => merge(job, {
      namespace  = coalesce(job.sweep, false) ? null : var.namespace
      deployment = coalesce(job.sweep, false) ? null : var.deployment
    })
  }

  vpc                            = var.vpc
  webhook_token                  = var.webhook_token
  webhook_token_version          = var.webhook_token_version
  create_eks_access_entry        = var.create_eks_access_entry
  secret_recovery_window_in_days = var.secret_recovery_window_in_days
  monitoring                     = { alarm_actions = var.alarm_actions }
}
