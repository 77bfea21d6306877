"""Read models for the CLI and API: run summaries and funnels, the outbox, customer timelines.
Each returns plain dicts in the `--json` shapes of DESIGN §4."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from omnicascade.customers import customer_dict
from omnicascade.db.models import (
    ConversionEvent,
    Customer,
    Delivery,
    Enrollment,
    OutboxMessage,
    Run,
)
from omnicascade.errors import UserFacingError

SENT = ("sent", "unknown")
FAILED = ("failed", "retrying")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() + "Z" if value else None


def run_status(run: Run, counts: dict[str, int]) -> str:
    if run.status == "listening":
        return "listening"
    if run.status == "stopped":
        return "stopped"
    return "running" if counts.get("pending", 0) + counts.get("active", 0) else "completed"


def _status_counts(session: Session, run_ids: list[str]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = defaultdict(dict)
    for run_id, status, n in session.execute(
            select(Enrollment.run_id, Enrollment.status, func.count())
            .where(Enrollment.run_id.in_(run_ids)).group_by(Enrollment.run_id,
                                                            Enrollment.status)):
        out[run_id][status] = n
    return out


def _converted_counts(session: Session, run_ids: list[str]) -> dict[str, int]:
    return dict(session.execute(select(Enrollment.run_id, func.count())
                                .where(Enrollment.run_id.in_(run_ids),
                                       Enrollment.converted_at.is_not(None),
                                       Enrollment.status != "excluded")
                                .group_by(Enrollment.run_id)).all())


def runs_list(*, session: Session) -> list[dict[str, Any]]:
    runs = list(session.scalars(select(Run).order_by(Run.created_at.desc())))
    ids = [r.id for r in runs]
    counts, converted = _status_counts(session, ids), _converted_counts(session, ids)
    rows = []
    for run in runs:
        c = counts.get(run.id, {})
        enrolled = sum(n for s, n in c.items() if s != "excluded")
        conv = converted.get(run.id, 0)
        rows.append({"run_id": run.id, "campaign": run.campaign, "status": run_status(run, c),
                     "created_at": _iso(run.created_at), "enrolled": enrolled,
                     "excluded": c.get("excluded", 0), "active": c.get("active", 0)
                     + c.get("pending", 0), "converted": conv,
                     "conversion_rate": round(conv / enrolled, 4) if enrolled else 0.0})
    return rows


class NotFound(UserFacingError, LookupError):
    pass


def _waiting(session: Session, run_id: str) -> dict[tuple[int, str], int]:
    """Live funnel: how many cascades still in progress last reached each step."""
    last: dict[str, tuple[int, str]] = {}
    for enrollment_id, index, channel in session.execute(
            select(Delivery.enrollment_id, Delivery.step_index, Delivery.channel)
            .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
            .where(Delivery.run_id == run_id, Delivery.phase == "cascade",
                   Enrollment.status.in_(("pending", "active")))):
        if enrollment_id not in last or index > last[enrollment_id][0]:
            last[enrollment_id] = (index, channel)
    out: dict[tuple[int, str], int] = defaultdict(int)
    for key in last.values():
        out[key] += 1
    return dict(out)


def run_show(run_id: str, *, session: Session) -> dict[str, Any]:
    run = session.get(Run, run_id)
    if run is None:
        raise NotFound(f"no run {run_id!r}; `omnicascade runs list` shows the runs")
    c = _status_counts(session, [run.id]).get(run.id, {})
    enrolled = sum(n for s, n in c.items() if s != "excluded")
    converted = _converted_counts(session, [run.id]).get(run.id, 0)
    steps: dict[tuple[str, int, str], dict[str, Any]] = {}
    reasons: dict[tuple[str, int, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for phase, index, channel, status, reason, n in session.execute(
            select(Delivery.phase, Delivery.step_index, Delivery.channel, Delivery.status,
                   Delivery.reason, func.count()).where(Delivery.run_id == run.id)
            .group_by(Delivery.phase, Delivery.step_index, Delivery.channel, Delivery.status,
                      Delivery.reason)):
        key = (phase, index, channel)
        row = steps.setdefault(key, {"index": index, "channel": channel, "sent": 0,
                                     "skipped": 0, "failed": 0, "unknown": 0, "deferred": 0})
        if status in SENT:
            row["sent"] += n
            if status == "unknown":
                row["unknown"] += n
        elif status == "skipped":
            row["skipped"] += n
            reasons[key][reason or "other"] += n
        elif status in FAILED:
            row["failed"] += n
        elif status == "deferred":  # quiet hours: held back, goes out later
            row["deferred"] += n
    for key, row in steps.items():
        row["skipped_by_reason"] = dict(reasons.get(key, {}))
        row["waiting"] = 0
    for (index, channel), n in _waiting(session, run.id).items():
        steps.setdefault(("cascade", index, channel), {
            "index": index, "channel": channel, "sent": 0, "skipped": 0, "failed": 0,
            "unknown": 0, "deferred": 0, "skipped_by_reason": {}, "waiting": 0})["waiting"] = n
    variants: dict[str, dict[str, int]] = {}
    for variant, status, is_conv, n in session.execute(
            select(Enrollment.variant, Enrollment.status, Enrollment.converted_at.is_not(None),
                   func.count()).where(Enrollment.run_id == run.id)
            .group_by(Enrollment.variant, Enrollment.status,
                      Enrollment.converted_at.is_not(None))):
        if status == "excluded":
            continue
        v = variants.setdefault(variant, {"enrolled": 0, "converted": 0})
        v["enrolled"] += n
        v["converted"] += n if is_conv else 0
    return {"run_id": run.id, "campaign": run.campaign, "status": run_status(run, c),
            "created_at": _iso(run.created_at), "trigger": run.trigger_event,
            "enrolled": enrolled, "excluded": c.get("excluded", 0),
            "active": c.get("active", 0) + c.get("pending", 0), "converted": converted,
            "steps": [v for k, v in sorted(steps.items()) if k[0] == "cascade"],
            "after_conversion": [v for k, v in sorted(steps.items()) if k[0] == "follow_up"],
            "variants": variants,
            "sent_after_conversion": sends_after_conversion(session=session, run_id=run.id)}


def sends_after_conversion(*, session: Session, run_id: str | None = None) -> int:
    """Cascade messages handed to a provider after the customer's conversion was recorded.
    Promise 1 says this is always 0; the demo and the benchmark print it."""
    q = (select(func.count()).select_from(Delivery)
         .join(Enrollment, Enrollment.id == Delivery.enrollment_id)
         .join(ConversionEvent, ConversionEvent.event_id == Enrollment.conversion_event_id)
         .where(Delivery.phase == "cascade", Delivery.status.in_(SENT),
                Delivery.created_at > ConversionEvent.recorded_at))
    if run_id:
        q = q.where(Delivery.run_id == run_id)
    return int(session.scalar(q) or 0)


def outbox_list(*, session: Session, customer_id: str | None = None,
                run_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    q = select(OutboxMessage).order_by(OutboxMessage.sent_at, OutboxMessage.id)
    if customer_id:
        q = q.where(OutboxMessage.customer_id == customer_id)
    if run_id:
        q = q.where(OutboxMessage.run_id == run_id)
    return [{"customer_id": m.customer_id, "run_id": m.run_id, "step": m.step,
             "channel": m.channel, "to": m.to_address, "subject": m.subject or m.title,
             "body": m.body, "sent_at": _iso(m.sent_at)}
            for m in session.scalars(q.limit(limit))]


def customer_show(customer_id: str, *, session: Session) -> dict[str, Any]:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    runs = {r.id: r.campaign for r in session.scalars(select(Run))}
    enrollments = [{"enrollment_id": e.id, "run_id": e.run_id, "campaign": runs.get(e.run_id),
                    "variant": e.variant, "status": e.status, "exit_reason": e.exit_reason,
                    "promo_code": e.promo_code, "enrolled_at": _iso(e.enrolled_at),
                    "converted_at": _iso(e.converted_at), "finished_at": _iso(e.finished_at)}
                   for e in session.scalars(select(Enrollment).where(
                       Enrollment.customer_id == customer_id).order_by(Enrollment.enrolled_at))]
    messages = [{"run_id": d.run_id, "step": d.step_key, "phase": d.phase,
                 "channel": d.channel, "template": d.template, "status": d.status,
                 "reason": d.reason, "provider": d.provider,
                 "at": _iso(d.sent_at or d.created_at)}
                for d in session.scalars(select(Delivery).where(
                    Delivery.customer_id == customer_id).order_by(Delivery.created_at))]
    conversions = [{"event_id": c.event_id, "type": c.type, "promo_code": c.promo_code,
                    "order_id": c.order_id, "amount": c.amount, "currency": c.currency,
                    "occurred_at": _iso(c.occurred_at), "recorded_at": _iso(c.recorded_at)}
                   for c in session.scalars(select(ConversionEvent).where(
                       ConversionEvent.customer_id == customer_id)
                       .order_by(ConversionEvent.occurred_at))]
    return {"customer": customer_dict(customer), "enrollments": enrollments,
            "messages": messages, "conversions": conversions}
