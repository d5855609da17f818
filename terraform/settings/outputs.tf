output "environment" {
  description = "The settings as environment variables; unset settings are absent."
  value       = { for name, value in local.all : name => value if value != null }
}

output "namespaces" {
  description = "The namespaces the function may act in (allowed_namespaces, or kube_namespace alone): one Role each."
  value       = length(local.s.allowed_namespaces) > 0 ? local.s.allowed_namespaces : [local.s.kube_namespace]
}

output "eviction_mode" {
  description = "evict or delete: decides whether the Role may delete pods."
  value       = local.s.eviction_mode
}
