"""Quiet hours in the customer's own time zone, DST-safe (zoneinfo).

Time zone: customer.timezone → else the region of their phone number → else the
campaign's `timezone:` → else UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
from phonenumbers import timezone as phone_tz

from omnicascade.validation import zone_or_none

_zone = zone_or_none


def customer_zone(tz: str | None, phone: str | None, campaign_tz: str | None) -> ZoneInfo:
    zone = _zone(tz)
    if zone is None and phone:
        try:
            zones = phone_tz.time_zones_for_number(phonenumbers.parse(phone, None))
            zone = _zone(zones[0]) if zones and zones[0] != "Etc/Unknown" else None
        except phonenumbers.NumberParseException:
            zone = None
    return zone or _zone(campaign_tz) or ZoneInfo("UTC")


def _clock(value: str) -> time:
    h, m = value.split(":")
    return time(int(h), int(m))


def _at(day: datetime, clock: time, zone: ZoneInfo) -> datetime:
    """The instant of `clock` on `day`'s local date; a wall time skipped by a DST jump
    resolves to the instant just after the gap (fold=0 semantics, normalised via UTC)."""
    local = datetime(day.year, day.month, day.day, clock.hour, clock.minute, tzinfo=zone)
    return local.astimezone(UTC).astimezone(zone)


def quiet_until(now: datetime, zone: ZoneInfo, start: str, end: str) -> datetime | None:
    """If `now` (aware) falls in the quiet window, the UTC instant it ends; else None."""
    s, e = _clock(start), _clock(end)
    if s == e:
        return None
    local = now.astimezone(zone)
    t = local.time().replace(second=0, microsecond=0)
    if s < e:  # same-day window, e.g. 12:00–14:00
        inside = s <= t < e
        end_day = local
    else:  # over midnight, e.g. 21:00–09:00
        inside = t >= s or t < e
        end_day = local + timedelta(days=1) if t >= s else local
    if not inside:
        return None
    return _at(end_day, e, zone).astimezone(UTC)
