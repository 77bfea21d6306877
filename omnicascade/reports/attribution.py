"""Last-touch attribution: each conversion is credited to the last cascade message that
went out to that customer in this run at or before the moment of conversion.

Conversions with no such message are kept apart, by why: the customer was in the holdout,
or bought before the first message went out (e.g. in the look-back window, or while every
step so far was skipped)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from omnicascade.reports.data import Member, Send
from omnicascade.reports.money import Currencies, Revenue, revenue_fields
from omnicascade.reports.quantiles import percentiles
from omnicascade.vocabulary import HOLDOUT, Phase, step_label

HOUR = 3600.0
StepKey = tuple[int, str, int, str]  # (variant order, variant, index, channel)


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


def attribution(members: list[Member], cur: Currencies | None = None,
                order: list[str] | None = None) -> dict[str, Any]:
    """Conversions by channel and by step (and variant: step 1 is email in one variant and
    SMS in another), the ones with no prior message, and the time from message (and from
    enrollment) to conversion, in campaign hours. `order`: the variants' order."""
    cur = cur or Currencies()
    rank = {n: i for i, n in enumerate(order or [])}
    by_channel: dict[str, dict[str, Any]] = {}
    by_step: dict[StepKey, dict[str, Any]] = {}
    revenue: dict[Any, Revenue] = defaultdict(Revenue)
    waits_channel: dict[str, list[float]] = defaultdict(list)
    waits_step: dict[StepKey, list[float]] = defaultdict(list)
    since_message: list[float] = []
    since_enrollment: list[float] = []
    none: dict[str, dict[str, Any]] = {HOLDOUT: {"conversions": 0},
                                       "before_first_message": {"conversions": 0}}
    for m in members:
        if not m.converted:
            continue
        h = hours_since_enrollment(m)
        if h is not None:
            since_enrollment.append(max(h, 0.0))
        send = credited_send(m)
        if send is None:
            reason = no_prior_message_reason(m)
            none[reason]["conversions"] += 1
            revenue[reason].add(m.amount, cur.of(m.currency))
            continue
        wait = hours_since_message(m, send)
        since_message.append(wait)
        ch = by_channel.setdefault(send.channel, {"conversions": 0})
        ch["conversions"] += 1
        revenue[send.channel].add(m.amount, cur.of(m.currency))
        waits_channel[send.channel].append(wait)
        key = (rank.get(m.variant, len(rank)), m.variant, send.index, send.channel)
        st = by_step.setdefault(key, {"index": send.index, "label": step_label(send.index),
                                      "variant": m.variant, "channel": send.channel,
                                      "conversions": 0})
        st["conversions"] += 1
        revenue[key].add(m.amount, cur.of(m.currency))
        waits_step[key].append(wait)
    for name, row in by_channel.items():
        row.update(revenue_fields(revenue[name], cur))
        row["hours_to_convert"] = percentiles(waits_channel[name])
    for key, row in by_step.items():
        row.update(revenue_fields(revenue[key], cur))
        row["hours_to_convert"] = percentiles(waits_step[key])
    for name, row in none.items():
        row.update(revenue_fields(revenue[name], cur))
    attributed = sum(r["conversions"] for r in by_channel.values())
    return {"attributed": attributed,
            "by_channel": dict(sorted(by_channel.items())),
            "by_step": [by_step[k] for k in sorted(by_step)],
            "no_prior_message": none,
            "hours_to_convert": {"since_message": percentiles(since_message),
                                 "since_enrollment": percentiles(since_enrollment)}}
