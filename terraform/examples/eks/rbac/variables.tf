# These are the keys of the parent root's rbac_inputs output:
#   terraform -chdir=.. output -json rbac_inputs > inputs.auto.tfvars.json

variable "namespaces" {
  description = "Namespaces the function may act in: a Role and a RoleBinding in each."
  type        = list(string)
}

variable "eviction_mode" {
  description = "The function's EVICTION_MODE (pods delete is granted only for delete)."
  type        = string
}

variable "sweep" {
  description = "Whether sweeps are used (Deployments list)."
  type        = bool
}

variable "subject" {
  description = "The Kubernetes group of the function's access entry."
  type = object({
    kind = string
    name = string
  })
}

variable "cluster" {
  description = "The EKS cluster: its name and region."
  type = object({
    name   = string
    region = string
  })
}
