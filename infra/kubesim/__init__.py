"""A Kubernetes API simulator that the real `kubernetes` client talks to over HTTP(S).

Run it with `python -m infra.kubesim` or from tests with `infra.kubesim.launcher.KubeSim`;
README.md in this folder has the scenario format, the control API and the load model.
"""
