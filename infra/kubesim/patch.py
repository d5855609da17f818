"""PATCH bodies: JSON merge patch (RFC 7386), a strategic-merge subset, and JSON patch (RFC 6902).

Strategic merge is approximated: objects merge like a merge patch, and lists whose items are all
objects with a `name` (containers, env, volumes, ports with names) merge item by item on that key,
which covers what kubectl and client libraries send for Deployments.
"""

from __future__ import annotations

import copy
from typing import Any

from infra.kubesim.status import ApiError, bad_request, unsupported_media_type

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
ACCEPTED = [JSON_PATCH, MERGE, STRATEGIC]


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _named_list(value: Any) -> bool:
    return (
        isinstance(value, list)
        and bool(value)
        and all(isinstance(item, dict) and "name" in item for item in value)
    )


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # directives ($patch, $retainKeys, $setElementOrder) are not modelled
        if value is None:
            result.pop(key, None)
        elif _named_list(value) and _named_list(result.get(key)):
            merged = [copy.deepcopy(item) for item in result[key]]
            index = {item["name"]: i for i, item in enumerate(merged)}
            for item in value:
                if item.get("$patch") == "delete":
                    merged = [m for m in merged if m["name"] != item["name"]]
                    index = {m["name"]: i for i, m in enumerate(merged)}
                elif item["name"] in index:
                    merged[index[item["name"]]] = strategic_merge_patch(
                        merged[index[item["name"]]], item
                    )
                else:
                    merged.append(strategic_merge_patch({}, item))
                    index[item["name"]] = len(merged) - 1
            result[key] = merged
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str]) -> tuple[Any, str]:
    current = doc
    for part in parts[:-1]:
        if isinstance(current, list):
            current = current[int(part)]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            raise _missing("/" + "/".join(parts))
    return current, parts[-1]


def _missing(path: str) -> ApiError:
    return ApiError(
        422,
        "Invalid",
        f"the server rejected our request due to an error in our request: "
        f"doc is missing path: {path!r}",
        {},
    )


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request("json patch operation is missing 'op' or 'path'")
        parts = _pointer(op["path"])
        kind = op["op"]
        try:
            if kind == "test":
                if _resolve(doc, parts) != op.get("value"):
                    raise ApiError(
                        422,
                        "Invalid",
                        f"the server rejected our request due to an error in our "
                        f"request: testing value {op['path']} failed",
                        {},
                    )
                continue
            if kind in ("copy", "move"):
                value = copy.deepcopy(_resolve(doc, _pointer(op["from"])))
                if kind == "move":
                    doc = _remove(doc, _pointer(op["from"]))
                doc = _add(doc, parts, value)
            elif kind == "add":
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            elif kind == "remove":
                doc = _remove(doc, parts)
            elif kind == "replace":
                _resolve(doc, parts)
                doc = _add(_remove(doc, parts), parts, copy.deepcopy(op.get("value")))
            else:
                raise bad_request(f"Unexpected kind: {kind}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise _missing(op["path"]) from exc
    return doc


def _resolve(doc: Any, parts: list[str]) -> Any:
    current = doc
    for part in parts:
        current = current[int(part)] if isinstance(current, list) else current[part]
    return current


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent, last = _parent(doc, parts)
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent, last = _parent(doc, parts)
    if isinstance(parent, list):
        del parent[int(last)]
    else:
        del parent[last]
    return doc


def apply(content_type: str, target: dict[str, Any], body: Any) -> dict[str, Any]:
    media = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media == JSON_PATCH:
        result = json_patch(target, body)
    elif media == MERGE:
        if not isinstance(body, dict):
            raise bad_request(
                "json: cannot unmarshal array into Go value of type map[string]interface {}"
            )
        result = merge_patch(target, body)
    elif media == STRATEGIC:
        if not isinstance(body, dict):
            raise bad_request(
                "json: cannot unmarshal array into Go value of type map[string]interface {}"
            )
        result = strategic_merge_patch(target, body)
    else:
        raise unsupported_media_type(content_type, ACCEPTED)
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce an object")
    return result


__all__ = ["ACCEPTED", "apply", "json_patch", "merge_patch"]
