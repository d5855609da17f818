output "roles" {
  description = "namespace/name of each Role created."
  value       = [for role in kubernetes_role_v1.main : "${role.metadata[0].namespace}/${role.metadata[0].name}"]
}

output "rules" {
  description = "The rules every Role carries."
  value       = module.rules.rules
}
