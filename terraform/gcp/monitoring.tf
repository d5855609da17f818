# Watching the rebalancer: log-based metrics read from the functions' structured log (the metric set
# of function/pod_rebalancer/telemetry.py, by the same names) and the alert policies on them.
#
# Each decision is a line with event "decision" (namespace, deployment, action, reason, value,
# dependency when it failed, last_rebalance once the closed loop has measured a rebalance), each pod
# removed a line with event "pod_removed" (its role), each invocation a line with event "run"
# (duration_seconds, source). Log-based counters count lines, so every count is one line.

locals {
  monitoring = var.monitoring.enabled ? 1 : 0
  # Both functions log under their Cloud Run service, named like the function.
  function_logs = join(" AND ", [
    "resource.type=\"cloud_run_revision\"",
    "resource.labels.service_name=(${join(" OR ", [for f in local.functions : "\"${lower(f.name)}\""])})",
  ])
  target_labels = {
    namespace  = "EXTRACT(jsonPayload.namespace)"
    deployment = "EXTRACT(jsonPayload.deployment)"
  }
  # The upper bounds of telemetry.DURATION_BUCKETS.
  duration_bounds = [0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900]
  metric_type     = "logging.googleapis.com/user"
}

resource "google_logging_metric" "executions" {
  count = local.monitoring

  project          = var.project_id
  name             = "${var.name}/rebalancer_executions_total"
  description      = "Results per target, by action and reason code."
  filter           = "${local.function_logs} AND jsonPayload.event=\"decision\""
  label_extractors = merge(local.target_labels, { action = "EXTRACT(jsonPayload.action)", reason = "EXTRACT(jsonPayload.reason)" })

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    dynamic "labels" {
      for_each = ["namespace", "deployment", "action", "reason"]
      content {
        key        = labels.value
        value_type = "STRING"
      }
    }
  }
}

resource "google_logging_metric" "pods_deleted" {
  count = local.monitoring

  project          = var.project_id
  name             = "${var.name}/rebalancer_pods_deleted_total"
  description      = "Pods evicted (or deleted) for real, by the role they were selected in."
  filter           = "${local.function_logs} AND jsonPayload.event=\"pod_removed\""
  label_extractors = merge(local.target_labels, { role = "EXTRACT(jsonPayload.role)" })

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    dynamic "labels" {
      for_each = ["namespace", "deployment", "role"]
      content {
        key        = labels.value
        value_type = "STRING"
      }
    }
  }
}

resource "google_logging_metric" "dependency_failures" {
  count = local.monitoring

  project          = var.project_id
  name             = "${var.name}/rebalancer_dependency_failures_total"
  description      = "Failed results, by the dependency that failed (kubernetes, metrics, ...)."
  filter           = "${local.function_logs} AND jsonPayload.event=\"decision\" AND jsonPayload.action=\"failed\""
  label_extractors = merge(local.target_labels, { dependency = "EXTRACT(jsonPayload.dependency)" })

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    dynamic "labels" {
      for_each = ["namespace", "deployment", "dependency"]
      content {
        key        = labels.value
        value_type = "STRING"
      }
    }
  }
}

resource "google_logging_metric" "duration" {
  count = local.monitoring

  project          = var.project_id
  name             = "${var.name}/rebalancer_execution_duration_seconds"
  description      = "Seconds one invocation took, all its targets included."
  filter           = "${local.function_logs} AND jsonPayload.event=\"run\""
  value_extractor  = "EXTRACT(jsonPayload.duration_seconds)"
  label_extractors = { source = "EXTRACT(jsonPayload.source)" }

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "s"

    labels {
      key        = "source"
      value_type = "STRING"
    }
  }

  bucket_options {
    explicit_buckets {
      bounds = local.duration_bounds
    }
  }
}

# A log-based metric cannot be a gauge: the statistic each decision measured, as a distribution.
resource "google_logging_metric" "load_variance" {
  count = local.monitoring

  project          = var.project_id
  name             = "${var.name}/rebalancer_load_variance_current"
  description      = "The imbalance statistic each decision measured (IMBALANCE_STATISTIC names it)."
  filter           = "${local.function_logs} AND jsonPayload.event=\"decision\" AND jsonPayload.value>=0"
  value_extractor  = "EXTRACT(jsonPayload.value)"
  label_extractors = merge(local.target_labels, { statistic = "EXTRACT(jsonPayload.statistic)" })

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "DISTRIBUTION"
    unit        = "1"

    dynamic "labels" {
      for_each = ["namespace", "deployment", "statistic"]
      content {
        key        = labels.value
        value_type = "STRING"
      }
    }
  }

  bucket_options {
    exponential_buckets {
      num_finite_buckets = 32
      growth_factor      = 1.5
      scale              = 0.001
    }
  }
}

resource "google_logging_metric" "measured" {
  count = local.monitoring

  project          = var.project_id
  name             = "${var.name}/rebalancer_rebalances_measured_total"
  description      = "Rebalances judged (last_rebalance.effective true or false), once each: by the invocation that judged and recorded it."
  filter           = "${local.function_logs} AND jsonPayload.event=\"decision\" AND jsonPayload.judged=true AND (jsonPayload.last_rebalance.effective=true OR jsonPayload.last_rebalance.effective=false)"
  label_extractors = merge(local.target_labels, { effective = "EXTRACT(jsonPayload.last_rebalance.effective)" })

  metric_descriptor {
    metric_kind = "DELTA"
    value_type  = "INT64"
    unit        = "1"

    dynamic "labels" {
      for_each = ["namespace", "deployment", "effective"]
      content {
        key        = labels.value
        value_type = "STRING"
      }
    }
  }
}

# A target whose runs keep failing: failed_runs failed results within failure_window.
resource "google_monitoring_alert_policy" "failing" {
  count = local.monitoring

  project               = var.project_id
  display_name          = "${var.name}: runs keep failing"
  combiner              = "OR"
  notification_channels = var.monitoring.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "${var.monitoring.failed_runs} failed results of one target within ${var.monitoring.failure_window}"

    condition_threshold {
      filter          = "metric.type=\"${local.metric_type}/${google_logging_metric.executions[0].name}\" AND resource.type=\"cloud_run_revision\" AND metric.labels.action=\"failed\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.monitoring.failed_runs - 1
      duration        = "0s"

      aggregations {
        alignment_period     = var.monitoring.failure_window
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.namespace", "metric.label.deployment"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "pod-rebalancer keeps failing on $${metric.label.namespace}/$${metric.label.deployment}: a dependency (metrics server, Kubernetes API) is down or refusing it. `rebalancer_dependency_failures_total` names which; nothing is evicted while it fails."
  }
}

# More pods removed within an hour than expected, across every target.
resource "google_monitoring_alert_policy" "evictions" {
  count = local.monitoring

  project               = var.project_id
  display_name          = "${var.name}: too many evictions"
  combiner              = "OR"
  notification_channels = var.monitoring.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "more than ${var.monitoring.max_evictions_per_hour} pods removed within an hour"

    condition_threshold {
      filter          = "metric.type=\"${local.metric_type}/${google_logging_metric.pods_deleted[0].name}\" AND resource.type=\"cloud_run_revision\""
      comparison      = "COMPARISON_GT"
      threshold_value = var.monitoring.max_evictions_per_hour
      duration        = "0s"

      aggregations {
        alignment_period     = "3600s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "pod-rebalancer removed more than ${var.monitoring.max_evictions_per_hour} pods within an hour. Check its decision log; MAX_PODS_PER_RUN and COOLDOWN bound what it may do."
  }
}

# Any target left alone because rebalancing it did not help (the closed loop's not_effective).
resource "google_monitoring_alert_policy" "not_effective" {
  count = local.monitoring

  project               = var.project_id
  display_name          = "${var.name}: rebalancing does not help"
  combiner              = "OR"
  notification_channels = var.monitoring.notification_channels
  user_labels           = local.labels

  conditions {
    display_name = "a not_effective result"

    condition_threshold {
      filter          = "metric.type=\"${local.metric_type}/${google_logging_metric.executions[0].name}\" AND resource.type=\"cloud_run_revision\" AND metric.labels.reason=\"not_effective\""
      comparison      = "COMPARISON_GT"
      threshold_value = 0
      duration        = "0s"

      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_SUM"
        cross_series_reducer = "REDUCE_SUM"
        group_by_fields      = ["metric.label.namespace", "metric.label.deployment"]
      }

      trigger {
        count = 1
      }
    }
  }

  documentation {
    mime_type = "text/markdown"
    content   = "pod-rebalancer left $${metric.label.namespace}/$${metric.label.deployment} alone (not_effective): its last rebalances did not lower the imbalance. The cause is likely a single hot partition or the assignor, not the pods."
  }
}
