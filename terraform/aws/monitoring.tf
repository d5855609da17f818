# Watching the rebalancer: alarms on the metric set of function/pod_rebalancer/telemetry.py, which
# the function writes into its log lines as CloudWatch embedded metrics (no PutMetricData, so no
# grant beyond writing its own log). A CloudWatch alarm reads one series, so the function also
# rolls the metrics up: rebalancer_executions_total by action alone and by reason alone,
# rebalancer_pods_deleted_total with no dimension at all.

locals {
  monitoring        = var.monitoring.enabled ? 1 : 0
  metrics_namespace = "PodRebalancer" # aws_lambda.METRICS_NAMESPACE
}

resource "aws_cloudwatch_metric_alarm" "failing" {
  count = local.monitoring

  alarm_name          = "${var.name}-failing"
  alarm_description   = "pod-rebalancer runs failed in ${var.monitoring.failed_runs} periods of ${var.monitoring.failure_period}s in a row: a dependency (metrics server, Kubernetes API) is down or refusing it; rebalancer_dependency_failures_total names which."
  namespace           = local.metrics_namespace
  metric_name         = "rebalancer_executions_total"
  dimensions          = { action = "failed" }
  statistic           = "Sum"
  period              = var.monitoring.failure_period
  evaluation_periods  = var.monitoring.failed_runs
  datapoints_to_alarm = var.monitoring.failed_runs
  comparison_operator = "GreaterThanOrEqualToThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.monitoring.alarm_actions
  ok_actions          = var.monitoring.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "evictions" {
  count = local.monitoring

  alarm_name          = "${var.name}-evictions"
  alarm_description   = "pod-rebalancer removed more than ${var.monitoring.max_evictions_per_hour} pods within an hour, across every target. MAX_PODS_PER_RUN and COOLDOWN bound what it may do."
  namespace           = local.metrics_namespace
  metric_name         = "rebalancer_pods_deleted_total"
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.monitoring.max_evictions_per_hour
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.monitoring.alarm_actions
  ok_actions          = var.monitoring.alarm_actions
  tags                = local.tags
}

resource "aws_cloudwatch_metric_alarm" "not_effective" {
  count = local.monitoring

  alarm_name          = "${var.name}-not-effective"
  alarm_description   = "pod-rebalancer left a target alone (not_effective): its last rebalances did not lower the imbalance. The cause is likely a single hot partition or the assignor, not the pods."
  namespace           = local.metrics_namespace
  metric_name         = "rebalancer_executions_total"
  dimensions          = { reason = "not_effective" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = var.monitoring.alarm_actions
  ok_actions          = var.monitoring.alarm_actions
  tags                = local.tags
}
