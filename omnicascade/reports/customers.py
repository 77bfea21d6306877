"""What customers got: the outbox (what the outbox provider "sent") and one customer's
timeline of enrollments, messages and conversions, in the `--json` shapes of DESIGN §4."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from omnicascade.customers.model import customer_dict
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


def outbox_list(*, session: Session, customer_id: str | None = None,
                run_id: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    q = select(OutboxMessage).order_by(OutboxMessage.sent_at, OutboxMessage.id)
    if customer_id:
        q = q.where(OutboxMessage.customer_id == customer_id)
    if run_id:
        q = q.where(OutboxMessage.run_id == run_id)
    return [{"customer_id": m.customer_id, "run_id": m.run_id, "step": m.step,
             "channel": m.channel, "to": m.to_address, "subject": m.subject or m.title,
             "body": m.body, "sent_at": iso(m.sent_at)}
            for m in session.scalars(q.limit(limit))]


def customer_show(customer_id: str, *, session: Session) -> dict[str, Any]:
    customer = session.get(Customer, customer_id)
    if customer is None:
        raise NotFound(f"no customer {customer_id!r}")
    runs = {r.id: r.campaign for r in session.scalars(select(Run))}
    enrollments = [{"enrollment_id": e.id, "run_id": e.run_id, "campaign": runs.get(e.run_id),
                    "variant": e.variant, "status": e.status, "exit_reason": e.exit_reason,
                    "promo_code": e.promo_code, "enrolled_at": iso(e.enrolled_at),
                    "converted_at": iso(e.converted_at), "finished_at": iso(e.finished_at)}
                   for e in session.scalars(select(Enrollment).where(
                       Enrollment.customer_id == customer_id).order_by(Enrollment.enrolled_at))]
    messages = [{"run_id": d.run_id, "step": d.step_key, "phase": d.phase,
                 "channel": d.channel, "template": d.template, "status": d.status,
                 "reason": d.reason, "provider": d.provider,
                 "at": iso(d.sent_at or d.created_at)}
                for d in session.scalars(select(Delivery).where(
                    Delivery.customer_id == customer_id).order_by(Delivery.created_at))]
    conversions = [{"event_id": c.event_id, "type": c.type, "promo_code": c.promo_code,
                    "order_id": c.order_id, "amount": c.amount, "currency": c.currency,
                    "occurred_at": iso(c.occurred_at), "recorded_at": iso(c.recorded_at)}
                   for c in session.scalars(select(ConversionEvent).where(
                       ConversionEvent.customer_id == customer_id)
                       .order_by(ConversionEvent.occurred_at))]
    return {"customer": customer_dict(customer), "enrollments": enrollments,
            "messages": messages, "conversions": conversions}
