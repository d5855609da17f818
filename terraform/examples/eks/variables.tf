variable "region" {
  description = "AWS region of the EKS cluster and the function."
  type        = string
  default     = "eu-west-1"
}

variable "eks_cluster_name" {
  description = "Name of the EKS cluster whose Deployments the function rebalances."
  type        = string
}

variable "source_zip" {
  description = "The Lambda zip built by `make package-lambda`."
  type        = string
  default     = "../../../build/lambda.zip"
}

variable "prometheus_endpoint" {
  description = "PROMETHEUS_ENDPOINT: base URL of Prometheus or VictoriaMetrics, reachable from the function."
  type        = string
}

variable "namespace" {
  description = "KUBE_NAMESPACE: the default target namespace (the only one the function may act in unless allowed_namespaces says otherwise)."
  type        = string
}

variable "deployment" {
  description = "DEPLOYMENT_NAME: the default target Deployment."
  type        = string
}

variable "allowed_namespaces" {
  description = "ALLOWED_NAMESPACES: the namespaces the function may act in and a sweep covers (each gets a Role); empty: namespace alone."
  type        = list(string)
  default     = []
}

variable "dry_run" {
  description = "DRY_RUN: true reports what would be done and evicts nothing. Start with true."
  type        = bool
  default     = true
}

variable "schedules" {
  description = "Scheduled runs, by name: of the default target, or with sweep = true of every Deployment annotated pod-rebalancer.io/enabled: \"true\" in allowed_namespaces (see the aws module's schedules)."
  type = map(object({
    schedule  = string
    time_zone = optional(string, "Etc/UTC")
    dry_run   = optional(bool)
    sweep     = optional(bool)
  }))
  default = {
    every-30m = { schedule = "rate(30 minutes)" }
  }
}

variable "vpc" {
  description = "Subnets and security groups for the function, when the EKS endpoint or Prometheus is private. null: no VPC."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null
}

variable "create_eks_access_entry" {
  description = "Create the EKS access entry for the function's role (false: map it in aws-auth yourself)."
  type        = bool
  default     = true
}

variable "webhook_token" {
  description = "Your own webhook bearer token (TF_VAR_webhook_token); null lets Secrets Manager draw one. Ephemeral: never stored in plan or state."
  type        = string
  default     = null
  ephemeral   = true
  sensitive   = true
}

variable "webhook_token_version" {
  description = "Bump to rotate the token; null: Terraform writes none, put it with `aws secretsmanager put-secret-value`."
  type        = number
  default     = 1
}

variable "secret_recovery_window_in_days" {
  description = "Days a destroyed token secret stays restorable (0: deleted at once)."
  type        = number
  default     = 7
}

variable "alarm_actions" {
  description = "ARNs the function's alarms notify (an SNS topic): runs failing, too many evictions, not_effective."
  type        = list(string)
  default     = []
}

variable "aws_endpoint" {
  description = "Send every AWS API call to this URL instead of AWS (a local emulator such as moto_server, for tests). Leave null."
  type        = string
  default     = null
}
