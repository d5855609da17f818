output "function_url" {
  description = "Point Alertmanager and manual calls here."
  value       = module.pod_rebalancer.function_url
}

output "function_name" {
  description = "Name of the Lambda function."
  value       = module.pod_rebalancer.function_name
}

output "role_arn" {
  description = "The function's IAM role (the access entry's principal)."
  value       = module.pod_rebalancer.role_arn
}

output "webhook_token_secret_arn" {
  description = "Secrets Manager secret holding the webhook token."
  value       = module.pod_rebalancer.webhook_token_secret_arn
}

output "dead_letter_queue_url" {
  description = "Failed scheduled runs land here."
  value       = module.pod_rebalancer.dead_letter_queue_url
}

output "alertmanager_receiver" {
  description = "Alertmanager receiver snippet."
  value       = module.pod_rebalancer.alertmanager_receiver
}

output "rbac_inputs" {
  description = "Input of the rbac/ root: terraform output -json rbac_inputs > rbac/inputs.auto.tfvars.json"
  value       = module.pod_rebalancer.rbac_inputs
}
