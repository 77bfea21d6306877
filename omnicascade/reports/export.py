"""`omnicascade report RUN_ID --csv DIR`: spreadsheet files.

customers.csv  one row per enrolled customer (no email or phone: customer ids only)
funnel.csv     one row per variant × step (the report's `funnel.all`)
variants.csv   one row per variant: rate, interval, revenue, cost

Steps are named as everywhere (`step 1`, `after 1`), skip reasons by their label; times
are real (wall-clock) instants in ISO 8601 with their offset (`2026-12-02T09:00:00+00:00`),
a spreadsheet's one clock; a rehearsal's export adds its campaign clock's readings in
their own columns (`campaign_time`, `converted_campaign_time`) and its hours are campaign
hours (data.py); every amount has its currency beside it, and revenue in several
currencies is never added up.
"""

from __future__ import annotations

import csv
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from omnicascade.clock import LIVE, RunClock
from omnicascade.reports.attribution import (
    credited_send,
    hours_since_enrollment,
    hours_since_message,
)
from omnicascade.reports.data import Member, RunData
from omnicascade.reports.money import Currencies, number
from omnicascade.reports.when import aware
from omnicascade.vocabulary import Phase, reason_label, step_label

CUSTOMER_COLUMNS = ["customer_id", "enrollment_id", "variant", "status", "exit_reason",
                    "enrolled_at", "converted", "converted_at", "hours_to_convert",
                    "conversion_event_id", "conversion_type", "amount", "currency",
                    "credited_step", "credited_channel", "hours_since_credited_message",
                    "messages_sent", "cost", "follow_up_cost", "cost_currency"]
MONEY_COLUMNS = ["revenue", "revenue_currency", "revenue_by_currency", "revenue_total",
                 "conversions_without_amount", "cost", "cost_currency", "cost_per_conversion",
                 "roi"]
FUNNEL_COLUMNS = ["variant", "phase", "step", "channel", "reached", "attempted", "sent",
                  "unknown", "failed", "skipped", "skipped_by_reason", "delivered", "opened",
                  "clicked", "bounced", "converted_after", *MONEY_COLUMNS]
VARIANT_COLUMNS = ["variant", "enrolled", "converted", "rate", "ci_low", "ci_high",
                   "messages_sent", *MONEY_COLUMNS, "follow_up_messages", "follow_up_cost",
                   "median_hours_to_convert", "p90_hours_to_convert"]


REHEARSAL_COLUMNS = ["campaign_time", "converted_campaign_time"]  # a rehearsal's only


def _time(value: datetime | None) -> str:
    """An instant (naive means UTC, as stored) in ISO 8601 with its offset, to the nearest
    second (a rehearsal's instant mapped back to the wall clock is a few µs off)."""
    if not value:
        return ""
    return (aware(value) + timedelta(microseconds=500_000)).replace(microsecond=0).isoformat()


def _num(value: float | Decimal | None, digits: int = 4) -> str:
    if value is None:
        return ""
    return f"{number(value, digits) if isinstance(value, Decimal) else round(value, digits):g}"


def _cells(row: dict[str, Any], columns: list[str]) -> dict[str, Any]:
    """A report row's values for these columns ("" for None; revenue by currency as
    `EUR 180; USD 100`)."""
    out = {k: "" if row.get(k) is None else row[k] for k in columns if k in row}
    if "revenue_by_currency" in out:
        out["revenue_by_currency"] = "; ".join(f"{c} {a:g}" for c, a in
                                               row["revenue_by_currency"].items())
    return out


def customer_row(m: Member, steps: int, cur: Currencies | None = None,
                 clock: RunClock = LIVE) -> dict[str, Any]:
    """`m`'s row; `m`'s instants are on `clock` (data.py): its times are written as wall
    time, a rehearsal's campaign time beside them."""
    cur = cur or Currencies()
    credited = credited_send(m)
    h = hours_since_enrollment(m)
    row = {"customer_id": m.customer_id, "enrollment_id": m.enrollment_id,
           "variant": m.variant, "status": m.status, "exit_reason": m.exit_reason or "",
           "enrolled_at": _time(clock.wall(m.enrolled_at)), "converted": int(m.converted),
           "converted_at": _time(clock.wall(m.converted_at)) if m.converted_at else "",
           "hours_to_convert": _num(h),
           "conversion_event_id": m.conversion.event_id if m.conversion else "",
           "conversion_type": m.conversion.type if m.conversion else "",
           "amount": _num(m.amount, 2),
           "currency": cur.of(m.currency) if m.amount is not None else (m.currency or ""),
           "credited_step": step_label(credited.index) if credited else "",
           "credited_channel": credited.channel if credited else "",
           "hours_since_credited_message": _num(hours_since_message(m, credited))
           if credited else "",
           "messages_sent": sum(s.went_out for s in m.sends if s.phase == Phase.CASCADE),
           "cost": _num(m.cost, 6), "follow_up_cost": _num(m.follow_up_cost, 6),
           "cost_currency": cur.cost}
    if clock.rehearsal:
        row.update(campaign_time=_time(m.enrolled_at),
                   converted_campaign_time=_time(m.converted_at))
    cascade = {s.index: s for s in m.sends if s.phase == Phase.CASCADE}
    for i in range(steps):
        s = cascade.get(i)
        row[f"step_{i + 1}"] = "" if s is None else f"{s.channel}: {s.status}" + (
            f" ({reason_label(s.reason)})" if s.reason and s.status != "sent" else "")
    return row


def write_csv(report: dict[str, Any], data: RunData, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    steps = 1 + max((s.index for m in data.members for s in m.sends if s.phase == "cascade"),
                    default=-1)
    paths = [folder / "customers.csv", folder / "funnel.csv", folder / "variants.csv"]
    with paths[0].open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, CUSTOMER_COLUMNS + (REHEARSAL_COLUMNS if data.clock.rehearsal
                                                  else [])
                           + [f"step_{i + 1}" for i in range(steps)])
        w.writeheader()
        w.writerows(customer_row(m, steps, data.money, data.clock) for m in data.members)
    with paths[1].open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, FUNNEL_COLUMNS)
        w.writeheader()
        for r in report["funnel"]["all"]:  # every step of every variant, once
            w.writerow({**_cells(r, FUNNEL_COLUMNS), "step": r["label"],
                        "skipped_by_reason": "; ".join(
                            f"{reason_label(k)} {v}" for k, v in r["skipped_by_reason"].items())})
    with paths[2].open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, VARIANT_COLUMNS)
        w.writeheader()
        for name, v in report["variants"].items():
            w.writerow({**_cells(v, VARIANT_COLUMNS), "variant": name,
                        "follow_up_messages": v["after_conversion"]["messages"],
                        "follow_up_cost": v["after_conversion"]["cost"],
                        "median_hours_to_convert": _num(v["hours_to_convert"]["median"]),
                        "p90_hours_to_convert": _num(v["hours_to_convert"]["p90"])})
    return paths
