"""Send-time optimisation (`send_time: best`): the hour of the week a customer engages, and
the one explanation of the choice that preview shows. Pure: the facts (engagement instants
as minutes of the week) are loaded by `send_history.py`; the guard in `decision.py` and
`campaign preview` both call `choose`, so they can never disagree.

The choice, for a step due at `due`: every whole local hour from `due` to `due + max_delay`
(and `due` itself) is a candidate, except those in quiet hours. A candidate scores the
engagements within an hour either side of it on the same weekday (the best hour of the
week) plus those at that time on any day (so a window without the best weekday still
finds the customer's time of day, and one open on a Thursday at 13:00 does not outweigh
six at 21:00 on Tuesdays). The best score wins, the earliest of equals. A customer with
fewer than `min_events` engagements (or none near the window) gets the audience's best
hour on the channel, and without that the step goes out as scheduled.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Literal
from zoneinfo import ZoneInfo

from omnicascade.campaign.durations import format_duration
from omnicascade.campaign.model import QuietHours
from omnicascade.campaign.steps import SendTimePolicy
from omnicascade.customers.quiet_hours import quiet_until

DAY = 1440                # minutes
WEEK = 7 * DAY
SPREAD = 60               # minutes either side of a candidate hour that count for it
NOUNS = {"open": "opens", "click": "clicks", "conversion": "conversions"}
Source = Literal["customer", "audience", "scheduled"]


def week_minute(at: datetime, zone: ZoneInfo) -> int:
    """Minutes since Monday 00:00 in `zone` (an aware instant)."""
    local = at.astimezone(zone)
    return local.weekday() * DAY + local.hour * 60 + local.minute


@dataclass(frozen=True)
class Engagements:
    """Engagement instants as local minutes of the week (each in its own customer's zone),
    with what they were (open, click, conversion)."""
    minutes: tuple[int, ...] = ()
    kinds: frozenset[str] = frozenset()

    def __len__(self) -> int:
        return len(self.minutes)

    @property
    def noun(self) -> str:
        return NOUNS.get(next(iter(self.kinds)), "engagements") if len(self.kinds) == 1 \
            else "engagements"

    @cached_property
    def _week(self) -> list[int]:
        return sorted(m % WEEK for m in self.minutes)

    @cached_property
    def _day(self) -> list[int]:
        return sorted(m % DAY for m in self.minutes)

    def near(self, minute: int, period: int = WEEK) -> int:
        """How many fall in [minute − SPREAD, minute + SPREAD) of the week (or the day)."""
        values = self._week if period == WEEK else self._day
        lo, hi = minute % period - SPREAD, minute % period + SPREAD

        def below(x: int) -> int:
            return bisect_left(values, x)

        total = 0
        if lo < 0:
            total += len(values) - below(period + lo)
            lo = 0
        if hi > period:
            total += below(hi - period)
            hi = period
        return total + below(hi) - below(lo)


@dataclass(frozen=True)
class SendTimeFacts:
    """What the send-time guard decides on, for one step."""
    policy: SendTimePolicy
    channel: str
    mine: Engagements = field(default_factory=Engagements)
    audience: Engagements = field(default_factory=Engagements)   # on this channel
    planned: datetime | None = None  # already deferred to this instant (aware): keep it


@dataclass(frozen=True)
class Choice:
    at: datetime      # aware; `due` itself when sent as scheduled
    source: Source
    why: str          # "21:00 Tue: 6 of 9 opens between 20:00 and 22:00"


def candidates(due: datetime, max_delay_s: int, zone: ZoneInfo) -> Iterator[datetime]:
    """`due`, then every whole local hour up to `due + max_delay`."""
    yield due
    last = due + timedelta(seconds=max_delay_s)
    local = due.astimezone(zone)
    at = local.replace(minute=0, second=0, microsecond=0).astimezone(UTC) + timedelta(hours=1)
    while at <= last:
        yield at
        at += timedelta(hours=1)


def _quiet(at: datetime, zone: ZoneInfo, quiet: QuietHours | None) -> bool:
    return quiet is not None and quiet_until(at, zone, quiet.start, quiet.end) is not None


def _best(events: Engagements, options: Sequence[datetime],
          zone: ZoneInfo) -> tuple[datetime, int, int] | None:
    best: tuple[datetime, int, int] | None = None
    for at in options:
        minute = week_minute(at, zone)
        week, day = events.near(minute), events.near(minute, DAY)
        if day and (best is None or week + day > best[1] + best[2]):
            best = (at, week, day)
    return best


def _clock(minute: int) -> str:
    return f"{minute // 60 % 24:02d}:{minute % 60:02d}"


def _why(at: datetime, zone: ZoneInfo, events: Engagements, week: int, day: int,
         audience: str | None) -> str:
    local = at.astimezone(zone)
    minute = local.hour * 60 + local.minute
    span = f"between {_clock(minute - SPREAD + DAY)} and {_clock(minute + SPREAD)}"
    count = (f"{week} of {len(events)} {events.noun} {span}" if week
             else f"{day} of {len(events)} {events.noun} {span} on any day")
    if audience is not None:
        count = f"audience best hour, {count.replace(span, f'on {audience} {span}')}"
    return f"{local:%H:%M %a}: {count}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def choose(due: datetime, zone: ZoneInfo, facts: SendTimeFacts,
           quiet: QuietHours | None = None) -> Choice:
    """When to send a step due at `due` (aware), and why; see the module's docstring."""
    policy = facts.policy
    options = [at for at in candidates(due, policy.max_delay_s, zone)
               if not _quiet(at, zone, quiet)]
    for source, events in (("customer", facts.mine), ("audience", facts.audience)):
        if len(events) < policy.min_events:
            continue
        best = _best(events, options, zone)
        if best is not None:
            at, week, day = best
            return Choice(at, "customer" if source == "customer" else "audience",
                          _why(at, zone, events, week, day,
                               None if source == "customer" else facts.channel))
    n = len(facts.mine)
    if n < policy.min_events and len(facts.audience) < policy.min_events:
        why = f"as scheduled: only {_plural(n, 'engagement')}" if n \
            else "as scheduled: no engagement recorded yet"
    elif not options:
        why = "as scheduled: every hour within max_delay is in quiet hours"
    else:
        why = (f"as scheduled: no engagement near any hour within "
               f"{format_duration(policy.max_delay_s)}")
    return Choice(due, "scheduled", why)
