variable "project_id" {
  description = "Project that hosts the functions, their service accounts, topics, secrets and scheduler jobs."
  type        = string
}

variable "region" {
  description = "Region of the functions, the scheduler jobs and the Eventarc trigger."
  type        = string
}

variable "name" {
  description = "Base name: the HTTP function, \"<name>-scheduled\" for the Pub/Sub one, and the prefix of every other resource."
  type        = string
  default     = "pod-rebalancer"

  validation {
    # 22 leaves room for the "-trigger" suffix of a service account id (6 to 30 characters).
    condition     = can(regex("^[a-z][-a-z0-9]{4,20}[a-z0-9]$", var.name))
    error_message = "name: 6 to 22 characters, lower case letters, digits and hyphens, starting with a letter."
  }
}

variable "source_zip" {
  description = "Path of the function zip built by `make package` (build/function.zip). Its md5 names the bucket object, so a code change redeploys."
  type        = string

  validation {
    condition     = can(filemd5(var.source_zip))
    error_message = "source_zip: no such file; run `make package` first."
  }
}

variable "source_bucket" {
  description = "Existing bucket for the source zip; null creates \"<project_id>-<name>-source\"."
  type        = string
  default     = null
}

variable "runtime" {
  description = "Cloud Functions runtime."
  type        = string
  default     = "python311"
}

variable "available_memory" {
  description = "Memory of each instance: the Kubernetes client and numpy need more than the 256M default for large Deployments."
  type        = string
  default     = "512Mi"
}

variable "available_cpu" {
  description = "CPUs of each instance; null lets the platform derive it from the memory."
  type        = string
  default     = null
}

variable "timeout_seconds" {
  description = "Execution timeout of both functions (at most 540 for the event-driven one): queries, evictions and the Event."
  type        = number
  default     = 120

  validation {
    condition     = var.timeout_seconds >= 10 && var.timeout_seconds <= 540
    error_message = "timeout_seconds is 10..540."
  }
}

variable "max_instance_count" {
  description = "Upper bound on instances of each function. Concurrent runs are safe (the Lease lets one act) but pointless."
  type        = number
  default     = 3
}

variable "cluster" {
  description = <<-EOT
    The GKE cluster (GKE_CLUSTER=projects/P/locations/L/clusters/C, KUBE_AUTH=gke). project defaults
    to project_id. endpoint and ca_certificate (base64 PEM) skip the lookup through the GKE API
    (GKE_ENDPOINT, GKE_CA_CERT); api_endpoint overrides where it is looked up (GKE_API_ENDPOINT).
  EOT
  type = object({
    name           = string
    location       = string
    project        = optional(string)
    endpoint       = optional(string)
    ca_certificate = optional(string)
    api_endpoint   = optional(string)
  })

  validation {
    condition     = (var.cluster.endpoint == null) == (var.cluster.ca_certificate == null)
    error_message = "cluster.endpoint and cluster.ca_certificate go together."
  }
}

variable "settings" {
  description = <<-EOT
    The function's configuration: one field per environment variable of DESIGN.md's table, named
    in lower case (prometheus_endpoint is PROMETHEUS_ENDPOINT). Defaults are DESIGN.md's; a field
    left null is not set at all, so the function applies its own default (container_name falls back
    to deployment_name, min_pod_age to twice the window, allowed_namespaces to kube_namespace).
    Secrets are never here: the cloud modules mount or reference them from a secret manager.
  EOT
  type = object({
    prometheus_endpoint     = string
    kube_namespace          = string
    deployment_name         = string
    prometheus_timeout      = optional(string, "30s")
    container_name          = optional(string)
    kube_label_selector     = optional(string)
    metrics_time_window     = optional(string, "5m")
    imbalance_statistic     = optional(string, "variance")
    cpu_variance_threshold  = optional(number, 0.3)
    min_pods_required       = optional(number, 3)
    max_pods_to_delete      = optional(number, 2)
    min_improvement_percent = optional(number, 10)
    min_pod_age             = optional(string)
    cooldown                = optional(string, "15m")
    eviction_mode           = optional(string, "evict")
    dry_run                 = optional(bool, true)
    allowed_namespaces      = optional(list(string), [])
    allowed_deployments     = optional(list(string), ["*"])
    exclude_annotation      = optional(string, "pod-rebalancer.io/exclude")
    log_level               = optional(string, "info")

    # Body signatures (the secret itself is mounted by the cloud module).
    webhook_signature_header           = optional(string)
    webhook_signature_timestamp_header = optional(string)

    # Sweeps and every run with several targets; null: the function's defaults (4, and 10 or
    # max_pods_to_delete if that is more).
    sweep_concurrency = optional(number)
    max_pods_per_run  = optional(number)

    # DESIGN.md's later contracts (closed loop, Kafka-aware signals). Null leaves the function's
    # default, so a function that does not read them yet is not affected.
    max_ineffective_rebalances = optional(number)
    ineffective_backoff        = optional(string)
    imbalance_signal           = optional(string)
    score_weights              = optional(string)
    lag_query                  = optional(string)
    memory_query               = optional(string)
    imbalance_policy           = optional(string)
    tolerance_multiplier       = optional(number)

    # A Pushgateway for the function's own metrics (README: Watching the rebalancer).
    pushgateway_url = optional(string)
  })

  validation {
    condition     = can(regex("^https?://[^\\s/?#]+(/[^\\s?#]*)?$", var.settings.prometheus_endpoint))
    error_message = "settings.prometheus_endpoint must be an http(s) URL."
  }
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", var.settings.kube_namespace))
    error_message = "settings.kube_namespace must be a DNS-1123 label."
  }
  validation {
    condition     = can(regex("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", var.settings.deployment_name))
    error_message = "settings.deployment_name must be a DNS-1123 subdomain."
  }
  validation {
    condition = alltrue([
      for value in [
        var.settings.prometheus_timeout, var.settings.metrics_time_window, var.settings.cooldown,
        var.settings.min_pod_age, var.settings.ineffective_backoff,
      ] : value == null || can(regex("^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$", value))
    ])
    error_message = "Durations (prometheus_timeout, metrics_time_window, cooldown, min_pod_age, ineffective_backoff) look like 500ms, 30s, 5m, 1h or 1h30m."
  }
  validation {
    condition     = contains(["variance", "stddev", "cv"], var.settings.imbalance_statistic)
    error_message = "settings.imbalance_statistic is one of variance, stddev, cv."
  }
  validation {
    condition     = contains(["evict", "delete"], var.settings.eviction_mode)
    error_message = "settings.eviction_mode is evict or delete."
  }
  validation {
    condition     = contains(["debug", "info", "warning", "error"], var.settings.log_level)
    error_message = "settings.log_level is one of debug, info, warning, error."
  }
  validation {
    condition = (
      var.settings.cpu_variance_threshold >= 0 && var.settings.min_pods_required >= 1 &&
      var.settings.max_pods_to_delete >= 1 && var.settings.max_pods_to_delete <= 100 &&
      var.settings.min_improvement_percent >= 0 && var.settings.min_improvement_percent <= 100
    )
    error_message = "cpu_variance_threshold >= 0, min_pods_required >= 1, max_pods_to_delete in 1..100, min_improvement_percent in 0..100."
  }
  validation {
    # coalesce: a null (the function's default) is never compared.
    condition = (
      floor(coalesce(var.settings.sweep_concurrency, 4)) == coalesce(var.settings.sweep_concurrency, 4) &&
      coalesce(var.settings.sweep_concurrency, 4) >= 1 && coalesce(var.settings.sweep_concurrency, 4) <= 32 &&
      floor(coalesce(var.settings.max_pods_per_run, 1000)) == coalesce(var.settings.max_pods_per_run, 1000) &&
      coalesce(var.settings.max_pods_per_run, 1000) >= var.settings.max_pods_to_delete &&
      coalesce(var.settings.max_pods_per_run, 1000) <= 1000
    )
    error_message = "settings.sweep_concurrency is a whole number in 1..32; settings.max_pods_per_run a whole number from max_pods_to_delete to 1000."
  }
  validation {
    # A namespaced Role is created in each allowed namespace; a wildcard would need a ClusterRole,
    # which the RBAC module refuses by design.
    condition = alltrue([
      for namespace in var.settings.allowed_namespaces :
      can(regex("^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", namespace))
    ])
    error_message = "settings.allowed_namespaces must be concrete namespace names (no wildcard): each gets its own Role."
  }
  validation {
    condition = alltrue([
      for pattern in var.settings.allowed_deployments : can(regex("^[a-z0-9.*-]+$", pattern))
    ])
    error_message = "settings.allowed_deployments are name patterns (a-z, 0-9, '-', '.', '*')."
  }
  validation {
    condition = (
      (var.settings.imbalance_signal == null || contains(["cpu", "score"], coalesce(var.settings.imbalance_signal, "cpu"))) &&
      (var.settings.imbalance_policy == null || contains(["variance", "hpa_target"], coalesce(var.settings.imbalance_policy, "variance")))
    )
    error_message = "settings.imbalance_signal is cpu or score; settings.imbalance_policy is variance or hpa_target."
  }
  validation {
    condition = (
      coalesce(var.settings.tolerance_multiplier, 1.5) > 0 && coalesce(var.settings.tolerance_multiplier, 1.5) <= 100
    )
    error_message = "settings.tolerance_multiplier is more than 0 and at most 100."
  }
}

variable "schedules" {
  description = <<-EOT
    One Cloud Scheduler job per entry, publishing the manual request body
    {"namespace", "deployment", "dry_run", "sweep"} (unset fields left out: the function's defaults)
    to the scheduler topic, which triggers the Pub/Sub function.
  EOT
  type = map(object({
    schedule   = string
    time_zone  = optional(string, "Etc/UTC")
    namespace  = optional(string)
    deployment = optional(string)
    dry_run    = optional(bool)
    sweep      = optional(bool)
    paused     = optional(bool, false)
  }))
  default = {}

  validation {
    condition     = alltrue([for key in keys(var.schedules) : can(regex("^[a-z0-9][-a-z0-9]{0,40}$", key))])
    error_message = "schedules keys are short lower-case names (they name the jobs)."
  }
}

variable "enable_sweep" {
  description = "Whether {\"sweep\": true} calls are used (any schedule with sweep = true counts too): the Roles then also allow listing Deployments."
  type        = bool
  default     = false
}

variable "audit_topic" {
  description = <<-EOT
    Optional audit trail (AUDIT_TOPIC). null: none. { name } creates the topic "name"; with
    create = false the existing topic "name" (in project, default project_id) is used. Either way
    the runtime service account may publish to that topic only.
  EOT
  type = object({
    name    = string
    create  = optional(bool, true)
    project = optional(string)
  })
  default = null
}

variable "secrets" {
  description = <<-EOT
    Optional secrets besides the webhook token (always created). Each is a Secret Manager secret
    mounted as a file (version latest), its *_FILE variable pointing at it:
    prometheus_bearer_token (PROMETHEUS_BEARER_TOKEN_FILE), webhook_hmac_secret (WEBHOOK_HMAC_SECRET_FILE).
  EOT
  type = object({
    prometheus_bearer_token = optional(bool, false)
    webhook_hmac_secret     = optional(bool, false)
  })
  default = {}
}

variable "secret_values" {
  description = <<-EOT
    Values for the secret versions Terraform writes (secret_value_versions), by secret:
    webhook_token, prometheus_bearer_token, webhook_hmac_secret. Ephemeral and used only in
    write-only arguments: never in plan or state. webhook_token and webhook_hmac_secret default to a
    random 48-character value; prometheus_bearer_token must be given whenever its version is managed.
  EOT
  type        = map(string)
  default     = {}
  ephemeral   = true
  sensitive   = true
}

variable "secret_value_versions" {
  description = "Secrets whose version Terraform writes, each with a number: bump it to write a new value (rotation). A secret not listed gets its versions from the operator (gcloud secrets versions add); it needs one before the functions deploy."
  type        = map(number)
  default     = { webhook_token = 1 }

  validation {
    condition     = alltrue([for key in keys(var.secret_value_versions) : contains(["webhook_token", "prometheus_bearer_token", "webhook_hmac_secret"], key)])
    error_message = "secret_value_versions keys are webhook_token, prometheus_bearer_token or webhook_hmac_secret."
  }
}

variable "invoker_members" {
  description = "Principals (\"serviceAccount:...\", \"group:...\") granted roles/run.invoker on the HTTP function only, e.g. a scheduler job's OIDC identity. Public access is allow_public_invocation, not allUsers here."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for member in var.invoker_members : !contains(["allUsers", "allAuthenticatedUsers"], member)])
    error_message = "invoker_members: use allow_public_invocation for public access."
  }
}

variable "allow_public_invocation" {
  description = "Grant allUsers roles/run.invoker on the HTTP function, for an Alertmanager outside Google Cloud that cannot present a Google identity. The bearer token is still required by the function."
  type        = bool
  default     = false
}

variable "ingress_settings" {
  description = "Ingress of the HTTP function: ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB. The Pub/Sub function is always internal only."
  type        = string
  default     = "ALLOW_ALL"

  validation {
    condition     = contains(["ALLOW_ALL", "ALLOW_INTERNAL_ONLY", "ALLOW_INTERNAL_AND_GCLB"], var.ingress_settings)
    error_message = "ingress_settings is ALLOW_ALL, ALLOW_INTERNAL_ONLY or ALLOW_INTERNAL_AND_GCLB."
  }
}

variable "network" {
  description = <<-EOT
    Egress into a VPC, for a private Prometheus or a private GKE endpoint: either a Serverless VPC
    Access connector (vpc_connector, its egress setting) or Direct VPC egress (network, subnetwork,
    network_tags, direct_vpc_egress). Empty: no VPC.
  EOT
  type = object({
    vpc_connector                 = optional(string)
    vpc_connector_egress_settings = optional(string, "PRIVATE_RANGES_ONLY")
    network                       = optional(string)
    subnetwork                    = optional(string)
    network_tags                  = optional(list(string), [])
    direct_vpc_egress             = optional(string, "VPC_EGRESS_PRIVATE_RANGES_ONLY")
  })
  default = {}

  validation {
    condition     = var.network.vpc_connector == null || (var.network.network == null && var.network.subnetwork == null)
    error_message = "network: a VPC connector or Direct VPC egress, not both."
  }
}

variable "build_service_account" {
  description = "Service account Cloud Build uses to build the functions (projects/P/serviceAccounts/EMAIL); null: the project's default."
  type        = string
  default     = null
}

variable "grant_pubsub_token_creator" {
  description = "Only for projects created before 8 April 2021: let the Pub/Sub service agent mint tokens for the trigger service account (roles/iam.serviceAccountTokenCreator on that account only)."
  type        = bool
  default     = false
}

variable "alertmanager_credentials_file" {
  description = "Where Alertmanager reads the webhook token from, used in the alertmanager_receiver output."
  type        = string
  default     = "/etc/alertmanager/secrets/pod-rebalancer/token"
}

variable "labels" {
  description = "Labels on every resource that takes them."
  type        = map(string)
  default     = {}
}

variable "monitoring" {
  description = <<-EOT
    The function's own metrics and alerts (README, "Watching the rebalancer"): log-based metrics
    read from its decision log, and three alert policies. A target with failed_runs failed results
    within failure_window alerts (set the window to cover that many of its scheduled runs); so do
    more than max_evictions_per_hour pods removed within an hour across every target, and any
    not_effective result. notification_channels are ids (projects/P/notificationChannels/N).
  EOT
  type = object({
    enabled                = optional(bool, true)
    notification_channels  = optional(list(string), [])
    failed_runs            = optional(number, 3)
    failure_window         = optional(string, "3600s")
    max_evictions_per_hour = optional(number, 10)
  })
  default = {}

  validation {
    condition     = var.monitoring.failed_runs >= 1 && floor(var.monitoring.failed_runs) == var.monitoring.failed_runs
    error_message = "monitoring.failed_runs is a whole number, at least 1."
  }
  validation {
    condition     = can(regex("^[0-9]+s$", var.monitoring.failure_window)) && try(tonumber(trimsuffix(var.monitoring.failure_window, "s")) >= 60 && tonumber(trimsuffix(var.monitoring.failure_window, "s")) <= 86400, false)
    error_message = "monitoring.failure_window is seconds like 3600s, from 60s to 86400s."
  }
  validation {
    condition     = var.monitoring.max_evictions_per_hour >= 0
    error_message = "monitoring.max_evictions_per_hour is not negative."
  }
}
