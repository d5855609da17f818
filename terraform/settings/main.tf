locals {
  s = var.settings

  # Every setting, by its environment variable. Lists are comma-separated, as the function parses
  # them; an empty allow-list is left out so that the function's own default applies.
  all = {
    PROMETHEUS_ENDPOINT                = local.s.prometheus_endpoint
    PROMETHEUS_TIMEOUT                 = local.s.prometheus_timeout
    KUBE_NAMESPACE                     = local.s.kube_namespace
    DEPLOYMENT_NAME                    = local.s.deployment_name
    CONTAINER_NAME                     = local.s.container_name
    KUBE_LABEL_SELECTOR                = local.s.kube_label_selector
    METRICS_TIME_WINDOW                = local.s.metrics_time_window
    IMBALANCE_STATISTIC                = local.s.imbalance_statistic
    CPU_VARIANCE_THRESHOLD             = tostring(local.s.cpu_variance_threshold)
    MIN_PODS_REQUIRED                  = tostring(local.s.min_pods_required)
    MAX_PODS_TO_DELETE                 = tostring(local.s.max_pods_to_delete)
    MIN_IMPROVEMENT_PERCENT            = tostring(local.s.min_improvement_percent)
    MIN_POD_AGE                        = local.s.min_pod_age
    COOLDOWN                           = local.s.cooldown
    EVICTION_MODE                      = local.s.eviction_mode
    DRY_RUN                            = tostring(local.s.dry_run)
    ALLOWED_NAMESPACES                 = length(local.s.allowed_namespaces) > 0 ? join(",", local.s.allowed_namespaces) : null
    ALLOWED_DEPLOYMENTS                = length(local.s.allowed_deployments) > 0 ? join(",", local.s.allowed_deployments) : null
    EXCLUDE_ANNOTATION                 = local.s.exclude_annotation
    LOG_LEVEL                          = local.s.log_level
    WEBHOOK_SIGNATURE_HEADER           = local.s.webhook_signature_header
    WEBHOOK_SIGNATURE_TIMESTAMP_HEADER = local.s.webhook_signature_timestamp_header
    SWEEP_CONCURRENCY                  = local.s.sweep_concurrency == null ? null : tostring(local.s.sweep_concurrency)
    MAX_PODS_PER_RUN                   = local.s.max_pods_per_run == null ? null : tostring(local.s.max_pods_per_run)
    MAX_INEFFECTIVE_REBALANCES         = local.s.max_ineffective_rebalances == null ? null : tostring(local.s.max_ineffective_rebalances)
    INEFFECTIVE_BACKOFF                = local.s.ineffective_backoff
    IMBALANCE_SIGNAL                   = local.s.imbalance_signal
    SCORE_WEIGHTS                      = local.s.score_weights
    LAG_QUERY                          = local.s.lag_query
    MEMORY_QUERY                       = local.s.memory_query
    IMBALANCE_POLICY                   = local.s.imbalance_policy
    TOLERANCE_MULTIPLIER               = local.s.tolerance_multiplier == null ? null : tostring(local.s.tolerance_multiplier)
    PUSHGATEWAY_URL                    = local.s.pushgateway_url
  }
}
