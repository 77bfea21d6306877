"""Last-touch attribution: each conversion is credited to the last cascade message that
went out to that customer in this run at or before the moment of conversion.

Conversions with no such message are kept apart, by why: the customer was in the holdout,
or bought before the first message went out (e.g. in the look-back window, or while every
step so far was skipped)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from omnicascade.reports.data import Member, Send
from omnicascade.reports.stats import percentiles
from omnicascade.vocabulary import HOLDOUT, Phase

HOUR = 3600.0


def credited_send(m: Member) -> Send | None:
    """The message this member's conversion is credited to, if any."""
    if m.converted_at is None:
        return None
    best: Send | None = None
    for s in m.sends:
        if s.phase == Phase.CASCADE and s.went_out and s.at <= m.converted_at \
                and (best is None or s.at >= best.at):
            best = s
    return best


def no_prior_message_reason(m: Member) -> str:
    if m.holdout:
        return HOLDOUT
    return "before_first_message"


def hours_since_enrollment(m: Member) -> float | None:
    if m.converted_at is None:
        return None
    return (m.converted_at - m.enrolled_at).total_seconds() / HOUR


def hours_since_message(m: Member, send: Send) -> float:
    assert m.converted_at is not None
    return (m.converted_at - send.at).total_seconds() / HOUR


def attribution(members: list[Member]) -> dict[str, Any]:
    """Conversions by channel and by step, the ones with no prior message, and the time
    from message (and from enrollment) to conversion, in hours."""
    by_channel: dict[str, dict[str, Any]] = {}
    by_step: dict[tuple[int, str], dict[str, Any]] = {}
    waits_channel: dict[str, list[float]] = defaultdict(list)
    waits_step: dict[tuple[int, str], list[float]] = defaultdict(list)
    since_message: list[float] = []
    since_enrollment: list[float] = []
    none: dict[str, dict[str, Any]] = {HOLDOUT: {"conversions": 0, "revenue": 0.0},
                                       "before_first_message": {"conversions": 0,
                                                                "revenue": 0.0}}
    for m in members:
        if not m.converted:
            continue
        h = hours_since_enrollment(m)
        if h is not None:
            since_enrollment.append(max(h, 0.0))
        send = credited_send(m)
        if send is None:
            bucket = none[no_prior_message_reason(m)]
            bucket["conversions"] += 1
            bucket["revenue"] += m.revenue
            continue
        wait = hours_since_message(m, send)
        since_message.append(wait)
        ch = by_channel.setdefault(send.channel, {"conversions": 0, "revenue": 0.0})
        ch["conversions"] += 1
        ch["revenue"] += m.revenue
        waits_channel[send.channel].append(wait)
        key = (send.index, send.channel)
        st = by_step.setdefault(key, {"index": send.index, "channel": send.channel,
                                      "conversions": 0, "revenue": 0.0})
        st["conversions"] += 1
        st["revenue"] += m.revenue
        waits_step[key].append(wait)
    for name, row in by_channel.items():
        row["revenue"] = round(row["revenue"], 2)
        row["hours_to_convert"] = percentiles(waits_channel[name])
    for key, row in by_step.items():
        row["revenue"] = round(row["revenue"], 2)
        row["hours_to_convert"] = percentiles(waits_step[key])
    for row in none.values():
        row["revenue"] = round(row["revenue"], 2)
    attributed = sum(r["conversions"] for r in by_channel.values())
    return {"attributed": attributed,
            "by_channel": dict(sorted(by_channel.items())),
            "by_step": [by_step[k] for k in sorted(by_step)],
            "no_prior_message": none,
            "hours_to_convert": {"since_message": percentiles(since_message),
                                 "since_enrollment": percentiles(since_enrollment)}}
