# The Lambda's execution role: every statement names its one resource, except the two EC2 Describe
# actions of the optional VPC attachment, which have no resource-level permissions.
data "aws_iam_policy_document" "assume_lambda" {
  statement {
    sid     = "LambdaAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "main" {
  name               = var.name
  description        = "Execution role of the ${var.name} Lambda"
  assume_role_policy = data.aws_iam_policy_document.assume_lambda.json
  tags               = local.tags
}

locals {
  eni_arn = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:network-interface/*"
}

data "aws_iam_policy_document" "main" {
  # Its own log group only (created by this module, so no logs:CreateLogGroup).
  statement {
    sid       = "WriteOwnLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.main.arn}:*"]
  }

  # EKS_CLUSTER_NAME -> endpoint and CA; not needed when they are given.
  dynamic "statement" {
    for_each = local.lookup_eks ? [1] : []
    content {
      sid       = "DescribeOwnCluster"
      actions   = ["eks:DescribeCluster"]
      resources = [local.cluster_arn]
    }
  }

  statement {
    sid       = "ReadWebhookToken"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.webhook_token.arn]
  }

  # The on-failure destination of asynchronous invocations.
  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [local.dead_letter_queue_arn]
  }

  # Lambda creates and removes the function's network interfaces with the execution role.
  dynamic "statement" {
    for_each = var.vpc == null ? [] : [var.vpc]
    content {
      sid     = "CreateNetworkInterfaces"
      actions = ["ec2:CreateNetworkInterface"]
      resources = concat(
        [local.eni_arn],
        [for id in statement.value.subnet_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:subnet/${id}"],
        [for id in statement.value.security_group_ids : "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/${id}"],
      )
    }
  }
  dynamic "statement" {
    for_each = var.vpc == null ? [] : [1]
    content {
      sid       = "ManageNetworkInterfaces"
      actions   = ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
      resources = [local.eni_arn]
    }
  }
  dynamic "statement" {
    for_each = var.vpc == null ? [] : [1]
    content {
      # EC2 Describe actions support no resource-level permissions: "*" is the only resource AWS
      # accepts for them.
      sid       = "DescribeNetworkInterfaces"
      actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }
}

resource "aws_iam_role_policy" "main" {
  name   = "${var.name}-least-privilege"
  role   = aws_iam_role.main.id
  policy = data.aws_iam_policy_document.main.json
}

# EventBridge Scheduler's role: invoke this function, and deliver undeliverable runs to the queue.
data "aws_iam_policy_document" "assume_scheduler" {
  statement {
    sid     = "SchedulerAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["scheduler.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "scheduler" {
  count = length(var.schedules) > 0 ? 1 : 0

  name               = "${var.name}-scheduler"
  description        = "EventBridge Scheduler invokes ${var.name}"
  assume_role_policy = data.aws_iam_policy_document.assume_scheduler.json
  tags               = local.tags
}

data "aws_iam_policy_document" "scheduler" {
  statement {
    sid       = "InvokeFunction"
    actions   = ["lambda:InvokeFunction"]
    resources = [aws_lambda_function.main.arn]
  }

  statement {
    sid       = "SendToDeadLetterQueue"
    actions   = ["sqs:SendMessage"]
    resources = [local.dead_letter_queue_arn]
  }
}

resource "aws_iam_role_policy" "scheduler" {
  count = length(var.schedules) > 0 ? 1 : 0

  name   = "${var.name}-scheduler"
  role   = aws_iam_role.scheduler[0].id
  policy = data.aws_iam_policy_document.scheduler.json
}
