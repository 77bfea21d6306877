"""Checks shared by the input models (API bodies, customer files, the CLI)."""

from __future__ import annotations

import math
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


def storable(value: Any) -> Any:
    """Refuse what PostgreSQL cannot store, as bad input (422, a named line) rather than a
    database error later: NUL (0x00) in text, and NaN/Infinity (which Python's and
    pydantic's JSON readers accept) anywhere in JSON data. SQLite would take both; the
    same input must mean the same thing on either backend."""
    _check(value)
    return value


def _check(value: Any) -> None:
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("must not contain NUL (\\u0000) characters")
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
