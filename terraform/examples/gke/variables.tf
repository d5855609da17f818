variable "project_id" {
  description = "Project for the functions (and, by default, the cluster's project)."
  type        = string
}

variable "region" {
  description = "Region of the functions and scheduler jobs."
  type        = string
  default     = "europe-west1"
}

variable "cluster_name" {
  description = "Name of the GKE cluster whose Deployments the function rebalances."
  type        = string
}

variable "cluster_location" {
  description = "Location (region or zone) of the GKE cluster."
  type        = string
}

variable "source_zip" {
  description = "The function zip built by `make package`."
  type        = string
  default     = "../../../build/function.zip"
}

variable "prometheus_endpoint" {
  description = "PROMETHEUS_ENDPOINT: base URL of Prometheus or VictoriaMetrics (Google Managed Prometheus frontend, or one reachable through the network variable)."
  type        = string
}

variable "namespace" {
  description = "KUBE_NAMESPACE: the default target namespace (the only one the function may act in unless allowed_namespaces says otherwise)."
  type        = string
}

variable "deployment" {
  description = "DEPLOYMENT_NAME: the default target Deployment."
  type        = string
}

variable "allowed_namespaces" {
  description = "ALLOWED_NAMESPACES: the namespaces the function may act in and a sweep covers (each gets a Role); empty: namespace alone."
  type        = list(string)
  default     = []
}

variable "dry_run" {
  description = "DRY_RUN: true reports what would be done and evicts nothing. Start with true."
  type        = bool
  default     = true
}

variable "schedules" {
  description = "Scheduled runs, by name: of the default target, or with sweep = true of every Deployment annotated pod-rebalancer.io/enabled: \"true\" in allowed_namespaces (see the gcp module's schedules)."
  type = map(object({
    schedule  = string
    time_zone = optional(string, "Etc/UTC")
    dry_run   = optional(bool)
    sweep     = optional(bool)
  }))
  default = {
    every-30m = { schedule = "*/30 * * * *" }
  }
}

variable "allow_public_invocation" {
  description = "Let an Alertmanager outside Google Cloud reach the HTTP function (allUsers run.invoker; the bearer token is still required)."
  type        = bool
  default     = true
}

variable "audit" {
  description = "Create the audit topic \"<name>-audit\" (AUDIT_TOPIC)."
  type        = bool
  default     = true
}
