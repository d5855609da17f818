locals {
  # The manual request body; fields left unset take the function's defaults.
  schedule_inputs = {
    for key, job in var.schedules : key => {
      for field, value in {
        namespace  = job.namespace
        deployment = job.deployment
        dry_run    = job.dry_run
        sweep      = job.sweep
      } : field => value if value != null
    }
  }
}

resource "aws_scheduler_schedule" "main" {
  #checkov:skip=CKV_AWS_297:The schedule holds a target name and a dry-run flag, nothing secret: AWS owned encryption is enough.
  for_each = var.schedules

  name                         = "${var.name}-${each.key}"
  description                  = "pod-rebalancer scheduled run ${each.key}"
  schedule_expression          = each.value.schedule
  schedule_expression_timezone = each.value.time_zone
  state                        = each.value.enabled ? "ENABLED" : "DISABLED"

  flexible_time_window {
    mode = "OFF"
  }

  target {
    arn      = aws_lambda_function.main.arn
    role_arn = aws_iam_role.scheduler[0].arn
    input    = jsonencode(local.schedule_inputs[each.key])

    # As the Lambda's own event-invoke config: a run more than 10 minutes late is not worth making.
    retry_policy {
      maximum_event_age_in_seconds = 600
      maximum_retry_attempts       = 3
    }

    dead_letter_config {
      arn = aws_sqs_queue.dead_letter.arn
    }
  }
}
