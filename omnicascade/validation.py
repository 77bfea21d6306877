"""Checks shared by the input models (API bodies, customer files, the CLI)."""

from __future__ import annotations

import math
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from omnicascade.clock import now_utc

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


# Event names (a trigger's, a conversion's, an exit's; the API's `type`): one rule for the
# YAML and the API, so every name a campaign can wait for can also be sent, and no name is
# longer than the columns that store it (runs.trigger_event and the events' `type`: 128).
EVENT_NAME_MAX = 100
_EVENT_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9_.:/ -]*[A-Za-z0-9_.:/-])?", re.ASCII)
EVENT_NAME_RULE = (f"1 to {EVENT_NAME_MAX} ASCII letters, digits and _ . : / - (spaces "
                   f"inside), starting with a letter or digit, e.g. order_placed")


def event_name_problem(name: object) -> str | None:
    """Why `name` is not an event name, or None. Never echoes the name: it may be huge."""
    if not isinstance(name, str):
        return f"an event name is text ({EVENT_NAME_RULE})"
    if not name:
        return "an event name must not be empty"
    if len(name) > EVENT_NAME_MAX:
        return f"an event name is at most {EVENT_NAME_MAX} characters (this one has {len(name)})"
    if not _EVENT_NAME.fullmatch(name):
        return f"not an event name: use {EVENT_NAME_RULE}"
    return None


def event_name(value: str) -> str:
    """Validator for an event `type` (API bodies)."""
    problem = event_name_problem(value)
    if problem:
        raise ValueError(problem)
    return value


# A receiver reports what already happened: a little clock skew is fine, a date years ahead
# is not (it would sort first in every "most recent engagement" read for ever).
MAX_CLOCK_SKEW_S = 86_400


def happened(value: datetime | None) -> datetime | None:
    """Validator for the time stamp of something that has already happened (feedback on a
    message): utc_naive's range, and at most MAX_CLOCK_SKEW_S ahead of this server's clock."""
    value = utc_naive(value)
    if value is not None and value > now_utc() + \
            timedelta(seconds=MAX_CLOCK_SKEW_S):
        raise ValueError("is in the future (more than a day ahead of the server's clock); "
                         "send the time it happened")
    return value


MAX_PROMO_CODE = 64  # enrollments.promo_code, conversions.promo_code


def normal_code(text: str) -> str:
    """A promo code as it is generated, stored, looked up and redeemed (issue 23): customers
    type codes back in any case, and phones send full-width or composed letters, so a code
    is its NFKC form, upper case, without surrounding white space. NFKC again after
    upper-casing: a few capitals exist only decomposed (ΐ → Ϊ́); it keeps the form stable
    (normal_code(normal_code(x)) == normal_code(x))."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).upper()).strip()
