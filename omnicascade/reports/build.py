"""`omnicascade report RUN_ID`: every number of the report as one JSON-able dict.
The terminal tables, the HTML page and the CSV export all render from it.

Money is never mixed (money.py: per currency, a total only by configured rates). Steps are
named from 1 (`label`), and with several variants every per-step row says whose it is
(`variant`). A rehearsal's times and durations are campaign time (data.py maps them) and
the report says it is one (`rehearsal`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from omnicascade.clock import now_utc
from omnicascade.config import Settings
from omnicascade.db.models import Run
from omnicascade.errors import NotFound
from omnicascade.reports.attribution import attribution, credited_send, hours_since_enrollment
from omnicascade.reports.data import Member, RunData, load_run, planned_steps
from omnicascade.reports.experiment import ab_tests, holdout_lift, lift_note
from omnicascade.reports.export import write_csv
from omnicascade.reports.format import iso
from omnicascade.reports.funnel import ended_note, endings, funnel
from omnicascade.reports.money import (
    ZERO,
    Currencies,
    Revenue,
    by_currency,
    money,
    number,
    revenue_of,
)
from omnicascade.reports.quantiles import percentiles
from omnicascade.reports.run_views import status_of
from omnicascade.reports.stats import ALPHA, rate_ci
from omnicascade.reports.unmatched import conversion_events, unmatched_conversions
from omnicascade.vocabulary import HOLDOUT, LIVE_ENROLLMENT, Phase

CURVE_POINTS = 120  # enough for a smooth line, small enough for JSON
# The keys of an `economics.steps` row ("What each step buys").
ECONOMICS_KEYS = ("variant", "phase", "index", "label", "channel", "sent", "cost",
                  "cost_currency", "converted_after", "revenue", "revenue_currency",
                  "revenue_by_currency", "revenue_total", "conversions_without_amount",
                  "cost_per_conversion", "roi")


def load(run_id: str, *, session: Session, settings: Settings) -> RunData:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    data = load_run(run, session=session, settings=settings)
    data.unmatched = unmatched_conversions(run, session=session)
    return data


def variant_summary(members: list[Member], cur: Currencies, alpha: float = ALPHA,
                    holdout: bool = False) -> dict[str, Any]:
    """A variant's rate and money. Messages, cost, cost per conversion and ROI are the
    cascade's; follow-ups after the sale are their own line (`after_conversion`)."""
    converted = [m for m in members if m.converted]
    hours = [max(h, 0.0) for m in converted if (h := hours_since_enrollment(m)) is not None]
    sent = sum(s.went_out for m in members for s in m.sends if s.phase != Phase.FOLLOW_UP)
    follow_ups = sum(s.went_out for m in members for s in m.sends
                     if s.phase == Phase.FOLLOW_UP)
    out = {**rate_ci(len(converted), len(members), alpha),
           "active": sum(m.status in LIVE_ENROLLMENT for m in members), "messages_sent": sent,
           **money(sum((m.cost for m in members), ZERO), revenue_of(members, cur), cur),
           "after_conversion": {"messages": follow_ups, "cost": number(sum(
               (m.follow_up_cost for m in members), ZERO), 4), "cost_currency": cur.cost},
           "hours_to_convert": percentiles(hours), "holdout": holdout}
    if not sent:  # nothing was spent on them: "cost per conversion" would read as free
        out["cost_per_conversion"] = None
    return out


def conversion_curve(members: list[Member]) -> list[list[float]]:
    """Cumulative conversion rate by hours since enrollment: [[hours, rate], …]."""
    n = len(members)
    hours = sorted(max(h, 0.0) for m in members
                   if (h := hours_since_enrollment(m)) is not None)
    if not n:
        return []
    points = [[0.0, 0.0]] + [[round(h, 3), round((i + 1) / n, 6)] for i, h in enumerate(hours)]
    if len(points) > CURVE_POINTS:
        step = (len(points) - 1) / (CURVE_POINTS - 1)
        points = [points[round(i * step)] for i in range(CURVE_POINTS)]
    return points


def _by_channel(treated: list[Member], cur: Currencies) -> dict[str, dict[str, Any]]:
    """Cascade messages, cost and the conversions credited to each channel."""
    messages: Counter[str] = Counter()
    cost: dict[str, Decimal] = defaultdict(Decimal)
    revenue: dict[str, Revenue] = defaultdict(Revenue)
    for m in treated:
        for s in m.sends:
            if s.phase == Phase.CASCADE:
                messages[s.channel] += s.went_out
                cost[s.channel] += s.cost
        credited = credited_send(m)
        if credited is not None:
            revenue[credited.channel].add(m.amount, cur.of(m.currency))
    return {ch: {"messages": messages[ch], "conversions": revenue[ch].conversions,
                 **money(cost[ch], revenue[ch], cur)}
            for ch in sorted(set(cost) | set(revenue))}


def economics(treated: list[Member], rows: list[dict[str, Any]],
              cur: Currencies) -> dict[str, Any]:
    """Revenue and cost of the customers who got the cascade (not the holdout). Follow-ups
    after the sale are their own cost line, outside the cascade's cost per conversion and
    ROI. `rows`: the treated variants' funnel rows."""
    cascade = [r for r in rows if r["phase"] == Phase.CASCADE]
    follow_ups = [r for r in rows if r["phase"] == Phase.FOLLOW_UP]
    rev = revenue_of(treated, cur)
    return {"messages": sum(r["sent"] for r in cascade), "conversions": rev.conversions,
            **money(sum((m.cost for m in treated), ZERO), rev, cur),
            "by_currency": by_currency(rev, cur),
            "after_conversion": {"messages": sum(r["sent"] for r in follow_ups),
                                 "cost": round(sum(r["cost"] for r in follow_ups), 4),
                                 "cost_currency": cur.cost},
            "by_channel": _by_channel(treated, cur),
            "saved_by_engagement": saved_by_engagement(treated, cur),
            "steps": [{k: r[k] for k in ECONOMICS_KEYS} for r in cascade]}


def saved_by_engagement(members: list[Member], cur: Currencies) -> dict[str, Any]:
    """The messages `skip_if` did not send because the customer had engaged with an earlier
    one (reason `engaged`), and what they would have cost at the channels' unit costs."""
    skipped = [s for m in members for s in m.sends if s.engaged_skip]
    return {"messages": len(skipped), "cost": number(sum((s.saved for s in skipped), ZERO), 4),
            "cost_currency": cur.cost}


def build_report(run_id: str, *, session: Session, settings: Settings,
                 alpha: float = ALPHA) -> dict[str, Any]:
    from omnicascade.reports.winner import with_experiment
    data = load(run_id, session=session, settings=settings)
    return with_experiment(compose(data, status_of(run_id, session=session), alpha), run_id,
                           session=session)


def money_notes(data: RunData) -> tuple[list[str], dict[str, Any] | None]:
    """What a reader must know about the run's money, and the rates the report used."""
    cur, notes = data.money, []
    converted = [m for m in data.members if m.converted]
    rev = revenue_of(converted, cur)
    codes = sorted(rev.by_currency)
    used = cur.used(codes)
    missing = [c for c in codes if cur.rate(c) is None]
    if missing and len(codes) > 1:
        notes.append(f"revenue is in several currencies ({', '.join(codes)}) and is shown per "
                     f"currency: without a rate for {', '.join(missing)} there is no total and "
                     f"no ROI across them (OMNICASCADE_FX_RATES, e.g. "
                     f"{missing[0]}=1.08 meaning 1 {missing[0]} = 1.08 {cur.cost})")
    elif missing:
        notes.append(f"revenue is in {missing[0]}, message costs in {cur.cost}: no ROI without "
                     f"a rate (OMNICASCADE_FX_RATES, e.g. {missing[0]}=1.08)")
    if used:
        notes.append(f"totals and ROI convert revenue to {cur.cost} at the configured rates: "
                     + ", ".join(f"1 {c} = {r:g} {cur.cost}" for c, r in used.items()))
    bare = sum(m.amount is not None and not m.currency for m in converted)
    if bare:
        notes.append(f"{bare} conversion amount(s) came without a currency and are counted "
                     f"in {cur.cost}, the shop's currency (OMNICASCADE_COST_CURRENCY)")
    stored = sorted(data.cost_currencies - {cur.cost})
    if stored:  # each cost is stored with its currency: a changed setting shows here
        notes.append(f"some message costs were stored in {', '.join(stored)}, and "
                     f"OMNICASCADE_COST_CURRENCY is now {cur.cost}: they are added up as if "
                     f"in {cur.cost}")
    if rev.without_amount:
        notes.append(f"{rev.without_amount} conversion(s) without an amount: their revenue "
                     f"is unknown (not 0), so ROI is – wherever they count")
    return notes, {"currency": cur.cost, "rates": used} if used else None


def compose(data: RunData, status: str, alpha: float = ALPHA) -> dict[str, Any]:
    cur, clock = data.money, data.clock
    names = data.variants()
    groups = {n: data.of(n) for n in names}
    treated = [m for m in data.members if not m.holdout]
    by_variant = {n: funnel(groups[n], planned_steps(data, n), n, cur) for n in names}
    # every per-step row, variant by variant (the holdout gets no messages: no rows)
    rows = [r for n in names if n != HOLDOUT for r in by_variant[n]]
    currencies = Counter(cur.of(m.currency) for m in data.members
                         if m.converted and m.amount is not None)
    notes, fx = money_notes(data)
    unknown = sum(r["unknown"] for r in rows)
    if unknown:
        notes.append(f"{unknown} message(s) have an unknown outcome (the provider call was "
                     f"interrupted); they are counted as sent and never resent")
    if not any(r["feedback"] for r in rows):
        notes.append("no provider reported delivery, opens or clicks for this run "
                     "(the outbox reports none): those funnel columns are empty")
    if data.unmatched:
        types = ", ".join(conversion_events(data.snapshot))
        notes.append(f"{data.unmatched} conversion(s) of this campaign's types ({types}) came "
                     f"for customer ids nobody knows since the run started: they count for "
                     f"no one (check the customer ids the shop sends)")
    ended = endings((m.status, m.exit_reason) for m in data.members)
    note = ended_note(ended)
    if note:
        notes.append(note)
    conv = rate_ci(sum(m.converted for m in data.members), len(data.members), alpha)
    return {
        "run_id": data.run_id, "campaign": data.campaign, "description": data.description,
        "status": status, "created_at": iso(clock.campaign(data.created_at)),
        "generated_at": iso(now_utc()),  # when it was made: the wall clock, even for rehearsals
        "rehearsal": {"scale": int(clock.scale) if clock.scale.is_integer() else clock.scale,
                      "label": clock.label, "started_at": iso(data.created_at)}
        if clock.rehearsal else None,
        "currency": next(iter(currencies)) if len(currencies) == 1 else None,
        "cost_currency": cur.cost, "fx": fx,
        "enrolled": len(data.members), "converted": conv["converted"],
        "excluded": data.excluded,
        "active": sum(m.status in LIVE_ENROLLMENT for m in data.members),
        "unmatched_conversions": data.unmatched,
        **ended,
        "conversion_rate": conv,
        "variants": {n: variant_summary(groups[n], cur, alpha, holdout=n == HOLDOUT)
                     for n in names},
        # the `runs show --json` keys, same meaning, so a report is a superset of it
        "steps": [r for r in rows if r["phase"] == Phase.CASCADE],
        "after_conversion": [r for r in rows if r["phase"] == Phase.FOLLOW_UP],
        "funnel": {"all": rows, "by_variant": by_variant},
        "attribution": {**attribution(data.members, cur, names),
                        "by_variant": {n: attribution(groups[n], cur, names) for n in names}},
        "experiment": ab_tests(groups, alpha),
        "lift": holdout_lift(groups, alpha, cur),
        "lift_note": lift_note(groups, data.snapshot.get("spec") or {}),
        "economics": economics(treated, rows, cur),
        "conversion_curve": {n: conversion_curve(groups[n]) for n in names},
        "notes": notes,
    }


def export(run_id: str, folder: Path, *, session: Session, settings: Settings) -> list[Path]:
    """`report RUN_ID --csv DIR`: the report's customers, funnel and variants as CSV."""
    data = load(run_id, session=session, settings=settings)
    return write_csv(compose(data, status_of(run_id, session=session)), data, folder)
