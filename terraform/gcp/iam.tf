# Every grant of this module. Project level: roles/container.clusterViewer only, which carries
# container.clusters.get: GKE requires it of any identity that authenticates to the cluster, and
# GKE_CLUSTER is resolved with it. What the function may do inside the cluster is Kubernetes RBAC
# (terraform/kubernetes-rbac), namespaced, never an IAM role such as container.developer.
resource "google_project_iam_member" "cluster_viewer" {
  project = local.cluster_project
  role    = "roles/container.clusterViewer"
  member  = google_service_account.main.member
}

# Each secret is readable by the runtime service account, and only that secret.
resource "google_secret_manager_secret_iam_member" "accessor" {
  for_each = google_secret_manager_secret.mounted

  project   = each.value.project
  secret_id = each.value.secret_id
  role      = "roles/secretmanager.secretAccessor"
  member    = google_service_account.main.member
}

# The audit topic, and only it, may be published to.
resource "google_pubsub_topic_iam_member" "audit_publisher" {
  count = var.audit_topic == null ? 0 : 1

  project = coalesce(try(var.audit_topic.project, null), var.project_id)
  topic   = local.audit_topic_id
  role    = "roles/pubsub.publisher"
  member  = google_service_account.main.member
}

# Eventarc's trigger identity may invoke the scheduled function's Cloud Run service only.
resource "google_cloud_run_v2_service_iam_member" "trigger_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.main["pubsub"].service_config[0].service
  role     = "roles/run.invoker"
  member   = google_service_account.trigger.member
}

# Callers of the HTTP function that present a Google identity.
resource "google_cloud_run_v2_service_iam_member" "invoker" {
  for_each = toset(var.invoker_members)

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.main["http"].service_config[0].service
  role     = "roles/run.invoker"
  member   = each.value
}

# Public invocation, for an Alertmanager outside Google Cloud: only when explicitly enabled, and the
# function still refuses any call without the bearer token.
resource "google_cloud_run_v2_service_iam_member" "public" {
  count = var.allow_public_invocation ? 1 : 0

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.main["http"].service_config[0].service
  role     = "roles/run.invoker"
  member   = "allUsers"
}

# Projects created before 8 April 2021 only: the Pub/Sub service agent needs to mint OIDC tokens for
# the trigger identity to push to the function. Granted on that service account, not the project.
data "google_project" "main" {
  count = var.grant_pubsub_token_creator ? 1 : 0

  project_id = var.project_id
}

resource "google_service_account_iam_member" "pubsub_token_creator" {
  count = var.grant_pubsub_token_creator ? 1 : 0

  service_account_id = google_service_account.trigger.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = "serviceAccount:service-${data.google_project.main[0].number}@gcp-sa-pubsub.iam.gserviceaccount.com"
}
