output "roles" {
  description = "The Roles created, as namespace/name."
  value       = module.rbac.roles
}
