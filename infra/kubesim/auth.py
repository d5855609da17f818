"""Bearer-token authentication and RBAC-like authorization with kube-apiserver's messages.

Tokens are static (the scenario's `users`), or EKS `k8s-aws-v1.` tokens verified against an STS
endpoint and mapped from the caller's ARN (the scenario's `eks`, see eks.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from infra.kubesim.eks import PREFIX, EksVerifier, TokenError, canonical_arn
from infra.kubesim.status import ApiError, forbidden, unauthorized

log = logging.getLogger("kubesim.auth")


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class Attributes:
    """What the authorizer sees (k8s.io/apiserver/pkg/authorization/authorizer.Attributes)."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""
    name: str = ""


@dataclass(frozen=True)
class Rule:
    api_groups: tuple[str, ...]
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    resource_names: tuple[str, ...] = ()

    def allows(self, attrs: Attributes) -> bool:
        if "*" not in self.verbs and attrs.verb not in self.verbs:
            return False
        if "*" not in self.api_groups and attrs.group not in self.api_groups:
            return False
        combined = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
        if not any(
            r in ("*", combined) or (attrs.subresource and r == f"*/{attrs.subresource}")
            for r in self.resources
        ):
            return False
        return not self.resource_names or attrs.name in self.resource_names


@dataclass(frozen=True)
class Binding:
    subject_user: str | None
    subject_group: str | None
    namespace: str  # "*" = every namespace, like a ClusterRoleBinding
    rules: tuple[Rule, ...]

    def applies_to(self, user: User, namespace: str) -> bool:
        if self.subject_user is not None and self.subject_user != user.name:
            return False
        if self.subject_group is not None and self.subject_group not in user.groups:
            return False
        return self.namespace in ("*", namespace)


@dataclass
class Authorizer:
    users: dict[str, User] = field(default_factory=dict)
    bindings: list[Binding] = field(default_factory=list)
    anonymous: bool = True  # kube-apiserver's default --anonymous-auth=true
    eks: EksVerifier | None = None
    eks_users: dict[str, User] = field(default_factory=dict)  # caller ARN -> user

    @classmethod
    def from_scenario(cls, scenario: Mapping[str, Any]) -> Authorizer:
        users = {
            token: User(spec["name"], tuple(spec.get("groups", ())))
            for token, spec in (scenario.get("users") or {}).items()
        }
        bindings = []
        for spec in scenario.get("bindings") or []:
            rules = tuple(
                Rule(
                    tuple(r.get("apiGroups", ())),
                    tuple(r.get("resources", ())),
                    tuple(r.get("verbs", ())),
                    tuple(r.get("resourceNames", ())),
                )
                for r in spec.get("rules", ())
            )
            bindings.append(
                Binding(spec.get("user"), spec.get("group"), spec.get("namespace", "*"), rules)
            )
        eks_spec = scenario.get("eks")
        eks = EksVerifier.from_scenario(eks_spec) if eks_spec else None
        eks_users = {
            arn: User(spec["name"], tuple(spec.get("groups", ())))
            for arn, spec in ((eks_spec or {}).get("users") or {}).items()
        }
        return cls(users, bindings, bool(scenario.get("anonymous", True)), eks, eks_users)

    def identify(self, header: str | None) -> User | None:
        """Who the token names, without enforcing anything (for the request log)."""
        try:
            return self.authenticate(header)
        except ApiError:
            return None

    def authenticate(self, header: str | None) -> User:
        """An unknown token is 401; no token is system:anonymous (then RBAC decides), unless
        the scenario says "anonymous": false."""
        if header:
            scheme, _, token = header.strip().partition(" ")
            token = token.strip()
            if scheme.lower() == "bearer" and token in self.users:
                return self.users[token]
            if scheme.lower() == "bearer" and token.startswith(PREFIX) and self.eks:
                user = self._eks_user(self.eks, token)
                if user is not None:
                    return user
        elif self.anonymous:
            return User("system:anonymous", ("system:unauthenticated",))
        raise unauthorized()

    def _eks_user(self, eks: EksVerifier, token: str) -> User | None:
        """aws-iam-authenticator's mapping: the caller's ARN, or its role for an assumed role."""
        try:
            arn = eks.caller_arn(token)
        except TokenError as exc:
            log.info("EKS token refused: %s", exc)
            return None
        user = self.eks_users.get(arn) or self.eks_users.get(canonical_arn(arn))
        if user is None:
            log.info("EKS caller %s is not mapped to a user", arn)
        return user

    def authorize(self, user: User, attrs: Attributes) -> None:
        for binding in self.bindings:
            if binding.applies_to(user, attrs.namespace) and any(
                rule.allows(attrs) for rule in binding.rules
            ):
                return
        raise forbidden_error(user, attrs)


def forbidden_error(user: User, attrs: Attributes) -> ApiError:
    """responsewriters.ForbiddenStatusError with the RBAC authorizer's empty reason."""
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    if attrs.namespace:
        why = (
            f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.group}" in the namespace "{attrs.namespace}"'
        )
    else:
        why = (
            f'User "{user.name}" cannot {attrs.verb} resource "{resource}" in API group '
            f'"{attrs.group}" at the cluster scope'
        )
    return forbidden(attrs.resource, attrs.group, attrs.name, why)


__all__ = ["Attributes", "Authorizer", "User", "unauthorized"]
