# The rules of infra/kubernetes/rbac.yaml, kept as data here so that the module stands alone when
# vendored; tests/terraform asserts that they equal the YAML's (delete only in delete mode, list on
# Deployments only for sweeps, per DESIGN.md's sweep contract).
locals {
  rules = [
    # Deployment health (rollout in progress, exclusion annotation) and its selector.
    {
      api_groups = ["apps"]
      resources  = ["deployments"]
      verbs      = var.sweep ? ["get", "list"] : ["get"]
    },
    # The pods to measure; delete only when EVICTION_MODE=delete.
    {
      api_groups = [""]
      resources  = ["pods"]
      verbs      = var.eviction_mode == "delete" ? ["list", "delete"] : ["list"]
    },
    # Evictions, which honour PodDisruptionBudgets.
    {
      api_groups = [""]
      resources  = ["pods/eviction"]
      verbs      = ["create"]
    },
    # The per-target lock and cooldown memory.
    {
      api_groups = ["coordination.k8s.io"]
      resources  = ["leases"]
      verbs      = ["get", "create", "update"]
    },
    # IMBALANCE_POLICY=hpa_target: the Deployment's HPA, read by name (get only, never list).
    {
      api_groups = ["autoscaling"]
      resources  = ["horizontalpodautoscalers"]
      verbs      = ["get"]
    },
    # An Event on the Deployment for every decision that acts or is blocked.
    {
      api_groups = [""]
      resources  = ["events"]
      verbs      = ["create"]
    },
  ]
}
