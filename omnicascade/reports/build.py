"""`omnicascade report RUN_ID`: every number of the report as one JSON-able dict.
The terminal tables, the HTML page and the CSV export all render from it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from omnicascade.config import Settings
from omnicascade.db.models import Run, utcnow
from omnicascade.errors import NotFound
from omnicascade.reports.attribution import attribution, hours_since_enrollment
from omnicascade.reports.data import Member, RunData, load_run, planned_steps
from omnicascade.reports.experiment import ab_tests, holdout_lift
from omnicascade.reports.export import write_csv
from omnicascade.reports.format import iso
from omnicascade.reports.funnel import ended_note, endings, funnel, money
from omnicascade.reports.runs import status_of
from omnicascade.reports.stats import ALPHA, percentiles, rate_ci
from omnicascade.vocabulary import HOLDOUT, LIVE_ENROLLMENT, Phase

CURVE_POINTS = 120  # enough for a smooth line, small enough for JSON


def load(run_id: str, *, session: Session, settings: Settings) -> RunData:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    return load_run(run, session=session, settings=settings)


def variant_summary(members: list[Member], alpha: float = ALPHA,
                    holdout: bool = False) -> dict[str, Any]:
    converted = [m for m in members if m.converted]
    revenue = sum(m.revenue for m in members)
    cost = sum(m.cost for m in members)
    hours = [max(h, 0.0) for m in converted if (h := hours_since_enrollment(m)) is not None]
    sent = sum(s.went_out for m in members for s in m.sends)
    out = {**rate_ci(len(converted), len(members), alpha),
           "active": sum(m.status in LIVE_ENROLLMENT for m in members), "messages_sent": sent,
           **money(cost, len(converted), revenue),
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


def economics(treated: list[Member], steps: list[dict[str, Any]]) -> dict[str, Any]:
    """Revenue and cost of the customers who got the cascade (not the holdout)."""
    conversions = sum(m.converted for m in treated)
    revenue = sum(m.revenue for m in treated)
    by_channel: dict[str, dict[str, Any]] = {}
    for r in steps:
        c = by_channel.setdefault(r["channel"], {"messages": 0, "cost": 0.0,
                                                 "conversions": 0, "revenue": 0.0})
        c["messages"] += r["sent"]
        c["cost"] += r["cost"]
        c["conversions"] += r["converted_after"]
        c["revenue"] += r["revenue"]
    for c in by_channel.values():
        c.update(money(c["cost"], c["conversions"], c["revenue"]))
    return {"messages": sum(r["sent"] for r in steps),
            **money(sum(m.cost for m in treated), conversions, revenue),
            "conversions": conversions, "by_channel": dict(sorted(by_channel.items())),
            "steps": [{k: r[k] for k in ("phase", "index", "channel", "sent", "cost",
                                         "converted_after", "revenue", "cost_per_conversion",
                                         "roi")} for r in steps]}


def build_report(run_id: str, *, session: Session, settings: Settings,
                 alpha: float = ALPHA) -> dict[str, Any]:
    data = load(run_id, session=session, settings=settings)
    return compose(data, status_of(run_id, session=session), alpha)


def compose(data: RunData, status: str, alpha: float = ALPHA) -> dict[str, Any]:
    names = data.variants()
    groups = {n: data.of(n) for n in names}
    treated = [m for m in data.members if not m.holdout]
    planned = {n: planned_steps(data, n) for n in names}
    by_variant = {n: funnel(groups[n], planned[n]) for n in names}
    union = sorted({p for n in names for p in planned[n]})
    overall = funnel(data.members, union)
    currencies = Counter(m.conversion.currency for m in data.members
                         if m.conversion and m.conversion.currency)
    notes = []
    if len(currencies) > 1:
        notes.append("conversions are in several currencies "
                     f"({', '.join(sorted(currencies))}); revenue adds them up as they are")
    unknown = sum(r["unknown"] for r in overall)
    if unknown:
        notes.append(f"{unknown} message(s) have an unknown outcome (the provider call was "
                     f"interrupted); they are counted as sent and never resent")
    if not any(r["feedback"] for r in overall):
        notes.append("no provider reported delivery, opens or clicks for this run "
                     "(the outbox reports none): those funnel columns are empty")
    ended = endings((m.status, m.exit_reason) for m in data.members)
    note = ended_note(ended)
    if note:
        notes.append(note)
    conv = rate_ci(sum(m.converted for m in data.members), len(data.members), alpha)
    return {
        "run_id": data.run_id, "campaign": data.campaign, "description": data.description,
        "status": status, "created_at": iso(data.created_at),
        "generated_at": iso(utcnow()),
        "currency": next(iter(currencies)) if len(currencies) == 1 else None,
        "enrolled": len(data.members), "converted": conv["converted"],
        "excluded": data.excluded,
        "active": sum(m.status in LIVE_ENROLLMENT for m in data.members),
        **ended,
        "conversion_rate": conv,
        "variants": {n: variant_summary(groups[n], alpha, holdout=n == HOLDOUT)
                     for n in names},
        # the `runs show --json` keys, same meaning, so a report is a superset of it
        "steps": [r for r in overall if r["phase"] == Phase.CASCADE],
        "after_conversion": [r for r in overall if r["phase"] == "follow_up"],
        "funnel": {"all": overall, "by_variant": by_variant},
        "attribution": {**attribution(data.members),
                        "by_variant": {n: attribution(groups[n]) for n in names}},
        "experiment": ab_tests(groups, alpha),
        "lift": holdout_lift(groups, alpha),
        "economics": economics(treated, funnel(treated, union)),
        "conversion_curve": {n: conversion_curve(groups[n]) for n in names},
        "notes": notes,
    }


def export(run_id: str, folder: Path, *, session: Session, settings: Settings) -> list[Path]:
    """`report RUN_ID --csv DIR`: the report's customers, funnel and variants as CSV."""
    data = load(run_id, session=session, settings=settings)
    return write_csv(compose(data, status_of(run_id, session=session)), data, folder)
