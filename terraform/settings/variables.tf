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
    condition     = var.settings.pushgateway_url == null || can(regex("^https?://[^\\s/?#]+(/[^\\s?#]*)?$", var.settings.pushgateway_url))
    error_message = "settings.pushgateway_url must be an http(s) URL."
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
    condition = (
      floor(coalesce(var.settings.max_ineffective_rebalances, 2)) == coalesce(var.settings.max_ineffective_rebalances, 2) &&
      coalesce(var.settings.max_ineffective_rebalances, 2) >= 1 && coalesce(var.settings.max_ineffective_rebalances, 2) <= 100
    )
    error_message = "settings.max_ineffective_rebalances is a whole number in 1..100."
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
