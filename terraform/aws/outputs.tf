output "function_url" {
  description = "URL of the function (Alertmanager webhooks, manual calls)."
  value       = aws_lambda_function_url.main.function_url
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = aws_lambda_function.main.function_name
}

output "function_arn" {
  description = "ARN of the Lambda function."
  value       = aws_lambda_function.main.arn
}

output "role_arn" {
  description = "The function's identity: the principal of the EKS access entry."
  value       = aws_iam_role.main.arn
}

output "kubernetes_group" {
  description = "The Kubernetes group the role is mapped to: the Group to bind in Kubernetes RBAC."
  value       = var.kubernetes_group
}

output "webhook_token_secret_arn" {
  description = "The token's secret: put its value with `aws secretsmanager put-secret-value --secret-id ARN --secret-string ...`."
  value       = aws_secretsmanager_secret.webhook_token.arn
}

output "dead_letter_queue_url" {
  description = "Queue of failed scheduled runs."
  value       = aws_sqs_queue.dead_letter.url
}

output "environment" {
  description = "The function's environment variables (no secret values)."
  value       = local.environment
}

output "alertmanager_receiver" {
  description = "An Alertmanager receiver for the function: paste under receivers."
  value       = <<-EOT
    - name: pod-rebalancer
      webhook_configs:
        - url: ${aws_lambda_function_url.main.function_url}
          send_resolved: true
          max_alerts: 0
          http_config:
            authorization:
              type: Bearer
              credentials_file: ${var.alertmanager_credentials_file}
  EOT
}

output "rbac_inputs" {
  description = "Variables of the kubernetes-rbac root: `terraform output -json rbac_inputs > rbac/inputs.auto.tfvars.json`."
  value = {
    namespaces    = module.settings.namespaces
    eviction_mode = module.settings.eviction_mode
    sweep         = var.enable_sweep || anytrue([for job in var.schedules : coalesce(job.sweep, false)])
    subject       = { kind = "Group", name = var.kubernetes_group }
    cluster       = { name = var.eks_cluster.name, region = local.region }
  }
}
