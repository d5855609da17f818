output "rules" {
  description = "The Role's rules: api_groups, resources and verbs of each."
  value       = local.rules
}
