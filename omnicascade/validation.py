"""Checks shared by the input models (API bodies, customer files, the CLI)."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(value: Any) -> Any:
    """Refuse what PostgreSQL cannot store, as bad input (422, a named line) rather than a
    database error later: NUL (0x00) in text, lone surrogates (JSON's "\\ud800" escapes
    without their pair: not Unicode, so no database driver can encode them) and
    NaN/Infinity (which Python's and pydantic's JSON readers accept) anywhere in JSON
    data. SQLite would take some of them; the same input must mean the same thing on
    either backend."""
    _check(value)
    return value


def unstorable(value: Any) -> str | None:
    """Why `value` (text, numbers, nested lists and dicts) cannot be stored, or None."""
    try:
        _check(value)
    except ValueError as exc:
        return str(exc)
    return None


def _check(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
        if _SURROGATE.search(value):
            raise ValueError("must not contain lone surrogates (\\ud800-\\udfff): not Unicode "
                             "text")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("NaN and Infinity are not JSON numbers")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key)
            _check(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check(item)


def zone_or_none(name: str | None) -> ZoneInfo | None:
    """The IANA zone of that name, or None for a missing or unknown one."""
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: name too long
        return None


def time_zone(value: str | None) -> str | None:
    """Validator for a `timezone` field: None or a known IANA zone name."""
    if value is not None and zone_or_none(value) is None:
        raise ValueError(f"unknown time zone {value!r}; write e.g. Europe/Berlin")
    return value


def utc_naive(value: datetime | None) -> datetime | None:
    """Validator for a time stamp: stored as naive UTC (a naive input is taken as UTC).
    Refuses one that has no UTC equivalent, e.g. 0001-01-01T00:00:00+01:00."""
    if value is None or value.tzinfo is None:
        return value
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except (OverflowError, ValueError):
        raise ValueError("is out of range once converted to UTC (years 1 to 9999)") from None
