output "function_url" {
  description = "URL of the HTTP function (Alertmanager webhooks, manual calls)."
  value       = google_cloudfunctions2_function.main["http"].service_config[0].uri
}

output "function_names" {
  description = "Names of the HTTP and the Pub/Sub-triggered function."
  value       = { for key, function in google_cloudfunctions2_function.main : key => function.name }
}

output "scheduler_topic" {
  description = "The topic the scheduler jobs publish to (publish a manual body to it for a scheduled-style run)."
  value       = google_pubsub_topic.scheduler.id
}

output "service_account_email" {
  description = "The function's identity: the User to bind in Kubernetes RBAC."
  value       = google_service_account.main.email
}

output "audit_topic" {
  description = "AUDIT_TOPIC, or null."
  value       = local.audit_topic_id
}

output "secrets" {
  description = "Secret Manager secret ids, by purpose: add versions with `gcloud secrets versions add ID --data-file=-`."
  value       = { for key, secret in google_secret_manager_secret.mounted : key => secret.secret_id }
}

output "environment" {
  description = "The functions' environment variables (no secret values: only the paths of mounted secrets)."
  value       = local.environment
}

output "alertmanager_receiver" {
  description = "An Alertmanager receiver for the function: paste under receivers."
  value       = <<-EOT
    - name: pod-rebalancer
      webhook_configs:
        - url: ${google_cloudfunctions2_function.main["http"].service_config[0].uri}
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
    subject       = { kind = "User", name = google_service_account.main.email }
    cluster       = { project = local.cluster_project, location = var.cluster.location, name = var.cluster.name }
  }
}
