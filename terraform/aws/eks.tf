# The Lambda role enters the cluster as a member of one Kubernetes group, which
# terraform/kubernetes-rbac binds to a namespaced Role in each allowed namespace. No access policy is
# associated: an EKS managed policy (even AmazonEKSViewPolicy) would grant more than those Roles.
# moto (the offline test) cannot create access entries, hence the switch.
resource "aws_eks_access_entry" "main" {
  count = var.create_eks_access_entry ? 1 : 0

  cluster_name      = var.eks_cluster.name
  principal_arn     = aws_iam_role.main.arn
  kubernetes_groups = [var.kubernetes_group]
  type              = "STANDARD"
  tags              = local.tags
}
