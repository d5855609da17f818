resource "google_pubsub_topic" "scheduler" {
  #checkov:skip=CKV_GCP_83:Messages are target names and flags, nothing secret: Google managed encryption is enough.
  project = var.project_id
  name    = "${var.name}-schedule"
  labels  = local.labels

  # The function drops events older than 10 minutes: keeping them longer only delays the drop.
  message_retention_duration = "600s"
}

# Eventarc pushes Pub/Sub messages to the scheduled function with this identity; it may invoke that
# function and nothing else.
resource "google_service_account" "trigger" {
  project      = var.project_id
  account_id   = "${var.name}-trigger"
  display_name = "pod-rebalancer Eventarc trigger"
  description  = "Delivers scheduler messages to the ${var.name}-scheduled function."
}

locals {
  # The manual request body; fields left unset take the function's defaults.
  schedule_bodies = {
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

resource "google_cloud_scheduler_job" "main" {
  for_each = var.schedules

  project     = var.project_id
  region      = var.region
  name        = "${var.name}-${each.key}"
  description = "pod-rebalancer scheduled run ${each.key}"
  schedule    = each.value.schedule
  time_zone   = each.value.time_zone
  paused      = each.value.paused

  pubsub_target {
    topic_name = google_pubsub_topic.scheduler.id
    data       = base64encode(jsonencode(local.schedule_bodies[each.key]))
  }
}
