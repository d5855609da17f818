"""Label and field selectors with the grammar of k8s.io/apimachinery/pkg/labels and /fields."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from infra.kubesim.status import ApiError, bad_request

_KEY = re.compile(
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"
)
_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if not present or value is None:
            return False
        try:
            number = int(value)
        except ValueError:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound


LabelSelector = list[Requirement]


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are not inside parentheses."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def _check_key(key: str) -> None:
    if not _KEY.match(key) or len(key.rsplit("/", maxsplit=1)[-1]) > 63:
        raise bad_request(
            f"unable to parse requirement: key: Invalid value: {key!r}: name part must consist "
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise bad_request(
            f"unable to parse requirement: values[0]: Invalid value: {value!r}: a valid label "
            "must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
            "and must start and end with an alphanumeric character"
        )


_SET = re.compile(r"^\s*(?P<key>[^\s!=<>()]+)\s+(?P<op>in|notin)\s*\((?P<values>[^()]*)\)\s*$")
_CMP = re.compile(r"^\s*(?P<key>[^\s!=<>()]+)\s*(?P<op>==|=|!=|>|<)\s*(?P<value>[^\s,()]*)\s*$")


def parse_label_selector(text: str | None) -> LabelSelector:
    """`a=b,c!=d,e in (x,y),f notin (z),g,!h` → requirements (all must hold)."""
    if text is None or not text.strip():
        return []
    requirements: LabelSelector = []
    for raw in _split_top_level(text):
        part = raw.strip()
        if not part:
            raise bad_request(f"found '', expected: identifier in selector {text!r}")
        if match := _SET.match(part):
            key = match["key"]
            values = tuple(v.strip() for v in match["values"].split(",") if v.strip())
            _check_key(key)
            for value in values:
                _check_value(value)
            if not values:
                raise bad_request(
                    f"unable to parse requirement: values: Invalid value: []: for 'in', "
                    f"'notin' operators, values set can't be empty in selector {text!r}"
                )
            requirements.append(Requirement(key, match["op"], values))
        elif match := _CMP.match(part):
            key, op, value = match["key"], match["op"], match["value"]
            _check_key(key)
            if op in ("<", ">"):
                if not re.fullmatch(r"-?\d+", value):
                    raise bad_request(
                        f"unable to parse requirement: values[0]: Invalid value: {value!r}: "
                        "for 'Gt', 'Lt' operators, the value must be an integer"
                    )
                requirements.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
                continue
            _check_value(value)
            requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
        elif part.startswith("!"):
            key = part[1:].strip()
            _check_key(key)
            requirements.append(Requirement(key, "!"))
        elif re.fullmatch(r"[^\s!=<>(),]+", part):
            _check_key(part)
            requirements.append(Requirement(part, "exists"))
        else:
            raise bad_request(f"unable to parse requirement: {part!r} in selector {text!r}")
    return requirements


def matches(selector: LabelSelector, labels: Mapping[str, str] | None) -> bool:
    labels = labels or {}
    return all(r.matches(labels) for r in selector)


def from_label_selector_object(obj: Mapping[str, Any] | None) -> LabelSelector | None:
    """metav1.LabelSelector {matchLabels, matchExpressions} → requirements; None matches nothing."""
    if obj is None:
        return None
    requirements: LabelSelector = [
        Requirement(k, "=", (str(v),)) for k, v in sorted((obj.get("matchLabels") or {}).items())
    ]
    for expr in obj.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(
            expr.get("operator", "")
        )
        if op is None:
            raise ValueError(f"unknown selector operator {expr.get('operator')!r}")
        requirements.append(Requirement(expr["key"], op, tuple(expr.get("values") or ())))
    return requirements


# ---------------------------------------------------------------- field selectors

FieldGetter = Callable[[Mapping[str, Any]], str]


def field_getter(path: str) -> FieldGetter:
    keys = path.split(".")

    def getter(obj: Mapping[str, Any]) -> str:
        current: Any = obj
        for key in keys:
            if not isinstance(current, Mapping):
                return ""
            current = current.get(key)
        if current is None:
            return ""
        if isinstance(current, bool):
            return "true" if current else "false"
        return str(current)

    return getter


# The fields kube-apiserver indexes for pods (pkg/registry/core/pod/strategy.go ToSelectableFields).
POD_FIELDS: dict[str, FieldGetter] = {
    name: field_getter(name)
    for name in (
        "metadata.name",
        "metadata.namespace",
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    )
}
OBJECT_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": field_getter("metadata.name"),
    "metadata.namespace": field_getter("metadata.namespace"),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    negate: bool
    value: str


FieldSelector = list[FieldRequirement]


def parse_field_selector(text: str | None, supported: Mapping[str, FieldGetter]) -> FieldSelector:
    if text is None or not text.strip():
        return []
    out: FieldSelector = []
    for raw in text.split(","):
        part = raw.strip()
        match = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", part)
        if not match:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = match.groups()
        if field not in supported:
            raise bad_request(f"field label not supported: {field}")
        out.append(FieldRequirement(field, op == "!=", value.strip()))
    return out


def field_matches(
    selector: FieldSelector, obj: Mapping[str, Any], supported: Mapping[str, FieldGetter]
) -> bool:
    for req in selector:
        actual = supported[req.field](obj)
        if (actual == req.value) == req.negate:
            return False
    return True


__all__ = [
    "ApiError",
    "FieldSelector",
    "LabelSelector",
    "field_matches",
    "from_label_selector_object",
    "matches",
    "parse_field_selector",
    "parse_label_selector",
]
