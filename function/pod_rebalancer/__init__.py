"""pod-rebalancer: evicts the busiest and idlest replicas of a CPU-imbalanced Deployment."""
