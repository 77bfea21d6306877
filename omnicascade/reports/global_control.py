"""`report --global`: does all this messaging make money at all? Customers in the global
control (OMNICASCADE_GLOBAL_CONTROL, cascade/allocation.py) got no campaign message; the
rest were messaged. Across every campaign, over the period:

- a customer is in the *global control* when any of their enrollments in the period has
  status `global_control`; *messaged* when none has and at least one was not a holdout
  (a campaign's own holdout members are neither: they were held out by one campaign only);
- a customer *converted* when any of their enrollments in the period counted a conversion
  (inside its conversion window, as every report counts it); their *revenue* is the sum of
  those conversions' amounts in the cost currency (other currencies are left out, and said);
- the lift is messaged − control: conversion rate (Newcombe interval, reports/stats.py) and
  revenue per customer (Welch's interval, scipy); the cost is what the messages cost.
"""

from __future__ import annotations

import math
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.clock import now_utc
from omnicascade.db.models import ConversionEvent, Delivery, Enrollment
from omnicascade.reports.format import iso
from omnicascade.vocabulary import HOLDOUT, EnrollmentStatus

ALPHA = 0.05
LEFT_OUT = (EnrollmentStatus.EXCLUDED, EnrollmentStatus.ERASED)


def _welch(a: list[float], b: list[float], alpha: float) -> dict[str, Any]:
    """mean(a) − mean(b) with Welch's t interval (None with fewer than 2 in a group)."""
    if len(a) < 2 or len(b) < 2:
        return {"diff": None, "ci_low": None, "ci_high": None}
    from scipy.stats import t  # only when asked: scipy costs a second to import

    def mv(x: list[float]) -> tuple[float, float]:
        m = sum(x) / len(x)
        return m, sum((v - m) ** 2 for v in x) / (len(x) - 1)
    (ma, va), (mb, vb) = mv(a), mv(b)
    sa, sb = va / len(a), vb / len(b)
    se = math.sqrt(sa + sb)
    diff = ma - mb
    if se == 0:
        return {"diff": round(diff, 6), "ci_low": round(diff, 6), "ci_high": round(diff, 6)}
    df = (sa + sb) ** 2 / (sa ** 2 / (len(a) - 1) + sb ** 2 / (len(b) - 1))
    half = float(t.ppf(1 - alpha / 2, df)) * se
    return {"diff": round(diff, 6), "ci_low": round(diff - half, 6),
            "ci_high": round(diff + half, 6)}


def global_report(*, session: Session, period_s: int = 30 * 86_400,
                  cost_currency: str = "USD", alpha: float = ALPHA) -> dict[str, Any]:
    """Over the last `period_s` seconds (of entries), across every campaign."""
    from omnicascade.reports.stats import compare, rate_ci, relative_lift

    now = now_utc()
    start = now - timedelta(seconds=period_s)
    rows = session.execute(
        select(Enrollment.customer_id, Enrollment.status, Enrollment.variant,
               Enrollment.conversion_event_id, ConversionEvent.amount,
               ConversionEvent.currency)
        .outerjoin(ConversionEvent, ConversionEvent.event_id == Enrollment.conversion_event_id)
        .where(Enrollment.enrolled_at >= start, Enrollment.status.not_in(LEFT_OUT)))
    control: set[str] = set()
    treated: set[str] = set()
    events: dict[str, dict[str, Decimal]] = {}  # customer → conversion event → amount
    foreign = 0
    for customer, status, variant, event_id, amount, currency in rows:
        if status == EnrollmentStatus.GLOBAL_CONTROL:
            control.add(customer)
        elif variant != HOLDOUT:
            treated.add(customer)
        if event_id is not None:
            mine = events.setdefault(customer, {})
            if currency and currency != cost_currency:
                foreign += event_id not in mine
                mine[event_id] = Decimal(0)
            else:
                mine[event_id] = amount or Decimal(0)
    treated -= control
    revenue = {c: float(sum(v.values(), Decimal(0))) for c, v in events.items()}
    groups = {"messaged": sorted(treated), "global_control": sorted(control)}
    cost = session.scalar(select(func.coalesce(func.sum(Delivery.cost), 0))
                          .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
                          .where(Enrollment.enrolled_at >= start)) or 0
    out: dict[str, Any] = {"since": iso(start), "until": iso(now), "alpha": alpha,
                           "currency": cost_currency}
    for name, members in groups.items():
        money = [revenue.get(c, 0.0) for c in members]
        out[name] = {**rate_ci(sum(c in events for c in members), len(members), alpha),
                     "customers": len(members), "revenue": round(sum(money), 4),
                     "revenue_per_customer": round(sum(money) / len(money), 6)
                     if money else None}
    m, g = out["messaged"], out["global_control"]
    out["lift"] = {
        "conversion_rate": compare(g["converted"], g["enrolled"], m["converted"], m["enrolled"],
                                   alpha),
        "relative": relative_lift(m["converted"], m["enrolled"], g["converted"], g["enrolled"],
                                  alpha),
        "revenue_per_customer": _welch([revenue.get(c, 0.0) for c in groups["messaged"]],
                                       [revenue.get(c, 0.0) for c in groups["global_control"]],
                                       alpha)}
    extra = (m["revenue_per_customer"] or 0) - (g["revenue_per_customer"] or 0)
    out["messaging_cost"] = round(float(cost), 4)
    out["incremental_revenue"] = round(extra * m["customers"], 4) if g["customers"] else None
    notes = []
    if g["customers"] < 1000:
        notes.append(f"the global control has {g['customers']} customers: below about 1,000 "
                     f"its interval is wide (OMNICASCADE_GLOBAL_CONTROL sizes it)")
    if foreign:
        notes.append(f"{foreign} conversion(s) in another currency than {cost_currency} are "
                     f"counted as conversions but not in revenue")
    out["notes"] = notes
    return out
