"""How the console's templates write numbers, times and statuses — the report's and the
CLI's own words (reports/format.py, reports/when.py, vocabulary.py), as jinja2 filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from omnicascade.clock import now_utc
from omnicascade.reports.format import money, num, pct
from omnicascade.reports.when import aware, local, parse_iso, relative, zone_of
from omnicascade.vocabulary import reason_label

# Status → badge colour class (console.css): live, held, ended well, ended otherwise.
TONE = {"listening": "live", "running": "live", "active": "live", "pending": "live",
        "sent": "good", "converted": "good", "completed": "done", "paused": "held",
        "deferred": "held", "draining": "held", "superseded": "done", "stopped": "bad",
        "failed": "bad", "skipped": "done", "exited": "done", "excluded": "done",
        "unknown": "held"}
LIVE_RUN = frozenset({"listening", "running", "paused", "draining"})


def _instant(value: str | datetime | None) -> datetime | None:
    """An ISO text of the JSON shapes or a stored (naive UTC) datetime, as aware."""
    return parse_iso(value) if isinstance(value, str) or value is None else aware(value)


def ago(value: str | datetime | None) -> str:
    at = _instant(value)
    return relative(at, aware(now_utc())) if at else "–"


def at_zone(value: str | datetime | None, zone: str | None = None) -> str:
    """`2026-12-02 09:00` in `zone` (UTC when none)."""
    at = _instant(value)
    return local(at, zone_of(zone)) if at else "–"


def rate(part: int | None, whole: int | None) -> str:
    return pct(part / whole) if whole and part is not None else "–"


def reasons(counts: dict[str, int] | None) -> str:
    return ", ".join(f"{reason_label(k)} {n}" for k, n in (counts or {}).items()) or "–"


FILTERS: dict[str, Any] = {"ago": ago, "at_zone": at_zone, "pct": pct, "num": num,
                           "money": money, "rate": rate, "reasons": reasons,
                           "reason": reason_label,
                           "tone": lambda status: TONE.get(str(status), "done")}
