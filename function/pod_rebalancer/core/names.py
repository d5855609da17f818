"""Kubernetes name rules: the only values that ever reach a PromQL label matcher.

A DNS-1123 name cannot contain a quote, a backslash, a brace or a space, so a value that passes
these checks cannot change the meaning of the query it is placed in.
"""

from __future__ import annotations

import re

_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def label_problem(value: str) -> str | None:
    """Why `value` is not a DNS-1123 label (namespaces, containers), or None when it is one."""
    if not value:
        return "must not be empty"
    if len(value) > 63:
        return "must be no more than 63 characters"
    if not _LABEL.fullmatch(value):
        return (
            "must be a DNS-1123 label: lower case alphanumeric characters or '-', "
            "starting and ending with an alphanumeric character"
        )
    return None


def subdomain_problem(value: str) -> str | None:
    """Why `value` is not a DNS-1123 subdomain (Deployment, pod names), or None if it is one."""
    if not value:
        return "must not be empty"
    if len(value) > 253:
        return "must be no more than 253 characters"
    if not _SUBDOMAIN.fullmatch(value):
        return (
            "must be a DNS-1123 subdomain: lower case alphanumeric characters, '-' or '.', "
            "starting and ending with an alphanumeric character"
        )
    return None


class InvalidNameError(ValueError):
    """A name that may not reach the Kubernetes API or PromQL; `field` says which one."""

    def __init__(self, field: str, value: str, problem: str) -> None:
        super().__init__(f"{field} {value!r} {problem}")
        self.field = field
        self.problem = problem


def check_target(namespace: str, deployment: str) -> None:
    """The one validation of a target: a namespace is a label, a Deployment a subdomain."""
    problem = label_problem(namespace)
    if problem:
        raise InvalidNameError("namespace", namespace, problem)
    problem = subdomain_problem(deployment)
    if problem:
        raise InvalidNameError("deployment", deployment, problem)
