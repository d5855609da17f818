variable "namespaces" {
  description = "The namespaces the function may act in (its ALLOWED_NAMESPACES, or KUBE_NAMESPACE): a Role and a RoleBinding in each."
  type        = list(string)

  validation {
    condition = length(var.namespaces) > 0 && alltrue([
      for namespace in var.namespaces : can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", namespace))
    ])
    error_message = "namespaces: at least one, each a concrete namespace name (no wildcard: that would need a ClusterRole)."
  }
}

variable "eviction_mode" {
  description = "The function's EVICTION_MODE: pods delete is granted only for delete."
  type        = string
  default     = "evict"

  validation {
    condition     = contains(["evict", "delete"], var.eviction_mode)
    error_message = "eviction_mode is evict or delete."
  }
}

variable "sweep" {
  description = "Grant Deployments list, which {\"sweep\": true} runs need (DESIGN.md, sweep contract)."
  type        = bool
  default     = false
}

variable "subject" {
  description = <<-EOT
    Who the Role is bound to. GKE: kind User, name the function's Google service account email.
    EKS: kind Group, name the Kubernetes group of the Lambda role's access entry.
  EOT
  type = object({
    kind = string
    name = string
  })

  validation {
    condition     = contains(["User", "Group"], var.subject.kind)
    error_message = "subject.kind is User or Group."
  }
  validation {
    condition     = length(trimspace(var.subject.name)) > 0 && !startswith(var.subject.name, "system:")
    error_message = "subject.name must be set and must not be a built-in system: user or group."
  }
}

variable "name" {
  description = "Name of the Role and RoleBinding in each namespace."
  type        = string
  default     = "pod-rebalancer"
}

variable "labels" {
  description = "Extra labels on the Role and RoleBinding."
  type        = map(string)
  default     = {}
}
