"""Times as people read them — the one place the CLI's views format an instant or a span.

JSON keeps ISO instants (`iso`); views show an instant in a named time zone
(`2026-12-02 09:00 Europe/Berlin`), near ones by the clock (`09:00`, `tomorrow 09:00`),
and relative times where people scan lists (`3 h ago`, `in 2 d`). Spans read in days,
hours, minutes and seconds, two units at most (`2 d 23 h`). Stored times are naive UTC;
every function here accepts naive (taken as UTC) or aware instants.

A rehearsal's instants are mapped to campaign time (clock.RunClock) before they get here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from omnicascade.clock import RunClock
from omnicascade.validation import zone_or_none

UNITS = (("d", 86_400), ("h", 3_600), ("min", 60), ("s", 1))


def aware(at: datetime) -> datetime:
    """`at` as an aware instant; naive means UTC (as stored)."""
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at


def _shown(at: datetime, zone: tzinfo) -> datetime:
    """`at` in `zone`, to the nearest second: a rehearsal's campaign instant comes back
    from the wall clock a few milliseconds off (09:00 must not read 08:59)."""
    return (aware(at) + timedelta(microseconds=500_000)).astimezone(zone)


def parse_iso(text: str | None) -> datetime | None:
    """An ISO instant of the JSON shapes (`…Z` or with an offset) as an aware datetime."""
    if not text:
        return None
    return aware(datetime.fromisoformat(text.replace("Z", "+00:00")))


def zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


def span(delta: timedelta, units: int = 2) -> str:
    """A duration for people, floored to its `units` largest units: `2 d 23 h`, `3 h 5 min`,
    `45 s`; below a second `0 s`. Negative spans read as their size."""
    left = int(abs(delta.total_seconds()))
    parts: list[str] = []
    for name, size in UNITS:
        n, left = divmod(left, size)
        if n:
            parts.append(f"{n} {name}")
        elif parts:  # a zero right after the largest unit: `2 d`, never `2 d 5 min`
            break
        if len(parts) == units:
            break
    return " ".join(parts) or "0 s"


def relative(at: datetime, now: datetime) -> str:
    """`3 h ago`, `in 2 d`, `just now` (within a second): one unit, for scanning lists."""
    delta = aware(at) - aware(now)
    if abs(delta) < timedelta(seconds=1):
        return "just now"
    text = span(delta, units=1)
    return f"in {text}" if delta > timedelta(0) else f"{text} ago"


def local(at: datetime, zone: tzinfo, *, seconds: bool = False) -> str:
    """`2026-12-02 09:00` in `zone` (the caller names the zone once, e.g. in a heading)."""
    return _shown(at, zone).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def moment(at: datetime, zone: tzinfo, now: datetime) -> str:
    """An instant with its zone named, by the clock when near: `09:00 Europe/Berlin` (today
    there), `tomorrow 09:00 Europe/Berlin`, `Wed 9 Dec 09:00 Europe/Berlin` (within a week),
    else `2027-01-05 09:00 Europe/Berlin`."""
    here = _shown(at, zone)
    days = (here.date() - _shown(now, zone).date()).days
    if days == 0:
        text = here.strftime("%H:%M")
    elif days == 1:
        text = here.strftime("tomorrow %H:%M")
    elif days == -1:
        text = here.strftime("yesterday %H:%M")
    elif abs(days) < 7:
        text = f"{here:%a} {here.day} {here:%b %H:%M}"
    else:
        text = here.strftime("%Y-%m-%d %H:%M")
    return f"{text} {zone_name(zone)}"


def zone_of(name: str | None) -> tzinfo:
    """The zone a JSON shape names (`customer.zone`), UTC when absent or unknown."""
    return zone_or_none(name) or UTC


def clock_from(rehearsal: dict[str, Any] | None) -> RunClock | None:
    """The RunClock a JSON shape's `rehearsal` object describes (None for a live run)."""
    if not rehearsal:
        return None
    started = parse_iso(rehearsal.get("started_at"))
    if started is None:
        return None
    return RunClock(started.astimezone(UTC).replace(tzinfo=None), float(rehearsal["scale"]))
