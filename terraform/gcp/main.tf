module "settings" {
  source = "../settings"

  settings = var.settings
}

locals {
  cluster_project = coalesce(var.cluster.project, var.project_id)
  labels          = merge({ app = "pod-rebalancer", managed-by = "terraform" }, var.labels)

  # One source zip, two entry points.
  functions = {
    http   = { name = var.name, entry_point = "rebalance" }
    pubsub = { name = "${var.name}-scheduled", entry_point = "rebalance_pubsub" }
  }

  audit_topic_id = var.audit_topic == null ? null : (
    var.audit_topic.create
    ? google_pubsub_topic.audit[0].id
    : "projects/${coalesce(var.audit_topic.project, var.project_id)}/topics/${var.audit_topic.name}"
  )

  # Platform settings: cluster identity and where the secrets are mounted. Never a secret value.
  platform_environment = merge(
    {
      KUBE_AUTH   = "gke"
      GKE_CLUSTER = "projects/${local.cluster_project}/locations/${var.cluster.location}/clusters/${var.cluster.name}"
    },
    var.cluster.endpoint == null ? {} : { GKE_ENDPOINT = var.cluster.endpoint, GKE_CA_CERT = var.cluster.ca_certificate },
    var.cluster.api_endpoint == null ? {} : { GKE_API_ENDPOINT = var.cluster.api_endpoint },
    local.audit_topic_id == null ? {} : { AUDIT_TOPIC = local.audit_topic_id },
    { for key, secret in local.secrets : secret.env => "${secret.mount_path}/${secret.file}" },
  )
  environment = merge(module.settings.environment, local.platform_environment)
}

resource "google_service_account" "main" {
  project      = var.project_id
  account_id   = var.name
  display_name = "pod-rebalancer runtime"
  description  = "Runs the pod-rebalancer functions; bound to Kubernetes RBAC as a User in each allowed namespace."
}

resource "google_storage_bucket" "source" {
  count = var.source_bucket == null ? 1 : 0

  project                     = var.project_id
  name                        = "${var.project_id}-${var.name}-source"
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = true
  labels                      = local.labels

  versioning {
    enabled = true
  }

  # Objects are named by their md5, so they are rarely overwritten; keep few old versions if they are.
  lifecycle_rule {
    condition {
      num_newer_versions = 3
    }
    action {
      type = "Delete"
    }
  }
}

resource "google_storage_bucket_object" "source" {
  # Named by the zip's md5, so any code change is a new object and redeploys both functions.
  name   = "${var.name}/function-${filemd5(var.source_zip)}.zip"
  bucket = var.source_bucket == null ? google_storage_bucket.source[0].name : var.source_bucket
  source = var.source_zip
}

resource "google_pubsub_topic" "audit" {
  #checkov:skip=CKV_GCP_83:Audit records name pods and decisions, never a secret: Google managed encryption; bring an existing CMEK topic with create = false.
  count = var.audit_topic != null && try(var.audit_topic.create, false) ? 1 : 0

  project = var.project_id
  name    = var.audit_topic.name
  labels  = local.labels
}

resource "google_cloudfunctions2_function" "main" {
  #checkov:skip=CKV_GCP_124:The HTTP function receives Alertmanager webhooks, often from outside Google Cloud; ingress_settings is a variable and every call needs the bearer token.
  for_each = local.functions

  project     = var.project_id
  location    = var.region
  name        = each.value.name
  description = "pod-rebalancer: ${each.value.entry_point}"
  labels      = local.labels

  build_config {
    runtime         = var.runtime
    entry_point     = each.value.entry_point
    service_account = var.build_service_account

    source {
      storage_source {
        bucket = google_storage_bucket_object.source.bucket
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.main.email
    available_memory                 = var.available_memory
    available_cpu                    = var.available_cpu
    timeout_seconds                  = var.timeout_seconds
    max_instance_count               = var.max_instance_count
    min_instance_count               = 0
    max_instance_request_concurrency = 1
    all_traffic_on_latest_revision   = true
    ingress_settings                 = each.key == "http" ? var.ingress_settings : "ALLOW_INTERNAL_ONLY"
    environment_variables            = local.environment

    vpc_connector                 = var.network.vpc_connector
    vpc_connector_egress_settings = var.network.vpc_connector == null ? null : var.network.vpc_connector_egress_settings
    direct_vpc_egress             = var.network.network == null && var.network.subnetwork == null ? null : var.network.direct_vpc_egress

    dynamic "direct_vpc_network_interface" {
      for_each = var.network.network == null && var.network.subnetwork == null ? [] : [var.network]
      content {
        network    = direct_vpc_network_interface.value.network
        subnetwork = direct_vpc_network_interface.value.subnetwork
        tags       = direct_vpc_network_interface.value.network_tags
      }
    }

    # Secrets are files, read on every call (version latest): a new version is picked up without
    # a redeploy, and no secret value is ever an environment variable.
    dynamic "secret_volumes" {
      for_each = local.secrets
      content {
        mount_path = secret_volumes.value.mount_path
        project_id = var.project_id
        secret     = google_secret_manager_secret.mounted[secret_volumes.key].secret_id
        versions {
          version = "latest"
          path    = secret_volumes.value.file
        }
      }
    }
  }

  dynamic "event_trigger" {
    for_each = each.key == "pubsub" ? [1] : []
    content {
      trigger_region        = var.region
      event_type            = "google.cloud.pubsub.topic.v1.messagePublished"
      pubsub_topic          = google_pubsub_topic.scheduler.id
      service_account_email = google_service_account.trigger.email
      # Retry: the function raises only when a dependency (Prometheus, the Kubernetes API) failed,
      # which a later attempt can fix, and it acknowledges bad input instead of raising, so there
      # is no poison message to loop on. Retries are bounded in practice by the function itself,
      # which drops events older than 10 minutes, and by the topic's 10-minute retention.
      retry_policy = "RETRY_POLICY_RETRY"
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.accessor,
    google_secret_manager_secret_version.managed,
  ]
}
