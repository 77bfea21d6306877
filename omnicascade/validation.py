"""Checks shared by the input models (API bodies, customer files, the CLI)."""

from __future__ import annotations

import math
from typing import Any


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
