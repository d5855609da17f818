"""`Status` objects shaped as kube-apiserver writes them (k8s.io/apimachinery/pkg/api/errors).

Each constructor mirrors the Go function of the same name, so messages, reasons and details match
byte for byte what the real client receives. Empty detail fields are omitted (`omitempty`).
"""

from __future__ import annotations

from typing import Any

CORE = ""
APPS = "apps"
POLICY = "policy"
COORDINATION = "coordination.k8s.io"
EVENTS = "events.k8s.io"
AUTOSCALING = "autoscaling"

OPTIMISTIC_LOCK_MESSAGE = (
    "the object has been modified; please apply your changes to the latest version and try again"
)


def qualified(resource: str, group: str) -> str:
    """`schema.GroupResource.String()`: `pods`, `deployments.apps`, `leases.coordination.k8s.io`."""
    return f"{resource}.{group}" if group else resource


def quote(value: str) -> str:
    """Go's %q for the plain names that appear in messages."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


class ApiError(Exception):
    """A failure answered with a `Status` body and the status code it carries."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
        }
        if self.reason:
            status["reason"] = self.reason
        if self.details is not None:
            status["details"] = self.details
        status["code"] = self.code
        return status


def details(
    name: str = "",
    group: str = "",
    kind: str = "",
    causes: list[dict[str, str]] | None = None,
    retry_after: int = 0,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if name:
        out["name"] = name
    if group:
        out["group"] = group
    if kind:
        out["kind"] = kind
    if causes:
        out["causes"] = causes
    if retry_after:
        out["retryAfterSeconds"] = retry_after
    return out


def success(code: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    status: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}}
    status["status"] = "Success"
    if extra:
        status.update(extra)
    status["code"] = code
    return status


def not_found(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        404,
        "NotFound",
        f"{qualified(resource, group)} {quote(name)} not found",
        details(name=name, group=group, kind=resource),
    )


def already_exists(resource: str, group: str, name: str) -> ApiError:
    return ApiError(
        409,
        "AlreadyExists",
        f"{qualified(resource, group)} {quote(name)} already exists",
        details(name=name, group=group, kind=resource),
    )


def conflict(resource: str, group: str, name: str, why: str) -> ApiError:
    return ApiError(
        409,
        "Conflict",
        f"Operation cannot be fulfilled on {qualified(resource, group)} {quote(name)}: {why}",
        details(name=name, group=group, kind=resource),
    )


def forbidden(resource: str, group: str, name: str, why: str) -> ApiError:
    if not resource:
        message = f"forbidden: {why}"
    elif not name:
        message = f"{qualified(resource, group)} is forbidden: {why}"
    else:
        message = f"{qualified(resource, group)} {quote(name)} is forbidden: {why}"
    return ApiError(403, "Forbidden", message, details(name=name, group=group, kind=resource))


def unauthorized() -> ApiError:
    # The authentication filter writes this body: no details (responsewriters.Unauthorized).
    return ApiError(401, "Unauthorized", "Unauthorized")


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def invalid(kind: str, group: str, name: str, causes: list[dict[str, str]]) -> ApiError:
    """`NewInvalid`: causes are {"reason": type, "message": body, "field": path}."""
    qualified_kind = f"{kind}.{group}" if group else kind
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    message = f"{qualified_kind} {quote(name)} is invalid"
    if causes:
        message += f": {summary}"
    return ApiError(
        422, "Invalid", message, details(name=name, group=group, kind=kind, causes=causes)
    )


def field_required(path: str, detail: str = "") -> dict[str, str]:
    body = "Required value" + (f": {detail}" if detail else "")
    return {"reason": "FieldValueRequired", "message": body, "field": path}


def field_invalid(
    path: str, value: object, detail: str, shown: str | None = None
) -> dict[str, str]:
    """field.Invalid; `shown` overrides how the value prints (Go's %#v, e.g. 0x0 for uint64 0)."""
    if shown is None:
        shown = quote(value) if isinstance(value, str) else str(value)
    return {
        "reason": "FieldValueInvalid",
        "message": f"Invalid value: {shown}: {detail}",
        "field": path,
    }


def too_many_requests(message: str, retry_after: int, causes: list[dict[str, str]]) -> ApiError:
    headers = {"Retry-After": str(retry_after)} if retry_after > 0 else {}
    return ApiError(
        429,
        "TooManyRequests",
        message,
        details(causes=causes, retry_after=retry_after),
        headers,
    )


def expired_continue() -> ApiError:
    """410 Gone for a `continue` token older than etcd's compaction (storage.NewResourceExpired)."""
    return ApiError(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You "
        "can start a new list without the continue parameter, or use the continue token in this "
        "response to retrieve the remainder of the results. Continuing with the provided token "
        "results in an inconsistent list - objects that were created, modified, or deleted "
        "between the time the first chunk was returned and now may show up in the list.",
        details(),
    )


def internal_error(why: str) -> ApiError:
    return ApiError(
        500,
        "InternalError",
        f"Internal error occurred: {why}",
        details(causes=[{"message": why}]),
    )


def method_not_supported(resource: str, group: str, action: str) -> ApiError:
    return ApiError(
        405,
        "MethodNotAllowed",
        f"{action} is not supported on resources of kind {quote(qualified(resource, group))}",
        details(group=group, kind=resource),
    )


def unsupported_media_type(content_type: str, accepted: list[str]) -> ApiError:
    return ApiError(
        415,
        "UnsupportedMediaType",
        f"the body of the request was in an unknown format - accepted media types include: "
        f"{', '.join(accepted)}",
        details(),
    )


# NewGenericServerResponse: what the server says for a bare status code (no resource named).
GENERIC = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    409: ("Conflict", "the server reported a conflict"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: (
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
    ),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, "
        "but may still be processing the request",
    ),
}


def generic(code: int, server_message: str = "", retry_after: int = 0) -> ApiError:
    reason, message = GENERIC.get(code, ("", ""))
    if not reason and code >= 500:
        reason = "InternalError"
        message = (
            f"an error on the server ({quote(server_message)}) has prevented the request "
            "from succeeding"
        )
    headers = {"Retry-After": str(retry_after)} if retry_after > 0 else {}
    return ApiError(code, reason, message, details(retry_after=retry_after), headers)
