provider "google" {
  project = var.project_id
  region  = var.region
}

# The APIs the module uses; kept enabled on destroy (other workloads may need them).
resource "google_project_service" "main" {
  for_each = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudscheduler.googleapis.com",
    "container.googleapis.com",
    "eventarc.googleapis.com",
    "pubsub.googleapis.com",
    "run.googleapis.com",
    "secretmanager.googleapis.com",
    "storage.googleapis.com",
  ])

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}

module "pod_rebalancer" {
  source = "../../gcp"

  project_id = var.project_id
  region     = var.region
  source_zip = var.source_zip
  cluster    = { name = var.cluster_name, location = var.cluster_location }

  settings = {
    prometheus_endpoint = var.prometheus_endpoint
    kube_namespace      = var.namespace
    deployment_name     = var.deployment
    dry_run             = var.dry_run
    allowed_namespaces  = var.allowed_namespaces
  }

  # A sweep schedule names no target (it covers every opted-in Deployment); the others run the
  # default target.
  schedules = {
    for key, job in var.schedules : key => merge(job, {
      namespace  = coalesce(job.sweep, false) ? null : var.namespace
      deployment = coalesce(job.sweep, false) ? null : var.deployment
    })
  }

  audit_topic             = var.audit ? { name = "pod-rebalancer-audit" } : null
  allow_public_invocation = var.allow_public_invocation

  depends_on = [google_project_service.main]
}
