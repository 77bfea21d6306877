"""What customers got: the outbox (what the outbox provider "sent") and one customer's
timeline of enrollments, messages and conversions, in the `--json` shapes of DESIGN §4."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.clock import LIVE, clock_of, now_utc
from omnicascade.customers.model import customer_dict
from omnicascade.customers.quiet_hours import customer_zone
from omnicascade.db.models import (
    ConversionEvent,
    Customer,
    Delivery,
    Enrollment,
    OutboxMessage,
    Run,
)
from omnicascade.errors import NotFound
from omnicascade.reports.format import iso
from omnicascade.reports.labels import View, delivery_label, enrollment_label
from omnicascade.reports.runs import rehearsal_of
from omnicascade.reports.when import zone_name
from omnicascade.vocabulary import step_label


def outbox_list(*, session: Session, customer_id: str | None = None,
                run_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    q = select(OutboxMessage).order_by(OutboxMessage.sent_at, OutboxMessage.id)
    if customer_id:
        q = q.where(OutboxMessage.customer_id == customer_id)
    if run_id:
        q = q.where(OutboxMessage.run_id == run_id)
    return [{"customer_id": m.customer_id, "run_id": m.run_id, "step": m.step,
             "label": step_label(m.step), "channel": m.channel, "to": m.to_address,
             "subject": m.subject or m.title, "body": m.body, "sent_at": iso(m.sent_at)}
            for m in session.scalars(q.limit(limit))]


def customer_show(customer_id: str, *, session: Session) -> dict[str, Any]:
    """A customer's timeline. Besides the stored facts (ISO instants, machine keys): the
    customer's `zone` (the one quiet hours use), each enrollment's `rehearsal` and
    `status_label`, each message's step `label` and `status_label` — in campaign time, in
    that zone."""
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    rows = list(session.scalars(select(Enrollment).where(
        Enrollment.customer_id == customer_id).order_by(Enrollment.enrolled_at)))
    runs = {r.id: r for r in session.scalars(select(Run).where(
        Run.id.in_({e.run_id for e in rows})))}
    deliveries = list(session.scalars(select(Delivery).where(
        Delivery.customer_id == customer_id).order_by(Delivery.created_at, Delivery.id)))
    conversions = list(session.scalars(select(ConversionEvent).where(
        ConversionEvent.customer_id == customer_id).order_by(ConversionEvent.occurred_at)))
    seen = {c.event_id: c.recorded_at for c in conversions}
    # the zone quiet hours use: the customer's, their phone's, else their latest campaign's
    latest = runs.get(rows[-1].run_id) if rows else None
    zone = customer_zone(customer.timezone, customer.phone,
                         _spec(latest).get("timezone") if latest else None)
    now = now_utc()

    def view(run_id: str) -> View:
        run = runs.get(run_id)
        return View(clock_of(run) if run else LIVE, zone, now)

    sends: dict[str, list[dict[str, Any]]] = {}
    for d in deliveries:
        sends.setdefault(d.enrollment_id, []).append(
            {"phase": d.phase, "index": d.step_index, "channel": d.channel,
             "template": d.template, "status": d.status, "reason": d.reason,
             "at": d.sent_at or d.created_at, "deferred_until": d.deferred_until})
    enrollments = []
    for e in rows:
        run = runs.get(e.run_id)
        fields = {"status": e.status, "exit_reason": e.exit_reason, "variant": e.variant,
                  "converted_at": e.converted_at}
        enrollments.append({
            "enrollment_id": e.id, "run_id": e.run_id, "campaign": run.campaign if run else None,
            "variant": e.variant, "status": e.status, "exit_reason": e.exit_reason,
            "promo_code": e.promo_code, "enrolled_at": iso(e.enrolled_at),
            "converted_at": iso(e.converted_at), "finished_at": iso(e.finished_at),
            "conversion_event_id": e.conversion_event_id,
            "status_label": enrollment_label(fields, sends.get(e.id, []), _spec(run),
                                             seen.get(e.conversion_event_id or ""),
                                             view(e.run_id)),
            "rehearsal": rehearsal_of(run) if run else None})
    messages = [{"run_id": d.run_id, "step": d.step_key,
                 "label": step_label(d.step_key, d.phase), "phase": d.phase,
                 "channel": d.channel, "template": d.template, "status": d.status,
                 "reason": d.reason, "provider": d.provider,
                 "at": iso(d.sent_at or d.created_at), "deferred_until": iso(d.deferred_until),
                 "status_label": delivery_label(d.status, d.reason, d.deferred_until,
                                                view(d.run_id))}
                for d in deliveries]
    return {"customer": {**customer_dict(customer), "zone": zone_name(zone)},
            "enrollments": enrollments, "messages": messages,
            "conversions": [{"event_id": c.event_id, "type": c.type,
                             "promo_code": c.promo_code, "order_id": c.order_id,
                             "amount": c.amount, "currency": c.currency,
                             "occurred_at": iso(c.occurred_at),
                             "recorded_at": iso(c.recorded_at)} for c in conversions]}


def _spec(run: Run | None) -> dict[str, Any]:
    return dict((run.snapshot or {}).get("spec") or {}) if run else {}

