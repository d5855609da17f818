variable "name" {
  description = "Name of the Lambda function and prefix of every other resource."
  type        = string
  default     = "pod-rebalancer"

  validation {
    condition     = can(regex("^[A-Za-z][-A-Za-z0-9_]{0,40}$", var.name))
    error_message = "name: up to 41 letters, digits, hyphens or underscores, starting with a letter."
  }
}

variable "source_zip" {
  description = "Path of the Lambda zip built by `make package-lambda`. Its SHA-256 is the source_code_hash, so a code change redeploys."
  type        = string

  validation {
    condition     = can(filebase64sha256(var.source_zip))
    error_message = "source_zip: no such file; run `make package-lambda` first."
  }
}

variable "runtime" {
  description = "Lambda runtime."
  type        = string
  default     = "python3.11"
}

variable "memory_size" {
  description = "Memory in MB (CPU scales with it): the Kubernetes client and numpy need more than 128 for large Deployments."
  type        = number
  default     = 512
}

variable "timeout" {
  description = "Timeout in seconds: queries, evictions and the Event, with room for a slow API server."
  type        = number
  default     = 120

  validation {
    condition     = var.timeout >= 10 && var.timeout <= 900
    error_message = "timeout is 10..900 seconds."
  }
}

variable "architectures" {
  description = "Instruction set of the function; the zip has no compiled code of its own, but its dependencies must match."
  type        = list(string)
  default     = ["x86_64"]
}

variable "eks_cluster" {
  description = <<-EOT
    The EKS cluster (KUBE_AUTH=eks, EKS_CLUSTER_NAME). endpoint and ca_certificate (base64 PEM) skip
    eks:DescribeCluster (EKS_ENDPOINT, EKS_CA_CERT): the permission is then not granted at all.
  EOT
  type = object({
    name           = string
    endpoint       = optional(string)
    ca_certificate = optional(string)
  })

  validation {
    condition     = (var.eks_cluster.endpoint == null) == (var.eks_cluster.ca_certificate == null)
    error_message = "eks_cluster.endpoint and eks_cluster.ca_certificate go together."
  }
}

variable "kubernetes_group" {
  description = "Kubernetes group of the Lambda role's access entry; terraform/kubernetes-rbac binds its Roles to this group."
  type        = string
  default     = "pod-rebalancer"

  validation {
    condition     = !startswith(var.kubernetes_group, "system:")
    error_message = "kubernetes_group must not be a built-in system: group."
  }
}

variable "create_eks_access_entry" {
  description = "Create the EKS access entry (cluster authentication mode API or API_AND_CONFIG_MAP). false: map the role in aws-auth yourself. moto cannot create access entries, so the offline test sets false."
  type        = bool
  default     = true
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
    One EventBridge Scheduler schedule per entry. schedule is a schedule expression (cron(...) or
    rate(...)); the target input is the manual request body {"namespace", "deployment", "dry_run",
    "sweep"} with unset fields left out (the function's defaults).
  EOT
  type = map(object({
    schedule   = string
    time_zone  = optional(string, "Etc/UTC")
    namespace  = optional(string)
    deployment = optional(string)
    dry_run    = optional(bool)
    sweep      = optional(bool)
    enabled    = optional(bool, true)
  }))
  default = {}

  validation {
    condition     = alltrue([for job in values(var.schedules) : can(regex("^(cron|rate|at)\\(.+\\)$", job.schedule))])
    error_message = "schedules[*].schedule is a schedule expression: cron(...), rate(...) or at(...)."
  }
  validation {
    condition     = alltrue([for key in keys(var.schedules) : can(regex("^[a-z0-9][-a-z0-9]{0,40}$", key))])
    error_message = "schedules keys are short lower-case names (they name the schedules)."
  }
}

variable "enable_sweep" {
  description = "Whether {\"sweep\": true} calls are used (any schedule with sweep = true counts too): the Roles then also allow listing Deployments."
  type        = bool
  default     = false
}

variable "webhook_token" {
  description = "The webhook bearer token to write (ephemeral, write-only: never in plan or state); null draws a random one. Used when webhook_token_version is set."
  type        = string
  default     = null
  ephemeral   = true
  sensitive   = true
}

variable "webhook_token_version" {
  description = "Version of the token Terraform writes: bump it to rotate. null: Terraform writes no value; put it with `aws secretsmanager put-secret-value`."
  type        = number
  default     = 1
}

variable "function_url_authorization_type" {
  description = "NONE (Alertmanager cannot sign SigV4; the bearer token is checked in code either way) or AWS_IAM."
  type        = string
  default     = "NONE"

  validation {
    condition     = contains(["NONE", "AWS_IAM"], var.function_url_authorization_type)
    error_message = "function_url_authorization_type is NONE or AWS_IAM."
  }
}

variable "vpc" {
  description = "Run the function in these subnets and security groups, for a private EKS endpoint or a private Prometheus. null: no VPC."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null

  validation {
    condition     = var.vpc == null || (length(try(var.vpc.subnet_ids, [])) > 0 && length(try(var.vpc.security_group_ids, [])) > 0)
    error_message = "vpc needs at least one subnet and one security group."
  }
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 90
}

variable "alertmanager_credentials_file" {
  description = "Where Alertmanager reads the webhook token from, used in the alertmanager_receiver output."
  type        = string
  default     = "/etc/alertmanager/secrets/pod-rebalancer/token"
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = {}
}

variable "secret_recovery_window_in_days" {
  description = "Days a deleted webhook-token secret can be restored (0 deletes it at once, freeing the name for a new apply)."
  type        = number
  default     = 7
}

variable "monitoring" {
  description = <<-EOT
    The function's own alarms (README, "Watching the rebalancer"), on the metrics its log lines
    carry in CloudWatch's embedded metric format (namespace PodRebalancer). Failed results in
    failed_runs consecutive periods of failure_period seconds (the schedule's interval, so that
    each period holds a run) alarm; so do more than max_evictions_per_hour pods removed within an
    hour, across every target, and any not_effective result. alarm_actions are ARNs (an SNS topic).
  EOT
  type = object({
    enabled                = optional(bool, true)
    alarm_actions          = optional(list(string), [])
    failed_runs            = optional(number, 3)
    failure_period         = optional(number, 1800)
    max_evictions_per_hour = optional(number, 10)
  })
  default = {}

  validation {
    condition     = var.monitoring.failed_runs >= 1 && floor(var.monitoring.failed_runs) == var.monitoring.failed_runs
    error_message = "monitoring.failed_runs is a whole number, at least 1."
  }
  validation {
    condition     = var.monitoring.failure_period >= 60 && var.monitoring.failure_period % 60 == 0 && var.monitoring.failure_period * var.monitoring.failed_runs <= 86400
    error_message = "monitoring.failure_period is a multiple of 60 seconds, and failed_runs of them at most a day."
  }
  validation {
    condition     = var.monitoring.max_evictions_per_hour >= 0
    error_message = "monitoring.max_evictions_per_hour is not negative."
  }
}
