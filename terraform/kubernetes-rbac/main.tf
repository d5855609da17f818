locals {
  labels = merge({ "app.kubernetes.io/name" = "pod-rebalancer", "app.kubernetes.io/managed-by" = "terraform" }, var.labels)
}

module "rules" {
  source = "./rules"

  eviction_mode = var.eviction_mode
  sweep         = var.sweep
}

# Namespaced only: the function never needs anything cluster-wide.
resource "kubernetes_role_v1" "main" {
  for_each = toset(var.namespaces)

  metadata {
    name      = var.name
    namespace = each.value
    labels    = local.labels
  }

  dynamic "rule" {
    for_each = module.rules.rules
    content {
      api_groups = rule.value.api_groups
      resources  = rule.value.resources
      verbs      = rule.value.verbs
    }
  }
}

resource "kubernetes_role_binding_v1" "main" {
  for_each = toset(var.namespaces)

  metadata {
    name      = var.name
    namespace = each.value
    labels    = local.labels
  }

  role_ref {
    api_group = "rbac.authorization.k8s.io"
    kind      = "Role"
    name      = kubernetes_role_v1.main[each.value].metadata[0].name
  }

  subject {
    api_group = "rbac.authorization.k8s.io"
    kind      = var.subject.kind
    name      = var.subject.name
  }
}
