"""`make evaluate`: each policy against the load model alone, to back the recommended defaults.

No servers, no sockets, no wall clock: the pure core (`pod_rebalancer.core`) decides, the load
model (`infra.kubesim.load`) answers, and a simulated clock moves both. `python -m infra.evaluate`
runs the grid and prints one table per policy, a comparison, and a chart (build/evaluate.png).
"""
