"""Durations as marketers write them: `90s`, `15m`, `24h`, `3d` (and combinations: `1h30m`)."""

from __future__ import annotations

import re

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
# ASCII digits only: `\d` and int() also take other scripts' digits (١٢h, ７d).
_PART = re.compile(r"([0-9]+)([smhdw])")
_WHOLE = re.compile(r"^(?:[0-9]+[smhdw])+$")
MAX_SECONDS = 3650 * 86400


def parse_duration(value: object) -> int:
    """Return whole seconds, or raise ValueError with a plain-words reason."""
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 15m, 24h or 3d")
    if isinstance(value, int):
        if value == 0:
            return 0
        raise ValueError(f"{value} has no unit; write e.g. "
                         f"{value}s, {value}m, {value}h or {value}d")
    text = str(value).strip().lower().replace(" ", "")
    if text == "0":
        return 0
    if not _WHOLE.match(text):
        raise ValueError(f"{value!r} is not a duration; write e.g. 90s, 15m, 24h or 3d")
    try:
        seconds = sum(int(n) * _UNITS[u] for n, u in _PART.findall(text))
    except ValueError:  # more digits than int() takes
        seconds = MAX_SECONDS + 1
    if seconds > MAX_SECONDS:
        # Timers, timedelta and the database all have limits; nobody means a wait this long.
        raise ValueError(f"{value!r} is too long; durations are at most 3650d (10 years)")
    return seconds


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds == 0:
        return "0s"
    out = []
    for unit in ("d", "h", "m", "s"):
        size = _UNITS[unit]
        if seconds >= size:
            out.append(f"{seconds // size}{unit}")
            seconds %= size
    return "".join(out)
