# The module creates the secrets and never holds their values in state. For each secret listed in
# secret_value_versions (by default the webhook token), Terraform writes a version through the
# write-only secret_data_wo argument, sent to the API and then forgotten (Terraform >= 1.11): the
# value comes from the ephemeral variable secret_values, or, for the tokens this project owns
# (webhook_token, webhook_hmac_secret), from an ephemeral random_password when none is given; it is
# re-drawn on every run but written only when the version number changes. Read it back for
# Alertmanager with `gcloud secrets versions access latest --secret ID`. Secrets not listed get
# their versions from the operator (gcloud secrets versions add ID --data-file=-). A merely
# `sensitive` variable would sit in state in clear text.
locals {
  all_secrets = {
    webhook_token = {
      enabled = true
      env     = "WEBHOOK_TOKEN_FILE"
    }
    prometheus_bearer_token = {
      enabled = var.secrets.prometheus_bearer_token
      env     = "PROMETHEUS_BEARER_TOKEN_FILE"
    }
    webhook_hmac_secret = {
      enabled = var.secrets.webhook_hmac_secret
      env     = "WEBHOOK_HMAC_SECRET_FILE"
    }
  }
  # Each secret gets its own directory: a secret volume shadows its whole mount path.
  secrets = {
    for key, secret in local.all_secrets : key => merge(secret, {
      secret_id  = "${var.name}-${replace(key, "_", "-")}"
      mount_path = "/etc/secrets/${replace(key, "_", "-")}"
      file       = "value"
    }) if secret.enabled
  }
}

resource "google_secret_manager_secret" "mounted" {
  for_each = local.secrets

  project   = var.project_id
  secret_id = each.value.secret_id
  labels    = local.labels

  replication {
    auto {}
  }
}

locals {
  managed_versions = { for key, version in var.secret_value_versions : key => version if contains(keys(local.secrets), key) }
  # Shared secrets this project owns can be drawn at random; a Prometheus token cannot.
  generated_secrets = toset([for key in keys(local.managed_versions) : key if key != "prometheus_bearer_token"])
}

ephemeral "random_password" "generated" {
  for_each = local.generated_secrets

  length  = 48
  special = false
}

resource "google_secret_manager_secret_version" "managed" {
  for_each = local.managed_versions

  secret                 = google_secret_manager_secret.mounted[each.key].id
  secret_data_wo         = lookup(var.secret_values, each.key, try(ephemeral.random_password.generated[each.key].result, null))
  secret_data_wo_version = each.value
}
