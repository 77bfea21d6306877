"""What customers got: the outbox (what the outbox provider "sent") and one customer's
timeline of enrollments, messages and conversions, in the `--json` shapes of
docs/architecture.md §4."""

from __future__ import annotations

from datetime import datetime
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
from omnicascade.reports.money import number
from omnicascade.reports.paging import check_limit, cut, decode
from omnicascade.reports.run_views import rehearsal_of
from omnicascade.reports.when import zone_name
from omnicascade.vocabulary import step_label


def customer_show(customer_id: str, *, session: Session, limit: int | None = None,
                  cursor: str | None = None) -> dict[str, Any]:
    """A customer's timeline (`customers show --json`); its messages a page at a time."""
    return customer_show_page(customer_id, session=session, limit=limit, cursor=cursor)[0]


def customer_show_page(customer_id: str, *, session: Session, limit: int | None = None,
                       cursor: str | None = None) -> tuple[dict[str, Any], str | None]:
    """A customer's timeline, and the cursor of its next messages (None on the last page).
    Besides the stored facts (ISO instants, machine keys): the customer's `zone` (the one
    quiet hours use), each enrollment's `rehearsal` and `status_label`, each message's
    step `label` and `status_label` — in campaign time, in that zone. Messages come a page
    at a time, oldest first (paging.py); the cursor stays out of the dict, whose keys
    DESIGN §4 fixes."""
    limit = check_limit(limit)
    last = decode("messages", cursor) if cursor is not None else None
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
    keys = {e.id: e.entry_key or None for e in rows}  # the cascade's key, on its messages too
    for e in rows:
        run = runs.get(e.run_id)
        fields = {"status": e.status, "exit_reason": e.exit_reason, "variant": e.variant,
                  "converted_at": e.converted_at}
        enrollments.append({
            "enrollment_id": e.id, "run_id": e.run_id, "campaign": run.campaign if run else None,
            "key": keys[e.id],
            "variant": e.variant, "status": e.status, "exit_reason": e.exit_reason,
            "promo_code": e.promo_code, "enrolled_at": iso(e.enrolled_at),
            "converted_at": iso(e.converted_at), "finished_at": iso(e.finished_at),
            "conversion_event_id": e.conversion_event_id,
            "status_label": enrollment_label(fields, sends.get(e.id, []), _spec(run),
                                             seen.get(e.conversion_event_id or ""),
                                             view(e.run_id)),
            "rehearsal": rehearsal_of(run) if run else None})
    # every delivery labels its enrollment; only a page of them is listed, in Python's
    # order of (created_at, id) — the cursor's — whatever the database's collation
    listed = sorted((d for d in deliveries if _after(d, last)), key=lambda d: (d.created_at, d.id))
    page, after = cut(listed, limit, "messages", lambda d: (d.created_at, d.id))
    emptied = set(session.scalars(select(OutboxMessage.delivery_id).where(  # retention
        OutboxMessage.delivery_id.in_([d.id for d in page]),
        OutboxMessage.pruned_at.is_not(None)))) if page else set()
    messages = [{"delivery_id": d.id, "run_id": d.run_id, "step": d.step_key,
                 "key": keys.get(d.enrollment_id),
                 "label": step_label(d.step_key, d.phase), "phase": d.phase,
                 "channel": d.channel, "template": d.template, "status": d.status,
                 "reason": d.reason, "provider": d.provider,
                 "at": iso(d.sent_at or d.created_at), "deferred_until": iso(d.deferred_until),
                 "status_label": delivery_label(d.status, d.reason, d.deferred_until,
                                                view(d.run_id)),
                 "body_pruned": d.id in emptied}
                for d in page]
    return {"customer": {**customer_dict(customer), "zone": zone_name(zone)},
            "enrollments": enrollments, "messages": messages,
            "conversions": [{"event_id": c.event_id, "type": c.type,
                             "promo_code": c.promo_code, "order_id": c.order_id,
                             "amount": number(c.amount, 4), "currency": c.currency,
                             "occurred_at": iso(c.occurred_at),
                             "recorded_at": iso(c.recorded_at)} for c in conversions]}, after


def _after(d: Delivery, last: tuple[datetime, str] | None) -> bool:
    return last is None or (d.created_at, d.id) > last


def _spec(run: Run | None) -> dict[str, Any]:
    return dict((run.snapshot or {}).get("spec") or {}) if run else {}

