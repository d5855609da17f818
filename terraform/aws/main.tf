module "settings" {
  source = "../settings"

  settings = var.settings
}

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition   = data.aws_partition.current.partition
  region      = data.aws_region.current.name
  account_id  = data.aws_caller_identity.current.account_id
  cluster_arn = "arn:${local.partition}:eks:${local.region}:${local.account_id}:cluster/${var.eks_cluster.name}"
  lookup_eks  = var.eks_cluster.endpoint == null
  # Known before the queue exists, so the role (and the function) need not wait the ~25 s the
  # provider takes to see a new queue's attributes settle.
  dead_letter_queue_name = "${var.name}-dead-letter"
  dead_letter_queue_arn  = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.dead_letter_queue_name}"
  tags                   = merge({ app = "pod-rebalancer", managed-by = "terraform" }, var.tags)

  # Platform settings: the cluster and where the token lives. Never a secret value.
  environment = merge(
    module.settings.environment,
    {
      KUBE_AUTH                = "eks"
      EKS_CLUSTER_NAME         = var.eks_cluster.name
      WEBHOOK_TOKEN_SECRET_ARN = aws_secretsmanager_secret.webhook_token.arn
    },
    local.lookup_eks ? {} : { EKS_ENDPOINT = var.eks_cluster.endpoint, EKS_CA_CERT = var.eks_cluster.ca_certificate },
  )
}

resource "aws_cloudwatch_log_group" "main" {
  #checkov:skip=CKV_AWS_158:AWS managed encryption; a customer managed key would add a key policy and grants for a log of decisions that holds no secret.
  #checkov:skip=CKV_AWS_338:Retention is a variable (default 90 days); a year of decision logs is a policy choice, not a module default.
  name              = "/aws/lambda/${var.name}"
  retention_in_days = var.log_retention_days
  tags              = local.tags
}

# Where failed asynchronous invocations end up: scheduled runs whose retries (a dependency failure)
# are exhausted or that are older than 10 minutes, and schedules that could not invoke at all.
resource "aws_sqs_queue" "dead_letter" {
  name                      = local.dead_letter_queue_name
  message_retention_seconds = 1209600
  sqs_managed_sse_enabled   = true
  tags                      = local.tags
}

resource "aws_lambda_function" "main" {
  #checkov:skip=CKV_AWS_116:Failed asynchronous invocations go to the on-failure destination of aws_lambda_function_event_invoke_config (richer records than a function-level DLQ).
  #checkov:skip=CKV_AWS_117:VPC is optional (var.vpc): only needed for a private EKS endpoint or a private Prometheus.
  #checkov:skip=CKV_AWS_173:The environment holds no secret (the token is referenced by ARN), so a customer managed key would protect nothing.
  #checkov:skip=CKV_AWS_272:Code signing needs a signing profile the operator owns; the zip is built reproducibly with its md5 printed.
  #checkov:skip=CKV_AWS_115:Reserved concurrency would eat into small accounts' unreserved pool; concurrent runs are safe (the Lease lets one act).
  #checkov:skip=CKV_AWS_50:X-Ray tracing needs extra write permissions on the role; the function logs one structured line per decision.
  function_name    = var.name
  description      = "pod-rebalancer: evicts the busiest and idlest pods of a CPU-imbalanced Deployment"
  filename         = var.source_zip
  source_code_hash = filebase64sha256(var.source_zip)
  handler          = "main.lambda_handler"
  runtime          = var.runtime
  architectures    = var.architectures
  memory_size      = var.memory_size
  timeout          = var.timeout
  role             = aws_iam_role.main.arn
  tags             = local.tags

  environment {
    variables = local.environment
  }

  dynamic "vpc_config" {
    for_each = var.vpc == null ? [] : [var.vpc]
    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  # Lambda logs to /aws/lambda/<name>, the group above: it must exist (with its retention) first.
  depends_on = [aws_iam_role_policy.main, aws_cloudwatch_log_group.main]
}

# Scheduled invocations are asynchronous: at most 10 minutes old (as the Pub/Sub path on Google
# Cloud), retried twice when the function raised (a dependency failure), then sent to the queue.
resource "aws_lambda_function_event_invoke_config" "main" {
  function_name                = aws_lambda_function.main.function_name
  maximum_event_age_in_seconds = 600
  maximum_retry_attempts       = 2

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dead_letter.arn
    }
  }
}

# With authorization NONE, the provider adds the URL's public resource-based statement itself when it
# creates the URL: FunctionURLAllowPublicAccess, lambda:InvokeFunctionUrl for "*" on condition
# lambda:FunctionUrlAuthType = NONE. The function refuses any call without the bearer token. A second
# aws_lambda_permission with that statement id would race with it, so none is declared; the test
# reads the resulting policy instead. Never add a public lambda:InvokeFunction without the condition
# lambda:InvokedViaFunctionUrl: anyone could then call the Invoke API with a scheduled-run event,
# which carries no token (see terraform/README.md for AWS's October 2025 function URL model).
resource "aws_lambda_function_url" "main" {
  #checkov:skip=CKV_AWS_258:Alertmanager cannot sign SigV4; with NONE the function itself requires the bearer token on every call. AWS_IAM is a variable away.
  function_name      = aws_lambda_function.main.function_name
  authorization_type = var.function_url_authorization_type
}
