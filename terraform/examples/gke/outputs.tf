output "function_url" {
  description = "Point Alertmanager and manual calls here."
  value       = module.pod_rebalancer.function_url
}

output "service_account_email" {
  description = "The function's identity (bound in Kubernetes RBAC by rbac/)."
  value       = module.pod_rebalancer.service_account_email
}

output "scheduler_topic" {
  description = "Topic the scheduler jobs publish to."
  value       = module.pod_rebalancer.scheduler_topic
}

output "webhook_token_secret" {
  description = "Secret Manager secret holding the webhook token."
  value       = module.pod_rebalancer.secrets["webhook_token"]
}

output "alertmanager_receiver" {
  description = "Alertmanager receiver snippet."
  value       = module.pod_rebalancer.alertmanager_receiver
}

output "rbac_inputs" {
  description = "Input of the rbac/ root: terraform output -json rbac_inputs > rbac/inputs.auto.tfvars.json"
  value       = module.pod_rebalancer.rbac_inputs
}
