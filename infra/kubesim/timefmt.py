"""Kubernetes time formats: metav1.Time (RFC 3339, seconds) and metav1.MicroTime (exactly 6 digits).

Parsing follows Go's `time.Parse` closely enough to reject what kube-apiserver rejects: a
MicroTime needs exactly six fractional digits and a zone, so `datetime.isoformat()` of a value
whose microsecond is 0 (no fraction) fails there as it does here.
"""

from __future__ import annotations

import functools
import re
from datetime import UTC, datetime, timedelta, timezone

RFC3339 = "2006-01-02T15:04:05Z07:00"
RFC3339_MICRO = "2006-01-02T15:04:05.000000Z07:00"

_BASE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})")
_ZONE = re.compile(r"^(Z|[+-]\d{2}:\d{2})$")


def rfc3339(ts: float) -> str:
    return _rfc3339(ts)


@functools.lru_cache(maxsize=8192)  # a scenario's pods share their few timestamps
def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def micro(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class TimeFormatError(ValueError):
    pass


def _zone(text: str) -> timezone:
    if text == "Z":
        return UTC
    sign = 1 if text[0] == "+" else -1
    return timezone(sign * timedelta(hours=int(text[1:3]), minutes=int(text[4:6])))


def _base(value: str, layout: str) -> tuple[datetime, str]:
    match = _BASE.match(value)
    if not match:
        raise TimeFormatError(
            f'parsing time "{value}" as "{layout}": cannot parse "{value}" as "2006"'
        )
    try:
        year, month, day, hour, minute, second = (int(g) for g in match.groups())
        moment = datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise TimeFormatError(f'parsing time "{value}": {exc}') from exc
    return moment, value[match.end() :]


def parse_time(value: str) -> float:
    """metav1.Time: RFC 3339 with an optional fraction of any length."""
    moment, rest = _base(value, RFC3339)
    fraction = 0.0
    if rest.startswith((".", ",")):
        digits = re.match(r"^[.,](\d+)", rest)
        if digits:
            fraction = float("0." + digits.group(1))
            rest = rest[digits.end() :]
    if not _ZONE.match(rest):
        raise TimeFormatError(
            f'parsing time "{value}" as "{RFC3339}": cannot parse "{rest}" as "Z07:00"'
        )
    return moment.replace(tzinfo=_zone(rest)).timestamp() + fraction


def parse_micro(value: str) -> float:
    """metav1.MicroTime: exactly six fractional digits, then Z or an offset."""
    moment, rest = _base(value, RFC3339_MICRO)
    digits = re.match(r"^\.(\d{6})", rest)
    if not digits:
        raise TimeFormatError(
            f'parsing time "{value}" as "{RFC3339_MICRO}": cannot parse "{rest}" as ".000000"'
        )
    zone = rest[digits.end() :]
    if not _ZONE.match(zone):
        raise TimeFormatError(
            f'parsing time "{value}" as "{RFC3339_MICRO}": cannot parse "{zone}" as "Z07:00"'
        )
    return moment.replace(tzinfo=_zone(zone)).timestamp() + int(digits.group(1)) / 1e6
