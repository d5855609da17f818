# The module creates the secret and never holds its value in state. With webhook_token_version set
# (the default), Terraform writes a version through the write-only secret_string_wo argument, sent to
# the API and then forgotten (Terraform >= 1.11): the value is webhook_token if given (an ephemeral
# variable), otherwise a random token drawn by Secrets Manager through an ephemeral resource, re-drawn
# on every run but written only when the version number changes. Read it back for Alertmanager with
# `aws secretsmanager get-secret-value`. With webhook_token_version = null the operator puts the value
# (aws secretsmanager put-secret-value). A merely `sensitive` variable would sit in state in clear
# text. The function reads the secret by ARN (WEBHOOK_TOKEN_SECRET_ARN) and re-reads it after
# 5 minutes, so a rotation needs no redeploy.
resource "aws_secretsmanager_secret" "webhook_token" {
  #checkov:skip=CKV_AWS_149:AWS managed key (aws/secretsmanager); a customer managed key would need kms:Decrypt on the role and a key policy.
  #checkov:skip=CKV2_AWS_57:The token is shared with Alertmanager, which cannot follow an automatic rotation; rotate by bumping webhook_token_version.
  name                    = "${var.name}/webhook-token"
  description             = "Bearer token required on every HTTP call to ${var.name}"
  recovery_window_in_days = var.secret_recovery_window_in_days
  tags                    = local.tags
}

ephemeral "aws_secretsmanager_random_password" "webhook_token" {
  count = var.webhook_token_version == null ? 0 : 1

  password_length     = 48
  exclude_punctuation = true
}

resource "aws_secretsmanager_secret_version" "webhook_token" {
  count = var.webhook_token_version == null ? 0 : 1

  secret_id                = aws_secretsmanager_secret.webhook_token.id
  secret_string_wo         = coalesce(var.webhook_token, ephemeral.aws_secretsmanager_random_password.webhook_token[0].random_password)
  secret_string_wo_version = var.webhook_token_version
}
