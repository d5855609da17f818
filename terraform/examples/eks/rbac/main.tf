provider "aws" {
  region = var.cluster.region
}

data "aws_eks_cluster" "main" {
  name = var.cluster.name
}

# An ephemeral token: fetched on every run, never stored in plan or state.
ephemeral "aws_eks_cluster_auth" "main" {
  name = var.cluster.name
}

provider "kubernetes" {
  host                   = data.aws_eks_cluster.main.endpoint
  cluster_ca_certificate = base64decode(data.aws_eks_cluster.main.certificate_authority[0].data)
  token                  = ephemeral.aws_eks_cluster_auth.main.token
}

module "rbac" {
  source = "../../../kubernetes-rbac"

  namespaces    = var.namespaces
  eviction_mode = var.eviction_mode
  sweep         = var.sweep
  subject       = var.subject
}
