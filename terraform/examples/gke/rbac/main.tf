data "google_container_cluster" "main" {
  project  = var.cluster.project
  location = var.cluster.location
  name     = var.cluster.name
}

# Credentials come from gke-gcloud-auth-plugin at run time (exec), so no token is stored in state.
provider "kubernetes" {
  host                   = "https://${data.google_container_cluster.main.endpoint}"
  cluster_ca_certificate = base64decode(data.google_container_cluster.main.master_auth[0].cluster_ca_certificate)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "gke-gcloud-auth-plugin"
  }
}

module "rbac" {
  source = "../../../kubernetes-rbac"

  namespaces    = var.namespaces
  eviction_mode = var.eviction_mode
  sweep         = var.sweep
  subject       = var.subject
}
